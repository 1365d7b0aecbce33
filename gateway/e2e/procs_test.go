package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/internal/testutil"
)

// The processes of one deployment, all on loopback: redis-server, three
// wsgate instances and a load balancer. Each instance has an address of its
// own (127.A.B.21…23) and all share the same ports, which is what the
// shipped balancer configs assume (one port for clients, one for the debug
// listener); the balancer listens on 127.A.B.10 and binds its upstream
// connections to 127.A.B.11…14, the configs' four source addresses.

const (
	instances = 3
	apiKey    = "e2e-api-key"
	// drainWindow is short so a rolling restart of three instances takes
	// seconds, but long enough to see the drain from outside.
	drainWindow = 2 * time.Second
)

// builds holds the wsgate binary (removed by TestMain).
var builds testutil.Builds

// wsgateBinary builds cmd/wsgate once per test binary (without -race: it
// is the deployed binary under test, not the test).
func wsgateBinary(t *testing.T) string {
	t.Helper()
	path, err := builds.Build("wsgate")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// network is the loopback addressing plan of one deployment.
type network struct {
	prefix string // "127.A.B."
	// Ports shared by every instance: clients, debug listener, server API.
	wsPort, debugPort, apiPort int
	// The balancer's plain-HTTP and TLS ports on lbIP.
	httpPort, httpsPort int
}

func (n network) lbIP() string            { return n.prefix + "10" }
func (n network) sourceIP(i int) string   { return n.prefix + strconv.Itoa(11+i) } // i in 0..3
func (n network) instanceIP(i int) string { return n.prefix + strconv.Itoa(21+i) } // i in 0..instances-1
func (n network) wsAddr(i int) string     { return hostPort(n.instanceIP(i), n.wsPort) }
func (n network) debugAddr(i int) string  { return hostPort(n.instanceIP(i), n.debugPort) }
func (n network) apiAddr(i int) string    { return hostPort(n.instanceIP(i), n.apiPort) }
func (n network) httpsAddr() string       { return hostPort(n.lbIP(), n.httpsPort) }
func (n network) httpAddr() string        { return hostPort(n.lbIP(), n.httpPort) }
func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
func (n network) instanceIPs() (ips []string) {
	for i := range instances {
		ips = append(ips, n.instanceIP(i))
	}
	return ips
}

// newNetwork picks a random 127.A.B.0/24 (so concurrent runs do not meet)
// and ports that are free on every address that uses them.
func newNetwork(t *testing.T) network {
	t.Helper()
	for range 20 {
		n := network{prefix: fmt.Sprintf("127.%d.%d.", 16+mrand.IntN(200), mrand.IntN(256))}
		var err error
		ports := make([]int, 5)
		for k := range ports {
			ips := n.instanceIPs()
			if k >= 3 {
				ips = []string{n.lbIP()}
			}
			if ports[k], err = commonFreePort(ips); err != nil {
				break
			}
		}
		if err == nil {
			n.wsPort, n.debugPort, n.apiPort, n.httpPort, n.httpsPort = ports[0], ports[1], ports[2], ports[3], ports[4]
			return n
		}
	}
	t.Fatal("no free ports on loopback")
	return network{}
}

// commonFreePort returns a port that was free a moment ago on every ip.
func commonFreePort(ips []string) (int, error) {
	l, err := net.Listen("tcp4", hostPort(ips[0], 0))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for _, ip := range ips[1:] {
		l2, err := net.Listen("tcp4", hostPort(ip, port))
		if err != nil {
			return 0, err
		}
		l2.Close()
	}
	return port, nil
}

// gateway is one wsgate instance; it keeps its addresses across restarts.
type gateway struct {
	t    *testing.T
	idx  int
	spec server.Spec
	mu   sync.Mutex
	proc *server.Process // nil while it is down
	// logs of earlier processes of this instance, for failure reports.
	history []string
}

// gatewaySpec is the command line of instance i.
func gatewaySpec(t *testing.T, n network, i int, redisURL string) server.Spec {
	return server.Spec{
		Name: "gw" + strconv.Itoa(i+1),
		Bin:  wsgateBinary(t),
		Args: []string{"serve",
			"--broker", "redis", "--redis-url", redisURL,
			"--node-id", "gw" + strconv.Itoa(i+1),
			"--api-listen", n.apiAddr(i), "--api-key", apiKey,
			"--drain-window", drainWindow.String(),
			"--ping-interval", "5s", "--pong-timeout", "3s",
		},
		Debug:       true,
		Listen:      n.wsAddr(i),
		DebugListen: n.debugAddr(i),
	}
}

func startGateway(t *testing.T, spec server.Spec, idx int) *gateway {
	g := &gateway{t: t, idx: idx, spec: spec}
	g.start()
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.proc != nil {
			_ = g.proc.Kill()
		}
		if t.Failed() {
			for _, l := range g.history {
				t.Logf("%s, earlier process:\n%s", spec.Name, tailLines(l, 40))
			}
			if g.proc != nil {
				t.Logf("%s:\n%s", spec.Name, tailLines(g.proc.Logs(), 60))
			}
		}
	})
	return g
}

// start runs the instance and waits until /readyz answers 200 (Redis
// subscribed): what a rolling restart waits for before the next instance.
func (g *gateway) start() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p *server.Process
	var err error
	for attempt := 0; ; attempt++ {
		// The port can be briefly taken by a connection of the previous
		// process in an odd state; retry a few times.
		if p, err = server.Start(ctx, g.spec); err == nil || attempt == 5 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatalf("start %s: %v", g.spec.Name, err)
	}
	g.mu.Lock()
	g.proc = p
	g.mu.Unlock()
	for {
		if code, _ := httpStatus(ctx, "http://"+p.DebugAddr+"/readyz"); code == http.StatusOK {
			return
		}
		if ctx.Err() != nil {
			g.t.Fatalf("%s not ready after 30s:\n%s", g.spec.Name, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit (status 0).
func (g *gateway) stop() error {
	p := g.take()
	if p == nil {
		return errors.New("not running")
	}
	return p.Stop()
}

// kill sends SIGKILL: a crash.
func (g *gateway) kill() {
	if p := g.take(); p != nil {
		_ = p.Kill()
	}
}

func (g *gateway) take() *server.Process {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.proc
	g.proc = nil
	if p != nil {
		g.history = append(g.history, p.Logs())
	}
	return p
}

// startRedis starts redis-server and returns it with its URL.
func startRedis(t *testing.T) *redistest.Server { return redistest.StartStandalone(t) }

// httpStatus GETs url without keep-alive and returns the status code.
func httpStatus(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// certs is a self-signed certificate for the balancer's TLS listener.
type certs struct {
	certFile, keyFile, pemFile string // pemFile: cert + key (HAProxy)
	pool                       *x509.CertPool
}

const serverName = "ws.example.com" // the configs' server_name

func makeCerts(t *testing.T, dir string) certs {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: serverName},
		DNSNames:     []string{serverName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	c := certs{
		certFile: filepath.Join(dir, "tls.crt"),
		keyFile:  filepath.Join(dir, "tls.key"),
		pemFile:  filepath.Join(dir, "tls.pem"),
		pool:     x509.NewCertPool(),
	}
	for path, b := range map[string][]byte{c.certFile: certPEM, c.keyFile: keyPEM, c.pemFile: append(certPEM, keyPEM...)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.pool.AppendCertsFromPEM(certPEM)
	return c
}

func (c certs) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: c.pool, ServerName: serverName, ClientSessionCache: tls.NewLRUClientSessionCache(1024)}
}

// lbProcess is nginx or HAProxy running in the foreground under the test,
// in a process group of its own so its workers go with it.
type lbProcess struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// startLB runs argv and waits until addr accepts connections. Output goes
// to logPath (an *os.File: no copying goroutine).
func startLB(t *testing.T, name, logPath, addr string, argv ...string) *lbProcess {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: cleanup can end the workers too. Pdeathsig: a
	// killed test binary does not leave the master behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &lbProcess{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	// HAProxy initializes its 1M-entry TLS session cache (~250 MB) first:
	// seconds on a loaded machine.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited at start:\n%s", name, p.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after 60s:\n%s", name, addr, p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process group: SIGTERM (both stop at once on it), then
// SIGKILL after a grace period.
func (p *lbProcess) stop(t *testing.T) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Errorf("%s still running 5s after SIGTERM; killing it", p.name)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	// Workers that outlived their master would keep ports and sockets.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if t.Failed() {
		t.Logf("%s output and logs:\n%s", p.name, p.logs())
	}
}

// logs returns the output and every *.log file beside it (nginx's error
// log).
func (p *lbProcess) logs() string {
	var b strings.Builder
	paths, _ := filepath.Glob(filepath.Join(filepath.Dir(p.logPath), "*.log"))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 || strings.HasSuffix(path, "access.log") {
			continue
		}
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(path), data)
	}
	return b.String()
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	end := len(s)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' && i != len(s)-1 {
			n--
			if n == 0 {
				return s[i+1 : end]
			}
		}
	}
	return s
}
