package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/server"
)

// TestNginxPerClientLimit: behind the shipped nginx config, with
// --max-conns-per-ip 1 and nginx's four source addresses as
// --trusted-proxies, the limit counts clients, not nginx: five clients
// from five addresses are all upgraded (with only four source addresses
// two of them share one, so counting the TCP peer refuses at least one),
// a second connection of one of them gets 429 through nginx, and closing
// its first connection lets it in again.
func TestNginxPerClientLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wsgate and nginx")
	}
	n := newNetwork(t)
	var sources []string
	for i := range 4 {
		sources = append(sources, n.sourceIP(i))
	}
	startGateway(t, server.Spec{
		Name: "gw1",
		Bin:  wsgateBinary(t),
		Args: []string{"serve", "--max-conns-per-ip", "1", "--trusted-proxies", strings.Join(sources, ",")},
		// The gateway's own /readyz tells startGateway it is up.
		Debug:       true,
		Listen:      n.wsAddr(0),
		DebugListen: n.debugAddr(0),
	}, 0)
	b := balancers["nginx"]
	f := newLBFiles(t, b.file)
	text, err := renderNginxFor(n, f, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := b.check(f)
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	b.start(t, n, f)

	client := func(k int) string { return n.prefix + strconv.Itoa(31+k) }
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for k := range 5 {
		head, c, err := upgradeThrough(n, f, client(k))
		if err != nil {
			t.Fatalf("client %s: %v", client(k), err)
		}
		open = append(open, c)
		if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
			t.Fatalf("client %s through nginx: %q, want 101 (every client its own address)", client(k), head)
		}
	}
	head, c, err := upgradeThrough(n, f, client(0))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.HasPrefix(head, "HTTP/1.1 429 ") {
		t.Fatalf("second connection of client %s: %q, want 429", client(0), head)
	}
	open[0].Close()
	if !waitFor(5*time.Second, func() bool {
		head, c, err := upgradeThrough(n, f, client(0))
		if err == nil && strings.HasPrefix(head, "HTTP/1.1 101 ") {
			open = append(open, c)
			return true
		}
		if c != nil {
			c.Close()
		}
		return false
	}) {
		t.Fatalf("client %s not let in again within 5s of closing its connection", client(0))
	}
}

// upgradeThrough connects to nginx's TLS listener from the address local,
// sends an upgrade request and returns the response head with the
// connection (the caller closes it).
func upgradeThrough(n network, f lbFiles, local string) (string, net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := tls.DialWithDialer(d, "tcp4", n.httpsAddr(), f.certs.clientConfig())
	if err != nil {
		return "", nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	req := "GET /ws HTTP/1.1\r\nHost: " + serverName + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return "", nil, err
	}
	var buf [1024]byte
	k := 0
	for !bytes.Contains(buf[:k], []byte("\r\n\r\n")) {
		m, err := c.Read(buf[k:])
		if err != nil {
			c.Close()
			return "", nil, fmt.Errorf("read the response (%q so far): %w", buf[:k], err)
		}
		k += m
	}
	return string(buf[:k]), c, nil
}
