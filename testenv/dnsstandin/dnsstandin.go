// Package dnsstandin is a small authoritative DNS server for tests and
// benchmarks of fleets too large for the Samba world's zone: it answers A
// and PTR queries for a made-up zone over UDP, after a chosen delay (a slow
// or distant server), says NXDOMAIN for the names it is told are gone, and
// counts the queries it gets.
//
// Host names are LABEL.ZONE; host i of a fleet gets address 10.x.y.z from
// Address(i), and its PTR record names it back.
package dnsstandin

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a running stand-in.
type Server struct {
	conn    net.PacketConn
	delay   time.Duration
	zone    string
	queries atomic.Int64

	mu    sync.Mutex
	hosts map[string]string // lower-case FQDN → address
	ptrs  map[string]string // reverse name → FQDN
	gone  map[string]bool
	wg    sync.WaitGroup
}

// Start listens on addr (e.g. "127.0.0.1:0") for names under zone,
// answering each query after delay.
func Start(addr, zone string, delay time.Duration) (*Server, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{conn: conn, delay: delay, zone: strings.ToLower(zone),
		hosts: map[string]string{}, ptrs: map[string]string{}, gone: map[string]bool{}}
	s.wg.Go(s.serve)
	return s, nil
}

// Addr is host:port to configure as dns.servers.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Close stops the server.
func (s *Server) Close() {
	s.conn.Close()
	s.wg.Wait()
}

// Queries is how many queries the server has received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Address is the address AddHost gives host i.
func Address(i int) string { return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255) }

// AddHost makes fqdn resolve to addr, and addr back to fqdn.
func (s *Server) AddHost(fqdn, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.ToLower(strings.TrimSuffix(fqdn, "."))
	s.hosts[name] = addr
	ip := net.ParseIP(addr).To4()
	s.ptrs[fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", ip[3], ip[2], ip[1], ip[0])] = name
}

// Remove makes fqdn answer NXDOMAIN: the name does not exist.
func (s *Server) Remove(fqdn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[strings.ToLower(strings.TrimSuffix(fqdn, "."))] = true
}

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		s.queries.Add(1)
		query := append([]byte(nil), buf[:n]...)
		s.wg.Go(func() {
			time.Sleep(s.delay)
			if reply := s.answer(query); reply != nil {
				_, _ = s.conn.WriteTo(reply, from)
			}
		})
	}
}

const (
	typeA   = 1
	typePTR = 12
)

// answer builds the reply to one query, nil for a packet that is not one.
func (s *Server) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	name, end, ok := readName(q, 12)
	if !ok || end+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end : end+2])
	question := q[12 : end+4]
	name = strings.ToLower(strings.TrimSuffix(name, "."))

	s.mu.Lock()
	addr, known := s.hosts[name]
	ptr, isPTR := s.ptrs[name]
	gone := s.gone[name]
	s.mu.Unlock()

	rcode := uint16(0)
	var answers [][]byte
	switch {
	case gone || (!known && !isPTR):
		rcode = 3 // NXDOMAIN
	case qtype == typeA && known:
		answers = append(answers, rr(typeA, net.ParseIP(addr).To4()))
	case qtype == typePTR && isPTR:
		answers = append(answers, rr(typePTR, encodeName(ptr)))
	}
	// ID, flags: response, authoritative, recursion desired and available,
	// rcode; one question, the answers.
	reply := make([]byte, 12, 512)
	copy(reply, q[:2])
	binary.BigEndian.PutUint16(reply[2:], 0x8000|0x0400|(binary.BigEndian.Uint16(q[2:4])&0x0100)|0x0080|rcode)
	binary.BigEndian.PutUint16(reply[4:], 1)
	binary.BigEndian.PutUint16(reply[6:], uint16(len(answers)))
	reply = append(reply, question...)
	for _, a := range answers {
		reply = append(reply, a...)
	}
	return reply
}

// rr is an answer record for the question's name (a pointer to offset 12).
func rr(rtype uint16, data []byte) []byte {
	b := []byte{0xc0, 12}
	b = binary.BigEndian.AppendUint16(b, rtype)
	b = binary.BigEndian.AppendUint16(b, 1)    // IN
	b = binary.BigEndian.AppendUint32(b, 3600) // TTL
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func encodeName(name string) []byte {
	var b []byte
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0)
}

// readName reads an uncompressed name (queries have no compression).
func readName(b []byte, off int) (string, int, bool) {
	var labels []string
	for off < len(b) {
		l := int(b[off])
		off++
		if l == 0 {
			return strings.Join(labels, "."), off, true
		}
		if l&0xc0 != 0 || off+l > len(b) {
			return "", 0, false
		}
		labels = append(labels, string(b[off:off+l]))
		off += l
	}
	return "", 0, false
}
