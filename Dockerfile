# Build with the locked dependencies, run as a non-root user with the database on a volume.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY benches ./benches
RUN cargo build --release --locked --bin akguard

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/akguard --create-home akguard
COPY --from=build /src/target/release/akguard /usr/local/bin/akguard
COPY config/example.toml /etc/akguard/example.toml
USER akguard
WORKDIR /var/lib/akguard
VOLUME /var/lib/akguard
ENV AKGUARD__SERVER__LISTEN=0.0.0.0:8080 \
    AKGUARD__DATABASE__URL=sqlite:///var/lib/akguard/akguard.db \
    AKGUARD__LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/akguard"]
CMD ["serve"]
