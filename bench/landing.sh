#!/usr/bin/env bash
# Prints the landing page's figures with 500 configured instances: its size
# (plain and gzipped), the time to its first byte over loopback, and its
# load and render in real headless Chromium, with sorting and filtering
# timed in the page. Figures, not assertions: the test behind it asserts
# only the size. Needs chromium; RUNS (default 3) repeats it.
set -euo pipefail
cd "$(dirname "$0")/.."
for _ in $(seq "${RUNS:-3}"); do
	go test -count=1 -run '^TestLandingPage500InChromium$' -v ./cmd/kerberos_exporter/ |
		sed -n -E 's/^ +landing_fleet_test\.go:[0-9]+: //p'
	echo
done
