// Package api is the server API: an HTTP handler through which backends
// publish to channels and manage connections. The gateway serves it on a
// listener of its own (--api-listen), never on the client port.
//
// # Requests
//
// Every method is POST /api/<method> with a JSON object body (at most
// 1 MiB; an empty body is {}), authenticated by "Authorization: apikey
// <key>". Unknown fields are ignored, so backends may send fields a newer
// gateway understands. null is the same as an absent field, except for
// publish "data", where null is the JSON value null.
//
//	publish         {"channel","data"|"b64","idempotency_key"?}  → {"offset","epoch"}
//	broadcast       {"channels","data"|"b64","idempotency_key"?} → {"results":[{"channel","offset","epoch"}|{"channel","error"}]}
//	disconnect      {"user"|"client","code"?,"reason"?}               → {"disconnected"}
//	unsubscribe     {"user"|"client","channel"}                       → {"unsubscribed"}
//	presence        {"channel"}                                       → {"clients":[{"client","user"}]}
//	presence_stats  {"channel"}                                       → {"clients","users"}
//	history         {"channel","since"?,"limit"?,"reverse"?}          → {"publications":[{"offset","data"|"b64"}],"offset","epoch"}
//	channels        {"pattern"?}                                      → {"channels"}
//	info            {}                                                → whatever the Backend reports
//
// # Data
//
// "data" is any JSON value and is published as its exact JSON text, as a
// JSON client's publish is (codec/README.md §3); "b64" is standard
// base64 and is published as the decoded bytes, for binary payloads. In
// responses a payload that is JSON text in valid UTF-8 is embedded as
// "data", anything else is "b64" — so a binary payload that happens to
// be JSON text comes back as "data".
//
// # Errors
//
// Every error is {"error":"<reason>"}; the reason is for humans and may
// change, the status is for programs:
//
//	400  malformed JSON, wrong type, missing or invalid field, bad channel
//	     name, or the Backend refused the request (ErrInvalid)
//	401  missing or wrong API key
//	404  no such method
//	405  not POST
//	408  the body did not arrive before the server's read timeout
//	409  idempotency_key reused for different data on the same channel (ErrKeyReused)
//	413  body over 1 MiB
//	500  the Backend failed
//	503  the Backend is unavailable (ErrUnavailable), the outcome is unknown
//	     (ErrOutcomeUnknown) or it timed out; Retry-After, retry
//
// # Idempotency
//
// A publish or broadcast with an "idempotency_key" reaches each of its
// channels at most once per key: the Backend claims the key in the same
// atomic step that publishes (with Redis, inside wsgate_publish), so a
// repeat through any gateway instance — or a WebSocket client's publish or
// a backend's FCALL with the same key — returns the first result (with the
// header "Idempotent-Replayed: true" on publish) and publishes nothing.
//
// The key is scoped by channel, so a broadcast retried after a partial
// failure publishes only to the channels that failed. Other data under a
// used key is refused (409; in a broadcast, that channel's error).
//
// # Outcomes
//
// A failed publish says whether it was published: {"error", "outcome":
// "not_published"} (safe to retry) or "unknown" (the broker's answer was
// lost: retry with the same idempotency_key).
//
// # Logging
//
// Backend failures (5xx) are logged once per outage (see failureLog), not
// once per request. An outage ends when a call that needs the broker or
// presence store succeeds: publish, disconnect, unsubscribe, presence,
// presence_stats, history, or a broadcast that published to some channel
// and failed on none. info and channels answer without them, so their
// successes end nothing.
package api
