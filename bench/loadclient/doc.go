// Package loadclient is wsgate's event-driven WebSocket load client: it
// holds tens of thousands of client connections in one process with a
// handful of goroutines, so a benchmark measures the server and not the
// client, and tests stay far below the race detector's goroutine limit.
//
// Each connection is a raw non-blocking IPv4 socket (no net.Conn), bound to
// one of several 127.0.0.x source addresses with IP_BIND_ADDRESS_NO_PORT so
// that ~19k connections to one server port never exhaust ephemeral ports.
// It goes through connect → HTTP upgrade → WebSocket entirely in
// netpoll.Handler callbacks.
//
// Why wsgate's own netpoll fits a client: Register arms for reading, and
// ArmIfIdle(true) right after it adds the write interest that a
// non-blocking connect needs; Rearm(true) keeps it while the connect or a
// write is pending. The timing wheel bounds handshakes and close lingers
// without a timer per connection, and Notify lets any goroutine hand a
// queued frame to the connection's worker, which coalesces everything
// queued since into one writev. Dispatch is serialized per descriptor, so
// the read side needs no lock at all.
package loadclient
