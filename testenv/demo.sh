#!/usr/bin/env bash
# Brings up the whole thing on its embedded default: the Samba AD test world,
# the SQL Server stand-ins (sqla, sqlb, sqlc, sqld, stall on 127.0.0.11-17)
# and the exporter on :19088. `demo.sh stop` takes it all down.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${KERBEROS_TESTENV_DIR:-/tmp/kerberos-testenv}
RUN=${KERBEROS_DEMO_DIR:-/tmp/kerberos-exporter-demo}  # outside the world dir, which world.sh may wipe
LISTEN=${DEMO_LISTEN:-:19088}

stop() {
  for p in exporter sqlstandin; do
    if [ -f "$RUN/$p.pid" ]; then
      kill "$(cat "$RUN/$p.pid")" 2>/dev/null || true
      rm -f "$RUN/$p.pid"
    fi
  done
}

if [ "${1:-up}" = stop ]; then
  stop
  bash testenv/samba/world.sh down
  exit 0
fi

bash testenv/samba/world.sh up
stop
mkdir -p "$RUN" "$DIR/secrets"
go build -o "$RUN/kerberos_exporter" ./cmd/kerberos_exporter
go build -o "$RUN/sqlstandin" ./testenv/cmd/sqlstandin
printf '%s' 'Passw0rd!Svc1' > "$DIR/secrets/krbmon-password"
printf '%s' 'Passw0rd!Sql1' > "$DIR/secrets/sql-password"
chmod 600 "$DIR/secrets/"*
cacert=$(. "$DIR/world.env" && echo "$CA_CERT")
sed -e "s|@DIR@|$DIR|g" -e "s|@CACERT@|$cacert|g" testenv/demo.yml.in > "$RUN/kerberos_exporter.yml"

scenarios=()
for s in sqla sqlb sqlc sqld sqlf sqlg sqlh stall; do scenarios+=(-scenario "testenv/scenarios/$s.yml"); done
KERBEROS_TESTENV_DIR=$DIR nohup "$RUN/sqlstandin" "${scenarios[@]}" > "$RUN/sqlstandin.log" 2>&1 &
echo $! > "$RUN/sqlstandin.pid"
nohup "$RUN/kerberos_exporter" --config.file="$RUN/kerberos_exporter.yml" --web.listen-address="$LISTEN" --state.directory="$RUN/state" > "$RUN/exporter.log" 2>&1 &
echo $! > "$RUN/exporter.pid"

url="http://localhost:${LISTEN##*:}"
for _ in $(seq 150); do
  if curl -sf "$url/metrics" | grep -q '^kerberos_exporter_last_collection_timestamp_seconds'; then
    echo "demo: up. Findings report: $url/   metrics: $url/metrics   probe: $url/probe?target=sqlc&debug=true"
    echo "demo: logs in $RUN; stop with: make demo-stop"
    exit 0
  fi
  sleep 0.2
done
echo "demo: the exporter did not complete a collection in 30 s; see $RUN/exporter.log" >&2
tail -20 "$RUN/exporter.log" >&2
exit 1
