// Package scrape reads a server's debug listener: the Go heap in use after
// a forced GC and the goroutine count from net/http/pprof, and counters
// from /metrics (Prometheus text). wsgate and the naive server expose the
// same endpoints, so every number comes from the same place for both.
package scrape

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client fetches from one debug listener. Connections are not kept alive:
// an idle keep-alive connection would be one more fd and goroutine in the
// server being measured.
type Client struct {
	base string
	http *http.Client
}

// New returns a Client for the debug listener at addr (host:port).
func New(addr string) *Client {
	return &Client{
		base: "http://" + addr,
		http: &http.Client{
			Timeout:   30 * time.Second, // a forced GC over a big heap is not instant
			Transport: &http.Transport{DisableKeepAlives: true},
		},
	}
}

func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", path, resp.Status)
	}
	return body, nil
}

// HeapInuse forces a GC in the server (gc=1) and returns its HeapInuse.
func (c *Client) HeapInuse(ctx context.Context) (int64, error) {
	b, err := c.get(ctx, "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	return ParseHeapInuse(b)
}

// Goroutines returns the server's goroutine count (the scrape's own
// handler goroutine included: a constant that a slope ignores).
func (c *Client) Goroutines(ctx context.Context) (int, error) {
	b, err := c.get(ctx, "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	return ParseGoroutines(b)
}

// Metrics returns every sample of /metrics by name (labels included in
// the name as written).
func (c *Client) Metrics(ctx context.Context) (map[string]float64, error) {
	b, err := c.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	return ParseMetrics(b)
}

// Ready reports whether /metrics answers.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.get(ctx, "/metrics")
	return err
}

// ParseHeapInuse finds "# HeapInuse = N" in a debug=1 heap profile.
func ParseHeapInuse(b []byte) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("scrape: HeapInuse: %w", err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("scrape: heap profile has no HeapInuse line")
}

// ParseGoroutines reads "goroutine profile: total N" from the first line
// of a debug=1 goroutine profile.
func ParseGoroutines(b []byte) (int, error) {
	first, _, _ := strings.Cut(string(b), "\n")
	v, ok := strings.CutPrefix(first, "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("scrape: goroutine profile starts %q", first)
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("scrape: goroutine total: %w", err)
	}
	return n, nil
}

// ParseMetrics parses the Prometheus text format: "name{labels} value
// [timestamp]" lines, comments skipped.
func ParseMetrics(b []byte) (map[string]float64, error) {
	out := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the name, or the closing brace of the labels
		// (label values may contain spaces).
		nameEnd := strings.IndexByte(line, ' ')
		if brace := strings.IndexByte(line, '{'); brace >= 0 && (nameEnd < 0 || brace < nameEnd) {
			closing := strings.LastIndexByte(line, '}')
			if closing < 0 {
				return nil, fmt.Errorf("scrape: metric line %q", line)
			}
			nameEnd = closing + 1
		}
		if nameEnd <= 0 || nameEnd >= len(line) {
			return nil, fmt.Errorf("scrape: metric line %q", line)
		}
		fields := strings.Fields(line[nameEnd:])
		if len(fields) == 0 {
			return nil, fmt.Errorf("scrape: metric line %q has no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("scrape: metric %s: %w", line[:nameEnd], err)
		}
		out[line[:nameEnd]] = v
	}
	return out, nil
}

// CPUProfile records the server's CPU profile for d
// (/debug/pprof/profile) and returns it (gzipped protobuf, for go tool
// pprof). It blocks for d.
func (c *Client) CPUProfile(ctx context.Context, d time.Duration) ([]byte, error) {
	secs := max(1, int(d.Round(time.Second).Seconds()))
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
	if err != nil {
		return nil, err
	}
	// The client's own timeout would cut a long profile short.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("scrape profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape profile: %s: %s", resp.Status, body)
	}
	return body, nil
}
