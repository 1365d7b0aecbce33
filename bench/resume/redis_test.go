package resume

import "testing"

func TestParseRedisInfo(t *testing.T) {
	s := parseRedisInfo("# Stats\r\ntotal_connections_received:3\r\ntotal_commands_processed:1234\r\n\r\n# Commandstats\r\n" +
		"cmdstat_fcall:calls=20,usec=170,usec_per_call=8.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_cluster|slots:calls=2,usec=15,usec_per_call=7.50,rejected_calls=0,failed_calls=2\r\n" +
		"cmdstat_info:calls=7,usec=1\r\nnot_a_stat:calls=9\r\n")
	if s.total != 1234 || s.calls["fcall"] != 20 || s.calls["cluster|slots"] != 2 || s.infos != 7 || len(s.calls) != 3 {
		t.Fatalf("%+v", s)
	}
}

func TestRedisWindow(t *testing.T) {
	s0 := redisStats{calls: map[string]int64{"fcall": 10, "xadd": 5, "info": 1}, total: 100, infos: 1}
	s1 := redisStats{calls: map[string]int64{"fcall": 40, "xadd": 15, "xrange": 20, "info": 2}, total: 172, infos: 2}
	// 10 publications in the window at 1 fcall and 1 xadd each; 20 clients.
	r := redisWindow(s0, s1, map[string]float64{"fcall": 1, "xadd": 1}, 10, 0, 20)
	if r.Net["fcall"] != 20 || r.Net["xadd"] != 0 || r.Net["xrange"] != 20 || r.Publisher["fcall"] != 10 {
		t.Fatalf("%+v", r)
	}
	if r.NetPerClient != 2 || r.FcallPerClient != 1 || r.TotalProcessed != 71 {
		t.Fatalf("%+v", r)
	}
	if _, ok := r.Calls["info"]; ok {
		t.Fatal("INFO counted")
	}
}
