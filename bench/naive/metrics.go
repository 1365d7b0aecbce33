package naive

import (
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync/atomic"
)

// metrics use wsgate's metric names and text format, so the benchmark
// harness scrapes both servers with the same code. Only the counters that
// mean the same thing here are kept.
type metrics struct {
	ConnsAccepted    atomic.Int64 // TCP connections accepted by net/http
	ConnsOpen        atomic.Int64 // gauge: upgraded connections not yet torn down
	ConnsUpgraded    atomic.Int64 // successful WebSocket upgrades
	HandshakesFailed atomic.Int64 // upgrade refused (bad request, origin)
	ProtocolErrors   atomic.Int64 // closed with 1002/1003/1007/1009 for a client error
	SlowConsumers    atomic.Int64 // closed with 4008: send channel full
	PongTimeouts     atomic.Int64 // closed: read deadline passed without a pong
	MessagesIn       atomic.Int64 // complete messages received
	FramesOut        atomic.Int64 // messages queued on send channels
}

// WriteText writes the metrics in the Prometheus text format.
func (m *metrics) WriteText(w io.Writer) error {
	for _, v := range []struct {
		name, kind string
		val        int64
	}{
		{"wsgate_conns_accepted_total", "counter", m.ConnsAccepted.Load()},
		{"wsgate_conns_open", "gauge", m.ConnsOpen.Load()},
		{"wsgate_conns_upgraded_total", "counter", m.ConnsUpgraded.Load()},
		{"wsgate_handshakes_failed_total", "counter", m.HandshakesFailed.Load()},
		{"wsgate_protocol_errors_total", "counter", m.ProtocolErrors.Load()},
		{"wsgate_slow_consumers_total", "counter", m.SlowConsumers.Load()},
		{"wsgate_pong_timeouts_total", "counter", m.PongTimeouts.Load()},
		{"wsgate_messages_in_total", "counter", m.MessagesIn.Load()},
		{"wsgate_frames_out_total", "counter", m.FramesOut.Load()},
		// The naive design's cost driver, exported so reports can show it.
		{"go_goroutines", "gauge", int64(runtime.NumGoroutine())},
	} {
		if _, err := fmt.Fprintf(w, "# TYPE %s %s\n%s %d\n", v.name, v.kind, v.name, v.val); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	return nil
}

// debugHandler serves pprof and /metrics, like wsgate's debug listener.
func debugHandler(m *metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_ = m.WriteText(w)
	})
	return mux
}
