// Package gateway is the wsgate server: it accepts TCP connections on raw
// fds, upgrades them to WebSocket without a goroutine per connection, runs
// the frame engine on netpoll workers and keeps every connection's memory,
// queue and timers bounded.
//
// # Files
//
//	server.go       Server: New, Serve, accept, drain and shutdown
//	limits.go       admission: handshakes, connections, accept rate, per IP, per user
//	index.go        the connection table: by fd, by user; client ids carry their fd
//	conn.go         transport: conn, its event handler, requests, timers, heartbeat
//	conn_read.go    transport: reads, the HTTP upgrade and connect hook, the frame sink
//	conn_write.go   transport: outbound queue, flush, close state machine; the
//	                transport interface as conn implements it
//	closecodes.go   every close code wsgate sends (4000–4999)
//	session.go      client session on /ws: identity, replies, hub.Subscriber, expiry
//	session_commands.go  subscribe, unsubscribe, publish, history, presence, refresh
//	session_resume.go    subscribe with a resume position: hold live, replay, release
//	permissions.go, namespace.go  who may subscribe / publish where; namespaces
//	ratelimit.go    the per-session command token bucket
//	upgrade.go, httphead.go, static.go  handshake parsing, origin policy, demo pages
//	forwarded.go    X-Forwarded-For behind --trusted-proxies: the client's address
//	compression.go  permessage-deflate glue: the negotiated window, counted
//	                inflation, compressed replies and echoes (gateway/deflate)
//	authhook.go     token auth at the handshake; the connect hook's bounds
//	apibackend.go   the HTTP API (gateway/api) served by this server
//	metrics.go, eventlog.go  /metrics families; forced-close and refusal logs
//	config.go, listen.go, outq.go  config and defaults; the listener; queue pool
//
// Packages: hub (channel → subscribers, fan-out workers), holdback (live
// publications held while history is read: the hub's gap repair and a
// session's resume both use it), broker/memory and
// broker/redis (publish, history, pub/sub), presence, rediskeys (the Redis
// key layout broker/redis and presence share), api (HTTP API), auth
// (tokens), wsframe (frames, no I/O), deflate (permessage-deflate), client
// (the Go client library); netpoll (event loop) and codec (wire formats)
// sit beside gateway.
//
// # One publication's path
//
// From a client: netpoll wakes the connection's worker → conn.HandleEvent
// (conn.go) → onReadable reads into the worker's scratch buffer → frames
// runs the wsframe decoder → conn.OnMessage (conn_read.go) →
// session.onMessage decodes the command (session.go) → session.publish
// (session_commands.go) → broker Publish (broker/memory/memory.go, or
// broker/redis/publish.go: PUBLISH/SPUBLISH to every instance).
//
// From Redis: a pub/sub connection's hook (broker/redis/subscribe.go,
// onMessage) decodes the envelope; the memory broker calls in directly →
// hub.Deliver queues it on the channel's shard (hub/hub.go) → the shard's
// worker (hub/worker.go) takes it with the publications of its channel
// that follow it in order as one run, frames the run once per format
// (hub/frames.go; gaps are repaired in hub/gaps.go) and calls
// session.Enqueue once per subscriber per run (session.go) →
// conn.enqueue queues the shared frames (conn_write.go) → when the
// round ends the hub calls Flush once per subscriber → conn.flushLocked
// writes every queued frame in one write (netpoll/writequeue.go); what the
// socket refuses waits for EPOLLOUT, which HandleEvent flushes.
//
// # Locking
//
// Lock order — take them only in this order, never the other way:
//
//	hub shard mu  →  subState.mu  →  conn.mu  →  limits.mu, connIndex.mu
//
// A hub shard calls Enqueue (subState.mu, then conn.mu) and, for gap
// fills, does so under its own lock; so no session or connection calls
// into the hub while holding its own lock (subscribe, leave and
// finishRecovery call the hub first, then lock). conn.mu guards the
// transport's state, queue, requests and connExt; subState.mu a
// subscribed session's resume state (recovering, resumedTop). Everything
// else on a conn or session belongs to its worker: netpoll runs one
// HandleEvent per connection at a time, and only that worker reads the
// socket, runs commands or closes the fd. Other goroutines reach the
// worker with conn.runOnWorker or conn.request.
package gateway
