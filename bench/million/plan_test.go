package million

import (
	"math"
	"net/netip"
	"strings"
	"testing"
)

// The plan for this host's million: 20,000 open files per process, the
// default port range.
func TestPlanMillionOnThisHost(t *testing.T) {
	p, err := NewPlan(PlanConfig{Conns: 1_000_000, FDCap: 20_000, LocalPorts: 60999 - 32768 + 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.ServerCap != 19_900 {
		t.Errorf("server cap %d, want 19,900", p.ServerCap)
	}
	// The busiest server must stay under its cap with a wide margin.
	if busiest := p.MeanPerServer + spreadSigmas*math.Sqrt(p.MeanPerServer); busiest > float64(p.ServerCap) {
		t.Errorf("%d servers: mean %.0f, busiest ~%.0f over the cap", p.Servers, p.MeanPerServer, busiest)
	}
	if p.Servers < 51 || p.Servers > 56 {
		t.Errorf("%d servers for a million under 19,900 each, want 51-56", p.Servers)
	}
	total := 0
	seen := map[string]bool{}
	for i, c := range p.Clients {
		total += c.Conns
		if c.Conns > 19_900 {
			t.Errorf("client %d holds %d, over its fd cap", i, c.Conns)
		}
		// ~28k ports per source at fill 0.25: 7,058 per address.
		if perSource := float64(c.Conns) / float64(len(c.Sources)); perSource > 7_058 {
			t.Errorf("client %d: %.0f connections per source address", i, perSource)
		}
		for _, s := range c.Sources {
			if seen[s] {
				t.Errorf("source %s used twice", s)
			}
			seen[s] = true
			if !strings.HasPrefix(s, "127.0.0.") {
				t.Errorf("source %s is not 127.0.0.x", s)
			}
		}
	}
	if total != 1_000_000 || len(p.Clients) != 51 || p.MaxPerClient() != 19_608 {
		t.Errorf("clients: %d holding %d (largest %d), want 51 holding 1,000,000 (largest 19,608)", len(p.Clients), total, p.MaxPerClient())
	}
	if p.Sources != len(seen) || p.Sources != 153 {
		t.Errorf("%d sources, want 153 (3 per client)", p.Sources)
	}
}

func TestPlanSmall(t *testing.T) {
	// The smoke test's layout: a cap of 1,000 open files per process.
	p, err := NewPlan(PlanConfig{Conns: 3000, FDCap: 1000, LocalPorts: 64512})
	if err != nil {
		t.Fatal(err)
	}
	if p.ServerCap != 900 || p.Servers != 4 || len(p.Clients) != 4 || p.Sources != 4 {
		t.Errorf("plan %+v, want 4 servers (cap 900), 4 clients with a source each", p)
	}
	// A wider port range needs fewer sources; an explicit mean is kept.
	p, err = NewPlan(PlanConfig{Conns: 100_000, FDCap: 20_000, LocalPorts: 64512, PerServer: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if p.Servers != 10 || p.Sources != 12 || len(p.Clients) != 6 {
		t.Errorf("plan %+v, want 10 servers, 6 clients with two sources each", p)
	}
}

func TestPlanSourcesSkipNetworkAndBroadcastOctets(t *testing.T) {
	p, err := NewPlan(PlanConfig{Conns: 10, FDCap: 200, LocalPorts: 2, PortFill: 1,
		FirstSource: netip.MustParseAddr("127.0.0.254")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Clients {
		got = append(got, c.Sources...)
	}
	want := "127.0.0.254 127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4"
	if strings.Join(got, " ") != want {
		t.Errorf("sources %v, want %s", got, want)
	}
	if _, err := NewPlan(PlanConfig{Conns: 10, FDCap: 200, LocalPorts: 2, PortFill: 1,
		FirstSource: netip.MustParseAddr("127.255.255.253")}); err == nil {
		t.Error("a plan past the end of 127/8 was accepted")
	}
}

func TestPlanErrors(t *testing.T) {
	for name, c := range map[string]PlanConfig{
		"no connections":        {Conns: 0, FDCap: 20000, LocalPorts: 28000},
		"cap below the reserve": {Conns: 10, FDCap: 50, LocalPorts: 28000},
		"no ports":              {Conns: 10, FDCap: 20000, LocalPorts: 0},
		"mean over the cap":     {Conns: 10, FDCap: 20000, LocalPorts: 28000, PerServer: 19800},
		"not loopback":          {Conns: 10, FDCap: 20000, LocalPorts: 28000, FirstSource: netip.MustParseAddr("10.0.0.1")},
	} {
		if p, err := NewPlan(c); err == nil {
			t.Errorf("%s: plan %+v accepted", name, p)
		}
	}
}
