// Test driver: segmentio/kafka-go 0.2.1 (Debian), a client that never sends ApiVersions and uses
// CreateTopics v0, DeleteTopics v1, Metadata v1, Produce v2, Fetch v2 and ListOffsets v1.
//
// Subcommands: create-topic, delete-topic, produce, consume. Each prints one JSON object as the
// last line of stdout. Exit 0: the library call completed (Kafka error codes are data in the
// JSON); exit 1: the call failed without a Kafka error (connection closed, timeout, ...), the
// JSON then has "error"; exit 2: bad usage; exit 3: the --timeout watchdog fired.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

type configs []string

func (c *configs) String() string     { return strings.Join(*c, ",") }
func (c *configs) Set(v string) error { *c = append(*c, v); return nil }

func emit(code int, obj map[string]interface{}) {
	obj["lib"] = "kafka-go 0.2.1"
	b, _ := json.Marshal(obj)
	fmt.Println(string(b))
	os.Exit(code)
}

// result turns a library error into {code, message}; ok is false for a non-Kafka error.
func result(err error) (map[string]interface{}, bool) {
	if err == nil {
		return map[string]interface{}{"code": 0, "message": nil}, true
	}
	var ke kafka.Error
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
		fmt.Fprintln(os.Stderr, "usage: kafkago-client create-topic|delete-topic|produce|consume [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "127.0.0.1:9092", "HOST:PORT of a broker")
	topic := fs.String("topic", "t", "topic name")
	clientID := fs.String("client-id", "kafkago-client", "client id")
	timeout := fs.Duration("timeout", 30*time.Second, "watchdog: give up after this long")
	partitions := fs.Int("partitions", 1, "create-topic: partitions (-1: unset)")
	rf := fs.Int("rf", 1, "create-topic: replication factor (-1: unset)")
	var cfgs configs
	fs.Var(&cfgs, "config", "create-topic: topic config k=v (repeatable)")
	acks := fs.Int("acks", -1, "produce: required acks, -1 or 1 (kafka-go 0.2.1 refuses 0)")
	count := fs.Int("count", 10, "produce: number of messages")
	prefix := fs.String("prefix", "m", "produce: values are PREFIX-i")
	onePer := fs.Bool("one-per-request", false, "produce: one Produce request per message")
	expect := fs.Int("expect", 1, "consume: stop after this many messages")
	_ = fs.Parse(os.Args[2:])

	time.AfterFunc(*timeout, func() {
		emit(3, map[string]interface{}{"stage": cmd, "error": fmt.Sprintf("timeout after %s", *timeout)})
	})
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, ClientID: *clientID}
	deadline := time.Now().Add(*timeout)

	switch cmd {
	case "create-topic", "delete-topic":
		conn, err := dialer.Dial("tcp", *bootstrap)
		if err != nil {
			fail("dial", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(deadline)
		if cmd == "create-topic" {
			tc := kafka.TopicConfig{Topic: *topic, NumPartitions: *partitions, ReplicationFactor: *rf}
			for _, kv := range cfgs {
				p := strings.SplitN(kv, "=", 2)
				if len(p) != 2 {
					fmt.Fprintln(os.Stderr, "--config wants k=v, got", kv)
					os.Exit(2)
				}
				tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: p[0], ConfigValue: p[1]})
			}
			// Note: 0.2.1 maps TopicAlreadyExists (36) to success itself.
			err = conn.CreateTopics(tc)
		} else {
			err = conn.DeleteTopics(*topic)
		}
		r, ok := result(err)
		if !ok {
			fail(cmd, err)
		}
		emit(0, map[string]interface{}{"results": map[string]interface{}{*topic: r}})

	case "produce":
		if *acks != -1 && *acks != 1 {
			fmt.Fprintln(os.Stderr, "kafka-go 0.2.1 supports --acks -1 or 1 only")
			os.Exit(2)
		}
		conn, err := dialer.DialLeader(context.Background(), "tcp", *bootstrap, *topic, 0)
		if err != nil {
			fail("dial-leader", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(deadline)
		_ = conn.SetRequiredAcks(*acks)
		var msgs []kafka.Message
		for i := 0; i < *count; i++ {
			msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf("%s-%d", *prefix, i))})
		}
		delivered, errs := 0, []interface{}{}
		batches := [][]kafka.Message{msgs}
		if *onePer {
			batches = nil
			for i := range msgs {
				batches = append(batches, msgs[i:i+1])
			}
		}
		for _, b := range batches {
			if _, err := conn.WriteMessages(b...); err != nil {
				r, _ := result(err)
				errs = append(errs, r)
				continue
			}
			delivered += len(b)
		}
		emit(0, map[string]interface{}{"delivered": delivered, "errors": errs})

	case "consume":
		conn, err := dialer.DialLeader(context.Background(), "tcp", *bootstrap, *topic, 0)
		if err != nil {
			fail("dial-leader", err)
		}
		defer conn.Close()
		if _, err := conn.Seek(0, kafka.SeekStart); err != nil {
			fail("seek", err)
		}
		values := []string{}
		stop := deadline.Add(-2 * time.Second) // end before the watchdog, with what was read
		for len(values) < *expect && time.Now().Before(stop) {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			batch := conn.ReadBatch(1, 1<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				values = append(values, string(m.Value))
			}
			if err := batch.Close(); err != nil && len(values) == 0 && !isTimeout(err) {
				fail("fetch", err)
			}
		}
		emit(0, map[string]interface{}{"count": len(values), "values": values})

	default:
		fmt.Fprintln(os.Stderr, "unknown subcommand", cmd)
		os.Exit(2)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
