# One image with both binaries. NOTE: not built or tested on our build machines (no container
# engine there); see README "Install on a cluster".
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ferrolb-controller -p ferrolb-speaker

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ferrolb-controller /usr/local/bin/ferrolb-controller
COPY --from=build /src/target/release/ferrolb-speaker /usr/local/bin/ferrolb-speaker
# The speaker needs CAP_NET_RAW + CAP_NET_ADMIN (granted in install.yaml); the controller none.
ENTRYPOINT ["/usr/local/bin/ferrolb-controller"]
