# Multi-stage build: a static binary on a distroless-style minimal base,
# running as a non-root user. Mount the config and keytab read-only:
#   docker run -v /etc/kerberos_exporter:/etc/kerberos_exporter:ro -p 19088:19088 kerberos_exporter
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/kerberos_exporter ./cmd/kerberos_exporter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kerberos_exporter /usr/local/bin/kerberos_exporter
USER 65532:65532
EXPOSE 19088
ENTRYPOINT ["/usr/local/bin/kerberos_exporter"]
CMD ["--config.file=/etc/kerberos_exporter/kerberos_exporter.yml"]
