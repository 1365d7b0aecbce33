package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/deflate"
)

// Subprotocols the client protocol endpoint negotiates (codec owns the
// names).
const (
	ProtocolMsgpack = codec.SubprotocolMsgpack
	ProtocolJSON    = codec.SubprotocolJSON
)

// Endpoint says which handler a connection was upgraded for.
type Endpoint uint8

const (
	EndpointWS   Endpoint = iota + 1 // the client protocol (WSPath)
	EndpointEcho                     // raw echo (EchoPath)
)

// HandshakeRequest is what a HandshakeHook sees of an upgrade request.
type HandshakeRequest struct {
	Endpoint Endpoint
	URI      string // request target, including the query
	Host     string
	Origin   string
	Protocol string      // negotiated subprotocol ("" for none)
	Header   http.Header // every header except the WebSocket ones
}

// Identity is what a HandshakeHook learned about the client; the gateway
// keeps it for the connection's lifetime (a refresh may replace it).
type Identity struct {
	UserID    string    // "" for an anonymous connection
	Channels  []string  // channels the token grants (namespace rule "claim")
	ExpiresAt time.Time // zero: never; else the connection must refresh before
}

// HandshakeHook authorizes upgrades. It runs on a netpoll worker before the
// 101 is sent and must not block (verify a token; do not call a server).
// Returning a *RejectError answers with its status; any other error is 403.
type HandshakeHook interface {
	Handshake(req *HandshakeRequest) (Identity, error)
}

// RejectError refuses a handshake with an HTTP status and a reason.
type RejectError struct {
	Status int
	Reason string
}

func (e *RejectError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Reason) }

// upgradeResult is the outcome of parsing one complete upgrade request.
type upgradeResult struct {
	response []byte // HTTP response to send: 101 or an error status
	ok       bool
	endpoint Endpoint
	protocol string         // negotiated subprotocol, "" for none
	window   deflate.Window // permessage-deflate (NoWindow: not negotiated)
	identity Identity
	deferred *deferredHook // the connect hook must run first (not ok, no response)
	static   bool          // response is a demo page (static.go), not a refusal

	// When not ok, for the logs: the response's status, a refusal label
	// (refused* in eventlog.go) and the detail.
	status int
	label  string
	reason string
}

// deferredHook is returned by a HandshakeHook that must call a backend:
// the gateway runs Call on a bounded goroutine pool, never on a worker,
// then upgrades (or rejects) with its outcome.
type deferredHook struct {
	Call func(ctx context.Context) (Identity, error)
}

func (d *deferredHook) Error() string { return "handshake deferred to the connect hook" }

// hookOutcome is what a deferred hook returned.
type hookOutcome struct {
	identity Identity
	err      error
}

// upgrader holds what the server's handshake callbacks need.
type upgrader struct {
	cfg     *Config
	origins originPolicy
	// forwarded: trusted proxies are configured, so X-Forwarded-For is
	// gathered for the upgradeAdmitter.
	forwarded bool
}

// upgradeAdmitter is the connection an upgrade request came on: it
// decides on the request's client address (the TCP peer, or behind a
// trusted proxy the one X-Forwarded-For names) before the handshake hook
// runs. fwd is the request's X-Forwarded-For (nil: none, or not
// gathered); false refuses the upgrade with 429 (--max-conns-per-ip).
type upgradeAdmitter interface {
	admitUpgrade(fwd *forwardedFor) bool
}

// upgrade parses req (a complete request head ending in CRLFCRLF) with
// gobwas/ws, which does it without copying header values. It never reads
// past req, so bytes that followed the request in the same read stay with
// the caller.
func (u *upgrader) upgrade(req []byte) upgradeResult { return u.upgradeWith(req, nil, nil) }

// upgradeWith is upgrade with the outcome of a connect hook that already
// ran off the worker (nil: run the handshake hook inline) and the
// connection that admits the request's client (nil: no admission). A
// request that comes back with its hook's outcome was admitted before the
// hook ran.
func (u *upgrader) upgradeWith(req []byte, done *hookOutcome, adm upgradeAdmitter) upgradeResult {
	if why := checkRequestHead(req); why != "" {
		return upgradeResult{response: []byte(httpError(http.StatusBadRequest, why)),
			status: http.StatusBadRequest, label: refusedBadRequest, reason: why}
	}
	if page := u.staticResponse(req); page != nil {
		return upgradeResult{response: page, static: true}
	}
	var (
		res    upgradeResult
		rq     requestFields
		offers = extOffers{on: u.cfg.Compression}
	)
	defer func() { putForwarded(rq.fwd) }()
	wantHeaders := u.cfg.Hook != nil
	wantForwarded := u.forwarded && adm != nil && done == nil
	up := ws.Upgrader{
		// gobwas picks the first offered protocol this accepts.
		Protocol: func(p []byte) bool {
			_, known := codec.EncodingFor(string(p))
			ok := res.endpoint == EndpointWS && len(p) > 0 && known
			if ok && res.protocol == "" {
				res.protocol = string(p)
			}
			return ok
		},
		OnRequest: func(target []byte) error {
			res.endpoint = u.route(target)
			if res.endpoint == 0 {
				res.label = refusedNotFound
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound))
			}
			if wantHeaders {
				rq.uri, rq.hdr = string(target), http.Header{}
			}
			return nil
		},
		ExtensionCustom: offers.collect,
		OnHost: func(h []byte) error {
			rq.host = string(h)
			return nil
		},
		OnHeader: func(key, value []byte) error {
			if bytes.EqualFold(key, []byte("Origin")) {
				rq.origin = string(value)
			}
			if wantForwarded && bytes.EqualFold(key, []byte("X-Forwarded-For")) {
				if rq.fwd == nil {
					rq.fwd = getForwarded()
				}
				rq.fwd.add(value) // copied: value is only valid during the call
			}
			if wantHeaders {
				rq.hdr.Add(string(key), string(value))
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if adm != nil && done == nil && !adm.admitUpgrade(rq.fwd) {
				res.label = refusedPerIP
				return nil, reject(http.StatusTooManyRequests, "too many connections from this address")
			}
			if !u.origins.allowed(rq.origin, rq.host) {
				res.label = refusedOrigin
				return nil, reject(http.StatusForbidden, "origin not allowed")
			}
			if u.cfg.Hook != nil {
				if err := u.authorize(&res, done, &HandshakeRequest{
					Endpoint: res.endpoint, URI: rq.uri, Host: rq.host, Origin: rq.origin, Protocol: res.protocol, Header: rq.hdr,
				}); err != nil {
					return nil, err
				}
			}
			return offers.answer(&res), nil
		},
	}
	var out bytes.Buffer
	_, err := up.Upgrade(&handshakeIO{r: bytes.NewReader(req), w: &out})
	return res.settle(err, &out)
}

// settle completes res with the upgrade's outcome: the response gobwas
// wrote for err, and for a refusal its status, reason and label.
func (res upgradeResult) settle(err error, out *bytes.Buffer) upgradeResult {
	if err != nil && out.Len() == 0 {
		// gobwas writes nothing when the request line itself is unreadable.
		out.WriteString(httpError(http.StatusBadRequest, "bad request"))
	}
	res.ok, res.response = err == nil, out.Bytes()
	if res.label == refusedPerIP {
		res.response = tooManyFromIP // the same answer as a refusal at accept
	}
	if !res.ok {
		res.status, res.reason = responseStatus(res.response), err.Error()
		if res.label == "" {
			res.label = refusedBadRequest
		}
	}
	return res
}

// requestFields is what upgradeWith's header callbacks gather from a
// request, in one variable: each variable a callback captures costs the
// upgrade an allocation.
type requestFields struct {
	uri, host, origin string
	hdr               http.Header   // for the handshake hook (nil without one)
	fwd               *forwardedFor // X-Forwarded-For, from the pool once a line is seen
}

// authorize runs the handshake hook (or takes the outcome of the connect
// hook that already ran off the worker: done) and records the identity in
// res; an error refuses the upgrade, or defers it to the connect hook.
func (u *upgrader) authorize(res *upgradeResult, done *hookOutcome, req *HandshakeRequest) error {
	var id Identity
	var err error
	if done != nil {
		id, err = done.identity, done.err
	} else {
		id, err = u.cfg.Hook.Handshake(req)
	}
	var deferred *deferredHook
	if errors.As(err, &deferred) {
		res.deferred = deferred
		return err // nothing is sent: the hook runs off the worker
	}
	if err != nil {
		res.label = refusedAuth
		var rej *RejectError
		if !errors.As(err, &rej) {
			rej = &RejectError{Status: http.StatusForbidden, Reason: "forbidden"}
		}
		return reject(rej.Status, rej.Reason)
	}
	res.identity = id
	return nil
}

// extOffers negotiates permessage-deflate from a request's
// Sec-WebSocket-Extensions lines (when compression is on) as gobwas reads
// them: the first acceptable offer, in header order, wins. The answer is
// sent from OnBeforeUpgrade, once the request is accepted.
type extOffers struct {
	on       bool
	response string         // the accepted offer's answer ("": none yet)
	window   deflate.Window // and the window agreed
}

// collect is gobwas's ExtensionCustom. It leaves gobwas's own extension
// list empty and copies nothing: v is only valid during the call.
func (o *extOffers) collect(v []byte, opts []httphead.Option) ([]httphead.Option, bool) {
	if o.on && o.response == "" {
		o.response, o.window = deflate.Negotiate([][]byte{v})
	}
	return opts, true
}

// extensionHeaders are the response lines for deflate's answers, made once
// so a compressed connection's handshake allocates no more than a plain one.
// Never written after it is built.
var extensionHeaders = func() map[string]ws.HandshakeHeader {
	m := map[string]ws.HandshakeHeader{}
	for _, r := range deflate.Responses() {
		m[r] = ws.HandshakeHeaderString("Sec-WebSocket-Extensions: " + r + "\r\n")
	}
	return m
}()

// answer returns the response header for the accepted offer (nil: none)
// and records the agreement in res.
func (o *extOffers) answer(res *upgradeResult) ws.HandshakeHeader {
	h, ok := extensionHeaders[o.response]
	if ok {
		res.window = o.window
	}
	return h
}

// responseStatus reads the status code of an HTTP/1.1 response (0 if it
// has none).
func responseStatus(resp []byte) int {
	const prefix = "HTTP/1.1 "
	if len(resp) < len(prefix)+3 || string(resp[:len(prefix)]) != prefix {
		return 0
	}
	status := 0
	for _, b := range resp[len(prefix) : len(prefix)+3] {
		if b < '0' || b > '9' {
			return 0
		}
		status = status*10 + int(b-'0')
	}
	return status
}

func reject(status int, reason string) error {
	return ws.RejectConnectionError(ws.RejectionStatus(status), ws.RejectionReason(reason))
}

// route maps a request URI to an endpoint (0: none).
func (u *upgrader) route(uri []byte) Endpoint {
	path := uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch {
	case string(path) == u.cfg.WSPath:
		return EndpointWS
	case u.cfg.Echo && string(path) == u.cfg.EchoPath:
		return EndpointEcho
	}
	return 0
}

// handshakeIO lets gobwas read the buffered request and write its response
// into memory; the connection then queues the response like any frame.
type handshakeIO struct {
	r *bytes.Reader
	w *bytes.Buffer
}

func (h *handshakeIO) Read(p []byte) (int, error)  { return h.r.Read(p) }
func (h *handshakeIO) Write(p []byte) (int, error) { return h.w.Write(p) }

// httpError formats a complete, connection-closing HTTP error response.
func httpError(status int, reason string) string {
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(reason), reason)
}

// originPolicy implements Config.AllowedOrigins (cross-site WebSocket
// hijacking protection: browsers always send Origin, other clients may not).
type originPolicy struct {
	any      bool
	exact    map[string]bool // full origins, lower case
	suffixes []string        // ".example.com" from "*.example.com"
}

func newOriginPolicy(allowed []string) originPolicy {
	p := originPolicy{exact: map[string]bool{}}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "*":
			p.any = true
		case strings.HasPrefix(a, "*."):
			p.suffixes = append(p.suffixes, a[1:])
		case a != "":
			p.exact[strings.TrimSuffix(a, "/")] = true
		}
	}
	return p
}

func (p originPolicy) allowed(origin, host string) bool {
	if origin == "" || p.any {
		return true
	}
	origin = strings.ToLower(origin)
	if p.exact[origin] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(u.Hostname(), s) {
			return true
		}
	}
	// Default policy: same host as the request.
	return len(p.exact) == 0 && len(p.suffixes) == 0 && strings.EqualFold(u.Host, host)
}
