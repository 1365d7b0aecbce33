package gateway

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"sync"
)

// Client addresses behind trusted proxies (Config.TrustedProxies). A
// connection whose TCP peer is a trusted proxy is about the client that
// proxy names in X-Forwarded-For: the per-IP limit counts that address
// and the logs print it. Every other connection is about its TCP peer,
// and what it sends in X-Forwarded-For is ignored.
//
// The header is a list the proxies build from left to right, each
// appending the address it received the request from; the entries on the
// left are whatever the client wrote. So the list is read from the right:
// trusted addresses (our own proxies) are skipped and the first untrusted
// one is the client. When every entry is trusted, the leftmost is. Only
// the entries that walk reaches are looked at: what a client wrote to the
// left of the address its proxy appended is never parsed.

// trustedProxies is Config.TrustedProxies parsed.
type trustedProxies []netip.Prefix

// parseTrustedProxies reads CIDRs ("10.0.0.0/8", "fd00::/8") and single
// addresses ("10.0.0.5"); empty items are skipped.
func parseTrustedProxies(list []string) (trustedProxies, error) {
	var t trustedProxies
	for _, item := range list {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			p, err = netip.ParsePrefix(item)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(item); err == nil && a.Zone() == "" {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			return nil, fmt.Errorf("--trusted-proxies %q: want a CIDR (10.0.0.0/8, fd00::/8) or an address", item)
		}
		// Peers are compared as IPv4 when they are IPv4-mapped, so a
		// mapped prefix is one for IPv4.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		t = append(t, p.Masked())
	}
	return t, nil
}

// trusts reports whether a (unmapped) is one of the trusted proxies.
func (t trustedProxies) trusts(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxForwardedBytes bounds the X-Forwarded-For text kept from one request:
// its rightmost bytes, where the trusted proxies' entries are. A chain of
// five proxies naming IPv6 addresses with ports fits.
const maxForwardedBytes = 256

// forwardedStatus is what reading X-Forwarded-For found.
type forwardedStatus uint8

const (
	forwardedAbsent    forwardedStatus = iota // no header, or only empty entries
	forwardedOK                               // the client's address
	forwardedMalformed                        // an entry the walk reached is not an address
	forwardedTooLong                          // the walk reached the entry cut by maxForwardedBytes
)

// label names a status that makes the header ignored, in logs and
// summaries.
func (s forwardedStatus) label() string {
	switch s {
	case forwardedMalformed:
		return "malformed"
	case forwardedTooLong:
		return "too_long"
	}
	return ""
}

// forwardedFor gathers a request's X-Forwarded-For lines, in order, as one
// comma-separated list (several lines are one list: HAProxy's
// "option forwardfor" adds a line of its own after the client's), keeping
// the rightmost maxForwardedBytes bytes in a fixed buffer: header values
// are only valid while gobwas's callback runs, and copying them into
// strings would cost an allocation each.
type forwardedFor struct {
	buf  [maxForwardedBytes]byte
	n    int
	seen bool // at least one line
	cut  bool // bytes were dropped on the left: buf's first entry may be partial
}

var forwardedPool = sync.Pool{New: func() any { return new(forwardedFor) }}

// getForwarded returns an empty forwardedFor from the pool.
func getForwarded() *forwardedFor {
	f := forwardedPool.Get().(*forwardedFor)
	f.n, f.seen, f.cut = 0, false, false
	return f
}

// putForwarded returns f (nil: nothing) to the pool.
func putForwarded(f *forwardedFor) {
	if f != nil {
		forwardedPool.Put(f)
	}
}

// add appends one header line's value to the list.
func (f *forwardedFor) add(value []byte) {
	if f.seen {
		f.append([]byte{','})
	}
	f.seen = true
	f.append(value)
}

// append adds b to the buffer, dropping bytes on the left when it would
// overflow.
func (f *forwardedFor) append(b []byte) {
	over := f.n + len(b) - len(f.buf)
	switch {
	case over <= 0:
	case len(b) >= len(f.buf):
		f.n, f.cut = copy(f.buf[:], b[len(b)-len(f.buf):]), true
		return
	default:
		f.n, f.cut = copy(f.buf[:], f.buf[over:f.n]), true
	}
	f.n += copy(f.buf[f.n:], b)
}

// client walks the list from the right, past the trusted addresses, and
// returns the first untrusted one (every entry trusted: the leftmost). It
// never allocates. A status other than forwardedOK means the header is to
// be ignored (the TCP peer is the client).
func (f *forwardedFor) client(trusted trustedProxies) (netip.Addr, forwardedStatus) {
	if f == nil || !f.seen {
		return netip.Addr{}, forwardedAbsent
	}
	rest := f.buf[:f.n]
	var leftmost netip.Addr
	for {
		i := bytes.LastIndexByte(rest, ',')
		entry := trimOWS(rest[i+1:])
		first := i < 0 // the leftmost entry kept
		if first && f.cut {
			return netip.Addr{}, forwardedTooLong
		}
		if len(entry) > 0 { // an empty list element is no entry (RFC 9110 §5.6.1)
			a, ok := parseForwardedAddr(entry)
			if !ok {
				return netip.Addr{}, forwardedMalformed
			}
			if !trusted.trusts(a) {
				return a, forwardedOK
			}
			leftmost = a
		}
		if first {
			break
		}
		rest = rest[:i]
	}
	if !leftmost.IsValid() {
		return netip.Addr{}, forwardedAbsent
	}
	return leftmost, forwardedOK
}

// trimOWS trims spaces and tabs on both sides.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseForwardedAddr reads one X-Forwarded-For entry: an IPv4 or IPv6
// address, optionally with a port (1.2.3.4:5678, [2001:db8::1]:5678, as
// some balancers write it) or an IPv6 address in brackets. Zones are
// refused; an IPv4-mapped IPv6 address is returned as IPv4.
func parseForwardedAddr(b []byte) (netip.Addr, bool) {
	if len(b) > 0 && b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		if rest := b[end+1:]; len(rest) > 0 && (rest[0] != ':' || !isPort(rest[1:])) {
			return netip.Addr{}, false
		}
		a, ok := parseIP(b[1:end])
		return a.Unmap(), ok && a.Is6()
	}
	if bytes.Count(b, []byte(":")) == 1 { // IPv4 with a port: IPv6 has at least two colons
		i := bytes.IndexByte(b, ':')
		if !isPort(b[i+1:]) {
			return netip.Addr{}, false
		}
		a, ok := parseIP(b[:i])
		return a, ok && a.Is4()
	}
	a, ok := parseIP(b)
	return a.Unmap(), ok
}

// isPort reports whether b is a port number: digits, at most 65535.
func isPort(b []byte) bool {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return false
		}
	}
	return len(b) > 0
}

// parseIP is netip.ParseAddr for a []byte without a zone, without the
// allocation that converting it to a string costs (netip's errors keep
// the input, so the string escapes). It accepts exactly what ParseAddr
// accepts (FuzzXFF holds it to that).
func parseIP(b []byte) (netip.Addr, bool) {
	for _, c := range b {
		switch c {
		case '.':
			var ip [4]byte
			if !parseIPv4(b, ip[:]) {
				return netip.Addr{}, false
			}
			return netip.AddrFrom4(ip), true
		case ':':
			return parseIPv6(b)
		}
	}
	return netip.Addr{}, false
}

// parseIPv4 reads dotted-decimal b into ip (4 bytes): four fields of 1 to
// 3 digits, each at most 255 and without a leading zero.
func parseIPv4(b []byte, ip []byte) bool {
	field, val, digits := 0, 0, 0
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.':
			if digits == 0 || i == len(b)-1 || field == 3 {
				return false
			}
			ip[field] = byte(val)
			field, val, digits = field+1, 0, 0
		default:
			return false
		}
	}
	if field != 3 || digits == 0 {
		return false
	}
	ip[3] = byte(val)
	return true
}

// parseIPv6 reads an IPv6 address without a zone as netip does: groups of
// 1 to 4 hex digits, one "::" for one or more zero groups, an IPv4
// address in the last 32 bits.
func parseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // where "::" is, in ip
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, s = 0, s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, uint32(0)
	digits:
		for ; off < len(s); off++ {
			c := s[off]
			switch {
			case c >= '0' && c <= '9':
				acc = acc<<4 + uint32(c-'0')
			case c >= 'a' && c <= 'f':
				acc = acc<<4 + uint32(c-'a'+10)
			case c >= 'A' && c <= 'F':
				acc = acc<<4 + uint32(c-'A'+10)
			default:
				break digits
			}
			if off > 3 {
				return netip.Addr{}, false // more than 4 digits
			}
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' { // the embedded IPv4 address
			if ellipsis < 0 && i != 12 || i+4 > 16 || !parseIPv4(s, ip[i:i+4]) {
				return netip.Addr{}, false
			}
			s, i = nil, i+4
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false // a second "::"
			}
			ellipsis, s = i, s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+n] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}
