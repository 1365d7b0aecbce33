package api

import (
	"net/http"
	"reflect"
	"testing"
)

func TestPublishData(t *testing.T) {
	f, h := newTest(t)
	// The value is published as its exact text, spacing included, as a
	// JSON client's publish is.
	expect(t, call(h, "publish", `{"channel":"chat:1","data": {"text": "<hi>"} }`), 200, `{"offset":1,"epoch":"ep-chat:1"}`)
	if got := string(f.published["chat:1"][0]); got != `{"text": "<hi>"}` {
		t.Fatalf("published %q", got)
	}
}

func TestPublishB64AndNull(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "publish", `{"channel":"bin","b64":"AP8B"}`), 200, `{"offset":1,"epoch":"ep-bin"}`)
	expect(t, call(h, "publish", `{"channel":"bin","data":null}`), 200, `{"offset":2,"epoch":"ep-bin"}`)
	expect(t, call(h, "publish", `{"channel":"bin","b64":""}`), 200, `{"offset":3,"epoch":"ep-bin"}`)
	want := [][]byte{{0, 0xff, 1}, []byte("null"), {}}
	if got := f.published["bin"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("published %q, want %q", got, want)
	}
}

func TestBroadcast(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "broadcast", `{"channels":["a","b"],"data":[1,2]}`), 200,
		`{"results":[{"channel":"a","offset":1,"epoch":"ep-a"},{"channel":"b","offset":1,"epoch":"ep-b"}]}`)
	if f.calls("a") != 1 || f.calls("b") != 1 || string(f.published["b"][0]) != "[1,2]" {
		t.Fatalf("published %q", f.published)
	}
}

func TestBroadcastPartialFailure(t *testing.T) {
	f, h := newTest(t)
	f.failOn["b"] = errString("broker: delivery queue full")
	expect(t, call(h, "broadcast", `{"channels":["a","b","c"],"data":1}`), 200,
		`{"results":[{"channel":"a","offset":1,"epoch":"ep-a"},{"channel":"b","error":"broker: delivery queue full","outcome":"not_published"},{"channel":"c","offset":1,"epoch":"ep-c"}]}`)
}

func TestBroadcastManyChannels(t *testing.T) {
	// More channels than broadcastParallelism, results in request order.
	f, h := newTest(t)
	body, want := `{"channels":[`, `{"results":[`
	for i := range 3 * broadcastParallelism {
		ch := string(rune('a' + i))
		if i > 0 {
			body, want = body+",", want+","
		}
		body += `"` + ch + `"`
		want += `{"channel":"` + ch + `","offset":1,"epoch":"ep-` + ch + `"}`
	}
	expect(t, call(h, "broadcast", body+`],"data":0}`), 200, want+`]}`)
	if f.calls("x") != 1 {
		t.Fatal("x not published once")
	}
}

func TestDisconnect(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "disconnect", `{"user":"42","code":4503,"reason":"banned"}`), 200, `{"disconnected":2}`)
	if want := []any{"disconnect", "42", "", uint16(4503), "banned"}; !reflect.DeepEqual(f.last(), want) {
		t.Fatalf("backend got %v, want %v", f.last(), want)
	}
	expect(t, call(h, "disconnect", `{"client":"c-1"}`), 200, `{"disconnected":2}`)
	if want := []any{"disconnect", "", "c-1", uint16(0), ""}; !reflect.DeepEqual(f.last(), want) {
		t.Fatalf("backend got %v, want %v", f.last(), want)
	}
}

func TestUnsubscribe(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "unsubscribe", `{"user":"42","channel":"chat:1"}`), 200, `{"unsubscribed":1}`)
	if want := []any{"unsubscribe", "42", "", "chat:1"}; !reflect.DeepEqual(f.last(), want) {
		t.Fatalf("backend got %v, want %v", f.last(), want)
	}
}

func TestPresence(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "presence", `{"channel":"c"}`), 200, `{"clients":[]}`)
	f.members = []Member{{Client: "c-1", User: "42"}, {Client: "c-2"}}
	expect(t, call(h, "presence", `{"channel":"c"}`), 200,
		`{"clients":[{"client":"c-1","user":"42"},{"client":"c-2","user":""}]}`)
	expect(t, call(h, "presence_stats", `{"channel":"c"}`), 200, `{"clients":3,"users":2}`)
	if want := []any{"presence_stats", "c"}; !reflect.DeepEqual(f.last(), want) {
		t.Fatalf("backend got %v", f.last())
	}
}

func TestHistory(t *testing.T) {
	f, h := newTest(t)
	f.history = []Publication{
		{Offset: 7, Data: []byte(`{"a": "<b>"}`)},
		{Offset: 8, Data: []byte{0, 1, 2}},
		{Offset: 9, Data: []byte("\xff\"")}, // not UTF-8: must not be embedded raw
		{Offset: 10, Data: nil},
	}
	expect(t, call(h, "history", `{"channel":"c","since":6,"limit":4,"reverse":true}`), 200,
		`{"publications":[{"offset":7,"data":{"a":"<b>"}},{"offset":8,"b64":"AAEC"},{"offset":9,"b64":"/yI="},{"offset":10,"b64":""}],"offset":9,"epoch":"ep"}`)
	if want := []any{"history", "c", uint64(6), 4, true}; !reflect.DeepEqual(f.last(), want) {
		t.Fatalf("backend got %v", f.last())
	}
	f.history = nil
	for body, limit := range map[string]int{`{"channel":"c"}`: maxHistoryLimit, `{"channel":"c","limit":5000}`: maxHistoryLimit} {
		expect(t, call(h, "history", body), 200, `{"publications":[],"offset":9,"epoch":"ep"}`)
		if want := []any{"history", "c", uint64(0), limit, false}; !reflect.DeepEqual(f.last(), want) {
			t.Fatalf("%s: backend got %v", body, f.last())
		}
	}
}

func TestChannels(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "channels", `{}`), 200, `{"channels":[]}`)
	f.channels = []string{"news", "chat:2", "chat:1", "user#42", "chatter"}
	expect(t, call(h, "channels", ``), 200, `{"channels":["chat:1","chat:2","chatter","news","user#42"]}`)
	expect(t, call(h, "channels", `{"pattern":"chat:*"}`), 200, `{"channels":["chat:1","chat:2"]}`)
	expect(t, call(h, "channels", `{"pattern":"*#*"}`), 200, `{"channels":["user#42"]}`)
	expect(t, call(h, "channels", `{"pattern":"news"}`), 200, `{"channels":["news"]}`)
}

func TestInfo(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "info", `{}`), 200, `{}`)
	f.info = map[string]any{"node": "gw-1", "connections": 12, "channels": 3, "uptime_seconds": 60}
	expect(t, call(h, "info", ``), 200, `{"channels":3,"connections":12,"node":"gw-1","uptime_seconds":60}`)
	f.info = map[string]any{"bad": func() {}}
	if r := call(h, "info", `{}`); r.status != http.StatusInternalServerError {
		t.Fatalf("unencodable info: %d %s", r.status, r.body)
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	_, h := newTest(t)
	expect(t, call(h, "publish", `{"channel":"c","data":1,"future":{"x":[1,{"y":null}]}}`), 200, `{"offset":1,"epoch":"ep-c"}`)
}

type errString string

func (e errString) Error() string { return string(e) }
