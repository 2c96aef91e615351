// Package e2e holds the tests that check the alerting rules, runbooks and
// Grafana dashboards against the metric contract (docs/metrics.md), against
// promtool, and end to end: a real Prometheus scraping the real exporter in
// the test world, and a real Alertmanager delivering the NTLM-fallback page
// to a webhook when an SPN is deleted from the test domain.
//
// Tests that need promtool, prometheus, alertmanager or the test world fail
// when those are missing, except under -short, where they are skipped.
package e2e
