# Multi-stage build: a static binary on a distroless-style minimal base,
# running as a non-root user. Mount the config and keytab read-only:
#   docker run -v /etc/kerberos_exporter:/etc/kerberos_exporter:ro -p 19088:19088 kerberos_exporter
# Base images are pinned by digest (the tag stays for people): a tag can be
# repointed, a digest cannot. To update, resolve the tag again, e.g.
#   crane digest golang:1.26-bookworm
#   crane digest gcr.io/distroless/static-debian12:nonroot
# (or docker buildx imagetools inspect), and replace both digests.
FROM golang:1.26-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Version stamping as `make build` does it; pass the checkout's facts, e.g.
#   docker build --build-arg REVISION=$(git rev-parse HEAD) --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) .
ARG REVISION=unknown
ARG BRANCH=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w \
      -X github.com/prometheus/common/version.Version=$(cat VERSION) \
      -X github.com/prometheus/common/version.Revision=${REVISION} \
      -X github.com/prometheus/common/version.Branch=${BRANCH} \
      -X github.com/prometheus/common/version.BuildUser=docker \
      -X github.com/prometheus/common/version.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
    -o /out/kerberos_exporter ./cmd/kerberos_exporter

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/kerberos_exporter /usr/local/bin/kerberos_exporter
USER 65532:65532
EXPOSE 19088
ENTRYPOINT ["/usr/local/bin/kerberos_exporter"]
CMD ["--config.file=/etc/kerberos_exporter/kerberos_exporter.yml"]
