package deflatetest

import "errors"

const maxBits = 15

// huffman is a canonical Huffman code: how many codes of each length, and
// the symbols in code order (RFC 1951 §3.2.2).
type huffman struct {
	count  [maxBits + 1]int
	symbol []int
}

// newHuffman builds the code for the given code lengths (0: unused). An
// over-subscribed set is an error; an incomplete one is allowed, as RFC
// 1951 allows (one distance code), and fails only if an unused code shows
// up.
func newHuffman(lengths []int) (*huffman, error) {
	h := &huffman{symbol: make([]int, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l <= maxBits; l++ {
		left = left<<1 - h.count[l]
		if left < 0 {
			return nil, errors.New("deflatetest: over-subscribed code lengths")
		}
	}
	var offs [maxBits + 2]int
	for l := 1; l <= maxBits; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h, nil
}

// decode reads one symbol, a bit at a time (codes are packed from their
// most significant bit).
func (h *huffman) decode(r *bitReader) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l <= maxBits; l++ {
		b, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+code-first], nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, errors.New("deflatetest: invalid Huffman code")
}

// The fixed codes of block type 1 (RFC 1951 §3.2.6).
var fixedLit, fixedDist = fixedCodes()

func fixedCodes() (huffman, huffman) {
	var lengths [288]int
	for i := range lengths {
		switch {
		case i < 144:
			lengths[i] = 8
		case i < 256:
			lengths[i] = 9
		case i < 280:
			lengths[i] = 7
		default:
			lengths[i] = 8
		}
	}
	lit, _ := newHuffman(lengths[:])
	var dl [30]int
	for i := range dl {
		dl[i] = 5
	}
	dist, _ := newHuffman(dl[:])
	return *lit, *dist
}

// clOrder is the order of the code length code lengths (RFC 1951 §3.2.7).
var clOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamic reads the code definitions of a block of type 2.
func (d *decoder) dynamic() (lit, dist *huffman, err error) {
	var hdr [3]int
	for i, n := range [3]uint{5, 5, 4} {
		if hdr[i], err = d.r.bits(n); err != nil {
			return nil, nil, err
		}
	}
	nlen, ndist, ncode := hdr[0]+257, hdr[1]+1, hdr[2]+4
	if nlen > 286 || ndist > 30 {
		return nil, nil, errors.New("deflatetest: too many length or distance codes")
	}
	var cl [19]int
	for i := range ncode {
		if cl[clOrder[i]], err = d.r.bits(3); err != nil {
			return nil, nil, err
		}
	}
	clCode, err := newHuffman(cl[:])
	if err != nil {
		return nil, nil, err
	}
	lengths, err := d.codeLengths(clCode, nlen+ndist)
	if err != nil {
		return nil, nil, err
	}
	if lengths[256] == 0 {
		return nil, nil, errors.New("deflatetest: no end-of-block code")
	}
	if lit, err = newHuffman(lengths[:nlen]); err != nil {
		return nil, nil, err
	}
	if dist, err = newHuffman(lengths[nlen:]); err != nil {
		return nil, nil, err
	}
	return lit, dist, nil
}

// codeLengths reads n code lengths coded with clCode (symbols 16–18 repeat).
func (d *decoder) codeLengths(clCode *huffman, n int) ([]int, error) {
	lengths := make([]int, 0, n)
	for len(lengths) < n {
		sym, err := clCode.decode(&d.r)
		if err != nil {
			return nil, err
		}
		if sym < 16 {
			lengths = append(lengths, sym)
			continue
		}
		val, extra, base := 0, uint(3), 11
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return nil, errors.New("deflatetest: repeat with no previous length")
			}
			val, extra, base = lengths[len(lengths)-1], 2, 3
		case 17:
			base = 3
		case 18:
			extra = 7
		}
		rep, err := d.r.bits(extra)
		if err != nil {
			return nil, err
		}
		if len(lengths)+base+rep > n {
			return nil, errors.New("deflatetest: code lengths overrun")
		}
		for range base + rep {
			lengths = append(lengths, val)
		}
	}
	return lengths, nil
}
