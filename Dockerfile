# Multi-stage build: compile in the Rust image, run from a slim Debian image as a non-root user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# No debug info and stripped symbols in the image (the repo's release profile keeps debug info
# for profiling). The binary needs only libc, libm and libgcc_s, all in debian-slim.
ENV CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo build --release --locked --bin kafka-durability-proxy

FROM debian:bookworm-slim
# Debian already has a system user called "proxy" (uid 13): ours is kdp.
RUN useradd --system --no-create-home --uid 10001 kdp \
 && mkdir -p /etc/kafka-durability-proxy
COPY --from=build /src/target/release/kafka-durability-proxy /usr/local/bin/kafka-durability-proxy
COPY config/proxy.example.yaml /etc/kafka-durability-proxy/proxy.yaml
USER kdp
# Bootstrap listener; broker listeners are broker_port_base + node id (see the config).
EXPOSE 19092
ENTRYPOINT ["/usr/local/bin/kafka-durability-proxy"]
CMD ["--config", "/etc/kafka-durability-proxy/proxy.yaml"]
