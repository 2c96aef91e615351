#!/usr/bin/env bash
# Prints the exporter's speed and memory figures: the scrape path for a
# 200-instance fleet and the forest-wide duplicate-SPN scan over 100,000
# accounts. Figures, not assertions: compare runs with benchstat.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'BenchmarkScrape|BenchmarkDuplicateScan' -benchmem -count "${COUNT:-3}" ./collector/
