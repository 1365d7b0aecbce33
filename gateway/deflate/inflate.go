package deflate

import (
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// ErrTooBig: the message inflates past the limit. Its close code is 1009.
var ErrTooBig = &wsframe.Error{Code: wsframe.CloseTooBig, Reason: "inflated message too big"}

// readTail is appended to every compressed message before inflating: the
// sync-flush tail the sender removed (RFC 7692 §7.2.2), then an empty
// final stored block, so the decompressor ends with io.EOF at the end of
// the message instead of waiting for a block that never comes.
var readTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// minGrow is the first output capacity Inflate allocates when dst has none.
const minGrow = 512

// source reads a message and then readTail without copying either. It is
// an io.ByteReader, so flate reads it directly instead of wrapping it in a
// bufio.Reader (an allocation per message).
type source struct {
	parts [2][]byte
}

func (s *source) Read(p []byte) (int, error) {
	for len(s.parts[0]) == 0 {
		if len(s.parts[1]) == 0 {
			return 0, io.EOF
		}
		s.parts[0], s.parts[1] = s.parts[1], nil
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	return n, nil
}

func (s *source) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := s.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// inflater is a pooled decompressor. It is used only while one message is
// inflated, so a connection at rest holds none.
type inflater struct {
	src source
	fr  io.ReadCloser
}

var inflaters = sync.Pool{New: func() any {
	in := &inflater{}
	in.fr = flate.NewReader(&in.src)
	return in
}}

// Inflate appends the decompressed form of a compressed message (as
// received: without the sync tail) to dst. It stops as soon as the output
// passes limit bytes and returns ErrTooBig, so a decompression bomb costs
// at most limit+1 bytes of output (plus the decompressor's pooled 32 KiB
// window), never its inflated size. Invalid DEFLATE data is a
// *wsframe.Error with code 1007.
func Inflate(dst, compressed []byte, limit int) ([]byte, error) {
	in := inflaters.Get().(*inflater)
	defer inflaters.Put(in)
	in.src.parts = [2][]byte{compressed, readTail}
	if err := in.fr.(flate.Resetter).Reset(&in.src, nil); err != nil {
		return dst, invalid(err)
	}
	base := len(dst)
	for {
		if len(dst) == cap(dst) {
			if len(dst)-base > limit {
				return dst, ErrTooBig
			}
			dst = grow(dst, base+limit+1)
		}
		n, err := in.fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-base > limit {
			return dst, ErrTooBig
		}
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, invalid(err)
		}
	}
}

// grow enlarges dst's capacity (doubling) without going past most, the
// output size that already proves the message too big.
func grow(dst []byte, most int) []byte {
	c := min(max(2*cap(dst), minGrow), most)
	out := make([]byte, len(dst), c)
	copy(out, dst)
	return out
}

func invalid(err error) error {
	return fmt.Errorf("%w: %w", &wsframe.Error{Code: wsframe.CloseInvalidPayload, Reason: "invalid compressed data"}, err)
}
