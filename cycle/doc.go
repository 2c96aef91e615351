// Package cycle runs the enabled collectors in the background, judges the
// facts they gathered (internal/diagnosis), and serves the last completed
// cycle as Prometheus metrics.
//
// The import arrows run one way: cmd → cycle → collector → internal. The
// collectors gather facts into a snapshot; this package decides when each
// runs, for which instances, and what the scrape serves.
package cycle
