package gateway

import (
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
	id, err := h.a.Authenticate(r.URI, r.Header)
	if err != nil {
		var aerr *auth.Error
		if errors.As(err, &aerr) {
			return Identity{}, &RejectError{Status: aerr.Status, Reason: aerr.Reason}
		}
		return Identity{}, &RejectError{Status: http.StatusUnauthorized, Reason: "unauthorized"}
	}
	return identityFromAuth(id), nil
}
