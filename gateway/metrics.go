package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's counters and gauges. Every bound the server
// enforces has a counter here, so crossing it is visible.
//
// Each field's tags name its Prometheus family and HELP text (see
// statsCollector): adding a metric is adding a tagged field.
type Metrics struct {
	ConnsAccepted      atomic.Int64 `metric:"wsgate_conns_accepted_total" help:"TCP connections accepted on the client listener."`
	ConnsOpen          atomic.Int64 `metric:"wsgate_conns_open" help:"Connections registered with the event loop, in any state (handshake, open, closing)."`
	ConnsUpgraded      atomic.Int64 `metric:"wsgate_conns_upgraded_total" help:"Successful WebSocket upgrades (101 sent)."`
	HandshakesActive   atomic.Int64 `metric:"wsgate_handshakes_active" help:"Handshakes in progress."`
	HandshakesBusy     atomic.Int64 `metric:"wsgate_handshakes_busy_total" help:"Connections refused with 503 because --max-handshakes handshakes were in progress."`
	HandshakesFailed   atomic.Int64 `metric:"wsgate_handshakes_failed_total" help:"Upgrade requests rejected: malformed, refused Origin or token, connect hook refusal, too large."`
	HandshakeTimeouts  atomic.Int64 `metric:"wsgate_handshake_timeouts_total" help:"Connections closed at the handshake deadline (--handshake-timeout)."`
	ProtocolErrors     atomic.Int64 `metric:"wsgate_protocol_errors_total" help:"Connections closed with 1002, 1003, 1007 or 1009 for a client protocol error."`
	SlowConsumers      atomic.Int64 `metric:"wsgate_slow_consumers_total" help:"Connections closed with 4008: once their socket refused bytes, their backlog (bytes queued and not yet written) passed --max-queue-bytes."`
	PongTimeouts       atomic.Int64 `metric:"wsgate_pong_timeouts_total" help:"Connections closed because nothing arrived within --pong-timeout after a ping."`
	PeerTimeouts       atomic.Int64 `metric:"wsgate_peer_timeouts_total" help:"Open connections whose socket failed because the kernel gave up on the peer: ETIMEDOUT (keepalive probes unanswered under --heartbeat tcp, data or a zero window outlasting TCP_USER_TIMEOUT) or host/network unreachable."`
	PongsLate          atomic.Int64 `metric:"wsgate_pongs_late_total" help:"Pong timeouts waived because the peer's bytes were already waiting in the socket, unread by a busy gateway."`
	MessagesIn         atomic.Int64 `metric:"wsgate_messages_in_total" help:"Complete WebSocket messages received from clients."`
	MessagesInflated   atomic.Int64 `metric:"wsgate_messages_inflated_total" help:"Compressed (permessage-deflate) messages received and inflated."`
	FramesOut          atomic.Int64 `metric:"wsgate_frames_out_total" help:"WebSocket frames queued for writing to clients."`
	Writevs            atomic.Int64 `metric:"wsgate_writev_total" help:"Writes (write(2), writev(2), or sends in an io_uring batch) that wrote something to a client socket."`
	SendBatches        atomic.Int64 `metric:"wsgate_send_batches_total" help:"Fan-out flushes sent to many client sockets with one io_uring_enter(2) (--batch-sends)."`
	AcceptErrors       atomic.Int64 `metric:"wsgate_accept_errors_total" help:"accept4(2) failures on the client listener (EMFILE and the like)."`
	ConnsRefused       atomic.Int64 `metric:"wsgate_conns_refused_total" help:"Connections refused over --max-conns, --max-conns-per-ip, --max-conns-per-user or --accept-rate."`
	ForwardedIgnored   atomic.Int64 `metric:"wsgate_forwarded_for_ignored_total" help:"Upgrade requests from a --trusted-proxies address whose X-Forwarded-For was ignored (the proxy's own address was used): an entry read before the client's was no address, or the client lay beyond the header's last 256 bytes."`
	CommandsRelayed    atomic.Int64 `metric:"wsgate_api_commands_relayed_total" help:"Server-API disconnect and unsubscribe commands another instance relayed through the broker, run here."`
	CommandsInvalid    atomic.Int64 `metric:"wsgate_api_commands_invalid_total" help:"Messages on the broker's command channel dropped as not a valid command."`
	CommandsNotRelayed atomic.Int64 `metric:"wsgate_api_commands_not_relayed_total" help:"Server-API disconnect and unsubscribe commands run on this instance that could not be published to the others (answered 503)."`
	RateLimited        atomic.Int64 `metric:"wsgate_rate_limited_total" help:"Commands refused with error 107 for exceeding --command-rate."`
	TokenExpired       atomic.Int64 `metric:"wsgate_token_expired_total" help:"Connections closed with 4004: their token expired and no refresh came in time."`
	RefusedDraining    atomic.Int64 `metric:"wsgate_refused_draining_total" help:"Handshakes answered 503 + Retry-After because the server was draining (a load balancer retries them elsewhere)."`
	MessageTimeouts    atomic.Int64 `metric:"wsgate_message_timeouts_total" help:"Connections closed with 4009: a message did not arrive in full within --message-timeout of its first byte."`
	PartialBytes       atomic.Int64 `metric:"wsgate_partial_bytes" help:"Bytes held in partial input across all connections (incomplete frames, fragmented messages, upgrade requests), bounded by --max-partial-bytes."`
	// Over --max-partial-bytes: open connections closed with 4013,
	// handshakes answered 503.
	PartialBudgetCloses   atomic.Int64 `metric:"wsgate_partial_budget_closes_total" help:"Connections closed with 4013: their partial input would have passed --max-partial-bytes."`
	PartialBudgetRefusals atomic.Int64 `metric:"wsgate_partial_budget_refusals_total" help:"Handshakes answered 503: their partial request would have passed --max-partial-bytes."`
}

// metricsSource is a broker or presence store that keeps counters of its
// own: MetricStats returns a pointer to a struct of tagged atomic.Int64
// fields, like Metrics.
type metricsSource interface {
	MetricStats() any
}

// newMetricsHandler builds the one place every wsgate metric is exported
// from: the server's Metrics, the hub's Stats, Config.MetricStats, the
// broker's and the presence store's counters, the broker's readiness, and
// the Go runtime and process collectors. Values are read from the live
// atomics at scrape time, so the hot path keeps its plain atomic adds and
// nothing is copied.
func (s *Server) newMetricsHandler() (http.Handler, error) {
	stats := append([]any{&s.metrics, s.hub.Stats()}, s.cfg.MetricStats...)
	for _, c := range []any{s.broker, s.presence} {
		if m, ok := c.(metricsSource); ok {
			stats = append(stats, m.MetricStats())
		}
	}
	sc, err := newStatsCollector(stats...)
	if err != nil {
		return nil, err
	}
	cs := []prometheus.Collector{
		sc,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	// The Redis broker is the one broker with a readiness of its own.
	if r, ok := s.broker.(interface{ Ready() bool }); ok {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wsgate_redis_ready",
			Help: "1 when every Redis pub/sub connection is subscribed and live, else 0 (see /readyz).",
		}, func() float64 { return boolFloat(r.Ready()) }))
	}
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}), nil
}

// MetricsHandler serves every wsgate metric in the Prometheus exposition
// formats (the debug listener's /metrics).
func (s *Server) MetricsHandler() http.Handler { return s.metricsHandler }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// statsCollector exports the atomic.Int64 fields of stats structs. Every
// such field must carry `metric:"<name>"` and `help:"<text>"` tags (or
// `metric:"-"` to stay private): a name ending in _total is a counter, any
// other a gauge, as Prometheus' naming conventions say.
type statsCollector struct {
	fields []statField
}

type statField struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	val  *atomic.Int64
}

var atomicInt64 = reflect.TypeFor[atomic.Int64]()

func newStatsCollector(stats ...any) (*statsCollector, error) {
	c := &statsCollector{}
	for _, st := range stats {
		v := reflect.ValueOf(st)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			return nil, fmt.Errorf("metrics: %T is not a pointer to a struct", st)
		}
		v = v.Elem()
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Type != atomicInt64 || !f.IsExported() {
				continue
			}
			name, help := f.Tag.Get("metric"), f.Tag.Get("help")
			if name == "-" {
				continue
			}
			if !strings.HasPrefix(name, "wsgate_") || help == "" {
				return nil, fmt.Errorf("metrics: %s.%s needs tags `metric:\"wsgate_…\" help:\"…\"` (or `metric:\"-\"`)", v.Type(), f.Name)
			}
			kind := prometheus.GaugeValue
			if strings.HasSuffix(name, "_total") {
				kind = prometheus.CounterValue
			}
			c.fields = append(c.fields, statField{
				desc: prometheus.NewDesc(name, help, nil, nil),
				kind: kind,
				val:  v.Field(i).Addr().Interface().(*atomic.Int64),
			})
		}
	}
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.fields {
		ch <- f.desc
	}
}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.fields {
		ch <- prometheus.MustNewConstMetric(f.desc, f.kind, float64(f.val.Load()))
	}
}
