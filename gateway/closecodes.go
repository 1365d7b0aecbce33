package gateway

// Close codes wsgate sends besides the RFC ones (gateway/wsframe has
// those). Every wsgate close code is here, once; README.md's "Close codes"
// table says what a client should do: 4000–4499 reconnect with backoff and
// resume, 4500–4999 do not reconnect as is.
const (
	// CloseDisconnected: the server API disconnected the connection
	// without naming a code of its own.
	CloseDisconnected uint16 = 4000
	// CloseTokenExpired: the token expired and no refresh came within
	// RefreshGrace.
	CloseTokenExpired uint16 = 4004
	// CloseSlowConsumer: the connection's backlog passed MaxQueueBytes.
	CloseSlowConsumer uint16 = 4008
	// CloseMessageTimeout: a message (or frame header) did not arrive in
	// full within MessageTimeout of its first byte.
	CloseMessageTimeout uint16 = 4009
	// CloseServerBusy: the server-wide budget for partial input
	// (MaxPartialBytes) is spent; reconnect with backoff.
	CloseServerBusy uint16 = 4013
	// CloseRateLimited: the connection kept exceeding its command rate for
	// a whole burst of refusals.
	CloseRateLimited uint16 = 4029
)
