// Package client is the Go client of wsgate: a connection that stays
// connected and a subscription that misses nothing without saying so.
//
// Dial connects once; from then on the Client reconnects by itself with
// exponential backoff and full jitter (Options.Backoff), following the
// close codes of codec/README.md §8: 1000, 1001 and 4000–4499 reconnect
// (4008 and 4029 after a longer wait), 4500–4999 and 1002/1003/1007/1009
// stop the client, as do a refused handshake (401, 403) and a failing
// token source; 429 and 503 are retried after their Retry-After.
// OnState observes every change (connecting, connected, disconnected with
// the close code and the next delay, closed).
//
// Subscribe keeps each channel's position — its epoch and the last offset
// delivered — and after every reconnect subscribes again from there, so the
// gateway replays what was missed. The handler gets every publication
// exactly once and in offset order (what a replay repeats is dropped), and
// an explicit event whenever that is not possible: Subscribed with Lost()
// (the resume could not be served), Gap (publications the gateway lost)
// and EpochChanged (the channel's history was reset). Those are the
// moments to reload the channel's state from the application's backend.
// A subscription the server ends (the server API's unsubscribe) gets an
// Unsubscribed event and is not renewed.
//
// Handlers run on one goroutine per Client, in order, never concurrently;
// they must not block for long. A handler that falls behind by
// Options.QueueSize events costs a reconnect (the client drops the
// connection and resumes once the handler has caught up), never unbounded
// memory and never a publication.
//
// Publish waits for a connection while the client reconnects, and retries
// what the protocol says is safe: 107 and 111 always; a lost reply and 113
// only with an idempotency key (WithIdempotencyKey, NewIdempotencyKey),
// which makes the retry publish at most once. History, Presence and
// PresenceStats are retried like reads.
//
// The wire format is codec's: MessagePack by default, JSON with
// Options{Encoding: codec.JSON}. Frames from the server are decoded with
// codec.DecodeServerFrame, which is bounded and never trusts a length.
package client
