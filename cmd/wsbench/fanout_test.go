package main

import (
	"slices"
	"testing"

	"github.com/wsgate/wsgate/bench/harness/results"
)

// TestFanoutCompressionRuns: --compression runs wsgate plain and
// compressed, naive plain, compressed once (prepared) and per connection,
// each as its own variant with the flags that make the server do it.
func TestFanoutCompressionRuns(t *testing.T) {
	o := fanoutOpts{channels: 1}
	if r := o.runs(results.Naive); len(r) != 1 || r[0].document || r[0].serverArgs(results.Naive) != nil {
		t.Fatalf("without --compression: %+v", r)
	}
	o.compression = true
	type want struct{ variant, kind string }
	for _, tc := range []struct {
		design string
		want   []want
		args   [][]string
	}{
		{results.Wsgate, []want{
			{"one channel, JSON document", ""},
			{"one channel, JSON document, permessage-deflate", results.CompressionShared},
		}, [][]string{nil, nil}},
		{results.Naive, []want{
			{"one channel, JSON document", ""},
			{"one channel, JSON document, permessage-deflate", results.CompressionPrepared},
			{"one channel, JSON document, permessage-deflate per connection", results.CompressionPerConnection},
		}, [][]string{nil, {"--compression", "--compression-mode", "prepared"}, {"--compression", "--compression-mode", "per-connection"}}},
	} {
		runs := o.runs(tc.design)
		if len(runs) != len(tc.want) {
			t.Fatalf("%s: %d runs, want %d", tc.design, len(runs), len(tc.want))
		}
		for i, r := range runs {
			got := want{r.variant(), r.compressionKind(tc.design)}
			if got != tc.want[i] || !r.document {
				t.Errorf("%s run %d: %+v (document %v), want %+v", tc.design, i, got, r.document, tc.want[i])
			}
			if a := r.serverArgs(tc.design); !slices.Equal(a, tc.args[i]) {
				t.Errorf("%s run %d: server args %q, want %q", tc.design, i, a, tc.args[i])
			}
		}
	}
}
