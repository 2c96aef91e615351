package main

import (
	"log/slog"
	"os"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

func runCheck(cfg *config.Config, logger *slog.Logger, stdout *os.File, output, fixScript string) int {
	return 0
}
