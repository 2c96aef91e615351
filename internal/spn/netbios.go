package spn

import "strings"

// HostNetBIOS is a SQL Server host's NetBIOS name, in the order of trust:
// the configured one, the physical NetBIOS name the server reported
// (SERVERPROPERTY('ComputerNamePhysicalNetBIOS')), its MachineName cut at
// `\` (a named instance reports HOST\INSTANCE in some versions), else the
// first label of its DNS name. Collectors and diagnosis both use it, so that
// they agree on which machine-local accounts are local.
func HostNetBIOS(configured, physical, machineName, fqdn string) string {
	if configured != "" {
		return configured
	}
	if physical != "" {
		return physical
	}
	if host, _, _ := strings.Cut(machineName, `\`); host != "" {
		return host
	}
	first, _, _ := strings.Cut(fqdn, ".")
	return first
}
