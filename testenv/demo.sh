#!/usr/bin/env bash
# Brings up the whole thing on its embedded default: the Samba AD test world,
# the SQL Server stand-ins (sqla, sqlb, sqlc, sqld, sqlf, sqlg, sqlh, stall on
# 127.0.0.11-23) and the exporter on :19088. Each starts only once the one
# before it is ready (the world healthy, every stand-in accepting
# connections), so that the exporter's first report is its steady one; the
# script returns once that first collection has completed.
#
#   demo.sh [up]                 start (or restart) the demo
#   demo.sh stop                 stop the exporter, the stand-ins and the world
#   demo.sh stop --keep-world    stop the exporter and the stand-ins only
#
# DEMO_LISTEN (default :19088) is the exporter's address, KERBEROS_DEMO_DIR
# where binaries, configuration and logs go, DEMO_COLLECTION_INTERVAL
# overrides the configuration's collection interval (30s), and
# DEMO_STANDIN_START_DELAY (e.g. 3s) makes the stand-ins wait that long
# before listening, as slow servers would (the demo's test uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${KERBEROS_TESTENV_DIR:-/tmp/kerberos-testenv}
RUN=${KERBEROS_DEMO_DIR:-/tmp/kerberos-exporter-demo}  # outside the world dir, which world.sh may wipe
LISTEN=${DEMO_LISTEN:-:19088}
SCENARIOS=(sqla sqlb sqlc sqld sqlf sqlg sqlh stall)

# fail says what did not become ready and takes down what the demo started
# on top of the world (the logs stay).
fail() {
  echo "demo: $*" >&2
  if [ -n "${started:-}" ]; then
    stop
  fi
  exit 1
}

# ours PID BINARY: whether PID is still the process started from BINARY (a
# stale pid file must not make us kill whatever reuses the number).
ours() {
  local cmd
  cmd=$( { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null) || return 1
  [ "${cmd%% *}" = "$2" ]
}

# stop ends the exporter and the stand-ins and waits until they have exited,
# so that their ports are free for the next start.
stop() {
  local p bin pid
  for p in exporter:kerberos_exporter sqlstandin:sqlstandin; do
    bin=$RUN/${p#*:}
    p=${p%%:*}
    [ -f "$RUN/$p.pid" ] || continue
    pid=$(cat "$RUN/$p.pid")
    if ours "$pid" "$bin"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do
        ours "$pid" "$bin" || break
        sleep 0.1
      done
      if ours "$pid" "$bin"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$RUN/$p.pid"
  done
  rm -f "$RUN/sqlstandin.ready"
}

case "${1:-up}" in
  stop)
    stop
    if [ "${2:-}" != --keep-world ]; then
      bash testenv/samba/world.sh down
    fi
    exit 0
    ;;
  up) ;;
  *)
    echo "usage: demo.sh [up | stop [--keep-world]]" >&2
    exit 2
    ;;
esac

# 1. The world: world.sh returns once both DCs answer (its health check).
bash testenv/samba/world.sh up || fail "the Samba AD test world did not come up; see $DIR/logs"
stop
mkdir -p "$RUN" "$DIR/secrets"
go build -o "$RUN/kerberos_exporter" ./cmd/kerberos_exporter
go build -o "$RUN/sqlstandin" ./testenv/cmd/sqlstandin
printf '%s' 'Passw0rd!Svc1' > "$DIR/secrets/krbmon-password"
printf '%s' 'Passw0rd!Sql1' > "$DIR/secrets/sql-password"
chmod 600 "$DIR/secrets/"*
cacert=$(. "$DIR/world.env" && echo "$CA_CERT")
sed -e "s|@DIR@|$DIR|g" -e "s|@CACERT@|$cacert|g" testenv/demo.yml.in > "$RUN/kerberos_exporter.yml"
if [ -n "${DEMO_COLLECTION_INTERVAL:-}" ]; then
  sed -i -e "s|^  collection_interval: .*|  collection_interval: $DEMO_COLLECTION_INTERVAL|" "$RUN/kerberos_exporter.yml"
fi

# 2. The stand-ins: they write the ready file once every listener is bound;
# then each scenario's address must accept a TCP connection.
started=1
args=(-ready "$RUN/sqlstandin.ready" -start-delay "${DEMO_STANDIN_START_DELAY:-0s}")
for s in "${SCENARIOS[@]}"; do args+=(-scenario "testenv/scenarios/$s.yml"); done
KERBEROS_TESTENV_DIR=$DIR nohup "$RUN/sqlstandin" "${args[@]}" > "$RUN/sqlstandin.log" 2>&1 &
standin=$!
echo "$standin" > "$RUN/sqlstandin.pid"
for _ in $(seq 300); do
  [ -f "$RUN/sqlstandin.ready" ] && break
  if ! kill -0 "$standin" 2>/dev/null; then
    tail -5 "$RUN/sqlstandin.log" >&2
    fail "the SQL Server stand-ins exited before listening; see $RUN/sqlstandin.log"
  fi
  sleep 0.1
done
[ -f "$RUN/sqlstandin.ready" ] || fail "the SQL Server stand-ins did not listen within 30 s; see $RUN/sqlstandin.log"
not_listening=()
for s in "${SCENARIOS[@]}"; do
  addr=$(sed -n 's/^listen: *//p' "testenv/scenarios/$s.yml")
  if ! timeout 5 bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr##*:}" 2>/dev/null; then
    not_listening+=("$s ($addr)")
  fi
done
if [ ${#not_listening[@]} -gt 0 ]; then
  fail "SQL Server stand-ins not accepting connections: ${not_listening[*]}; see $RUN/sqlstandin.log"
fi

# 3. The exporter, now that everything it watches is up; the demo is up once
# its first collection has completed.
nohup "$RUN/kerberos_exporter" --config.file="$RUN/kerberos_exporter.yml" --web.listen-address="$LISTEN" --state.directory="$RUN/state" > "$RUN/exporter.log" 2>&1 &
exporter=$!
echo "$exporter" > "$RUN/exporter.pid"
url="http://localhost:${LISTEN##*:}"
for _ in $(seq 300); do
  if metrics=$(curl -sf "$url/metrics") && grep -q '^kerberos_exporter_last_collection_timestamp_seconds' <<< "$metrics"; then
    critical=$(grep -c '^kerberos_finding{.*severity="critical"' <<< "$metrics" || true)
    warning=$(grep -c '^kerberos_finding{.*severity="warning"' <<< "$metrics" || true)
    echo "demo: up; first collection: $critical critical, $warning warning findings."
    echo "demo: findings report: $url/   metrics: $url/metrics   probe: $url/probe?target=sqlc&debug=true"
    echo "demo: logs in $RUN; stop with: make demo-stop"
    exit 0
  fi
  if ! kill -0 "$exporter" 2>/dev/null; then
    tail -20 "$RUN/exporter.log" >&2
    fail "the exporter exited; see $RUN/exporter.log"
  fi
  sleep 0.2
done
tail -20 "$RUN/exporter.log" >&2
fail "the exporter did not complete a collection in 60 s; see $RUN/exporter.log"
