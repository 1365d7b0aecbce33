package codec

// Defaults for the limits a gateway applies; its configuration may change
// them.
const (
	// DefaultMaxChannelBytes bounds a channel name's length in bytes.
	DefaultMaxChannelBytes = 128
	// DefaultMaxChannels bounds the channels one connection may subscribe
	// to (enforced by the gateway, documented here with the protocol).
	DefaultMaxChannels = 128
)

// ValidChannel reports whether name is a channel name: 1 to maxLen bytes
// (maxLen <= 0 means DefaultMaxChannelBytes), each one of
//
//	A-Z a-z 0-9 _ : # , . @ = + - /
//
// The set is ASCII only and has no whitespace, quotes, backslash or
// control characters, so a name never needs escaping in JSON, logs, Redis
// keys or metrics labels, and there are no look-alike names differing only
// by Unicode normalization or surrounding spaces.
//
// Conventions (meaning given by the gateway's configuration, not checked
// here): ':' separates a namespace ("chat:room1" is channel "room1" in
// namespace "chat"), '#' marks a user channel ("user#42" may only be
// subscribed by user 42), ',' lists users after '#' ("dialog#42,43").
// Characters outside the set ('$', '!', '*', ...) are reserved: the
// gateway may use them for internal channels, which clients can then
// never name.
func ValidChannel(name []byte, maxLen int) bool {
	if maxLen <= 0 {
		maxLen = DefaultMaxChannelBytes
	}
	if len(name) == 0 || len(name) > maxLen {
		return false
	}
	for _, c := range name {
		if !channelByte(c) {
			return false
		}
	}
	return true
}

func channelByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', ':', '#', ',', '.', '@', '=', '+', '-', '/':
		return true
	}
	return false
}
