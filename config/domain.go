package config

import "strings"

// NetBIOS is the domain's NetBIOS name, upper-case: the configured one, else
// the first label of its DNS name, which is what Windows proposes by default.
func (d *Domain) NetBIOS() string {
	if d.NetBIOSName != "" {
		return strings.ToUpper(d.NetBIOSName)
	}
	first, _, _ := strings.Cut(d.Name, ".")
	return strings.ToUpper(first)
}

// FindDomain is the configured domain a name refers to, by its DNS name or
// its NetBIOS name (case-insensitive); nil for "" or an unknown name. Every
// place that maps DOMAIN\ or @domain to a configured domain uses it.
func (c *Config) FindDomain(name string) *Domain {
	if name == "" {
		return nil
	}
	for i := range c.Domains {
		d := &c.Domains[i]
		if strings.EqualFold(d.Name, name) || strings.EqualFold(d.NetBIOS(), name) {
			return d
		}
	}
	return nil
}
