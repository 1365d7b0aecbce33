package centrifugo

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	path, err := Config{PingInterval: 25 * time.Second, APIKey: "secret"}.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		UsageStats struct{ Disabled bool } `json:"usage_stats"`
		Engine     struct{ Type string }
		HTTPAPI    struct{ Key string } `json:"http_api"`
		Prometheus struct{ Enabled bool }
		Debug      struct{ Enabled bool }
		Client     struct {
			Anonymous    bool   `json:"allow_anonymous_connect_without_token"`
			PingInterval string `json:"ping_interval"`
			PongTimeout  string `json:"pong_timeout"`
		}
		Channel struct {
			Namespaces []struct {
				Name        string
				Subscribe   bool `json:"allow_subscribe_for_anonymous"`
				HistorySize int  `json:"history_size"`
				Presence    bool
				JoinLeave   bool `json:"join_leave"`
			}
		}
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	ns := c.Channel.Namespaces
	switch {
	case !c.UsageStats.Disabled, c.Engine.Type != "memory", c.HTTPAPI.Key != "secret", !c.Prometheus.Enabled, !c.Debug.Enabled:
		t.Fatalf("config %s", raw)
	case !c.Client.Anonymous || c.Client.PingInterval != "25s" || c.Client.PongTimeout != "8s":
		t.Fatalf("client section %+v", c.Client)
	case len(ns) != 1 || ns[0].Name != Namespace || !ns[0].Subscribe || ns[0].HistorySize != 0 || ns[0].Presence || ns[0].JoinLeave:
		t.Fatalf("namespaces %+v", ns)
	}
	// A short ping interval keeps the pong timeout below it.
	b, err := Config{PingInterval: 4 * time.Second, APIKey: "k"}.File()
	if err != nil || !json.Valid(b) {
		t.Fatal(err)
	}
	var short struct {
		Client struct {
			PongTimeout string `json:"pong_timeout"`
		}
	}
	_ = json.Unmarshal(b, &short)
	if short.Client.PongTimeout != "2s" {
		t.Fatalf("pong timeout %q for a 4 s ping interval", short.Client.PongTimeout)
	}
	for _, bad := range []Config{{APIKey: "k"}, {PingInterval: time.Second}} {
		if _, err := bad.File(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestSpec(t *testing.T) {
	sp := Spec("/bin/centrifugo", "/tmp/c.json")
	if sp.Name != "centrifugo" || !sp.Debug || !slices.Equal(sp.Args, []string{"--config", "/tmp/c.json"}) {
		t.Fatalf("spec %+v", sp)
	}
	got := sp.ListenArgs("127.0.0.1:8000", "127.0.0.1:9000")
	want := []string{"--http_server.address", "127.0.0.1", "--http_server.port", "8000",
		"--http_server.internal_address", "127.0.0.1", "--http_server.internal_port", "9000"}
	if !slices.Equal(got, want) {
		t.Fatalf("listen args %q", got)
	}
	if got := ListenArgs("127.0.0.1:8000", ""); len(got) != 4 {
		t.Fatalf("without a debug address: %q", got)
	}
	if filepath.Base(BinPath("/c")) != BinName || filepath.Base(filepath.Dir(BinPath("/c"))) != "centrifugo-"+Version {
		t.Fatalf("bin path %s", BinPath("/c"))
	}
}

func TestMetrics(t *testing.T) {
	m := map[string]float64{
		`centrifugo_client_num_server_disconnects{client_name="unnamed",code="3008"}`:         7,
		`centrifugo_client_num_server_disconnects{client_name="unnamed",code="3012"}`:         2,
		`centrifugo_client_num_server_disconnects_other`:                                      100,
		`centrifugo_client_connections_inflight{client_name="unnamed",transport="websocket"}`: 5,
		`centrifugo_client_connections_inflight{client_name="go",transport="websocket"}`:      1,
		`centrifugo_client_connections_inflight_total`:                                        50,
	}
	if n := ServerDisconnects(m); n != 9 {
		t.Fatalf("disconnects %d, want 9", n)
	}
	if n := Clients(m); n != 6 {
		t.Fatalf("clients %v, want 6", n)
	}
	if ServerDisconnects(nil) != 0 {
		t.Fatal("no metrics, yet disconnects")
	}
}
