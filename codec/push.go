package codec

// Push types (the "type" field of server → client frames).
const (
	TypeReply   = "reply"
	TypeMessage = "message"
	TypeRefresh = "refresh" // the server asks for a new token (refresh command)
	TypeGap     = "gap"     // publications from..to of a channel are lost for this client
	TypeJoin    = "join"
	TypeLeave   = "leave"
	TypeEpoch   = "epoch" // the channel's history was lost: a new epoch starts
	// TypeUnsubscribe: the server ended the connection's subscription (the
	// server API's unsubscribe).
	TypeUnsubscribe = "unsubscribe"
)

// AppendMessage appends the push for one publication:
//
//	{"type":"message","channel":channel,"offset":offset,"epoch":epoch,"data":data}
//
// "epoch" is left out when empty (a channel without history).
// In MessagePack data is bin. In JSON data is embedded raw when it is JSON
// text in valid UTF-8, else sent as "b64" (standard base64) instead of
// "data". The gateway builds this once per publication and encoding and
// shares the bytes with every subscriber; it allocates nothing when dst
// has room.
func AppendMessage(dst []byte, enc Encoding, channel string, offset uint64, epoch string, data []byte) []byte {
	if enc == JSON {
		dst = append(dst, `{"type":"message","channel":`...)
		dst = jsonAppendStr(dst, channel)
		dst = append(dst, `,"offset":`...)
		dst = jsonAppendUint(dst, offset)
		if epoch != "" {
			dst = append(dst, `,"epoch":`...)
			dst = jsonAppendStr(dst, epoch)
		}
		dst = append(dst, ',')
		dst = jsonAppendData(dst, data)
		return append(dst, '}')
	}
	if epoch == "" {
		dst = append(dst, 0x84)
	} else {
		dst = append(dst, 0x85)
	}
	dst = append(dst, 0xa4, 't', 'y', 'p', 'e', 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e')
	dst = append(dst, 0xa7, 'c', 'h', 'a', 'n', 'n', 'e', 'l')
	dst = mpAppendStr(dst, channel)
	dst = append(dst, 0xa6, 'o', 'f', 'f', 's', 'e', 't')
	dst = mpAppendUint(dst, offset)
	if epoch != "" {
		dst = append(dst, 0xa5, 'e', 'p', 'o', 'c', 'h')
		dst = mpAppendStr(dst, epoch)
	}
	dst = append(dst, 0xa4, 'd', 'a', 't', 'a')
	return mpAppendBin(dst, data)
}

// AppendJoin appends {"type":"join","channel":c,"client":client,"user":user}:
// a client joined the channel's presence.
func AppendJoin(dst []byte, enc Encoding, channel, client, user string) []byte {
	return appendPresenceEvent(dst, enc, TypeJoin, channel, client, user)
}

// AppendLeave appends {"type":"leave",...}, the counterpart of AppendJoin.
func AppendLeave(dst []byte, enc Encoding, channel, client, user string) []byte {
	return appendPresenceEvent(dst, enc, TypeLeave, channel, client, user)
}

func appendPresenceEvent(dst []byte, enc Encoding, typ, channel, client, user string) []byte {
	w := newObj(dst, enc, 4)
	w.str("type", typ)
	w.str("channel", channel)
	w.str("client", client)
	w.str("user", user)
	return w.end()
}

// AppendRefresh appends {"type":"refresh"}: the connection's token expired;
// the client should send a refresh command with a new token before the
// server's grace period ends (then it is closed with 4004).
func AppendRefresh(dst []byte, enc Encoding) []byte {
	w := newObj(dst, enc, 1)
	w.str("type", TypeRefresh)
	return w.end()
}

// AppendGap appends {"type":"gap","channel":c,"from":f,"to":t}: the
// publications with offsets f..t of the channel were lost on the way to
// this gateway and its history no longer has them; the client should
// reload the channel's state (or resubscribe with its position, which will
// answer recovered:false).
func AppendGap(dst []byte, enc Encoding, channel string, from, to uint64) []byte {
	w := newObj(dst, enc, 4)
	w.str("type", TypeGap)
	w.str("channel", channel)
	w.uint("from", from)
	w.uint("to", to)
	return w.end()
}

// AppendEpoch appends
// {"type":"epoch","channel":c,"epoch":e,"previous":p,"offset":o}: the
// channel's history was lost and its epoch changed from previous to epoch;
// publications of the previous epoch after offset (the last one sent to
// this client) may never arrive. Messages of the new epoch follow.
func AppendEpoch(dst []byte, enc Encoding, channel, epoch, previous string, offset uint64) []byte {
	w := newObj(dst, enc, 5)
	w.str("type", TypeEpoch)
	w.str("channel", channel)
	w.str("epoch", epoch)
	w.str("previous", previous)
	w.uint("offset", offset)
	return w.end()
}

// AppendUnsubscribe appends {"type":"unsubscribe","channel":c}: the server
// ended this connection's subscription to the channel (the server API's
// unsubscribe); nothing more of it arrives unless the client subscribes
// again.
func AppendUnsubscribe(dst []byte, enc Encoding, channel string) []byte {
	w := newObj(dst, enc, 2)
	w.str("type", TypeUnsubscribe)
	w.str("channel", channel)
	return w.end()
}
