package codec

// Encoding selects the client protocol's serialization. A connection uses
// one encoding for its whole life, chosen by subprotocol negotiation.
type Encoding uint8

// The two encodings of the client protocol.
const (
	// Msgpack: MessagePack in binary frames (the default).
	Msgpack Encoding = iota
	// JSON: the same structures as JSON in text frames.
	JSON
)

// Subprotocol names (Sec-WebSocket-Protocol).
const (
	SubprotocolMsgpack = "wsgate.v1.msgpack"
	SubprotocolJSON    = "wsgate.v1.json"
)

// Subprotocol returns the encoding's Sec-WebSocket-Protocol name.
func (e Encoding) Subprotocol() string {
	if e == JSON {
		return SubprotocolJSON
	}
	return SubprotocolMsgpack
}

// String returns "msgpack" or "json".
func (e Encoding) String() string {
	if e == JSON {
		return "json"
	}
	return "msgpack"
}

// EncodingFor maps a negotiated subprotocol to its encoding. The empty name
// (the client offered none) means the default, Msgpack. ok is false for a
// name that is not a wsgate subprotocol.
func EncodingFor(subprotocol string) (e Encoding, ok bool) {
	switch subprotocol {
	case "", SubprotocolMsgpack:
		return Msgpack, true
	case SubprotocolJSON:
		return JSON, true
	}
	return Msgpack, false
}

// CommandType enumerates the client commands. The zero value is not a
// command.
type CommandType uint8

// Client commands.
const (
	CmdSubscribe CommandType = iota + 1
	CmdUnsubscribe
	CmdPublish
	CmdPing
	CmdHistory
	CmdPresence
	CmdPresenceStats
	CmdRefresh
)

// String returns the command's wire name ("subscribe", ...), or "" for a
// value that is not a command.
func (t CommandType) String() string {
	switch t {
	case CmdSubscribe:
		return "subscribe"
	case CmdUnsubscribe:
		return "unsubscribe"
	case CmdPublish:
		return "publish"
	case CmdPing:
		return "ping"
	case CmdHistory:
		return "history"
	case CmdPresence:
		return "presence"
	case CmdPresenceStats:
		return "presence_stats"
	case CmdRefresh:
		return "refresh"
	}
	return ""
}

// ParseCommandType maps a wire name to its CommandType (case-sensitive).
func ParseCommandType(name []byte) (CommandType, bool) {
	// switch on string(name) does not allocate.
	switch string(name) {
	case "subscribe":
		return CmdSubscribe, true
	case "unsubscribe":
		return CmdUnsubscribe, true
	case "publish":
		return CmdPublish, true
	case "ping":
		return CmdPing, true
	case "history":
		return CmdHistory, true
	case "presence":
		return CmdPresence, true
	case "presence_stats":
		return CmdPresenceStats, true
	case "refresh":
		return CmdRefresh, true
	}
	return 0, false
}

// needsChannel reports whether the command operates on a channel.
func (t CommandType) needsChannel() bool {
	switch t {
	case CmdSubscribe, CmdUnsubscribe, CmdPublish, CmdHistory, CmdPresence, CmdPresenceStats:
		return true
	}
	return false
}
