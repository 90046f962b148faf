#!/usr/bin/env python3
"""Drives real Kafka clients (confluent-kafka / librdkafka, kafka-python) for the tests and the
demo. Each subcommand prints one JSON object on stdout and exits 0 when the client call itself
completed (its Kafka errors are data in the JSON, for the caller to assert on)."""

import argparse
import json
import sys
import time


def out(obj):
    print(json.dumps(obj), flush=True)


def produce_confluent(a):
    from confluent_kafka import Producer

    conf = {
        "bootstrap.servers": a.bootstrap,
        "client.id": a.client_id,
        "acks": a.acks,
        "linger.ms": 0,
        "enable.idempotence": False,
        "retries": 0,
        "message.timeout.ms": a.message_timeout_ms,
    }
    p = Producer(conf)
    delivered, errors = [], []

    def report(err, msg):
        if err is not None:
            errors.append({"code": err.code(), "name": err.name(), "str": err.str()})
        else:
            delivered.append(msg.value().decode())

    for i in range(a.count):
        p.produce(a.topic, value=f"{a.prefix}-{i}".encode(), on_delivery=report)
        if a.one_per_request:
            p.flush(15)
    p.flush(15)
    out({"delivered": len(delivered), "errors": errors})


def produce_kafka_python(a):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    acks = {"all": "all", "-1": "all", "0": 0, "1": 1}[a.acks]
    p = KafkaProducer(bootstrap_servers=a.bootstrap, client_id=a.client_id, acks=acks, retries=0, linger_ms=0,
                      request_timeout_ms=15000, max_block_ms=15000)
    delivered, errors = 0, []
    for i in range(a.count):
        try:
            fut = p.send(a.topic, value=f"{a.prefix}-{i}".encode())
        except KafkaError as e:
            errors.append({"name": type(e).__name__, "str": str(e)})
            continue
        if a.one_per_request or i == a.count - 1:
            try:
                fut.get(timeout=15)
                delivered += 1 if a.one_per_request else a.count
            except KafkaError as e:
                errors.append({"name": type(e).__name__, "str": str(e)})
    p.flush(15)
    p.close(5)
    out({"delivered": delivered, "errors": errors})


def consume(a):
    from confluent_kafka import Consumer

    c = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "client.id": a.client_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([a.topic])
    values, deadline = [], time.time() + a.timeout
    while len(values) < a.expect and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        values.append(m.value().decode())
    c.close()
    out({"count": len(values), "values": values})


def _kp_results(resp, key_names=("topics", "topic_error_codes", "responses")):
    """Per-topic {code, message} from a kafka-python admin response dict, whatever its version."""
    out = {}
    for key in key_names:
        for t in resp.get(key, []) or []:
            name = t.get("name") or t.get("topic")
            out[name] = {"code": t.get("error_code", 0), "message": t.get("error_message")}
    return out


def create_topics(a):
    """--spec: JSON list of {name, partitions, rf, configs}; results per topic: {code, message}."""
    spec = json.loads(a.spec)
    if a.lib == "confluent":
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": a.client_id})
        topics = [NewTopic(t["name"], num_partitions=t.get("partitions", 1), replication_factor=t.get("rf", -1),
                           config=t.get("configs", {})) for t in spec]
        results = {}
        for name, fut in admin.create_topics(topics, validate_only=a.validate_only, request_timeout=15).items():
            try:
                fut.result(20)
                results[name] = {"code": 0, "message": None}
            except Exception as e:  # KafkaException carrying a KafkaError
                err = e.args[0]
                results[name] = {"code": err.code(), "message": err.str()}
        out({"results": results})
    else:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id=a.client_id, request_timeout_ms=15000)
        new = {t["name"]: {"num_partitions": t.get("partitions", 1), "replication_factor": t.get("rf", -1),
                           "configs": t.get("configs", {})} for t in spec}
        resp = admin.create_topics(new, validate_only=a.validate_only, raise_errors=False)
        admin.close()
        out({"results": _kp_results(resp)})


def delete_topics(a):
    names = a.topics.split(",")
    if a.lib == "confluent":
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": a.client_id})
        results = {}
        for name, fut in admin.delete_topics(names, request_timeout=15).items():
            try:
                fut.result(20)
                results[name] = {"code": 0, "message": None}
            except Exception as e:
                err = e.args[0]
                results[name] = {"code": err.code(), "message": err.str()}
        out({"results": results})
    else:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id=a.client_id, request_timeout_ms=15000)
        resp = admin.delete_topics(names, raise_errors=False)
        admin.close()
        out({"results": _kp_results(resp)})


def delete_records(a):
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": a.client_id})
    futs = admin.delete_records([TopicPartition(a.topic, 0, a.offset)], request_timeout=15)
    results = {}
    for tp, fut in futs.items():
        try:
            fut.result(20)
            results[tp.topic] = {"code": 0, "message": None}
        except Exception as e:
            err = e.args[0]
            results[tp.topic] = {"code": err.code(), "message": err.str()}
    out({"results": results})


def alter_configs(a):
    """--set k=v,... and --delete k,... on one topic or broker; --incremental or legacy AlterConfigs."""
    sets = dict(kv.split("=", 1) for kv in a.set.split(",") if kv) if a.set else {}
    deletes = [k for k in a.delete.split(",") if k] if a.delete else []
    if a.lib == "confluent":
        from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

        admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": a.client_id})
        rtype = ResourceType.TOPIC if a.resource == "topic" else ResourceType.BROKER
        if a.incremental:
            entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in sets.items()]
            entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in deletes]
            futs = admin.incremental_alter_configs([ConfigResource(rtype, a.name, incremental_configs=entries)], request_timeout=15)
        else:
            futs = admin.alter_configs([ConfigResource(rtype, a.name, set_config=sets)], request_timeout=15)
        for _, fut in futs.items():
            try:
                fut.result(20)
                out({"code": 0, "message": None})
            except Exception as e:
                err = e.args[0]
                out({"code": err.code(), "message": err.str()})
    else:
        from kafka import KafkaAdminClient
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id=a.client_id, request_timeout_ms=15000)
        rtype = ConfigResourceType.TOPIC if a.resource == "topic" else ConfigResourceType.BROKER
        configs = dict(sets)
        configs.update({k: ("DELETE", None) for k in deletes})
        try:
            resp = admin.alter_configs([ConfigResource(rtype, a.name, configs=configs)], incremental=a.incremental, raise_on_unknown=False)
            out({"code": 0, "message": None, "response": str(resp)})
        except Exception as e:
            out({"code": getattr(e, "errno", -1), "message": str(e), "error": type(e).__name__})
        admin.close()


def metadata(a):
    """Brokers as each client library learns them through the bootstrap address."""
    if a.lib == "confluent":
        from confluent_kafka.admin import AdminClient

        md = AdminClient({"bootstrap.servers": a.bootstrap}).list_topics(timeout=15)
        brokers = sorted(f"{b.host}:{b.port}" for b in md.brokers.values())
        out({"brokers": brokers, "topics": sorted(md.topics)})
    else:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, request_timeout_ms=15000)
        cluster = admin.describe_cluster()
        brokers = sorted(f"{b['host']}:{b['port']}" for b in cluster["brokers"])
        admin.close()
        out({"brokers": brokers})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("produce", "consume", "metadata", "create-topics", "delete-topics", "delete-records", "alter-configs"):
        s = sub.add_parser(name)
        s.add_argument("--bootstrap", required=True)
        s.add_argument("--topic", default="t")
        s.add_argument("--client-id", default="kclient")
        s.add_argument("--lib", choices=["confluent", "kafka-python"], default="confluent")
    p = sub.choices["produce"]
    p.add_argument("--acks", default="all")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--prefix", default="m")
    p.add_argument("--message-timeout-ms", type=int, default=15000, help="confluent: give up on a record after this long")
    p.add_argument("--one-per-request", action="store_true", help="flush after each record: one Produce request each")
    c = sub.choices["consume"]
    c.add_argument("--group", default="kclient-group")
    c.add_argument("--expect", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30)
    ct = sub.choices["create-topics"]
    ct.add_argument("--spec", required=True)
    ct.add_argument("--validate-only", action="store_true")
    sub.choices["delete-topics"].add_argument("--topics", required=True)
    sub.choices["delete-records"].add_argument("--offset", type=int, default=1)
    ac = sub.choices["alter-configs"]
    ac.add_argument("--resource", choices=["topic", "broker"], default="topic")
    ac.add_argument("--name", required=True)
    ac.add_argument("--set", default="")
    ac.add_argument("--delete", default="")
    ac.add_argument("--incremental", action="store_true")
    a = ap.parse_args()
    if a.cmd == "produce":
        return (produce_confluent if a.lib == "confluent" else produce_kafka_python)(a)
    commands = {
        "consume": consume,
        "metadata": metadata,
        "create-topics": create_topics,
        "delete-topics": delete_topics,
        "delete-records": delete_records,
        "alter-configs": alter_configs,
    }
    commands[a.cmd](a)

if __name__ == "__main__":
    sys.exit(main())
