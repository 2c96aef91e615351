// Package docs carries the runbooks into the binary, so that the exporter
// serves the runbooks of its own version, also where the repository cannot
// be reached.
package docs

import "embed"

// Runbooks holds runbooks/<alert>.md, one per alert.
//
//go:embed runbooks/*.md
var Runbooks embed.FS
