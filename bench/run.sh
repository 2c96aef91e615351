#!/usr/bin/env bash
# Prints the exporter's speed and memory figures. Figures, not assertions:
# compare runs with benchstat. The cycle figures need the test world
# (bash testenv/samba/world.sh up), as the integration tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'BenchmarkDuplicateScan|BenchmarkSPNIndex1M' -benchmem -count "${COUNT:-3}" ./collector/

# ---- Fleet: /metrics and collection cycles ----
# /metrics over HTTP (text, gzip) for 12 and 500 instances (synthetic
# snapshots), sequential and 20 concurrent scrapers: p50/p99 per scrape and
# the process's RSS. "cached" is what the exporter serves (the cycle encoded
# once); "rebuild" is every metric rebuilt per scrape, for comparison.
echo "== /metrics scrape path =="
go test -run '^$' -bench 'BenchmarkScrape/.*/cached' -benchmem -benchtime "${SCRAPES:-2000}x" ./cycle/
go test -run '^$' -bench 'BenchmarkScrape/.*/rebuild' -benchmem -benchtime "${REBUILD_SCRAPES:-200}x" ./cycle/
# Whole cycles against the Samba DC and the SQL stand-ins, without and with
# a stalled instance (5 s login timeout); others-done-s is when the other
# instances' directory facts were in.
echo "== collection cycle with and without a stalled instance =="
go test -run '^$' -bench 'BenchmarkWorldCycle' -benchtime "${CYCLES:-5}x" ./cycle/
# 1,000 instances, dns and kdc collectors: cycle time, DNS queries (counting
# DNS stand-in) and KDC requests (the Samba DC's KDC, through a counting
# relay) per cycle, caches off and on (docs/scale.md).
echo "== 1,000 instances: DNS and KDC work per cycle =="
go test -run '^$' -bench 'BenchmarkFleetCycle' -benchtime "${FLEET_CYCLES:-3}x" ./cycle/

# The landing page with 500 instances: size, time to first byte, render in
# headless Chromium.
echo "== landing page, 500 instances =="
RUNS=1 bash bench/landing.sh

# The SPN scan against a real, large Samba directory (provisioned once, cached in
# $BENCH_DIR, default /tmp/kte-bench; BENCH_ACCOUNTS accounts, default 100000). Needs root;
# SKIP_DIRECTORY_BENCH=1 skips it.
if [ "${SKIP_DIRECTORY_BENCH:-}" != 1 ]; then
	bash bench/directory.sh
fi
