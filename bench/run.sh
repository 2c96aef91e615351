#!/usr/bin/env bash
# Prints the exporter's speed and memory figures: the scrape path for a
# 200-instance fleet and the forest-wide duplicate-SPN scan over 100,000
# accounts. Figures, not assertions: compare runs with benchstat.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'BenchmarkScrape|BenchmarkDuplicateScan|BenchmarkSPNIndex1M' -benchmem -count "${COUNT:-3}" ./collector/

# The SPN scan against a real, large Samba directory (provisioned once, cached in
# $BENCH_DIR, default /tmp/kte-bench; BENCH_ACCOUNTS accounts, default 100000). Needs root;
# SKIP_DIRECTORY_BENCH=1 skips it.
if [ "${SKIP_DIRECTORY_BENCH:-}" != 1 ]; then
	bash bench/directory.sh
fi
