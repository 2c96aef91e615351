package main

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// sdTargetGroup is one entry of Prometheus' HTTP service discovery format.
type sdTargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// sdHandler lists every watched SQL instance as a /probe target in
// Prometheus' HTTP SD format, so that Prometheus probes each instance on its
// own (and several replicas can share a fleet by hashmod relabelling). The
// address to scrape is the one Prometheus used to fetch /sd; the instance
// label is the SQL instance, so that its series are the same whichever
// replica probed it.
func sdHandler(cfg func() *config.Config) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		groups := []sdTargetGroup{}
		for _, inst := range cfg().SQLInstances {
			groups = append(groups, sdTargetGroup{
				Targets: []string{r.Host},
				Labels: map[string]string{
					"__metrics_path__":                           "/probe",
					"__param_target":                             inst.Name,
					"instance":                                   inst.Name,
					"__meta_kerberos_exporter_sql_host":          inst.Host,
					"__meta_kerberos_exporter_sql_port":          portLabel(inst),
					"__meta_kerberos_exporter_sql_instance_name": inst.InstanceName,
				},
			})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(groups)
	}
}

func portLabel(inst config.SQLInstance) string {
	if inst.Port == 0 {
		return ""
	}
	return strconv.Itoa(inst.Port)
}
