//! Integration tests: the proxy binary in front of a real tansu broker driven by real clients
//! (confluent-kafka / librdkafka, kafka-python, kcat), and in front of a scripted fake broker for
//! what tansu never sends (several brokers, batched FindCoordinator, KIP-951 endpoints, errors),
//! and the benchmark's null-sink broker with the benchmark's own clients (`nullsink`).
mod audit_sinks;
mod fake_broker;
mod fleet;
mod governance;
mod nullsink;
mod observability;
mod old_clients;
mod redelivery;
mod report;
mod sasl;
mod secure_bed;
mod support;
mod tls;
mod with_tansu;
