package codec

import (
	"errors"
	"strconv"
)

// ErrorCode is the code of an error reply ({"error":{"code":C,...}}).
// Codes are part of the protocol: never renumber one.
type ErrorCode uint32

// Error codes sent in error replies.
const (
	CodeBadRequest        ErrorCode = 100 // malformed command or a field of the wrong type
	CodeUnknownCommand    ErrorCode = 101 // "cmd" is not a command this server knows
	CodeBadChannel        ErrorCode = 102 // channel name outside the grammar or too long
	CodeTooManyChannels   ErrorCode = 103 // the connection's channel limit is reached
	CodeAlreadySubscribed ErrorCode = 104 // subscribe to a channel already subscribed
	CodeNotSubscribed     ErrorCode = 105 // unsubscribe from a channel not subscribed
	CodePayloadTooLarge   ErrorCode = 106 // publish data over the server's limit
	CodeRateLimited       ErrorCode = 107 // too many commands; slow down
	CodePermission        ErrorCode = 108 // permission denied for this channel or command
	CodeUnauthorized      ErrorCode = 109 // a refresh token that is not valid
	CodeNotAvailable      ErrorCode = 110 // feature off on this server (e.g. history disabled)
	CodeInternal          ErrorCode = 111 // server-side failure before anything was done; retry as is
	CodeUnrecoverable     ErrorCode = 112 // resume position too old or from another epoch
	// CodeOutcomeUnknown: a publish's result was lost (broker timeout,
	// broker connection lost mid-call, shutdown): it may have been
	// published. Retry with the same idempotency_key.
	CodeOutcomeUnknown ErrorCode = 113
	CodeKeyReused      ErrorCode = 114 // idempotency_key already published other data here
)

// String returns the code's short default message, used when an error
// reply carries no message of its own.
func (c ErrorCode) String() string {
	switch c {
	case CodeBadRequest:
		return "bad request"
	case CodeUnknownCommand:
		return "unknown command"
	case CodeBadChannel:
		return "bad channel name"
	case CodeTooManyChannels:
		return "too many channels"
	case CodeAlreadySubscribed:
		return "already subscribed"
	case CodeNotSubscribed:
		return "not subscribed"
	case CodePayloadTooLarge:
		return "payload too large"
	case CodeRateLimited:
		return "rate limited"
	case CodePermission:
		return "permission denied"
	case CodeUnauthorized:
		return "unauthorized"
	case CodeNotAvailable:
		return "not available"
	case CodeInternal:
		return "internal error"
	case CodeUnrecoverable:
		return "unrecoverable position"
	case CodeOutcomeUnknown:
		return "outcome unknown: it may have been published; retry with the same idempotency_key"
	case CodeKeyReused:
		return "idempotency key reused"
	}
	return "error " + strconv.FormatUint(uint64(c), 10)
}

// Sentinel errors. Decoders wrap them (test with errors.Is); the wrapping
// adds the field name or the offending type.
var (
	// Structural: the input is not a well-formed value.
	ErrTruncated   = errors.New("unexpected end of input")
	ErrLength      = errors.New("declared length exceeds the remaining input")
	ErrInvalid     = errors.New("invalid encoding")
	ErrTrailing    = errors.New("trailing bytes after the value")
	ErrNotMap      = errors.New("top-level value is not a map/object")
	ErrKeyType     = errors.New("map key is not a string")
	ErrTooManyKeys = errors.New("too many keys")
	ErrTooDeep     = errors.New("nesting too deep")

	// Field level: the structure is sound but a value is not acceptable.
	ErrType           = errors.New("wrong type")
	ErrRange          = errors.New("integer out of range")
	ErrMissing        = errors.New("required field missing")
	ErrUnknownCommand = errors.New("unknown command")
	ErrKind           = errors.New("unknown envelope kind")
	ErrBadChannel     = errors.New("bad channel name")
	ErrTooLarge       = errors.New("payload too large")
	ErrVersion        = errors.New("unsupported envelope version")
)

// DecodeError is the error DecodeCommand returns. It tells the gateway
// which of the two outcomes a bad frame has:
//
//   - IDKnown == true: the frame was a well-formed map/object and its "id"
//     was valid (absent counts as 0), but the command is not acceptable.
//     The gateway answers with an error reply {id: ID, error: {Code, ...}}
//     and keeps the connection. An error is always replied to, even when
//     ID is 0.
//   - IDKnown == false: the frame is undecodable (truncated, not a map, bad
//     lengths, too deep, too many keys, invalid JSON) or its "id" is not an
//     unsigned 32-bit integer. No reply can be correlated: the gateway
//     closes the connection with 1007 (invalid payload). ID may still hold
//     an id read before the damage, for logging only.
//
// Err is one of the sentinel errors above, possibly wrapped with detail.
type DecodeError struct {
	Code    ErrorCode // the error reply's code (CodeBadRequest when !IDKnown)
	ID      uint32
	IDKnown bool
	Field   string // the key involved, "" when none
	Err     error
}

func (e *DecodeError) Error() string {
	msg := "codec: "
	if e.Field != "" {
		msg += "field " + strconv.Quote(e.Field) + ": "
	}
	return msg + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Message is the text an error reply should carry: short, safe to show to
// the client, without echoing its bytes back.
func (e *DecodeError) Message() string {
	if e.Field != "" {
		return e.Field + ": " + e.Err.Error()
	}
	return e.Err.Error()
}
