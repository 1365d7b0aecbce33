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
// (see conn.startHook).
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

// identityFromAuth converts an auth identity to the gateway's.
func identityFromAuth(id auth.Identity) Identity {
	return Identity{UserID: id.UserID, Channels: id.Channels, ExpiresAt: id.ExpiresAt}
}
