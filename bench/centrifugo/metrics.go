package centrifugo

import "strings"

// What the harness reads from Centrifugo's /metrics (Prometheus text, as
// parsed by bench/harness/scrape: names with their labels).

// Both are labelled (transport, client name, code): the harness sums the
// series.
const (
	// inflightMetric is the gauge of connected clients.
	inflightMetric = "centrifugo_client_connections_inflight"
	// disconnectsMetric counts the connections the server closed, by
	// disconnect code (3008 slow, 3009 write error, 3012 no pong, ...).
	disconnectsMetric = "centrifugo_client_num_server_disconnects"
)

// Clients returns the clients connected now. (centrifugo_node_num_clients
// is refreshed only once a minute.)
func Clients(metrics map[string]float64) float64 { return sum(metrics, inflightMetric) }

// ServerDisconnects sums the server-initiated disconnects over every code:
// in the slow scenario, the non-readers Centrifugo gave up on, whatever
// the reason (queue full, write timeout, pong timeout).
func ServerDisconnects(metrics map[string]float64) int64 {
	return int64(sum(metrics, disconnectsMetric))
}

// sum adds every series of metric.
func sum(metrics map[string]float64, metric string) float64 {
	var n float64
	for name, v := range metrics {
		if name == metric || strings.HasPrefix(name, metric+"{") {
			n += v
		}
	}
	return n
}
