//go:build tools

// Package deps pins the modules the project is being built on while their
// importers are written; it is not compiled into anything.
package deps

import (
	_ "github.com/alecthomas/kingpin/v2"
	_ "github.com/beevik/ntp"
	_ "github.com/go-ldap/ldap/v3"
	_ "github.com/go-ldap/ldap/v3/gssapi"
	_ "github.com/jcmturner/gokrb5/v8/client"
	_ "github.com/jcmturner/gokrb5/v8/service"
	_ "github.com/jcmturner/gokrb5/v8/spnego"
	_ "github.com/microsoft/go-mssqldb"
	_ "github.com/microsoft/go-mssqldb/integratedauth/krb5"
	_ "github.com/prometheus/client_golang/prometheus/testutil/promlint"
	_ "github.com/prometheus/common/promslog"
	_ "github.com/prometheus/common/version"
	_ "github.com/prometheus/exporter-toolkit/web"
	_ "gopkg.in/yaml.v3"
)
