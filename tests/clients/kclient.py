#!/usr/bin/env python3
"""Drives real Kafka clients (confluent-kafka / librdkafka, kafka-python) for the tests and the
demo. Each subcommand prints one JSON object on stdout and exits 0 when the client call itself
completed (its Kafka errors are data in the JSON, for the caller to assert on).

Every subcommand takes the same security options (--security-protocol, --sasl-mechanism,
--username, --password, --ca, --cert, --key, --no-hostname-check) for both libraries, and
--timeout SECONDS, which shortens every client timeout so that a failed authentication comes back
as data instead of a hang. Connection-level errors (librdkafka's error_cb, exceptions a
kafka-python client raises) are in `client_errors`; kafka-python's ERROR log lines in
`log_errors`."""

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import ssl
import struct
import sys
import time

# Connection-level errors seen during the run: {code, name, str[, fatal]}, deduplicated.
CLIENT_ERRORS = []
# kafka-python's ERROR log lines (it logs the broker's SASL error there, then raises a summary).
LOG_ERRORS = []

# Error names that mean the peer refused our credentials or certificates (SASL or TLS): retrying
# will not help, so a run stops waiting once it has seen one.
REFUSED_NAMES = {"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "SaslAuthenticationFailedError",
                 "AuthenticationFailedError", "_SSL"}


def out(obj):
    obj.setdefault("client_errors", CLIENT_ERRORS)
    obj.setdefault("log_errors", LOG_ERRORS)
    print(json.dumps(obj), flush=True)


def note_error(entry):
    key = (entry.get("name"), entry.get("str"))
    if all((e.get("name"), e.get("str")) != key for e in CLIENT_ERRORS):
        CLIENT_ERRORS.append(entry)


def kafka_error_dict(err):
    """A confluent KafkaError as {code, name, str, fatal}."""
    return {"code": err.code(), "name": err.name(), "str": err.str(), "fatal": err.fatal()}


def exception_dict(e):
    """Any client exception as {code, name, str}: a confluent KafkaException's KafkaError when it
    carries one, else the exception class (kafka-python errors carry errno)."""
    if e.args and hasattr(e.args[0], "code") and hasattr(e.args[0], "name") and callable(e.args[0].name):
        return kafka_error_dict(e.args[0])
    return {"code": getattr(e, "errno", None), "name": type(e).__name__, "str": str(e)}


def refused():
    """True once the peer refused our credentials or certificates. librdkafka reports a TLS alert,
    such as "certificate required", as a _TRANSPORT error naming OpenSSL's "SSL routines". A
    refused SaslHandshake does not count: tansu 0.6.0 refuses the one of every KIP-368
    re-authentication (about 54 s into a connection) and the client simply reconnects."""
    def counts(e):
        text = e.get("str") or ""
        if "mechanism handshake failed" in text:
            return False
        return e.get("name") in REFUSED_NAMES or (e.get("name") == "_TRANSPORT" and "SSL routines" in text)
    return any(counts(e) for e in CLIENT_ERRORS)


def _cf_error_cb(err):
    note_error(kafka_error_dict(err))


class _LogErrors(logging.Handler):
    def emit(self, record):
        msg = record.getMessage()
        if msg not in LOG_ERRORS:
            LOG_ERRORS.append(msg)


def cf_conf(a, base):
    """confluent-kafka config: `base` plus client id, security settings, error_cb and, with
    --timeout, short socket timeouts."""
    conf = {"bootstrap.servers": a.bootstrap, "client.id": a.client_id}
    conf.update(base)
    if a.security_protocol:
        conf["security.protocol"] = a.security_protocol
        if a.security_protocol.startswith("SASL_"):
            conf["sasl.mechanisms"] = a.sasl_mechanism or "SCRAM-SHA-256"
            if a.username is not None:
                conf["sasl.username"] = a.username
            if a.password is not None:
                conf["sasl.password"] = a.password
        if a.security_protocol.endswith("SSL"):
            conf["ssl.endpoint.identification.algorithm"] = "none" if a.no_hostname_check else "https"
    if a.ca:
        conf["ssl.ca.location"] = a.ca
    if a.cert:
        conf["ssl.certificate.location"] = a.cert
    if a.key:
        conf["ssl.key.location"] = a.key
    for kv in a.conf or []:
        k, _, v = kv.partition("=")
        conf[k] = v
    if a.timeout:
        ms = max(int(a.timeout * 1000), 100)
        conf.setdefault("socket.timeout.ms", max(ms, 10))
        conf.setdefault("socket.connection.setup.timeout.ms", max(ms, 1000))
    conf["error_cb"] = _cf_error_cb
    return conf


def kp_kwargs(a, **base):
    """kafka-python keyword arguments: `base` plus client id, security settings and, with
    --timeout, short request and bootstrap timeouts."""
    kw = {"bootstrap_servers": a.bootstrap, "client_id": a.client_id}
    kw.update(base)
    if a.security_protocol:
        kw["security_protocol"] = a.security_protocol
        if a.security_protocol.startswith("SASL_"):
            kw["sasl_mechanism"] = a.sasl_mechanism or "SCRAM-SHA-256"
            kw["sasl_plain_username"] = a.username
            kw["sasl_plain_password"] = a.password
        if a.security_protocol.endswith("SSL"):
            kw["ssl_check_hostname"] = not a.no_hostname_check
    if a.ca:
        kw["ssl_cafile"] = a.ca
    if a.cert:
        kw["ssl_certfile"] = a.cert
    if a.key:
        kw["ssl_keyfile"] = a.key
    if a.timeout:
        ms = max(int(a.timeout * 1000), 1000)
        kw["request_timeout_ms"] = ms
        kw["bootstrap_timeout_ms"] = ms
    if a.api_version:
        kw["api_version"] = tuple(int(p) for p in a.api_version.split("."))
    return kw


def request_timeout(a, default=15):
    return a.timeout if a.timeout else default


def cf_flush(p, seconds):
    """Flushes a confluent producer for up to `seconds`, stopping early (and purging what is
    left, so its delivery reports say so) once the broker has refused our credentials."""
    deadline = time.time() + seconds
    while len(p) > 0 and time.time() < deadline:
        p.flush(0.2)
        if refused():
            p.purge()
            p.flush(1)
            break


def produce_confluent(a):
    from confluent_kafka import Producer

    timeout_ms = a.message_timeout_ms if not a.timeout else min(a.message_timeout_ms, int(a.timeout * 1000))
    p = Producer(cf_conf(a, {
        "acks": a.acks,
        "linger.ms": 0,
        "enable.idempotence": False,
        "retries": 0,
        "message.timeout.ms": timeout_ms,
    }))
    delivered, errors = [], []

    def report(err, msg):
        if err is not None:
            errors.append({"code": err.code(), "name": err.name(), "str": err.str()})
        else:
            delivered.append(msg.value().decode())

    wait = request_timeout(a)
    for i in range(a.count):
        p.produce(a.topic, value=f"{a.prefix}-{i}".encode(), on_delivery=report)
        if a.one_per_request:
            cf_flush(p, wait)
    cf_flush(p, wait)
    out({"delivered": len(delivered), "errors": errors})


def produce_kafka_python(a):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    acks = {"all": "all", "-1": "all", "0": 0, "1": 1}[a.acks]
    wait = request_timeout(a)
    p = KafkaProducer(**kp_kwargs(a, acks=acks, retries=0, linger_ms=0, request_timeout_ms=15000,
                                  max_block_ms=int(wait * 1000)))
    delivered, errors = 0, []
    for i in range(a.count):
        try:
            fut = p.send(a.topic, value=f"{a.prefix}-{i}".encode())
        except KafkaError as e:
            errors.append({"name": type(e).__name__, "str": str(e)})
            if refused_exception(e):
                break
            continue
        if a.one_per_request or i == a.count - 1:
            try:
                fut.get(timeout=wait)
                delivered += 1 if a.one_per_request else a.count
            except KafkaError as e:
                errors.append({"name": type(e).__name__, "str": str(e)})
    p.flush(wait)
    p.close(5)
    out({"delivered": delivered, "errors": errors})


def refused_exception(e):
    """Notes a kafka-python exception as a client error; true when it means credentials refused."""
    note_error(exception_dict(e))
    return refused()


def consume(a):
    deadline = time.time() + (a.timeout or 30)
    values, errors = [], []
    if a.lib == "confluent":
        from confluent_kafka import Consumer

        c = Consumer(cf_conf(a, {
            "group.id": a.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }))
        c.subscribe([a.topic])
        while len(values) < a.expect and time.time() < deadline and not refused():
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                e = kafka_error_dict(m.error())
                if e not in errors:
                    errors.append(e)
                continue
            values.append(m.value().decode())
        if a.commit and values:
            try:
                c.commit(asynchronous=False)
            except Exception as e:  # noqa: BLE001 - reported as data
                errors.append({"name": type(e).__name__, "str": str(e)})
        c.close()
    else:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        base = {"group_id": a.group, "auto_offset_reset": "earliest", "enable_auto_commit": False}
        c = KafkaConsumer(**kp_kwargs(a, **base))
        c.subscribe([a.topic])
        while len(values) < a.expect and time.time() < deadline:
            try:
                batch = c.poll(timeout_ms=500)
            except KafkaError as e:
                errors.append({"name": type(e).__name__, "str": str(e)})
                if refused_exception(e):
                    break
                continue
            for records in batch.values():
                values.extend(r.value.decode() for r in records)
        if a.commit and values:
            try:
                c.commit()
            except KafkaError as e:
                errors.append({"name": type(e).__name__, "str": str(e)})
        c.close()
    out({"count": len(values), "values": values, "errors": errors})


def _kp_results(resp, key_names=("topics", "topic_error_codes", "responses")):
    """Per-topic {code, message} from a kafka-python admin response dict, whatever its version."""
    out = {}
    for key in key_names:
        for t in resp.get(key, []) or []:
            name = t.get("name") or t.get("topic")
            out[name] = {"code": t.get("error_code", 0), "message": t.get("error_message")}
    return out


def cf_admin(a):
    from confluent_kafka.admin import AdminClient

    return AdminClient(cf_conf(a, {}))


def kp_admin(a):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**kp_kwargs(a, request_timeout_ms=15000))


def cf_results(admin, futs, a):
    """{name: {code, message}} from confluent admin futures; serves error_cb afterwards."""
    results = {}
    for name, fut in futs.items():
        try:
            fut.result(request_timeout(a) + 5)
            results[name] = {"code": 0, "message": None}
        except Exception as e:  # KafkaException carrying a KafkaError
            err = e.args[0]
            results[name] = {"code": err.code(), "message": err.str()}
    admin.poll(0)
    return results


def create_topics(a):
    """--spec: JSON list of {name, partitions, rf, configs}; results per topic: {code, message}."""
    spec = json.loads(a.spec)
    if a.lib == "confluent":
        from confluent_kafka.admin import NewTopic

        admin = cf_admin(a)
        topics = [NewTopic(t["name"], num_partitions=t.get("partitions", 1), replication_factor=t.get("rf", -1),
                           config=t.get("configs", {})) for t in spec]
        futs = admin.create_topics(topics, validate_only=a.validate_only, request_timeout=request_timeout(a))
        out({"results": cf_results(admin, futs, a)})
    else:
        admin = kp_admin(a)
        new = {t["name"]: {"num_partitions": t.get("partitions", 1), "replication_factor": t.get("rf", -1),
                           "configs": t.get("configs", {})} for t in spec}
        resp = admin.create_topics(new, validate_only=a.validate_only, raise_errors=False)
        admin.close()
        out({"results": _kp_results(resp)})


def delete_topics(a):
    names = a.topics.split(",")
    if a.lib == "confluent":
        admin = cf_admin(a)
        futs = admin.delete_topics(names, request_timeout=request_timeout(a))
        out({"results": cf_results(admin, futs, a)})
    else:
        admin = kp_admin(a)
        resp = admin.delete_topics(names, raise_errors=False)
        admin.close()
        out({"results": _kp_results(resp)})


def delete_records(a):
    from confluent_kafka import TopicPartition

    admin = cf_admin(a)
    futs = admin.delete_records([TopicPartition(a.topic, 0, a.offset)], request_timeout=request_timeout(a))
    out({"results": cf_results(admin, {tp.topic: fut for tp, fut in futs.items()}, a)})


def alter_configs(a):
    """--set k=v,... and --delete k,... on one topic or broker; --incremental or legacy AlterConfigs."""
    sets = dict(kv.split("=", 1) for kv in a.set.split(",") if kv) if a.set else {}
    deletes = [k for k in a.delete.split(",") if k] if a.delete else []
    if a.lib == "confluent":
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

        admin = cf_admin(a)
        rtype = ResourceType.TOPIC if a.resource == "topic" else ResourceType.BROKER
        if a.incremental:
            entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in sets.items()]
            entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in deletes]
            futs = admin.incremental_alter_configs([ConfigResource(rtype, a.name, incremental_configs=entries)],
                                                   request_timeout=request_timeout(a))
        else:
            futs = admin.alter_configs([ConfigResource(rtype, a.name, set_config=sets)], request_timeout=request_timeout(a))
        for _, fut in futs.items():
            try:
                fut.result(request_timeout(a) + 5)
                out({"code": 0, "message": None})
            except Exception as e:
                err = e.args[0]
                out({"code": err.code(), "message": err.str()})
    else:
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = kp_admin(a)
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
        admin = cf_admin(a)
        md = admin.list_topics(timeout=request_timeout(a))
        brokers = sorted(f"{b.host}:{b.port}" for b in md.brokers.values())
        out({"brokers": brokers, "topics": sorted(md.topics)})
    else:
        admin = kp_admin(a)
        cluster = admin.describe_cluster()
        brokers = sorted(f"{b['host']}:{b['port']}" for b in cluster["brokers"])
        admin.close()
        out({"brokers": brokers})


# ---------------------------------------------------------------------------------------------
# sasl-probe: the SASL exchange by hand on one connection, to see exactly what a broker offers
# and answers (API version ranges, mechanisms, error codes and messages, session lifetime).


class _Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise ValueError(f"response truncated at {self.pos}+{n}/{len(self.buf)}")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def string(self, compact=False):
        n = self.uvarint() - 1 if compact else self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self, compact=False):
        n = self.uvarint() - 1 if compact else self.i32()
        return None if n < 0 else self.take(n)

    def tagged(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def _uvarint(n):
    b = bytearray()
    while True:
        if n < 0x80:
            b.append(n)
            return bytes(b)
        b.append((n & 0x7F) | 0x80)
        n >>= 7


def _kstr(s):
    return struct.pack(">h", -1) if s is None else struct.pack(">h", len(s.encode())) + s.encode()


class _Conn:
    def __init__(self, a):
        host, port = a.bootstrap.split(",")[0].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=a.timeout or 10)
        if a.security_protocol in ("SSL", "SASL_SSL"):
            ctx = ssl.create_default_context(cafile=a.ca)
            if a.no_hostname_check:
                ctx.check_hostname = False
            if a.cert:
                ctx.load_cert_chain(a.cert, a.key)
            s = ctx.wrap_socket(s, server_hostname=host)
        self.sock, self.client_id, self.correlation = s, a.client_id, 0

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def request(self, api_key, version, body, flexible):
        """One request; the response body as a _Reader, or None when the broker closed."""
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + _kstr(self.client_id)
        if flexible:
            header += b"\x00"
        frame = header + body
        try:
            self.sock.sendall(struct.pack(">i", len(frame)) + frame)
            size = self._read_exact(4)
            payload = size and self._read_exact(struct.unpack(">i", size)[0])
        except (ConnectionError, socket.timeout) as e:
            return {"closed": type(e).__name__}
        if not payload:
            return None
        r = _Reader(payload)
        if r.i32() != self.correlation:
            raise ValueError("correlation id mismatch")
        if flexible and api_key != 18:
            r.tagged()
        return r


def _scram_escape(name):
    return name.replace("=", "=3D").replace(",", "=2C")


def _hmac(key, msg, h):
    return hmac.new(key, msg, h).digest()


def sasl_probe(a):
    """One connection, by hand: ApiVersions v0 (the ranges of SaslHandshake 17 and SaslAuthenticate
    36 among them); SaslHandshake v1; SCRAM through SaslAuthenticate at --authenticate-version
    (default: the broker's highest, at most 2); with --reauthenticate, both again on the same
    connection (what KIP-368 clients do before the session lifetime ends); then, whatever the
    outcome, CreateTopics v0 (with --create-topic NAME) and Metadata v1. --skip-auth goes straight
    to those. The SCRAM messages the server sent are in the output (salt and nonces, no secrets)."""
    conn = _Conn(a)
    result = {}
    r = conn.request(18, 0, b"", False)
    if not isinstance(r, _Reader):
        out({"api_versions": None, "closed": True})
        return
    error = r.i16()
    ranges = {}
    for _ in range(r.i32()):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        ranges[key] = [lo, hi]
    result["api_versions"] = {"error_code": error, "ranges": {str(k): v for k, v in sorted(ranges.items())}}
    if not a.skip_auth:
        mech = a.sasl_mechanism or "SCRAM-SHA-256"
        version = a.authenticate_version if a.authenticate_version is not None else min(ranges.get(36, [0, 0])[1], 2)
        rounds = [("handshake", "authenticate")] + ([("reauth_handshake", "reauthenticate")] if a.reauthenticate else [])
        for handshake_key, authenticate_key in rounds:
            result[handshake_key] = _handshake(conn, mech)
            if result[handshake_key].get("error_code") != 0:
                break
            result[authenticate_key] = _scram(conn, version, mech, a.username or "", a.password or "")
    if a.create_topic:
        body = struct.pack(">i", 1) + _kstr(a.create_topic) + struct.pack(">ihii", 1, 1, 0, 0) + struct.pack(">i", 10000)
        r = conn.request(19, 0, body, False)
        if isinstance(r, _Reader):
            result["create_topic"] = {t: c for t, c in ((r.string(), r.i16()) for _ in range(r.i32()))}
        else:
            result["create_topic"] = {"closed": True, "detail": r}
    r = conn.request(3, 1, struct.pack(">i", -1), False)
    if isinstance(r, _Reader):
        brokers = []
        for _ in range(r.i32()):
            node, host, port, _rack = r.i32(), r.string(), r.i32(), r.string()
            brokers.append(f"{node}@{host}:{port}")
        result["metadata"] = {"brokers": brokers}
    else:
        result["metadata"] = {"closed": True, "detail": r}
    out(result)


def _handshake(conn, mech):
    """SaslHandshake v1: {version, error_code, mechanisms}, or {closed} when the broker hung up."""
    r = conn.request(17, 1, _kstr(mech), False)
    if not isinstance(r, _Reader):
        return {"closed": True}
    code = r.i16()
    return {"version": 1, "error_code": code, "mechanisms": [r.string() for _ in range(r.i32())]}


def _scram(conn, version, mech, user, password):
    h = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}[mech]
    flexible = version >= 2
    steps = []

    def send(token):
        if flexible:
            body = _uvarint(len(token) + 1) + token + b"\x00"
        else:
            body = struct.pack(">i", len(token)) + token
        r = conn.request(36, version, body, flexible)
        if not isinstance(r, _Reader):
            steps.append({"closed": True, "detail": r})
            return None
        step = {"error_code": r.i16(), "error_message": r.string(flexible)}
        data = r.bytes_(flexible)
        if version >= 1:
            step["session_lifetime_ms"] = r.i64()
        steps.append(step)
        return data if step["error_code"] == 0 else None

    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={_scram_escape(user)},r={nonce}"
    server_first = send(f"n,,{first_bare}".encode())
    outcome = {"version": version, "steps": steps}
    if server_first is None:
        return outcome
    outcome["server_first"] = server_first.decode()
    fields = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(h().name, password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = _hmac(salted, b"Client Key", h)
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first.decode()},{without_proof}".encode()
    signature = _hmac(h(client_key).digest(), auth_message, h)
    proof = base64.b64encode(bytes(x ^ y for x, y in zip(client_key, signature))).decode()
    server_final = send(f"{without_proof},p={proof}".encode())
    if server_final is not None:
        outcome["server_final"] = server_final.decode()
        expected = base64.b64encode(_hmac(_hmac(salted, b"Server Key", h), auth_message, h)).decode()
        outcome["server_verified"] = server_final.decode() == f"v={expected}"
    return outcome


# What a command prints when its client raised before it could report anything else.
FAILED_SHAPE = {
    "produce": {"delivered": 0, "errors": []},
    "consume": {"count": 0, "values": [], "errors": []},
}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("produce", "consume", "metadata", "create-topics", "delete-topics", "delete-records", "alter-configs",
                 "sasl-probe"):
        s = sub.add_parser(name)
        s.add_argument("--bootstrap", required=True)
        s.add_argument("--topic", default="t")
        s.add_argument("--client-id", default="kclient")
        s.add_argument("--lib", choices=["confluent", "kafka-python"], default="confluent")
        s.add_argument("--timeout", type=float, default=None,
                       help="seconds: short client timeouts, so refused credentials come back as data (consume: how long to wait, default 30)")
        sec = s.add_argument_group("security")
        sec.add_argument("--security-protocol", choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
        sec.add_argument("--sasl-mechanism", choices=["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
        sec.add_argument("--username")
        sec.add_argument("--password")
        sec.add_argument("--ca", help="PEM file of the CA that signed the broker's certificate")
        sec.add_argument("--cert", help="PEM client certificate (mTLS)")
        sec.add_argument("--key", help="PEM key of the client certificate")
        sec.add_argument("--no-hostname-check", action="store_true", help="verify the chain but not the host name")
        s.add_argument("--api-version", metavar="X.Y.Z",
                       help="kafka-python: assume this broker version instead of asking ApiVersions")
        s.add_argument("--conf", action="append", metavar="KEY=VALUE",
                       help="confluent: an extra librdkafka setting (e.g. api.version.request=false)")
    p = sub.choices["produce"]
    p.add_argument("--acks", default="all")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--prefix", default="m")
    p.add_argument("--message-timeout-ms", type=int, default=15000, help="confluent: give up on a record after this long")
    p.add_argument("--one-per-request", action="store_true", help="flush after each record: one Produce request each")
    c = sub.choices["consume"]
    c.add_argument("--group", default="kclient-group")
    c.add_argument("--expect", type=int, required=True)
    c.add_argument("--commit", action="store_true", help="commit the group's offsets (synchronously) once read")
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
    sp = sub.choices["sasl-probe"]
    sp.add_argument("--authenticate-version", type=int, default=None)
    sp.add_argument("--skip-auth", action="store_true", help="send Metadata without authenticating")
    sp.add_argument("--reauthenticate", action="store_true",
                    help="after authenticating, SaslHandshake + SCRAM again on the same connection (KIP-368)")
    sp.add_argument("--create-topic", help="after authenticating (or failing to), create this topic (CreateTopics v0)")
    a = ap.parse_args()
    logging.getLogger("kafka").addHandler(_LogErrors(level=logging.ERROR))
    commands = {
        "produce": produce_confluent if a.lib == "confluent" else produce_kafka_python,
        "consume": consume,
        "metadata": metadata,
        "create-topics": create_topics,
        "delete-topics": delete_topics,
        "delete-records": delete_records,
        "alter-configs": alter_configs,
        "sasl-probe": sasl_probe,
    }
    try:
        commands[a.cmd](a)
    except Exception as e:
        if not _is_client_error(e):
            raise
        note_error(exception_dict(e))
        shape = dict(FAILED_SHAPE.get(a.cmd, {}))
        shape["failed"] = True
        out(shape)


def _is_client_error(e):
    """Errors a Kafka client raises (reported as data); anything else is a bug in this script."""
    try:
        from kafka.errors import KafkaError
        if isinstance(e, KafkaError):
            return True
    except ImportError:
        pass
    try:
        from confluent_kafka import KafkaException
        if isinstance(e, KafkaException):
            return True
    except ImportError:
        pass
    return False


if __name__ == "__main__":
    sys.exit(main())
