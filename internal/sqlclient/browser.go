package sqlclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// browserPort is the SQL Server Browser's UDP port.
const browserPort = "1434"

// browserTimeout bounds one Browser question when ctx has no deadline.
const browserTimeout = 5 * time.Second

// BrowserPort asks the SQL Server Browser on host for the TCP port of a
// named instance (MC-SQLR CLNT_UCAST_INST).
func BrowserPort(ctx context.Context, host, instance string) (int, error) {
	return browserPortAt(ctx, host, browserPort, instance)
}

func browserPortAt(ctx context.Context, host, udpPort, instance string) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(host, udpPort))
	if err != nil {
		return 0, fmt.Errorf("asking the SQL Browser on %s for instance %s: %w", host, instance, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(browserTimeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) }) // unblocks the read; its error is the read's
	defer stop()

	req := append([]byte{0x04}, instance...)
	if _, err := conn.Write(append(req, 0)); err != nil {
		return 0, fmt.Errorf("asking the SQL Browser on %s for instance %s: %w", host, instance, err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return 0, fmt.Errorf("no answer from the SQL Browser on %s:%s for instance %s: %w", host, udpPort, instance, err)
	}
	port, err := parseBrowserReply(buf[:n], instance)
	if err != nil {
		return 0, fmt.Errorf("SQL Browser on %s: %w", host, err)
	}
	return port, nil
}

// parseBrowserReply reads an SVR_RESP: 0x05, a little-endian length, then
// "ServerName;H;InstanceName;I;IsClustered;No;Version;V;tcp;1433;;".
func parseBrowserReply(b []byte, instance string) (int, error) {
	if len(b) < 3 || b[0] != 0x05 {
		return 0, errors.New("malformed reply")
	}
	size := int(binary.LittleEndian.Uint16(b[1:3]))
	data := b[3:]
	if size < len(data) {
		data = data[:size]
	}
	for _, rec := range strings.Split(string(data), ";;") {
		fields := strings.Split(rec, ";")
		kv := map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			kv[strings.ToLower(fields[i])] = fields[i+1]
		}
		if !strings.EqualFold(kv["instancename"], instance) {
			continue
		}
		tcp, ok := kv["tcp"]
		if !ok {
			return 0, fmt.Errorf("instance %s does not listen on TCP", instance)
		}
		port, err := strconv.Atoi(tcp)
		if err != nil || port < 1 || port > 65535 {
			return 0, fmt.Errorf("instance %s: invalid TCP port %q", instance, tcp)
		}
		return port, nil
	}
	return 0, fmt.Errorf("no instance named %s", instance)
}
