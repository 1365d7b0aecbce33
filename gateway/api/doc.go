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
//	publish         {"channel","data"|"b64data","idempotency_key"?}  → {"offset","epoch"}
//	broadcast       {"channels","data"|"b64data","idempotency_key"?} → {"results":[{"channel","offset","epoch"}|{"channel","error"}]}
//	disconnect      {"user"|"client","code"?,"reason"?}               → {"disconnected"}
//	unsubscribe     {"user"|"client","channel"}                       → {"unsubscribed"}
//	presence        {"channel"}                                       → {"clients":[{"client","user"}]}
//	presence_stats  {"channel"}                                       → {"clients","users"}
//	history         {"channel","since"?,"limit"?,"reverse"?}          → {"publications":[{"offset","data"|"b64data"}],"offset","epoch"}
//	channels        {"pattern"?}                                      → {"channels"}
//	info            {}                                                → whatever the Backend reports
//
// # Data
//
// "data" is any JSON value and is published as its exact JSON text, as a
// JSON client's publish is (codec/README.md §3); "b64data" is standard
// base64 and is published as the decoded bytes, for binary payloads. In
// responses a payload that is JSON text in valid UTF-8 is embedded as
// "data", anything else is "b64data" — so a binary payload that happens to
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
//	409  idempotency_key reused for different data on the same channel
//	413  body over 1 MiB
//	500  the Backend failed
//	503  the Backend is unavailable (ErrUnavailable) or timed out; retry
//
// # Idempotency
//
// A publish or broadcast with an "idempotency_key" reaches each of its
// channels at most once per key: the first successful result is kept for
// 5 minutes and returned to every repeat (with the header
// "Idempotent-Replayed: true" on publish), including repeats that arrive
// while the first is still in flight: they wait for it.
//
// The key is scoped by channel, so a broadcast retried after a partial
// failure publishes only to the channels that failed, and a publish with
// key K to channel C returns what an earlier broadcast with K did for C.
// Other data under a used key is refused (409; in a broadcast, that
// channel's error): it is almost certainly a key-generation bug.
//
// A failed publish is not remembered, so it can be retried with the same
// key. If it failed after the broker had accepted it (a timeout), that
// retry may deliver it twice: "at most once" holds from the first success.
//
// The memory is per gateway instance and bounded (100,000 keys, oldest
// evicted first; in-flight keys are never evicted). Behind a load
// balancer, repeats must reach the same instance, or the publish may
// happen once per instance. A cluster-wide version would claim the key in
// Redis next to the channel's offset (SET key NX PX 300000 inside
// wsgate_publish, returning the stored offset and epoch on a repeat); it
// is not implemented.
package api
