// Test driver: Shopify/sarama 1.22 (Debian), a client that never sends ApiVersions and picks
// request versions from --kafka-version (0.10.2.0: CreateTopics v0, DeleteTopics v0, Produce v2;
// 0.11.0.0: CreateTopics v1, DeleteTopics v1, Produce v3).
//
// Subcommands: create-topic, delete-topic (ClusterAdmin), produce (SyncProducer), consume
// (partition 0 from the oldest offset). Each prints one JSON object as the last line of stdout.
// Exit 0: the library call completed (Kafka error codes are data in the JSON); exit 1: the call
// failed without a Kafka error (connection closed, timeout, ...), the JSON then has "error";
// exit 2: bad usage; exit 3: the --timeout watchdog fired.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

type configs []string

func (c *configs) String() string     { return strings.Join(*c, ",") }
func (c *configs) Set(v string) error { *c = append(*c, v); return nil }

var kafkaVersion string

func emit(code int, obj map[string]interface{}) {
	obj["lib"] = "sarama 1.22"
	obj["kafka_version"] = kafkaVersion
	b, _ := json.Marshal(obj)
	fmt.Println(string(b))
	os.Exit(code)
}

// result turns a library error into {code, message}; ok is false for a non-Kafka error.
func result(err error) (map[string]interface{}, bool) {
	if err == nil {
		return map[string]interface{}{"code": 0, "message": nil}, true
	}
	var te *sarama.TopicError
	if errors.As(err, &te) {
		return map[string]interface{}{"code": int(te.Err), "message": te.Error()}, true
	}
	var ke sarama.KError
	if errors.As(err, &ke) {
		return map[string]interface{}{"code": int(ke), "message": ke.Error()}, true
	}
	return map[string]interface{}{"error": err.Error()}, false
}

func fail(stage string, err error) {
	emit(1, map[string]interface{}{"stage": stage, "error": err.Error()})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sarama-client create-topic|delete-topic|produce|consume [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "127.0.0.1:9092", "HOST:PORT of a broker")
	topic := fs.String("topic", "t", "topic name")
	clientID := fs.String("client-id", "sarama-client", "client id")
	fs.StringVar(&kafkaVersion, "kafka-version", "0.10.2.0", "sarama Config.Version")
	timeout := fs.Duration("timeout", 30*time.Second, "watchdog: give up after this long")
	verbose := fs.Bool("verbose", false, "sarama's log on stderr")
	partitions := fs.Int("partitions", 1, "create-topic: partitions")
	rf := fs.Int("rf", 1, "create-topic: replication factor")
	var cfgs configs
	fs.Var(&cfgs, "config", "create-topic: topic config k=v (repeatable)")
	acks := fs.Int("acks", -1, "produce: required acks 0, 1 or -1")
	count := fs.Int("count", 10, "produce: number of messages")
	prefix := fs.String("prefix", "m", "produce: values are PREFIX-i")
	onePer := fs.Bool("one-per-request", false, "produce: SendMessage per message, not one SendMessages")
	retries := fs.Int("retries", 0, "produce: Producer.Retry.Max")
	expect := fs.Int("expect", 1, "consume: stop after this many messages")
	_ = fs.Parse(os.Args[2:])

	time.AfterFunc(*timeout, func() {
		emit(3, map[string]interface{}{"stage": cmd, "error": fmt.Sprintf("timeout after %s", *timeout)})
	})
	if *verbose {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
	conf := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(kafkaVersion)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	conf.Version = v
	conf.ClientID = *clientID
	conf.Net.DialTimeout = 10 * time.Second
	conf.Net.ReadTimeout = 10 * time.Second
	conf.Net.WriteTimeout = 10 * time.Second
	conf.Admin.Timeout = 10 * time.Second
	brokers := []string{*bootstrap}

	switch cmd {
	case "create-topic", "delete-topic":
		admin, err := sarama.NewClusterAdmin(brokers, conf)
		if err != nil {
			fail("connect", err)
		}
		if cmd == "create-topic" {
			detail := &sarama.TopicDetail{NumPartitions: int32(*partitions), ReplicationFactor: int16(*rf),
				ConfigEntries: map[string]*string{}}
			for _, kv := range cfgs {
				p := strings.SplitN(kv, "=", 2)
				if len(p) != 2 {
					fmt.Fprintln(os.Stderr, "--config wants k=v, got", kv)
					os.Exit(2)
				}
				detail.ConfigEntries[p[0]] = &p[1]
			}
			err = admin.CreateTopic(*topic, detail, false)
		} else {
			err = admin.DeleteTopic(*topic)
		}
		_ = admin.Close()
		r, ok := result(err)
		if !ok {
			fail(cmd, err)
		}
		emit(0, map[string]interface{}{"results": map[string]interface{}{*topic: r}})

	case "produce":
		conf.Producer.RequiredAcks = sarama.RequiredAcks(*acks)
		conf.Producer.Return.Successes = true
		conf.Producer.Retry.Max = *retries
		conf.Producer.Partitioner = sarama.NewManualPartitioner
		p, err := sarama.NewSyncProducer(brokers, conf)
		if err != nil {
			fail("connect", err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < *count; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: *topic, Partition: 0,
				Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", *prefix, i))})
		}
		delivered, errs := 0, []interface{}{}
		note := func(err error) {
			r, _ := result(err)
			errs = append(errs, r)
		}
		if *onePer {
			for _, m := range msgs {
				if _, _, err := p.SendMessage(m); err != nil {
					note(err)
				} else {
					delivered++
				}
			}
		} else if err := p.SendMessages(msgs); err != nil {
			var pes sarama.ProducerErrors
			if errors.As(err, &pes) {
				for _, pe := range pes {
					note(pe.Err)
				}
				delivered = len(msgs) - len(pes)
			} else {
				note(err)
			}
		} else {
			delivered = len(msgs)
		}
		_ = p.Close()
		emit(0, map[string]interface{}{"delivered": delivered, "errors": errs})

	case "consume":
		c, err := sarama.NewConsumer(brokers, conf)
		if err != nil {
			fail("connect", err)
		}
		pc, err := c.ConsumePartition(*topic, 0, sarama.OffsetOldest)
		if err != nil {
			fail("consume", err)
		}
		values := []string{}
		stop := time.After(*timeout - time.Second)
	loop:
		for len(values) < *expect {
			select {
			case m := <-pc.Messages():
				values = append(values, string(m.Value))
			case e := <-pc.Errors():
				fail("fetch", e.Err)
			case <-stop:
				break loop
			}
		}
		_ = pc.Close()
		_ = c.Close()
		emit(0, map[string]interface{}{"count": len(values), "values": values})

	default:
		fmt.Fprintln(os.Stderr, "unknown subcommand", cmd)
		os.Exit(2)
	}
}
