// Package netpoll is wsgate's event loop: a few epoll instances watching raw,
// non-blocking socket fds, a bounded pool of workers that receive readiness,
// and a timing wheel for per-connection deadlines.
//
// It knows nothing about WebSocket. A user registers an fd together with a
// Handler; the Handler is called on a worker goroutine whenever the fd is
// readable, writable, hung up, its timer expired or somebody called Notify.
//
// Dispatch is serialized per descriptor: fds are registered level-triggered
// and one-shot, and a small atomic state machine guarantees that at most one
// worker runs a descriptor's Handler at a time. The Handler re-arms the fd
// (Desc.Rearm) when it is done; level triggering then re-reports whatever
// readiness is still pending, so no event is ever lost between the two.
//
// Only easygo's low-level Epoll API (EpollCreate/Add/Mod/Del) is used, on the
// socket's own fd: never File() and never netpoll.Handle*, which dup the fd
// and switch it to blocking mode.
package netpoll
