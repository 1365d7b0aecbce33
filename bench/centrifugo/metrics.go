package centrifugo

import "strings"

// What the harness reads from Centrifugo's /metrics (Prometheus text, as
// parsed by bench/harness/scrape: names with their labels).

// ClientsMetric is the gauge of connected clients.
const ClientsMetric = "centrifugo_node_num_clients"

// disconnectsMetric counts the connections the server closed, labelled by
// disconnect code (3008 slow, 3009 write error, 3012 no pong, ...).
const disconnectsMetric = "centrifugo_client_num_server_disconnects"

// ServerDisconnects sums the server-initiated disconnects over every code:
// in the slow scenario, the non-readers Centrifugo gave up on, whatever
// the reason (queue full, write timeout, pong timeout).
func ServerDisconnects(metrics map[string]float64) int64 {
	var n float64
	for name, v := range metrics {
		if name == disconnectsMetric || strings.HasPrefix(name, disconnectsMetric+"{") {
			n += v
		}
	}
	return int64(n)
}
