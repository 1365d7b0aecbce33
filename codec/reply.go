package codec

// Reply is the answer to one command:
//
//	{"type":"reply","id":N, ...command-specific fields}
//	{"type":"reply","id":N,"error":{"code":C,"message":"text"}}
//
// Cmd selects which command-specific fields are written; fields that do
// not belong to Cmd are ignored.
type Reply struct {
	ID  uint32
	Cmd CommandType

	// Code != 0 makes this an error reply: only ID, Code and Message are
	// written. An empty Message is replaced by Code.String().
	Code    ErrorCode
	Message string

	// subscribe: the channel's current top offset and epoch. publish: the
	// position given to the publication, written when Offset != 0 (0: no
	// position assigned, e.g. history off). history: Epoch is written when
	// not empty.
	Offset uint64
	Epoch  string
	// publish: the idempotency key had already published it; Offset and
	// Epoch are the first publication's.
	Replayed bool
	// subscribe with a resume position: Resumed writes "recovered" (were
	// all missed publications delivered?) and "reason" (why not, or "").
	Resumed   bool
	Recovered bool
	Reason    string

	// history: the publications, in the order they are to be shown.
	Publications []HistoryPublication

	// presence: who is subscribed.
	Clients []ClientInfo

	// presence_stats: counts (written as "clients" and "users").
	NumClients uint64
	NumUsers   uint64
}

// HistoryPublication is one element of a history reply: {offset, data}
// (JSON: data raw or "b64", as in message pushes).
type HistoryPublication struct {
	Offset uint64
	Data   []byte
}

// ClientInfo is one element of a presence reply: {client, user}.
type ClientInfo struct {
	Client string // connection id
	User   string // authenticated user id ("" for anonymous)
}

// AppendReply appends r's encoding to dst.
func AppendReply(dst []byte, enc Encoding, r Reply) []byte {
	if r.Code != 0 {
		return AppendError(dst, enc, r.ID, r.Code, r.Message)
	}
	w := newObj(dst, enc, 2+r.extraFields())
	w.str("type", TypeReply)
	w.uint("id", uint64(r.ID))
	switch r.Cmd {
	case CmdSubscribe:
		w.uint("offset", r.Offset)
		w.str("epoch", r.Epoch)
		if r.Resumed {
			w.bool("recovered", r.Recovered)
			w.str("reason", r.Reason)
		}
	case CmdPublish:
		if r.Offset != 0 {
			w.uint("offset", r.Offset)
			w.str("epoch", r.Epoch)
		}
		if r.Replayed {
			w.bool("replayed", true)
		}
	case CmdHistory:
		if r.Epoch != "" {
			w.str("epoch", r.Epoch)
		}
		writePublications(&w, r.Publications)
	case CmdPresence:
		writeClients(&w, r.Clients)
	case CmdPresenceStats:
		w.uint("clients", r.NumClients)
		w.uint("users", r.NumUsers)
	}
	return w.end()
}

// extraFields counts the command-specific fields AppendReply writes.
func (r *Reply) extraFields() int {
	switch r.Cmd {
	case CmdSubscribe:
		if r.Resumed {
			return 4
		}
		return 2
	case CmdPublish:
		n := 0
		if r.Offset != 0 {
			n = 2
		}
		if r.Replayed {
			n++
		}
		return n
	case CmdHistory:
		if r.Epoch != "" {
			return 2
		}
		return 1
	case CmdPresence:
		return 1
	case CmdPresenceStats:
		return 2
	}
	return 0
}

func writePublications(w *objWriter, pubs []HistoryPublication) {
	w.array("publications", len(pubs))
	for i, p := range pubs {
		w.elem(i)
		o := w.obj(2)
		o.uint("offset", p.Offset)
		o.data(p.Data)
		w.b = o.end()
	}
	w.endArray()
}

func writeClients(w *objWriter, clients []ClientInfo) {
	w.array("clients", len(clients))
	for i, c := range clients {
		w.elem(i)
		o := w.obj(2)
		o.str("client", c.Client)
		o.str("user", c.User)
		w.b = o.end()
	}
	w.endArray()
}

// AppendError appends an error reply:
// {"type":"reply","id":id,"error":{"code":code,"message":message}}.
// An empty message is replaced by code.String().
func AppendError(dst []byte, enc Encoding, id uint32, code ErrorCode, message string) []byte {
	if message == "" {
		message = code.String()
	}
	w := newObj(dst, enc, 3)
	w.str("type", TypeReply)
	w.uint("id", uint64(id))
	w.key("error")
	o := w.obj(2)
	o.uint("code", uint64(code))
	o.str("message", message)
	w.b = o.end()
	return w.end()
}
