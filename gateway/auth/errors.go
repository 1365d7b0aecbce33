package auth

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/golang-jwt/jwt/v5"
)

// Error codes: stable strings a gateway can put in an error frame or a log,
// and clients can switch on. The table in the package doc gives the status.
const (
	CodeTokenMissing         = "token_missing"
	CodeTokenMalformed       = "token_malformed"
	CodeAlgorithmInvalid     = "token_algorithm_invalid"
	CodeUnknownKey           = "token_unknown_key"
	CodeSignatureInvalid     = "token_signature_invalid"
	CodeIssuerInvalid        = "token_issuer_invalid"
	CodeAudienceInvalid      = "token_audience_invalid"
	CodeExpMissing           = "token_exp_missing"
	CodeSubMissing           = "token_sub_missing"
	CodeTokenExpired         = "token_expired"
	CodeTokenNotValidYet     = "token_not_valid_yet"
	CodeTokenWrongType       = "token_wrong_type"
	CodeTokenInvalid         = "token_invalid"
	CodeChannelMismatch      = "subscription_channel_mismatch"
	CodeUserMismatch         = "subscription_user_mismatch"
	CodeHookUnauthorized     = "hook_unauthorized"
	CodeHookForbidden        = "hook_forbidden"
	CodeBackendUnavailable   = "auth_unavailable"
	reasonBackendUnavailable = "auth backend unavailable"
)

// Error is every failure this package returns. Status is the HTTP status
// for the handshake (401, 403 or 503); Reason is short, safe to send to the
// client; Code is stable; Err, when set, is the underlying cause for logs.
type Error struct {
	Status int
	Reason string
	Code   string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("auth: %d %s: %v", e.Status, e.Code, e.Err)
	}
	return fmt.Sprintf("auth: %d %s", e.Status, e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

func unauthorized(code, reason string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Reason: reason, Code: code, Err: err}
}

func forbidden(code, reason string, err error) *Error {
	return &Error{Status: http.StatusForbidden, Reason: reason, Code: code, Err: err}
}

func unavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Reason: reasonBackendUnavailable, Code: CodeBackendUnavailable, Err: err}
}

// Sentinels the key lookup returns, so classify can tell a wrong kid or a
// key-type mismatch from a plain bad signature.
var (
	errUnknownKey  = errors.New("no key for this token")
	errKeyMismatch = errors.New("key type does not match the token's algorithm")
)

// classify maps a jwt parse error to an *Error. Signature-level problems
// come first (claims are only validated after the signature); among claim
// failures, the ones a fresh token from the same issuer would not fix (iss,
// aud, missing exp) win over expiry, so a client told "token_expired" can
// actually recover by fetching a new token.
func classify(err error) *Error {
	switch {
	case errors.Is(err, errUnknownKey):
		return unauthorized(CodeUnknownKey, "unknown signing key", err)
	case errors.Is(err, errKeyMismatch):
		return unauthorized(CodeAlgorithmInvalid, "signing algorithm not allowed", err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized(CodeTokenMalformed, "malformed token", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized(CodeSignatureInvalid, "invalid token signature", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthorized(CodeIssuerInvalid, "invalid token issuer", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthorized(CodeAudienceInvalid, "invalid token audience", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return unauthorized(CodeExpMissing, "token has no expiry", err)
	case errors.Is(err, errSubMissing):
		return unauthorized(CodeSubMissing, "token has no subject", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized(CodeTokenExpired, "token expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthorized(CodeTokenNotValidYet, "token not valid yet", err)
	default:
		return unauthorized(CodeTokenInvalid, "invalid token", err)
	}
}
