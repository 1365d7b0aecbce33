// Package deflatetest is a test aid: an independent DEFLATE decoder (RFC
// 1951, written from the RFC; neither compress/flate nor zlib) that reports
// the longest back-reference distance a stream uses.
//
// That distance is what a client's LZ77 window must hold. zlib does not
// check it against the window it was given as long as the reference stays
// inside the output buffer of the current call, so inflating with a small
// window in zlib (Python's zlib.decompressobj(wbits=-9)) does not prove a
// message respects server_max_window_bits; decoding every distance does.
package deflatetest

import (
	"errors"
	"fmt"
)

// Inflate decodes a permessage-deflate message (RFC 7692 §7.2.2: the
// sync-flush tail 00 00 ff ff is added back) and returns the inflated
// bytes and the largest distance any back-reference uses (0: none).
func Inflate(msg []byte) (out []byte, maxDistance int, err error) {
	in := make([]byte, 0, len(msg)+4)
	in = append(append(in, msg...), 0x00, 0x00, 0xff, 0xff)
	d := decoder{r: bitReader{in: in}}
	for {
		final, err := d.block()
		if err != nil {
			return d.out, d.maxDist, err
		}
		// A message ends after the flush's empty stored block: nothing but
		// padding is left.
		if final || d.r.pos == len(in) {
			return d.out, d.maxDist, nil
		}
	}
}

var errEOF = errors.New("deflatetest: stream ends inside a block")

// bitReader reads DEFLATE's little-endian bit fields.
type bitReader struct {
	in    []byte
	pos   int
	buf   uint32
	nbits uint
}

func (r *bitReader) bits(n uint) (int, error) {
	for r.nbits < n {
		if r.pos >= len(r.in) {
			return 0, errEOF
		}
		r.buf |= uint32(r.in[r.pos]) << r.nbits
		r.pos++
		r.nbits += 8
	}
	v := r.buf & (1<<n - 1)
	r.buf >>= n
	r.nbits -= n
	return int(v), nil
}

// align drops the bits left in the current byte (fewer than 8: bits reads
// a byte at a time).
func (r *bitReader) align() { r.buf, r.nbits = 0, 0 }

type decoder struct {
	r       bitReader
	out     []byte
	maxDist int
}

// block decodes one block and reports whether it was the final one.
func (d *decoder) block() (bool, error) {
	hdr, err := d.r.bits(3)
	if err != nil {
		return false, err
	}
	final := hdr&1 == 1
	switch hdr >> 1 {
	case 0:
		return final, d.stored()
	case 1:
		return final, d.codes(&fixedLit, &fixedDist)
	case 2:
		lit, dist, err := d.dynamic()
		if err != nil {
			return final, err
		}
		return final, d.codes(lit, dist)
	}
	return final, errors.New("deflatetest: block type 3")
}

func (d *decoder) stored() error {
	d.r.align()
	if d.r.pos+4 > len(d.r.in) {
		return errEOF
	}
	b := d.r.in[d.r.pos:]
	n, nc := int(b[0])|int(b[1])<<8, int(b[2])|int(b[3])<<8
	if n != ^nc&0xffff {
		return errors.New("deflatetest: stored block length mismatch")
	}
	d.r.pos += 4
	if d.r.pos+n > len(d.r.in) {
		return errEOF
	}
	d.out = append(d.out, d.r.in[d.r.pos:d.r.pos+n]...)
	d.r.pos += n
	return nil
}

// Length and distance bases and extra bits (RFC 1951 §3.2.5).
var (
	lenBase   = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra  = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase  = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// codes decodes a Huffman-coded block's symbols up to end-of-block.
func (d *decoder) codes(lit, dist *huffman) error {
	for {
		sym, err := lit.decode(&d.r)
		switch {
		case err != nil:
			return err
		case sym < 256:
			d.out = append(d.out, byte(sym))
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return fmt.Errorf("deflatetest: length symbol %d", sym)
		}
		extra, err := d.r.bits(lenExtra[sym-257])
		if err != nil {
			return err
		}
		n := lenBase[sym-257] + extra
		dsym, err := dist.decode(&d.r)
		if err != nil {
			return err
		}
		if dsym > 29 {
			return fmt.Errorf("deflatetest: distance symbol %d", dsym)
		}
		if extra, err = d.r.bits(distExtra[dsym]); err != nil {
			return err
		}
		dd := distBase[dsym] + extra
		if dd > len(d.out) {
			return fmt.Errorf("deflatetest: distance %d before the start (%d bytes out)", dd, len(d.out))
		}
		d.maxDist = max(d.maxDist, dd)
		for range n { // byte by byte: the source may overlap what is copied
			d.out = append(d.out, d.out[len(d.out)-dd])
		}
	}
}
