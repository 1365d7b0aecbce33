// Package netpoll is wsgate's event loop: a few epoll instances watching raw,
// non-blocking socket fds, a bounded pool of workers that receive readiness,
// and a timing wheel for per-connection deadlines.
//
// It knows nothing about WebSocket. A user registers an fd together with a
// Handler; the Handler is called on a worker goroutine whenever the fd is
// readable, writable, hung up, its timer expired or somebody called Notify.
//
// Dispatch is serialized per descriptor: a small atomic state machine
// guarantees that at most one worker runs a descriptor's Handler at a time,
// and events that arrive meanwhile are gathered and dispatched next. Fds
// are registered in one of two ways. Register: level-triggered and
// one-shot; the Handler re-arms the fd (Desc.Rearm) when it is done, and
// level triggering re-reports whatever readiness is still pending.
// RegisterEdge, for connections: edge-triggered for reading and writing,
// registered once and never re-armed (no epoll_ctl per event), in exchange
// for a Handler that reads until the socket is drained or asks for another
// dispatch. Either way no event is lost between dispatches.
//
// The epoll instances are wsgate's own (epoll.go), on the socket's own fd:
// never File(), which dups the fd and switches it to blocking mode. Each
// instance's goroutine waits in Go's runtime poller, not in a blocking
// epoll_wait, and socket I/O uses raw system calls (io.go): a thread
// blocked in a system call, and every call's sysmon wake-up, cost a lightly
// loaded gateway a third of its CPU in thread wake-ups (see epoll).
package netpoll
