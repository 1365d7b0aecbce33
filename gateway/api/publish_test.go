package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A broadcast that outlives callTimeout reports the channels it could not
// reach instead of hanging: with 24 channels, 8 at a time and 6 s each,
// the first 8 succeed, the next 8 are cut at 10 s, the last 8 never start.
func TestBroadcastTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, h := newTest(t)
		f.delay = 6 * time.Second
		n := 3 * broadcastParallelism
		chs := make([]string, n)
		for i := range chs {
			chs[i] = fmt.Sprintf("%q", fmt.Sprint("c", i))
		}
		start := time.Now()
		r := call(h, "broadcast", `{"data":1,"channels":[`+strings.Join(chs, ",")+`]}`)
		if took := time.Since(start); took != callTimeout {
			t.Errorf("took %v", took)
		}
		var resp struct{ Results []struct{ Error string } }
		if err := json.Unmarshal([]byte(r.body), &resp); err != nil || r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		for i, res := range resp.Results {
			ok := i < broadcastParallelism
			if (res.Error == "") != ok || (!ok && res.Error != "context deadline exceeded") {
				t.Errorf("result %d: %+v", i, res)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.attempts["c8"] != 1 || f.attempts["c23"] != 0 {
			t.Error("a channel was published to after the deadline")
		}
	})
}
