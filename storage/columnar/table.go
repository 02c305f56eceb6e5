package columnar

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/ctfed/ctfed/node"
)

// Column kinds.
type colKind uint8

const (
	kindSingle colKind = iota // one code per case: a uint8 per row
	kindMask                  // a multi-valued dimension of at most 16 codes: a uint16 bitset per row
	kindSparse                // a multi-valued dimension of many codes: 3 inline codes per row and an overflow list
)

// Special code values.
const (
	noCode   = 0xFF // single: the case's value is not a code of the list; sparse: an empty slot
	overflow = 0xFE // sparse, third slot: the codes from the third on are in extra
	slots    = 3    // inline codes per row of a sparse column
)

// unknownValue marks a measure whose value is not known.
const unknownValue = math.MinInt16

// column is the projection of one dimension.
type column struct {
	dim  *node.Dimension
	kind colKind
	// none is the code a case with no code of a multi-valued dimension
	// counts in: none_recorded, or unknown for recruiter_relation.
	none int

	single []uint8
	mask   []uint16
	seen   []uint64                             // mask: every bitset a case has had, as a bitmap
	sparse []uint8                              // slots codes per row
	extra  map[int32][]uint8                    // sparse rows with more than slots codes: codes[slots-1:]
	one    func(*node.Case) string              // single: the case's code
	many   func(*node.Case, *[]string) []string // multi: the case's codes without the none code (the case's own slice, or the scratch given)
	lookup codeLookup                           // code → index in the list
	years  map[int]uint8                        // registration_year: year → code index
}

// measure is the projection of one measure field, clamped to [Lo, Hi].
type measure struct {
	field  *node.MeasureField
	values []int16 // unknownValue when not known
}

// Table is the columnar projection of a node's cases. It is safe for
// concurrent use: any number of Aggregate calls run together, and Upsert and
// Delete wait for them.
type Table struct {
	cb *node.Codebook

	mu       sync.RWMutex
	cols     []column // one per codebook dimension, in codebook order
	byName   map[string]int
	measures []measure // one per codebook measure
	consent  []uint8   // 1 when the case consented to statistical use
	refs     []uint64  // per row: offset<<16 | length of the case code in arena
	arena    []byte
	dead     int // arena bytes no row refers to
	index    codeIndex

	scratch []string
}

// New returns an empty table for the dimensions and measures of cb. It
// panics if cb has a single-valued dimension of more than 255 codes, a
// multi-valued one of more than 254, or a measure whose bounds do not fit
// 16 bits: the codebook is part of the build.
func New(cb *node.Codebook) *Table {
	t := &Table{cb: cb, byName: map[string]int{}, index: newCodeIndex()}
	for i := range cb.Dimensions {
		d := &cb.Dimensions[i]
		c := column{dim: d, lookup: newCodeLookup(d.Codes)}
		c.one, c.many = extractor(d)
		n := len(d.Codes.Codes)
		switch {
		case !d.Multi:
			if n > noCode {
				panic(fmt.Sprintf("columnar: dimension %s has %d codes, at most %d supported", d.Name, n, noCode))
			}
			c.kind = kindSingle
		case n <= 16:
			c.kind = kindMask
			c.seen = make([]uint64, max(1, (1<<n)/64))
			c.seen[0] = 1 // the empty bitset of a new row
		default:
			if n > overflow {
				panic(fmt.Sprintf("columnar: dimension %s has %d codes, at most %d supported", d.Name, n, overflow))
			}
			c.kind = kindSparse
			c.extra = map[int32][]uint8{}
		}
		if d.Multi {
			c.none = d.Codes.Index(node.CodeNoneRecorded)
			if c.none < 0 {
				c.none = d.Codes.Index(node.CodeUnknown)
			}
		}
		if d.Name == "registration_year" {
			c.years = map[int]uint8{}
			for j, code := range d.Codes.Codes {
				if y, err := strconv.Atoi(code.Value); err == nil {
					c.years[y] = uint8(j)
				}
			}
		}
		t.byName[d.Name] = len(t.cols)
		t.cols = append(t.cols, c)
	}
	for i := range cb.Measures {
		m := &cb.Measures[i]
		if m.Lo <= unknownValue || m.Hi > math.MaxInt16 || m.Lo > m.Hi {
			panic(fmt.Sprintf("columnar: measure %s bounds [%d, %d] do not fit 16 bits", m.Name, m.Lo, m.Hi))
		}
		t.measures = append(t.measures, measure{field: m})
	}
	return t
}

// Len returns how many cases the table holds.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.refs)
}

// Bytes returns the memory the table's columns, codes and index hold.
func (t *Table) Bytes() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := cap(t.consent) + 8*cap(t.refs) + cap(t.arena) + t.index.bytes()
	for i := range t.cols {
		c := &t.cols[i]
		n += cap(c.single) + 2*cap(c.mask) + 8*cap(c.seen) + cap(c.sparse)
		for _, e := range c.extra {
			n += 48 + cap(e) // entry, slice header and codes
		}
	}
	for _, m := range t.measures {
		n += 2 * cap(m.values)
	}
	return n
}

// code returns the case code of row, in the arena.
func (t *Table) code(row int) []byte {
	r := t.refs[row]
	off, n := r>>16, r&0xFFFF
	return t.arena[off : off+n]
}

func (t *Table) rows() int { return len(t.refs) }

// Grow makes room for n more cases, so that filling the table with a known
// number of cases does not copy its columns as they grow. codeBytes is the
// expected length of a case code (0: 16).
func (t *Table) Grow(n, codeBytes int) {
	if n <= 0 {
		return
	}
	if codeBytes <= 0 {
		codeBytes = 16
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refs = slices.Grow(t.refs, n)
	t.arena = slices.Grow(t.arena, n*codeBytes)
	t.consent = slices.Grow(t.consent, n)
	for i := range t.cols {
		c := &t.cols[i]
		switch c.kind {
		case kindSingle:
			c.single = slices.Grow(c.single, n)
		case kindMask:
			c.mask = slices.Grow(c.mask, n)
		case kindSparse:
			c.sparse = slices.Grow(c.sparse, slots*n)
		}
	}
	for i := range t.measures {
		t.measures[i].values = slices.Grow(t.measures[i].values, n)
	}
	want := len(t.index.slots)
	for (len(t.refs)+n)*4 > want*3 {
		want *= 2
	}
	if want > len(t.index.slots) {
		t.index.rebuild(want, t.index.rowBits, t)
	}
}

// Upsert inserts c, or replaces the case with c's code. Codes that are not
// in the codebook's lists (which a validated case never has) count as no
// code: a single-valued dimension matches no code, a multi-valued one
// ignores them.
func (t *Table) Upsert(c *node.Case) {
	t.mu.Lock()
	defer t.mu.Unlock()
	slot, found := t.index.find(c.Code, t)
	var row int
	if found {
		row = t.index.row(t.index.slots[slot])
	} else {
		row = t.appendRow(c.Code)
	}
	t.set(row, c)
}

// Delete removes the case with the given code and reports whether it was
// there.
func (t *Table) Delete(code string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	slot, found := t.index.find(code, t)
	if !found {
		return false
	}
	row := t.index.row(t.index.slots[slot])
	last := len(t.refs) - 1
	t.dead += int(t.refs[row] & 0xFFFF)
	t.index.remove(slot, t)
	if row != last {
		// Move the last row into the hole.
		ls, _ := t.index.find(string(t.code(last)), t)
		t.index.setRow(ls, row)
		t.moveRow(last, row)
	}
	t.truncate(last)
	if t.dead > 1<<20 && t.dead > len(t.arena)/2 {
		t.compact()
	}
	return true
}

// appendRow adds an empty row for code and returns it.
func (t *Table) appendRow(code string) int {
	row := len(t.refs)
	if len(code) > 0xFFFF {
		code = code[:0xFFFF] // a case code is at most 64 bytes once validated
	}
	t.refs = append(t.refs, uint64(len(t.arena))<<16|uint64(len(code)))
	t.arena = append(t.arena, code...)
	t.consent = append(t.consent, 0)
	for i := range t.cols {
		c := &t.cols[i]
		switch c.kind {
		case kindSingle:
			c.single = append(c.single, noCode)
		case kindMask:
			c.mask = append(c.mask, 0)
		case kindSparse:
			c.sparse = append(c.sparse, noCode, noCode, noCode)
		}
	}
	for i := range t.measures {
		t.measures[i].values = append(t.measures[i].values, unknownValue)
	}
	t.index.insert(code, row, t)
	return row
}

// moveRow copies row from into row to (to's own data is discarded).
func (t *Table) moveRow(from, to int) {
	t.refs[to] = t.refs[from]
	t.consent[to] = t.consent[from]
	for i := range t.cols {
		c := &t.cols[i]
		switch c.kind {
		case kindSingle:
			c.single[to] = c.single[from]
		case kindMask:
			c.mask[to] = c.mask[from]
		case kindSparse:
			copy(c.sparse[slots*to:slots*to+slots], c.sparse[slots*from:slots*from+slots])
			delete(c.extra, int32(to))
			if e, ok := c.extra[int32(from)]; ok {
				c.extra[int32(to)] = e
				delete(c.extra, int32(from))
			}
		}
	}
	for i := range t.measures {
		v := t.measures[i].values
		v[to] = v[from]
	}
}

// truncate drops the rows from n on.
func (t *Table) truncate(n int) {
	t.refs = t.refs[:n]
	t.consent = t.consent[:n]
	for i := range t.cols {
		c := &t.cols[i]
		switch c.kind {
		case kindSingle:
			c.single = c.single[:n]
		case kindMask:
			c.mask = c.mask[:n]
		case kindSparse:
			c.sparse = c.sparse[:slots*n]
			delete(c.extra, int32(n))
		}
	}
	for i := range t.measures {
		t.measures[i].values = t.measures[i].values[:n]
	}
}

// compact rewrites the arena without the codes of deleted rows.
func (t *Table) compact() {
	arena := make([]byte, 0, len(t.arena)-t.dead)
	for i, r := range t.refs {
		off, n := r>>16, r&0xFFFF
		t.refs[i] = uint64(len(arena))<<16 | n
		arena = append(arena, t.arena[off:off+n]...)
	}
	t.arena, t.dead = arena, 0
}

// set writes c's projection into row.
func (t *Table) set(row int, c *node.Case) {
	if c.Consent == "yes" {
		t.consent[row] = 1
	} else {
		t.consent[row] = 0
	}
	for i := range t.cols {
		col := &t.cols[i]
		switch col.kind {
		case kindSingle:
			col.single[row] = t.singleCode(col, c)
		case kindMask:
			var m uint16
			codes := col.many(c, &t.scratch)
			for _, v := range codes {
				if j := col.lookup.index(v); j >= 0 {
					m |= 1 << j
				}
			}
			col.mask[row] = m
			col.seen[m>>6] |= 1 << (m & 63)
		case kindSparse:
			codes := col.many(c, &t.scratch)
			var buf [8]uint8
			idx := buf[:0]
			for _, v := range codes {
				if j := col.lookup.index(v); j >= 0 && !slices.Contains(idx, uint8(j)) {
					idx = append(idx, uint8(j))
				}
			}
			slices.Sort(idx)
			s := col.sparse[slots*row : slots*row+slots]
			if s[slots-1] == overflow {
				delete(col.extra, int32(row))
			}
			s[0], s[1], s[2] = noCode, noCode, noCode
			copy(s, idx)
			if len(idx) > slots {
				s[slots-1] = overflow
				col.extra[int32(row)] = slices.Clone(idx[slots-1:])
			}
		}
	}
	for i := range t.measures {
		m := &t.measures[i]
		v, ok := c.MeasureValue(m.field.Name)
		if !ok {
			m.values[row] = unknownValue
			continue
		}
		m.values[row] = int16(min(max(v, m.field.Lo), m.field.Hi))
	}
}

func (t *Table) singleCode(col *column, c *node.Case) uint8 {
	if col.years != nil {
		if j, ok := col.years[c.RegistrationYear()]; ok {
			return j
		}
		return noCode
	}
	if j := col.lookup.index(col.one(c)); j >= 0 {
		return uint8(j)
	}
	return noCode
}

// codeLookup finds codes in a code list, with a direct table for lists of
// ISO 3166-1 alpha-3 codes.
type codeLookup struct {
	list   *node.CodeList
	alpha3 []int16 // AAA..ZZZ → index, or -1; nil for other lists
}

func newCodeLookup(l *node.CodeList) codeLookup {
	c := codeLookup{list: l}
	n := 0
	for _, code := range l.Codes {
		if isAlpha3(code.Value) {
			n++
		}
	}
	if n < 100 {
		return c
	}
	c.alpha3 = make([]int16, 26*26*26)
	for i := range c.alpha3 {
		c.alpha3[i] = -1
	}
	for i, code := range l.Codes {
		if v := code.Value; isAlpha3(v) {
			c.alpha3[int(v[0]-'A')*676+int(v[1]-'A')*26+int(v[2]-'A')] = int16(i)
		}
	}
	return c
}

func isAlpha3(v string) bool {
	return len(v) == 3 && v[0]-'A' < 26 && v[1]-'A' < 26 && v[2]-'A' < 26
}

// index returns v's position in the list, or -1.
func (c *codeLookup) index(v string) int {
	if c.alpha3 != nil && isAlpha3(v) {
		return int(c.alpha3[int(v[0]-'A')*676+int(v[1]-'A')*26+int(v[2]-'A')])
	}
	return c.list.Index(v)
}

func orUnknown(s string) string {
	if s == "" {
		return node.CodeUnknown
	}
	return s
}

// extractor returns the function that gives a case's code in
// single-valued dimension d, or the one that lists its codes in
// multi-valued d, as node.Case.DimensionCodes defines them but without
// allocating; a multi-valued dimension's list leaves out the none code (a
// case with no codes counts in it).
func extractor(d *node.Dimension) (one func(*node.Case) string, many func(*node.Case, *[]string) []string) {
	traffickers := func(f func(*node.Trafficker) string) func(*node.Case, *[]string) []string {
		return func(c *node.Case, scratch *[]string) []string {
			out := (*scratch)[:0]
			for i := range c.Traffickers {
				out = append(out, orUnknown(f(&c.Traffickers[i])))
			}
			*scratch = out
			return out
		}
	}
	switch d.Name {
	case "gender":
		return func(c *node.Case) string { return orUnknown(c.Gender) }, nil
	case "age_band":
		return (*node.Case).AgeBandCode, nil
	case "age_band_exploitation":
		return (*node.Case).AgeBandExploitationCode, nil
	case "majority":
		return (*node.Case).MajorityCode, nil
	case "citizenship":
		return func(c *node.Case) string { return orUnknown(c.Citizenship) }, nil
	case "country_of_residence":
		return func(c *node.Case) string { return orUnknown(c.CountryOfResidence) }, nil
	case "country_of_origin":
		return func(c *node.Case) string { return orUnknown(c.CountryOfOrigin) }, nil
	case "country_of_exploitation":
		return func(c *node.Case) string { return orUnknown(c.CountryOfExploitation) }, nil
	case "recruitment_type":
		return func(c *node.Case) string { return orUnknown(c.RecruitmentType) }, nil
	case "months_band":
		return (*node.Case).MonthsBandCode, nil
	case "retrafficked":
		return func(c *node.Case) string { return orUnknown(c.Retrafficked) }, nil
	case "previously_trafficked":
		return func(c *node.Case) string { return orUnknown(c.PreviouslyTrafficked) }, nil
	case "data_source":
		return func(c *node.Case) string { return orUnknown(c.DataSource) }, nil
	case "transit_country":
		return nil, func(c *node.Case, _ *[]string) []string { return c.TransitCountries }
	case "exploitation_type":
		return nil, func(c *node.Case, _ *[]string) []string { return c.ExploitationTypes }
	case "labour_type":
		return nil, func(c *node.Case, _ *[]string) []string { return c.LabourTypes }
	case "sexual_exploitation_type":
		return nil, func(c *node.Case, _ *[]string) []string { return c.SexualExploitationTypes }
	case "means_of_control":
		return nil, func(c *node.Case, _ *[]string) []string { return c.MeansOfControl }
	case "recruiter_relation":
		return nil, func(c *node.Case, _ *[]string) []string { return c.RecruiterRelations }
	case "trafficker_role":
		return nil, traffickers(func(tr *node.Trafficker) string { return tr.Role })
	case "trafficker_sex":
		return nil, traffickers(func(tr *node.Trafficker) string { return tr.Sex })
	case "trafficker_nationality":
		return nil, traffickers(func(tr *node.Trafficker) string { return tr.Nationality })
	case "assistance_service":
		return nil, func(c *node.Case, scratch *[]string) []string {
			out := (*scratch)[:0]
			for i := range c.Assistance {
				out = append(out, c.Assistance[i].Service)
			}
			*scratch = out
			return out
		}
	}
	// A dimension this build has no fast path for: ask the case.
	name := d.Name
	if !d.Multi {
		return func(c *node.Case) string {
			if codes := c.DimensionCodes(name); len(codes) == 1 {
				return codes[0]
			}
			return ""
		}, nil
	}
	none := node.CodeNoneRecorded
	if d.Codes.Index(none) < 0 {
		none = node.CodeUnknown
	}
	return nil, func(c *node.Case, _ *[]string) []string {
		codes := c.DimensionCodes(name)
		if len(codes) == 1 && codes[0] == none {
			return nil
		}
		return codes
	}
}
