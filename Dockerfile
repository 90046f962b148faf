# Multi-stage build: compile in the Rust image, run from a slim Debian image as a non-root user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kafka-durability-proxy

FROM debian:bookworm-slim
RUN useradd --system --no-create-home --uid 10001 proxy \
 && mkdir -p /etc/kafka-durability-proxy
COPY --from=build /src/target/release/kafka-durability-proxy /usr/local/bin/kafka-durability-proxy
COPY config/proxy.example.yaml /etc/kafka-durability-proxy/proxy.yaml
USER proxy
# Bootstrap listener; broker listeners are broker_port_base + node id (see the config).
EXPOSE 19092
ENTRYPOINT ["/usr/local/bin/kafka-durability-proxy"]
CMD ["--config", "/etc/kafka-durability-proxy/proxy.yaml"]
