// Package auth authenticates WebSocket clients at the handshake.
//
// Two mechanisms, which a gateway may combine:
//
//   - JWT (Authenticate, Verify): the token comes from "Authorization: Bearer",
//     then the query parameter (default "token", since browsers cannot set
//     headers on a WebSocket), then a cookie. Verification is pure CPU, so it
//     may run on an event-loop worker.
//   - Connect hook (CallHook): for session-cookie applications the gateway
//     asks a backend over HTTP. That is blocking I/O: run it on a bounded pool
//     of goroutines, never on an event-loop worker.
//
// # JWT rules
//
// Only the algorithms the configured keys imply are accepted: HS256 when
// Config.HMACSecret is set, RS256 for RSA keys and ES256 for P-256 keys
// (PublicKeyPEM or JWKS). "alg: none" is never accepted, and each algorithm
// is verified only with a key of its own type, so an HS256 token "signed"
// with the RSA public key bytes fails (algorithm confusion). With a JWKS file
// the key is chosen by the token's "kid"; a token without "kid" falls back to
// PublicKeyPEM. "exp" is required; "nbf" and "iat" are honoured (with
// Config.Leeway); "iss" and "aud" are checked when configured; "sub" is the
// user id and is required. The optional "channels" claim (array of strings)
// lands in Identity.Channels. A token carrying a "channel" claim is a
// subscription token and is refused as a connection token, so a token minted
// for one channel cannot be replayed to open a connection.
//
// # Errors
//
// Every failure is an *Error with an HTTP status and a stable code:
//
//	401 token_missing            no token and anonymous access is off
//	401 token_malformed          not a JWT, bad base64/JSON, wrong claim types, too long
//	401 token_algorithm_invalid  alg none, or an algorithm no configured key allows
//	401 token_unknown_key        kid not in the JWKS (or no key for a kid-less token)
//	401 token_signature_invalid  signature does not verify
//	401 token_issuer_invalid     iss differs from Config.Issuer
//	401 token_audience_invalid   aud does not contain Config.Audience
//	401 token_exp_missing        no exp claim
//	401 token_sub_missing        no sub claim
//	401 token_expired            exp passed (the client should fetch a new token)
//	401 token_not_valid_yet      nbf or iat in the future
//	401 token_wrong_type         a subscription token used to connect
//	403 subscription_channel_mismatch, subscription_user_mismatch
//	401 hook_unauthorized, 403 hook_forbidden   the connect hook said so
//	503 auth_unavailable         the connect hook failed (see below)
//
// A presented but invalid token is refused even when AllowAnonymous is set:
// silently downgrading would leave a client believing it is signed in.
//
// # Connect hook protocol
//
// CallHook POSTs application/json to Config.HookURL:
//
//	{"uri": "/ws?room=1", "headers": {"Cookie": "sid=…", "Origin": "https://app", …}}
//
// Only an allow-list of request headers is forwarded (see ForwardedHeaders):
// Cookie and Authorization carry the credentials, the rest (Origin,
// User-Agent, X-Forwarded-For, X-Real-Ip, Forwarded, X-Forwarded-Proto,
// X-Forwarded-Host, Accept-Language) help the backend apply its own policy.
// Repeated headers are joined with ", " ("; " for Cookie).
//
// The gateway calls the hook only when Token finds no token; a handshake
// with "Authorization: Bearer", the query parameter or the token cookie
// goes to Authenticate instead (and gets 401 if it is not a JWT the keys
// verify, also with no key configured). So what reaches the hook is
// Authorization with another scheme (Basic, a custom one) and cookies
// without a token cookie: an opaque session token must not be sent as a
// Bearer token or in the query parameter.
//
// The backend answers:
//
//	200 {"user": "42", "channels": ["a", "b"], "expires_at": 1735689600}
//	    channels and expires_at (unix seconds) are optional; "user": "" means
//	    anonymous and is allowed only with AllowAnonymous (else 401)
//	401 / 403   refused; the client gets the same status
//
// Anything else — a timeout (Config.HookTimeout, default 3 s), a transport
// error, a 5xx, any other status, a redirect, or a body that is not the JSON
// above — is 503 auth_unavailable: the backend, not the client, is at fault,
// and a 503 tells the client to retry later rather than to re-authenticate.
package auth
