//go:build !unix

package config

import "os"

// inOwnGroup: without Unix groups no file is in the process's group.
func inOwnGroup(os.FileInfo) bool { return false }
