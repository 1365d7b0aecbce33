package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/codec"
)

var (
	// ErrClosed: the Client was closed with Close.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected: the connection was lost before the command's reply
	// came. For a publish without an idempotency key it means the outcome
	// is unknown (see Client.Publish).
	ErrDisconnected = errors.New("client: connection lost before the reply")
	// ErrAlreadySubscribed: Subscribe to a channel this Client already
	// has a subscription for.
	ErrAlreadySubscribed = errors.New("client: already subscribed to this channel")
	// ErrTokenSource wraps an error of Options.TokenSource; it stops the
	// client (a reconnect loop cannot fix it).
	ErrTokenSource = errors.New("client: token source failed")
	// ErrProtocol: the server sent something that is not the protocol
	// (an undecodable frame, the wrong message type or subprotocol).
	ErrProtocol = errors.New("client: protocol violation by the server")
	// ErrServerUnsubscribed: the server ended a subscription (a backend
	// called the server API's unsubscribe); Unsubscribed carries it. The
	// client does not subscribe again by itself.
	ErrServerUnsubscribed = errors.New("client: the server ended the subscription")
	// ErrQueueFull: events waited for handlers beyond Options.QueueSize;
	// the connection was dropped to be resumed when they catch up.
	ErrQueueFull = errors.New("client: handlers fell behind (event queue full)")
)

// ServerError is an error reply to a command (codec/README.md §6).
type ServerError struct {
	Code    codec.ErrorCode
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("wsgate error %d: %s", e.Code, e.Message)
}

// Retryable reports whether the protocol says the command may be sent
// again: 107 (rate limited), 111 (internal, nothing done) and 113 (outcome
// unknown: only with the first attempt's idempotency key).
func (e *ServerError) Retryable() bool {
	switch e.Code {
	case codec.CodeRateLimited, codec.CodeInternal, codec.CodeOutcomeUnknown:
		return true
	}
	return false
}

// CloseError is a close frame from the server: State.Err of a
// disconnection, and Err of a client the server told not to come back
// (4500–4999, or a protocol error 1002/1003/1007/1009).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("closed by the server with %d %q", e.Code, e.Reason)
}

// HandshakeError is an HTTP refusal of the WebSocket upgrade. 401 and 403
// (and other 4xx but 408 and 429) stop the client; 429 and 503 are retried
// no sooner than RetryAfter.
type HandshakeError struct {
	StatusCode int
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
	Err        error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("handshake refused with HTTP %d: %v", e.StatusCode, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }
