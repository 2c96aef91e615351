//go:build unix

package config

import (
	"os"
	"syscall"
)

// inOwnGroup reports whether the file's group is the process's own gid or
// one of its supplementary groups: then a group-readable secret is the
// intended setup (root:kerberos_exporter 0640), not an accident.
func inOwnGroup(st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	gid := int(sys.Gid)
	if gid == os.Getgid() {
		return true
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}
