package gateway_test

import (
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgate/wsgate/gateway"
	redisbroker "github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/gateway/presence"
)

// taggedFamilies lists the metric names tagged on the fields of stats
// structs, as gateway/metrics.go exports them.
func taggedFamilies(stats ...any) []string {
	var names []string
	for _, st := range stats {
		typ := reflect.TypeOf(st)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if name := f.Tag.Get("metric"); f.Type == reflect.TypeFor[atomic.Int64]() && name != "" && name != "-" {
				names = append(names, name)
			}
		}
	}
	return names
}

// scrapeFamilies fetches /metrics and parses it with the Prometheus text
// parser, as a Prometheus server would.
func scrapeFamilies(t *testing.T, p *gatewayProc) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + p.debug + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// TestMetricsEndpoint scrapes a real wsgate process on each broker: the
// output parses with the Prometheus text parser, every wsgate family has
// HELP text and the type its name implies, every counter of the server,
// the hub, the broker and the presence store is there (the list comes from
// their struct tags, so a new counter is checked too), with the Go and
// process collectors beside them, and values follow the live counters.
func TestMetricsEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts wsgate processes")
	}
	common := taggedFamilies(gateway.Metrics{}, hub.Stats{}, presence.Counters{})
	redisOnly := append(taggedFamilies(redisbroker.Stats{}), "wsgate_redis_ready")
	for _, tc := range []struct {
		broker string
		want   []string
		absent []string
	}{
		{"memory", common, redisOnly},
		{"redis", append(common, redisOnly...), nil},
	} {
		t.Run(tc.broker, func(t *testing.T) {
			var p *gatewayProc
			if tc.broker == "redis" {
				p = redisGateway(t, redistest.StartStandalone(t).URL())
			} else {
				p = startGateway(t)
			}
			c, err := dialIdle(p.addr, "/echo")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			fams := scrapeFamilies(t, p)
			for name, f := range fams {
				if !strings.HasPrefix(name, "wsgate_") {
					continue
				}
				if f.GetHelp() == "" {
					t.Errorf("%s has no HELP text", name)
				}
				wantType := dto.MetricType_GAUGE
				if strings.HasSuffix(name, "_total") {
					wantType = dto.MetricType_COUNTER
				}
				if f.GetType() != wantType {
					t.Errorf("%s is a %v, want a %v", name, f.GetType(), wantType)
				}
			}
			for _, name := range append(tc.want, "go_goroutines", "go_memstats_heap_inuse_bytes",
				"process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes") {
				if fams[name] == nil {
					t.Errorf("family %s missing", name)
				}
			}
			for _, name := range tc.absent {
				if fams[name] != nil {
					t.Errorf("family %s exported by the %s broker", name, tc.broker)
				}
			}
			if got := familyValue(fams["wsgate_conns_upgraded_total"]); got < 1 {
				t.Errorf("wsgate_conns_upgraded_total = %v after an upgrade", got)
			}
			if got := familyValue(fams["wsgate_conns_open"]); got != 1 {
				t.Errorf("wsgate_conns_open = %v with one client", got)
			}
			if tc.broker == "redis" {
				if got := familyValue(fams["wsgate_redis_ready"]); got != 1 {
					t.Errorf("wsgate_redis_ready = %v once /readyz said ready", got)
				}
			}
		})
	}
}

func familyValue(f *dto.MetricFamily) float64 {
	if f == nil || len(f.Metric) != 1 {
		return -1
	}
	m := f.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// TestHealthAndReadiness: with the embedded broker, /healthz and /readyz
// answer 200 once wsgate listens; while it drains after SIGTERM, /readyz
// answers 503 (take it out of the load balancer) and /healthz still 200
// (do not restart it); then the process exits 0.
func TestHealthAndReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a wsgate process")
	}
	p := startGateway(t, "--drain-window", "3s")
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, err := p.status(path); err != nil || code != http.StatusOK {
			t.Fatalf("%s before drain: %d %v, want 200", path, code, err)
		}
	}
	// Two clients that do not answer the close: the drain sends the second
	// batch's 1001 later and waits for them, so the drain lasts.
	conns := dialMany(t, p.addr, nil, 2)
	defer closeAll(conns)
	p.signal(syscall.SIGTERM)
	deadline := time.Now().Add(2 * time.Second)
	for {
		code, err := p.status("/readyz")
		if err == nil && code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz while draining: %d %v, want 503", code, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, err := p.status("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d %v, want 200", code, err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("wsgate did not exit after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("wsgate exited with %v, want status 0", p.err)
	}
}
