package tdsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
)

// BrowserPort is the SQL Server Browser's UDP port.
const BrowserPort = 1434

// SSRP message types (MC-SQLR 2.2).
const (
	ssrpClientBroadcastEx = 0x02 // CLNT_BCAST_EX: every instance
	ssrpClientUnicastEx   = 0x03 // CLNT_UCAST_EX: every instance on this host
	ssrpClientUnicastInst = 0x04 // CLNT_UCAST_INST: one named instance
	ssrpServerResponse    = 0x05 // SVR_RESP
)

// ssrpMaxResponse is the largest RESP_DATA MC-SQLR allows for one instance.
const ssrpMaxResponse = 1024

// Browser is a SQL Server Browser (MC-SQLR over UDP) for the named
// instances a Group serves on one IP address: a CLNT_UCAST_INST for one of
// them gets an SVR_RESP with its real TCP port; an unknown name gets no
// answer, as from SQL Server's Browser.
type Browser struct {
	conn      net.PacketConn
	instances func() []*Server
	logf      func(format string, args ...any)
	done      sync.WaitGroup
}

// StartBrowser answers on addr (host:port, usually host:1434) for the named
// instances instances() returns.
func StartBrowser(addr string, instances func() []*Server, logf func(format string, args ...any)) (*Browser, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("SQL Browser on %s: %w", addr, err)
	}
	b := &Browser{conn: conn, instances: instances, logf: logf}
	b.done.Add(1)
	go b.serve()
	return b, nil
}

// Addr is where the Browser listens.
func (b *Browser) Addr() string { return b.conn.LocalAddr().String() }

// Close stops the Browser.
func (b *Browser) Close() error {
	err := b.conn.Close()
	b.done.Wait()
	return err
}

func (b *Browser) serve() {
	defer b.done.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := b.conn.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				b.logf("SQL Browser %s: %v", b.Addr(), err)
			}
			return
		}
		reply := b.answer(buf[:n])
		if reply == nil {
			continue
		}
		if _, err := b.conn.WriteTo(reply, from); err != nil {
			b.logf("SQL Browser %s: answering %s: %v", b.Addr(), from, err)
		}
	}
}

// answer is the SVR_RESP for a request, nil for none.
func (b *Browser) answer(req []byte) []byte {
	if len(req) == 0 {
		return nil
	}
	var data strings.Builder
	switch req[0] {
	case ssrpClientBroadcastEx, ssrpClientUnicastEx:
		for _, s := range b.instances() {
			data.WriteString(instanceRecord(s))
		}
	case ssrpClientUnicastInst:
		// INSTANCENAME: MBCS, NUL-terminated, at most 32 bytes with the NUL.
		name, _, _ := strings.Cut(string(req[1:]), "\x00")
		for _, s := range b.instances() {
			if strings.EqualFold(s.sc.InstanceName, name) {
				data.WriteString(instanceRecord(s))
			}
		}
	}
	if data.Len() == 0 || data.Len() > 0xffff {
		return nil
	}
	out := []byte{ssrpServerResponse, 0, 0}
	binary.LittleEndian.PutUint16(out[1:], uint16(data.Len()))
	return append(out, data.String()...)
}

// instanceRecord is one instance's RESP_DATA record:
// "ServerName;S;InstanceName;I;IsClustered;No;Version;V;tcp;PORT;;".
func instanceRecord(s *Server) string {
	_, port, _ := net.SplitHostPort(s.Addr())
	server := s.sc.MachineName
	if server == "" {
		server = s.sc.PhysicalNetBIOS
	}
	rec := "ServerName;" + server + ";InstanceName;" + s.sc.InstanceName + ";IsClustered;No;Version;16.0.1000.6;tcp;" + port + ";;"
	if len(rec) > ssrpMaxResponse {
		return ""
	}
	return rec
}

// browserAddrs are the host:1434 addresses the Group's named instances need
// a Browser on: one per IP, whatever its instances.
func browserAddrs(servers []*Server) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range servers {
		if s.sc.InstanceName == "" {
			continue
		}
		host, _, err := net.SplitHostPort(s.Addr())
		if err != nil || seen[host] {
			continue
		}
		seen[host] = true
		out = append(out, net.JoinHostPort(host, strconv.Itoa(BrowserPort)))
	}
	return out
}
