package report

import (
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/harness/results"
)

// compressionSample is a fanout --compression run: wsgate plain and
// shared, naive plain, prepared and per connection.
func compressionSample() *results.Run {
	r := results.NewRun("wsbench fanout --compression", procfs.Machine{CPUs: 2}, time.Unix(0, 0))
	add := func(design, variant, kind string, rate, burst, wire float64) {
		d := r.Design(design)
		d.Fanout = append(d.Fanout, &results.Fanout{Variant: variant, Subs: 10000, Channels: 1, Document: true, Compression: kind,
			Modes: []*results.FanoutMode{
				{Mode: "rate", Rate: 4, Delivered: 400000, ExpectedDeliveries: 400000, CPUUsPerDelivery: rate, WireBytesPerDelivery: wire},
				{Mode: "burst", Burst: 20, Bursts: 5, Delivered: 1000000, ExpectedDeliveries: 1000000, CPUUsPerDelivery: burst, WireBytesPerDelivery: wire},
			}})
	}
	add(results.Wsgate, "one channel, JSON document", "", 10, 1, 1614)
	add(results.Wsgate, "one channel, JSON document, permessage-deflate", results.CompressionShared, 12, 1.2, 807)
	add(results.Naive, "one channel, JSON document", "", 18, 14, 1614)
	add(results.Naive, "one channel, JSON document, permessage-deflate", results.CompressionPrepared, 20, 13, 831)
	add(results.Naive, "one channel, JSON document, permessage-deflate per connection", results.CompressionPerConnection, 60, 48, 831)
	return r
}

func TestCompressionTable(t *testing.T) {
	out := Text(compressionSample())
	for _, want := range []string{
		"Compression: the JSON document to 10,000 subscribers on 1 channel, plain and permessage-deflate",
		"once per publication, shared frame", "once per publication (PreparedMessage)", "per connection (WriteMessage)",
		"1.20×", // wsgate compressed over its plain run
		"3.33×", // naive per connection over its plain run, rate
		"rate 4/s: wsgate's compressed CPU per delivery over its own plain run 1.20× (goal ≤ 1.3×); " +
			"over naive per connection (WriteMessage) 0.20× (goal ≤ 0.25×); over naive once per publication (PreparedMessage) 0.60×.",
		"burst 5×20: wsgate's compressed CPU per delivery over its own plain run 1.20× (goal ≤ 1.3×); " +
			"over naive per connection (WriteMessage) 0.025× (1/40) (goal ≤ 0.25×); over naive once per publication (PreparedMessage) 0.092× (1/11).",
		"Fan-out, one channel, JSON document, permessage-deflate per connection",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q\n%s", want, out)
		}
	}
	// A run without compression has no such table.
	if out := Text(sampleRun(t)); strings.Contains(out, "Compression:") {
		t.Errorf("compression table without a compressed run:\n%s", out)
	}
}
