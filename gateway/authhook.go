package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/wsgate/wsgate/gateway/auth"
)

// authHook verifies the handshake's token (header, query or cookie) with
// the built-in authenticator. It is CPU-only, so it runs inline on the
// worker; the connect hook, which calls a backend, is run off the worker
// (see handshakeAsync).
type authHook struct{ a *auth.Authenticator }

func (h authHook) Handshake(r *HandshakeRequest) (Identity, error) {
	if _, hasToken := h.a.Token(r.URI, r.Header); !hasToken && h.a.HookEnabled() {
		uri, hdr := r.URI, r.Header
		return Identity{}, &deferredHook{Call: func(ctx context.Context) (Identity, error) {
			id, err := h.a.CallHook(ctx, uri, hdr)
			return identityFromAuth(id), rejection(err)
		}}
	}
	id, err := h.a.Authenticate(r.URI, r.Header)
	return identityFromAuth(id), rejection(err)
}

// rejection turns an authentication error into the handshake's answer.
func rejection(err error) error {
	if err != nil {
		var aerr *auth.Error
		if errors.As(err, &aerr) {
			return &RejectError{Status: aerr.Status, Reason: aerr.Reason}
		}
		return &RejectError{Status: http.StatusUnauthorized, Reason: "unauthorized"}
	}
	return nil
}

// maxHooksInFlight bounds connect-hook calls running at once; handshakes
// beyond it are answered 503.
const maxHooksInFlight = 256

// startHook runs a deferred connect hook on its own goroutine (bounded by
// the server's semaphore) and hands the outcome back to the connection's
// worker. The request bytes wait in c.in meanwhile.
func (c *conn) startHook(d *deferredHook, data []byte) bool {
	select {
	case c.srv.hookSem <- struct{}{}:
	default:
		return false
	}
	c.setLeftover(data)
	c.hookWait = true
	timeout := c.srv.cfg.HandshakeTimeout
	c.srv.hookWG.Add(1)
	go func() {
		defer c.srv.hookWG.Done()
		defer func() { <-c.srv.hookSem }()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		id, err := d.Call(ctx)
		cancel()
		c.mu.Lock()
		c.hookDone = &hookOutcome{identity: id, err: err}
		c.mu.Unlock()
		c.desc.Notify(netpollNotify)
	}()
	return true
}

// finishHook resumes a handshake whose connect hook answered (worker).
func (c *conn) finishHook() {
	c.mu.Lock()
	done := c.hookDone
	c.hookDone = nil
	c.mu.Unlock()
	if done == nil || !c.hookWait || !c.stateIs(stateHandshake) {
		return
	}
	c.hookWait = false
	data := append([]byte(nil), c.in.leftover...)
	c.setLeftover(nil)
	c.handshakeWith(data, done)
}
