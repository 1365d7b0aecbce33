package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// lines collects a process's output lines as they come.
type lines struct {
	mu   sync.Mutex
	all  []string
	wake chan struct{}
}

func readLines(r io.Reader) *lines {
	l := &lines{wake: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// waitLine waits for a line containing want after the first from lines,
// and returns its index.
func (l *lines) waitLine(t *testing.T, from int, want string) int {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		for i := from; i < len(l.all); i++ {
			if strings.Contains(l.all[i], want) {
				l.mu.Unlock()
				return i
			}
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no line with %q after line %d; got:\n%s", want, from, strings.Join(l.all, "\n"))
		}
	}
}

func (l *lines) get(i int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all[i]
}

// TestSubPubRoundTripAndResume is issue 13's fifth acceptance test, on the
// real binaries: `wsgate pub` then `wsgate sub --json` round trip (a
// MessagePack publisher, a JSON subscriber), and `wsgate sub` resumes
// after its gateway is SIGKILLed and restarted, printing what was
// published meanwhile through another gateway of the same Redis; a
// subscription the server ends is a notice; SIGTERM exits 0.
func TestSubPubRoundTripAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wsgate processes and redis-server")
	}
	bin := buildWsgate(t)
	rs := redistest.StartStandalone(t)
	const secret, apiKey = "cli-test-secret-of-at-least-32-bytes", "cli-key"
	apiAddr, err := server.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	serveArgs := []string{"serve", "--broker", "redis", "--redis-url", rs.URL(), "--jwt-secret", secret, "--allow-anonymous"}
	start := func(addr string, extra ...string) *server.Process {
		p, err := server.Start(context.Background(), server.Spec{Name: "wsgate", Bin: bin,
			Args: append(slices.Clone(serveArgs), extra...), Debug: true, Listen: addr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Kill() })
		return p
	}
	apiArgs := []string{"--api-listen", apiAddr, "--api-key", apiKey}
	a, b := start("", apiArgs...), start("")
	urlA, urlB := "ws://"+a.Addr+"/ws", "ws://"+b.Addr+"/ws"

	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "op", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	sub := exec.Command(bin, "sub", "--json", "--encoding", "json", "--url", urlA, "cli:c", "cli:other")
	sub.Env = append(os.Environ(), "WSGATE_TOKEN="+token)
	stdout, _ := sub.StdoutPipe()
	stderr, _ := sub.StderrPipe()
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer sub.Process.Kill()
	out, notes := readLines(stdout), readLines(stderr)
	notes.waitLine(t, 0, "subscribed to cli:c at offset 0")

	pub := func(url string, stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"pub", "--url", url}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("wsgate pub %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	if msg := pub(urlA, "", "cli:c", `{"n":1}`); !strings.Contains(msg, "published to cli:c at offset 1") {
		t.Fatalf("pub said %q", msg)
	}
	var got struct {
		Channel string          `json:"channel"`
		Offset  uint64          `json:"offset"`
		Epoch   string          `json:"epoch"`
		Data    json.RawMessage `json:"data"`
		B64     string          `json:"b64"`
	}
	line := out.waitLine(t, 0, `"offset":1`)
	if err := json.Unmarshal([]byte(out.get(line)), &got); err != nil || got.Channel != "cli:c" || string(got.Data) != `{"n":1}` || got.Epoch == "" {
		t.Fatalf("sub printed %q (%v)", out.get(line), err)
	}
	// Lines from stdin, through the other gateway: not JSON, so base64.
	pub(urlB, "two\nthree\n", "cli:c")
	out.waitLine(t, line, `"offset":2,"epoch":"`+got.Epoch+`","b64":"dHdv"`)
	line = out.waitLine(t, line, `"offset":3,"epoch":"`+got.Epoch+`","b64":"dGhyZWU="`)

	// The subscriber's gateway dies; publishing goes on elsewhere.
	a.Kill()
	notes.waitLine(t, 0, "disconnected")
	pub(urlB, "", "cli:c", `{"n":4}`)
	pub(urlB, "", "cli:c", `{"n":5}`)
	start(a.Addr, apiArgs...)
	notes.waitLine(t, 0, "cli:c resumed after offset 3, nothing missed")
	four := out.waitLine(t, line, `"offset":4,"epoch":"`+got.Epoch+`","data":{"n":4}`)
	five := out.waitLine(t, line, `"offset":5,"epoch":"`+got.Epoch+`","data":{"n":5}`)
	if five != four+1 {
		t.Fatalf("lines out of order:\n%s", strings.Join(out.all, "\n"))
	}

	// A backend ends one of the subscriptions: a notice, and sub goes on.
	notes.waitLine(t, 0, "cli:other resumed after offset 0")
	req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/api/unsubscribe", strings.NewReader(`{"user":"op","channel":"cli:other"}`))
	req.Header.Set("Authorization", "apikey "+apiKey)
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatalf("API unsubscribe: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"unsubscribed":1}` {
		t.Fatalf("API unsubscribe: %d %s", resp.StatusCode, body)
	}
	notes.waitLine(t, 0, "cli:other: subscription ended: client: the server ended the subscription")

	if err := sub.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := sub.Wait(); err != nil {
		t.Fatalf("wsgate sub after SIGTERM: %v", err)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.all) != 5 {
		t.Fatalf("sub printed %d lines, want 5:\n%s", len(out.all), strings.Join(out.all, "\n"))
	}
}

// Usage errors exit 2 without connecting anywhere.
func TestSubPubUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--encoding", "xml", "c"}, {"--url"}} {
		if code := sub(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("sub %v: exit %d, want 2", args, code)
		}
	}
	for _, args := range [][]string{{}, {"c", "d", "e"}, {"--key", "k", "c"}, {"--encoding", "xml", "c", "d"}} {
		if code := runPub(args, strings.NewReader(""), io.Discard, io.Discard); code != 2 {
			t.Errorf("pub %v: exit %d, want 2", args, code)
		}
	}
}
