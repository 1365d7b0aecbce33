package gateway

import (
	"net/netip"
	"strings"
	"testing"
)

// testProxies are the trusted proxies of the X-Forwarded-For tests.
func testProxies(t testing.TB) trustedProxies {
	t.Helper()
	p, err := parseTrustedProxies([]string{"10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// forwardedClient reads lines (X-Forwarded-For header values, in order)
// as the upgrade does.
func forwardedClient(lines []string, trusted trustedProxies) (netip.Addr, forwardedStatus) {
	if len(lines) == 0 {
		return (*forwardedFor)(nil).client(trusted)
	}
	f := getForwarded()
	defer putForwarded(f)
	for _, l := range lines {
		f.add([]byte(l))
	}
	return f.client(trusted)
}

func TestForwardedClient(t *testing.T) {
	trusted := testProxies(t)
	many := func(entry string, n int) string { return strings.Repeat(entry+", ", n) }
	cases := []struct {
		name   string
		lines  []string
		want   string // "" unless forwardedOK
		status forwardedStatus
	}{
		{"absent", nil, "", forwardedAbsent},
		{"empty", []string{""}, "", forwardedAbsent},
		{"only empty elements", []string{" , ,"}, "", forwardedAbsent},
		{"one client", []string{"203.0.113.7"}, "203.0.113.7", forwardedOK},
		{"client then our proxy", []string{"203.0.113.7, 10.0.0.2"}, "203.0.113.7", forwardedOK},
		{"the client's own claim is ignored", []string{"198.51.100.1, 203.0.113.7, 10.0.0.2"}, "203.0.113.7", forwardedOK},
		{"a trusted address the client wrote is skipped too", []string{"198.51.100.1, 10.9.9.9, 203.0.113.7"}, "203.0.113.7", forwardedOK},
		{"garbage left of the client is never read", []string{"not an address, 203.0.113.7, 10.0.0.2"}, "203.0.113.7", forwardedOK},
		{"every entry trusted: the leftmost", []string{"10.0.0.3, 127.0.0.1, 10.0.0.2"}, "10.0.0.3", forwardedOK},
		{"empty elements skipped", []string{",203.0.113.7,, 10.0.0.2,"}, "203.0.113.7", forwardedOK},
		{"tabs and spaces", []string{"\t203.0.113.7 ,\t10.0.0.2 "}, "203.0.113.7", forwardedOK},
		{"several lines are one list (HAProxy)", []string{"198.51.100.1", "203.0.113.7"}, "203.0.113.7", forwardedOK},
		{"several lines, trusted last", []string{"203.0.113.7", "10.0.0.2, 10.0.0.3"}, "203.0.113.7", forwardedOK},
		{"IPv4 with a port", []string{"203.0.113.7:5678, 10.0.0.2"}, "203.0.113.7", forwardedOK},
		{"IPv6", []string{"2001:db8::1, fd00::2"}, "2001:db8::1", forwardedOK},
		{"IPv6 in brackets", []string{"[2001:db8::1]"}, "2001:db8::1", forwardedOK},
		{"IPv6 in brackets with a port", []string{"[2001:db8::1]:4711, ::1"}, "2001:db8::1", forwardedOK},
		{"IPv6 upper case, embedded IPv4", []string{"2001:DB8::192.0.2.1"}, "2001:db8::c000:201", forwardedOK},
		{"IPv4-mapped is IPv4", []string{"203.0.113.7, ::ffff:10.0.0.2"}, "203.0.113.7", forwardedOK},
		{"IPv4-mapped client", []string{"::ffff:203.0.113.7"}, "203.0.113.7", forwardedOK},
		{"malformed rightmost", []string{"203.0.113.7, not an address"}, "", forwardedMalformed},
		{"malformed behind a trusted one", []string{"203.0.113.7, unknown, 10.0.0.2"}, "", forwardedMalformed},
		{"host name", []string{"client.example.com"}, "", forwardedMalformed},
		{"leading zero", []string{"203.0.113.07"}, "", forwardedMalformed},
		{"octet over 255", []string{"203.0.113.256"}, "", forwardedMalformed},
		{"IPv6 zone", []string{"fe80::1%eth0"}, "", forwardedMalformed},
		{"IPv4 in brackets", []string{"[203.0.113.7]"}, "", forwardedMalformed},
		{"IPv6 port without brackets", []string{"2001:db8::1:"}, "", forwardedMalformed},
		{"port over 65535", []string{"203.0.113.7:65536"}, "", forwardedMalformed},
		{"quoted (RFC 7239 syntax)", []string{`"203.0.113.7"`}, "", forwardedMalformed},
		{"Forwarded syntax", []string{"for=203.0.113.7"}, "", forwardedMalformed},
		{"oversize: the tail is kept", []string{many("198.51.100.1", 100) + "203.0.113.7, 10.0.0.2"}, "203.0.113.7", forwardedOK},
		{"oversize line, then the proxy's line", []string{strings.Repeat("x", 1000), "203.0.113.7"}, "203.0.113.7", forwardedOK},
		{"oversize, every kept entry trusted", []string{many("10.0.0.1", 100) + "10.0.0.2"}, "", forwardedTooLong},
		// The cut falls inside "211.0.0.1": its tail "11.0.0.1" (or
		// "1.0.0.1") must not be taken for the client.
		{"oversize, cut inside an address", []string{cutInsideAddress}, "", forwardedTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, st := forwardedClient(tc.lines, trusted)
			if st != tc.status || tc.want != "" && got != netip.MustParseAddr(tc.want) || tc.want == "" && got.IsValid() {
				t.Fatalf("%q: %v, status %d; want %q, status %d", tc.lines, got, st, tc.want, tc.status)
			}
			if rg, rst := refForwardedClient(tc.lines, trusted); rg != got || rst != st {
				t.Fatalf("the reference walk says %v, status %d", rg, rst)
			}
		})
	}
}

// cutInsideAddress is one byte over maxForwardedBytes: an untrusted
// address, then trusted ones (26 of 9 bytes, 5 spaces, 8 bytes).
var cutInsideAddress = "211.0.0.1," + strings.Repeat("10.0.0.1,", 26) + "     10.0.0.2"

// TestForwardedCutInsideAddress pins the premise of the last case above:
// the buffer does start in the middle of the first address.
func TestForwardedCutInsideAddress(t *testing.T) {
	f := getForwarded()
	defer putForwarded(f)
	f.add([]byte(cutInsideAddress))
	if kept := string(f.buf[:f.n]); !f.cut || !strings.HasPrefix(kept, "11.0.0.1,") {
		t.Fatalf("cut %v, kept %q", f.cut, kept)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	p, err := parseTrustedProxies([]string{" 10.0.0.0/8", "192.168.1.7 ", "", "2001:db8::/32", "::ffff:172.16.0.0/108", "10.1.2.3/16"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32", "172.16.0.0/12", "10.1.0.0/16"}
	if len(p) != len(want) {
		t.Fatalf("%v, want %v", p, want)
	}
	for i := range want {
		if p[i].String() != want[i] {
			t.Fatalf("%v, want %v", p, want)
		}
	}
	for _, a := range []string{"10.200.0.1", "192.168.1.7", "2001:db8:1::1", "172.31.255.255"} {
		if !p.trusts(netip.MustParseAddr(a)) {
			t.Errorf("%s not trusted", a)
		}
	}
	for _, a := range []string{"11.0.0.1", "192.168.1.8", "2001:db9::1", "172.32.0.0"} {
		if p.trusts(netip.MustParseAddr(a)) {
			t.Errorf("%s trusted", a)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "fe80::1%eth0", "10.0.0", "1.2.3.4:80"} {
		if _, err := parseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), "--trusted-proxies") {
			t.Errorf("%q: err %v, want one naming --trusted-proxies", bad, err)
		}
	}
	if p, err := parseTrustedProxies(nil); err != nil || p != nil {
		t.Fatalf("none: %v, %v", p, err)
	}
}

// TestForwardedNoAllocations: gathering the header and walking it
// allocate nothing (the upgrade path's header callbacks copy nothing
// either).
func TestForwardedNoAllocations(t *testing.T) {
	trusted := testProxies(t)
	lines := [][]byte{[]byte("198.51.100.1, 2001:db8:85a3::8a2e:370:7334"), []byte("[2001:db8::1]:4711, 10.0.0.2")}
	var got netip.Addr
	allocs := testing.AllocsPerRun(200, func() {
		f := getForwarded()
		for _, l := range lines {
			f.add(l)
		}
		got, _ = f.client(trusted)
		putForwarded(f)
	})
	if allocs != 0 || got != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("%v allocations, client %v", allocs, got)
	}
}

// refForwardedClient is the walk written plainly with strings and netip,
// with the same bound: the fast version must agree with it.
func refForwardedClient(lines []string, trusted trustedProxies) (netip.Addr, forwardedStatus) {
	if len(lines) == 0 {
		return netip.Addr{}, forwardedAbsent
	}
	joined := strings.Join(lines, ",")
	cut := len(joined) > maxForwardedBytes
	if cut {
		joined = joined[len(joined)-maxForwardedBytes:]
	}
	entries := strings.Split(joined, ",")
	var leftmost netip.Addr
	for i := len(entries) - 1; i >= 0; i-- {
		if i == 0 && cut {
			return netip.Addr{}, forwardedTooLong
		}
		e := strings.Trim(entries[i], " \t")
		if e == "" {
			continue
		}
		a, ok := refForwardedAddr(e)
		if !ok {
			return netip.Addr{}, forwardedMalformed
		}
		if !trusted.trusts(a) {
			return a, forwardedOK
		}
		leftmost = a
	}
	if !leftmost.IsValid() {
		return netip.Addr{}, forwardedAbsent
	}
	return leftmost, forwardedOK
}

func refForwardedAddr(e string) (netip.Addr, bool) {
	if strings.Contains(e, "%") {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(e); err == nil {
		return a.Unmap(), true
	}
	if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
		a, err := netip.ParseAddr(e[1 : len(e)-1])
		return a.Unmap(), err == nil && a.Is6()
	}
	if ap, err := netip.ParseAddrPort(e); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// FuzzXFF holds the X-Forwarded-For walk to the plain reference above,
// and parseIP to netip.ParseAddr. The input is header lines separated by
// '\n'.
func FuzzXFF(f *testing.F) {
	for _, s := range []string{
		"", "203.0.113.7", "203.0.113.7, 10.0.0.2", "198.51.100.1\n203.0.113.7", "10.0.0.3, 10.0.0.2",
		"not an address, 203.0.113.7", "203.0.113.7, unknown", "[2001:db8::1]:4711, ::1", "203.0.113.7:80",
		"::ffff:203.0.113.7", "2001:DB8::192.0.2.1", "fe80::1%eth0", "1::2:3:4:5:6:7:8", "::", "1:2:3:4:5:6:7::",
		"::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "01.2.3.4", "1.2.3.256", "[1.2.3.4]:80",
		strings.Repeat("10.0.0.1, ", 40) + "10.0.0.2", strings.Repeat("x", 300) + "\n203.0.113.7",
	} {
		f.Add(s)
	}
	trusted := testProxies(f)
	f.Fuzz(func(t *testing.T, in string) {
		if !strings.Contains(in, "%") {
			a, ok := parseIP([]byte(in))
			want, err := netip.ParseAddr(in)
			if ok != (err == nil) || ok && a != want {
				t.Fatalf("parseIP(%q) = %v, %v; netip: %v, %v", in, a, ok, want, err)
			}
		}
		lines := strings.Split(in, "\n")
		got, st := forwardedClient(lines, trusted)
		want, wst := refForwardedClient(lines, trusted)
		if got != want || st != wst {
			t.Fatalf("%q: %v, status %d; reference %v, status %d", lines, got, st, want, wst)
		}
		if (st == forwardedOK) != got.IsValid() || got.Is4In6() || got.Zone() != "" {
			t.Fatalf("%q: %v with status %d", lines, got, st)
		}
	})
}
