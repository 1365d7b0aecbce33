package gateway

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

// TestSessionResumeReleasesWhatHistoryDidNotCover: the live frames held
// while a resume reads history go out after the reply and the replayed
// publications, in order, except those history already covered (in its
// epoch); join/leave pushes are never covered. Without history, all of
// them go out.
func TestSessionResumeReleasesWhatHistoryDidNotCover(t *testing.T) {
	history := func(epoch string, top uint64, offsets ...uint64) broker.HistoryResult {
		res := broker.HistoryResult{Position: broker.Position{Epoch: epoch, Offset: top}}
		for _, off := range offsets {
			res.Publications = append(res.Publications, broker.HistoryEntry{Offset: off, Data: []byte(`"h"`)})
		}
		return res
	}
	for _, tc := range []struct {
		name, since, live string // positions "epoch:offset"; "join" is a join push
		res               broker.HistoryResult
		err               error
		want              string
	}{
		{name: "overlap", since: "e1:1", live: "e1:2 e1:3 join e1:4 e1:5", res: history("e1", 3, 2, 3),
			want: "reply(recovered) e1:2(h) e1:3(h) join e1:4 e1:5"},
		{name: "in order", since: "e1:1", live: "e1:4 e1:5", res: history("e1", 3, 2, 3),
			want: "reply(recovered) e1:2(h) e1:3(h) e1:4 e1:5"},
		{name: "epoch changed", since: "e0:7", live: "e0:8 join e1:3 e1:4", res: history("e1", 3, 1, 2, 3),
			want: "reply(epoch changed) e0:8 join e1:4"},
		// The broker lost its history after the read: the hub announces
		// the new epoch and delivers it from its start; history's offsets
		// of the old epoch do not cover them.
		{name: "new epoch after the read", since: "e1:1", live: "e1:3 join e2:1 e2:2", res: history("e1", 3, 2, 3),
			want: "reply(recovered) e1:2(h) e1:3(h) join e2:1 e2:2"},
		// The subscribe is undone (111: nothing done), what it held with it.
		{name: "history unreachable", since: "e1:1", live: "e1:2 join e1:3", err: errors.New("down"),
			want: "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newTestSession(t, testServer(t, nil), Identity{})
			s.subscribed()
			rec := s.startRecovery("c", 1)
			for _, l := range strings.Fields(tc.live) {
				p := &codec.Publication{Channel: []byte("c"), Kind: codec.KindJoin, Client: []byte("other")}
				if l != "join" {
					epoch, off := splitPos(l)
					p = &codec.Publication{Channel: []byte("c"), Epoch: []byte(epoch), Offset: off}
				}
				frame := s.frame(codec.AppendMessage(nil, s.enc, "c", p.Offset, string(p.Epoch), []byte(`"live"`)))
				if s.Enqueue([]*codec.Publication{p}, [][]byte{frame}) {
					t.Fatalf("%s was not held", l)
				}
			}
			epoch, since := splitPos(tc.since)
			if tc.err != nil {
				s.failSubscribe("c", rec, tc.err)
			} else {
				s.finishRecovery("c", rec, since, epoch, tc.res)
			}
			if s.sub.recovering != nil {
				t.Fatalf("an empty recovering map is kept: %v", s.sub.recovering)
			}
			var got []string
			for _, m := range f.messages(t) {
				got = append(got, describe(m))
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("queued %s\nwant   %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func splitPos(s string) (string, uint64) {
	epoch, off, _ := strings.Cut(s, ":")
	var n uint64
	fmt.Sscan(off, &n)
	return epoch, n
}

// describe names a queued JSON frame for TestSessionResume…: a reply, an
// error, a live frame (offset 0: the join) or a replayed one (h).
func describe(m map[string]any) string {
	switch {
	case m["error"] != nil:
		return "error"
	case m["id"] != nil:
		if m["recovered"] == true {
			return "reply(recovered)"
		}
		return fmt.Sprintf("reply(%v)", m["reason"])
	case m["offset"] == nil || m["offset"] == 0.0:
		return "join"
	case m["data"] == "h":
		return fmt.Sprintf("%v:%v(h)", m["epoch"], m["offset"])
	}
	return fmt.Sprintf("%v:%v", m["epoch"], m["offset"])
}
