package abuse

import (
	"testing"

	"github.com/wsgate/wsgate/codec"
)

// TestFloodReply counts what the gateway answers a flooder with.
func TestFloodReply(t *testing.T) {
	var r floodConn
	r.reply(codec.AppendReply(nil, codec.Msgpack, codec.Reply{ID: 1, Cmd: codec.CmdPublish, Offset: 3, Epoch: "e"}))
	r.reply(codec.AppendError(nil, codec.Msgpack, 1, codec.CodeRateLimited, "slow down"))
	r.reply(codec.AppendError(nil, codec.Msgpack, 1, codec.CodeBadChannel, "bad"))
	r.reply(codec.AppendMessage(nil, codec.Msgpack, "c", 1, "e", []byte("x"))) // not a reply
	r.reply([]byte{0xc1})                                                      // not MessagePack
	if r.ok != 1 || r.limited != 1 || r.other != 1 {
		t.Fatalf("%+v", r)
	}
}
