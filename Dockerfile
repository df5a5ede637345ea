# Build with the locked dependencies, run as a non-root user with the database on a volume.
# The build stage matches the runtime's Debian release so the binary's glibc is present.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Cargo.toml names the benches and the workspace's crates, so the manifest does not load
# without them; migrations, the default settings, the Deny policy and the demo scenario are
# compiled in. The default features keep `akguard demo` and `akguard emulator` in the image.
COPY crates ./crates
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY benches ./benches
RUN cargo build --release --locked --bin akguard

FROM debian:bookworm-slim
# curl serves only the health check. A fixed uid/gid lets volumes and mounted secrets be
# owned ahead of time; no home directory, so nothing but the database lands on the volume.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 akguard \
    && useradd --uid 10001 --gid akguard --no-create-home \
        --home-dir /var/lib/akguard --shell /usr/sbin/nologin akguard \
    && install -d -o akguard -g akguard -m 0750 /var/lib/akguard \
    && install -d -m 0755 /etc/akguard
COPY --from=build /src/target/release/akguard /usr/local/bin/akguard
# A reference only: settings come from the environment unless a file is mounted, e.g.
# /etc/akguard/akguard.toml, and passed with `serve --config /etc/akguard/akguard.toml`.
COPY config/example.toml /etc/akguard/example.toml
USER 10001:10001
WORKDIR /var/lib/akguard
# Declared after the directory is created and chowned, so a new named volume inherits that.
VOLUME /var/lib/akguard
# The environment wins over any --config file, so these hold even with a mounted one.
ENV AKGUARD__SERVER__LISTEN=0.0.0.0:8080 \
    AKGUARD__DATABASE__URL=sqlite:///var/lib/akguard/akguard.db \
    AKGUARD__LOG__FORMAT=json
EXPOSE 8080
# akguard drains for up to server.shutdown_grace_secs (10 s) on SIGTERM, which equals
# Docker's default stop timeout: give `docker stop -t`/`stop_grace_period` a few seconds more.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/akguard"]
CMD ["serve"]
