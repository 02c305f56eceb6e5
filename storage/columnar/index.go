package columnar

import "hash/maphash"

// codeIndex maps case codes to rows: an open-addressing hash table with
// linear probing. A slot is a uint32: the row+1 in its low rowBits bits (0
// is empty) and, above them, a tag of the code's hash, so that a probe
// rarely has to compare codes. The codes themselves live in the table's
// arena, so the index costs 4 bytes per slot.
type codeIndex struct {
	seed    maphash.Seed
	slots   []uint32
	rowBits uint // rows must be below 1<<rowBits - 1; the other bits hold the tag
	n       int
}

func newCodeIndex() codeIndex {
	return codeIndex{seed: maphash.MakeSeed(), slots: make([]uint32, 1024), rowBits: 16}
}

// codes gives the index access to the case codes of rows.
type codes interface {
	code(row int) []byte
	rows() int
}

// place returns a hash's home slot and tag.
func (x *codeIndex) place(h uint64) (home int, tag uint32) {
	return int(h & uint64(len(x.slots)-1)), uint32(h >> (32 + x.rowBits))
}

func (x *codeIndex) row(s uint32) int { return int(s&(1<<x.rowBits-1)) - 1 }

// find returns the slot holding code's row, or the empty slot where it
// would go, and whether it was found.
func (x *codeIndex) find(code string, c codes) (slot int, found bool) {
	mask := len(x.slots) - 1
	i, tag := x.place(maphash.String(x.seed, code))
	for ; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return i, false
		}
		if s>>x.rowBits == tag && string(c.code(x.row(s))) == code {
			return i, true
		}
	}
}

// insert records that code is at row; code must not be present.
func (x *codeIndex) insert(code string, row int, c codes) {
	if (x.n+1)*4 > len(x.slots)*3 || row+1 >= 1<<x.rowBits-1 {
		size := len(x.slots)
		if (x.n+1)*4 > size*3 {
			size *= 2
		}
		bits := x.rowBits
		for row+1 >= 1<<bits-1 {
			bits++
		}
		x.rebuild(size, bits, c)
	}
	slot, _ := x.find(code, c)
	_, tag := x.place(maphash.String(x.seed, code))
	x.slots[slot] = tag<<x.rowBits | uint32(row+1)
	x.n++
}

// rebuild rehashes every row's code into size slots with rowBits bits of
// row. It reads the codes in row order, which is the order of the arena.
func (x *codeIndex) rebuild(size int, rowBits uint, c codes) {
	x.slots, x.rowBits = make([]uint32, size), rowBits
	mask := size - 1
	for row := range c.rows() {
		i, tag := x.place(maphash.Bytes(x.seed, c.code(row)))
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = tag<<x.rowBits | uint32(row+1)
	}
}

// setRow points slot at another row, keeping its tag.
func (x *codeIndex) setRow(slot, row int) {
	x.slots[slot] = x.slots[slot]&^(1<<x.rowBits-1) | uint32(row+1)
}

// remove empties slot and shifts back the entries that probed past it.
func (x *codeIndex) remove(slot int, c codes) {
	mask := len(x.slots) - 1
	i := slot
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		k, _ := x.place(maphash.Bytes(x.seed, c.code(x.row(x.slots[j]))))
		// The entry at j may move to i when its home is not cyclically in (i, j].
		if i <= j && (k <= i || k > j) || i > j && k <= i && k > j {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}

func (x *codeIndex) bytes() int { return 4 * cap(x.slots) }
