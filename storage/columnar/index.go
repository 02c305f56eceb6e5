package columnar

import "hash/maphash"

// codeIndex maps case codes to rows: an open-addressing hash table with
// linear probing whose slots hold row+1 (0 is empty). The codes themselves
// live in the table's arena, so a slot costs 4 bytes.
type codeIndex struct {
	seed  maphash.Seed
	slots []uint32
	n     int
}

func newCodeIndex() codeIndex {
	return codeIndex{seed: maphash.MakeSeed(), slots: make([]uint32, 1024)}
}

func (x *codeIndex) home(code string) int {
	return int(maphash.String(x.seed, code) & uint64(len(x.slots)-1))
}

// codes gives the index access to the case codes of rows.
type codes interface {
	code(row int) []byte
}

func (x *codeIndex) homeOf(c codes, row int) int {
	return int(maphash.Bytes(x.seed, c.code(row)) & uint64(len(x.slots)-1))
}

// find returns the slot holding code's row, or the empty slot where it
// would go, and whether it was found.
func (x *codeIndex) find(code string, c codes) (slot int, found bool) {
	mask := len(x.slots) - 1
	for i := x.home(code); ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return i, false
		}
		if string(c.code(int(s-1))) == code {
			return i, true
		}
	}
}

// insert records that code is at row; code must not be present.
func (x *codeIndex) insert(code string, row int, c codes) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow(c)
	}
	slot, _ := x.find(code, c)
	x.slots[slot] = uint32(row + 1)
	x.n++
}

func (x *codeIndex) grow(c codes) {
	old := x.slots
	x.slots = make([]uint32, 2*len(old))
	mask := len(x.slots) - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := x.homeOf(c, int(s-1))
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
	}
}

// remove empties slot and shifts back the entries that probed past it.
func (x *codeIndex) remove(slot int, c codes) {
	mask := len(x.slots) - 1
	i := slot
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		k := x.homeOf(c, int(x.slots[j]-1))
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
