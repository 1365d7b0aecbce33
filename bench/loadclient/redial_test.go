package loadclient

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// droppingListener closes the first drop connections it accepts, as an
// overloaded server does to a handshake it could not finish in time.
type droppingListener struct {
	net.Listener
	drop atomic.Int64
}

func (l *droppingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.drop.Add(-1) < 0 {
			return c, err
		}
		c.Close()
	}
}

// echoServerDropping is an echo server behind a droppingListener.
func echoServerDropping(t *testing.T, drop int64) string {
	t.Helper()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		serveEcho(c)
	}))
	l := &droppingListener{Listener: srv.Listener}
	l.drop.Store(drop)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestRedialsRecoverDroppedHandshakes: dials the server dropped are
// started again and connect; each redial is counted, none is a failure.
func TestRedialsRecoverDroppedHandshakes(t *testing.T) {
	addr := echoServerDropping(t, 10)
	p := dial(t, Config{Addr: addr, Path: "/", Conns: 20, DialsInFlight: 5, Redials: 2, RedialDelay: 20 * time.Millisecond})
	st := p.Stats()
	if st.Connected != 20 || st.Failed != 0 || st.Redials != 10 {
		t.Fatalf("connected %d, failed %d, redials %d; want 20, 0, 10 (first error %q)", st.Connected, st.Failed, st.Redials, st.FirstError)
	}
	if len(p.Conns()) != 20 {
		t.Fatalf("%d open connections, want 20", len(p.Conns()))
	}
}

// TestRedialsAreBounded: a server that drops everything costs each
// connection Redials more attempts, then the dial fails for good.
func TestRedialsAreBounded(t *testing.T) {
	addr := echoServerDropping(t, 1<<40)
	p := dial(t, Config{Addr: addr, Path: "/", Conns: 6, Redials: 2, RedialDelay: 10 * time.Millisecond})
	st := p.Stats()
	if st.Connected != 0 || st.Failed != 6 || st.Redials != 12 || st.FirstError == "" {
		t.Fatalf("connected %d, failed %d, redials %d, first error %q; want 0, 6, 12", st.Connected, st.Failed, st.Redials, st.FirstError)
	}
}
