package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxHistogramBins bounds a QUANTILE query's histogram: its cells times the
// field's 1-unit bins. Like the cell limit it depends only on the query.
const MaxHistogramBins = 1_000_000

// OrderedDimensions are the dimensions whose codes have an order, in which
// BETWEEN is allowed. The order is the code-list order; unknown is not part
// of it.
var OrderedDimensions = []string{"registration_year", "age_band", "age_band_exploitation", "months_band"}

func isOrdered(dim string) bool { return slices.Contains(OrderedDimensions, dim) }

// ParseJSON decodes and validates a query in its JSON form, the form
// programs and the federation send:
//
//	{"codebook": "2026.1", "measure": {"func": "COUNT"},
//	 "group_by": ["citizenship"], "filters": [{"dim": "gender", "codes": ["woman"]}]}
//
// An empty codebook means cb's version; another version is refused. Filters
// mean what IN means in SQL. The query is validated exactly as ParseSQL
// validates it, with the same errors (all of kind Invalid), and returned in
// canonical form.
func ParseJSON(cb *Codebook, data []byte) (*Query, error) {
	var q Query
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return nil, E(opQuery, Invalid, "the query is not valid JSON: %v", jsonReason(err))
	}
	if dec.More() {
		return nil, E(opQuery, Invalid, "the query is not valid JSON: data after the query")
	}
	return build(cb, rawOf(&q))
}

// jsonReason shortens a decoding error to its reason, without echoing the
// input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// rawOf turns a Query as given (possibly not canonical) into conditions.
func rawOf(q *Query) *rawQuery {
	r := &rawQuery{codebook: q.Codebook, measure: q.Measure, groupBy: slices.Clone(q.GroupBy)}
	r.measure.Func = strings.ToUpper(r.measure.Func)
	if r.measure.Field == "*" {
		r.measure.Field = ""
	}
	for _, f := range q.Filters {
		c := rawCond{dim: f.Dim, op: opIn}
		for _, v := range f.Codes {
			c.values = append(c.values, rawValue{text: v})
		}
		r.conds = append(r.conds, c)
	}
	return r
}

// Check validates q against cb as ParseSQL and ParseJSON do, checks that q is
// in canonical form, and refuses (Invalid) a query whose grouped domain has
// more than maxCells cells ("the query asks for N cells; the limit is M").
// maxCells <= 0 means DefaultMaxCells. Whether Check refuses depends only on
// the query, the codebook and the limit, never on data.
func (q *Query) Check(cb *Codebook, maxCells int) error {
	if q == nil {
		return E(opQuery, Invalid, "no query")
	}
	if maxCells <= 0 {
		maxCells = DefaultMaxCells
	}
	n, err := build(cb, rawOf(q))
	if err != nil {
		return err
	}
	if !n.equal(q) {
		return E(opQuery, Invalid, "the query is not in canonical form (filters sorted by dimension, one per dimension, codes in code-list order): parse it with ParseJSON")
	}
	if cells := q.CellCount(cb); cells > maxCells {
		return E(opQuery, Invalid, "the query asks for %d cells; the limit is %d", cells, maxCells)
	}
	return nil
}

// equal reports whether q and o are the same query.
func (q *Query) equal(o *Query) bool {
	if q.Codebook != o.Codebook || q.Measure != o.Measure || !slices.Equal(q.GroupBy, o.GroupBy) || len(q.Filters) != len(o.Filters) {
		return false
	}
	for i := range q.Filters {
		if q.Filters[i].Dim != o.Filters[i].Dim || !slices.Equal(q.Filters[i].Codes, o.Filters[i].Codes) {
			return false
		}
	}
	return true
}

// Filter returns q's filter on dimension dim, or nil.
func (q *Query) Filter(dim string) *Filter {
	for i := range q.Filters {
		if q.Filters[i].Dim == dim {
			return &q.Filters[i]
		}
	}
	return nil
}

// Domains returns the codes of each GROUP BY dimension, in code-list order:
// the dimension's whole code list, or the codes of q's filter on that same
// dimension. These are the public domains of the answer's cells. q must have
// been validated against cb; an unknown dimension has an empty domain.
func (q *Query) Domains(cb *Codebook) [][]string {
	out := make([][]string, len(q.GroupBy))
	for i, g := range q.GroupBy {
		if f := q.Filter(g); f != nil {
			out[i] = slices.Clone(f.Codes)
			continue
		}
		if d, ok := cb.Dimension(g); ok {
			out[i] = d.Codes.Values()
		}
	}
	return out
}

// CellCount returns how many cells q's grouped domain has: the product of
// the sizes of Domains (1 for a query without GROUP BY).
func (q *Query) CellCount(cb *Codebook) int {
	n := 1
	for _, d := range q.Domains(cb) {
		n *= len(d)
		if n > math.MaxInt32 {
			return math.MaxInt32
		}
	}
	return n
}

// Years returns the registration years q charges, oldest first: the years of
// its registration_year filter that are codebook years, or every codebook
// year when it has none.
func (q *Query) Years(cb *Codebook) []int {
	f := q.Filter("registration_year")
	if f == nil {
		return cb.Years()
	}
	var out []int
	for _, c := range f.Codes {
		y, err := strconv.Atoi(c)
		if err == nil && y >= cb.FirstYear && y <= cb.LastYear {
			out = append(out, y)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Canonical returns q's canonical SQL text: keywords in upper case, one
// line, filters sorted by dimension with their codes in code-list order; a
// single code is written "dim = 'code'", a run of two or more consecutive
// codes of an ordered dimension "dim BETWEEN a AND b", anything else
// "dim IN (...)"; registration years are bare integers. Parsing the text
// gives q back, and two queries that ask the same question have the same
// text. The codebook version is not part of the text (see Query.Codebook).
func (q *Query) Canonical() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	switch q.Measure.Func {
	case FuncCount:
		b.WriteString("COUNT(*)")
	case FuncQuantile:
		fmt.Fprintf(&b, "QUANTILE(%s, %s)", q.Measure.Field, strconv.FormatFloat(q.Measure.Q, 'f', -1, 64))
	default:
		fmt.Fprintf(&b, "%s(%s)", q.Measure.Func, q.Measure.Field)
	}
	b.WriteString(" FROM cases")
	for i, f := range q.Filters {
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		writeFilter(&b, f)
	}
	if len(q.GroupBy) > 0 {
		b.WriteString(" GROUP BY ")
		b.WriteString(strings.Join(q.GroupBy, ", "))
	}
	return b.String()
}

func writeFilter(b *strings.Builder, f Filter) {
	lit := func(c string) string {
		if f.Dim == "registration_year" {
			return c
		}
		return "'" + strings.ReplaceAll(c, "'", "''") + "'"
	}
	b.WriteString(f.Dim)
	switch {
	case len(f.Codes) == 1:
		b.WriteString(" = ")
		b.WriteString(lit(f.Codes[0]))
	case isOrdered(f.Dim) && consecutive(defaultOrder(f.Dim), f.Codes):
		fmt.Fprintf(b, " BETWEEN %s AND %s", lit(f.Codes[0]), lit(f.Codes[len(f.Codes)-1]))
	default:
		b.WriteString(" IN (")
		for i, c := range f.Codes {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(lit(c))
		}
		b.WriteString(")")
	}
}

// defaultOrder returns the order of an ordered dimension's codes, without
// unknown. Years are ordered numerically, which consecutive handles itself.
func defaultOrder(dim string) []string {
	switch dim {
	case "age_band", "age_band_exploitation":
		return ListAgeBand.Values()[:ListAgeBand.Index(CodeUnknown)]
	case "months_band":
		return ListMonthsBand.Values()[:ListMonthsBand.Index(CodeUnknown)]
	}
	return nil
}

// consecutive reports whether codes (in code-list order) form one run of
// consecutive codes of order; for years (order nil), consecutive integers.
func consecutive(order []string, codes []string) bool {
	if order == nil {
		prev := 0
		for i, c := range codes {
			y, err := strconv.Atoi(c)
			if err != nil || i > 0 && y != prev+1 {
				return false
			}
			prev = y
		}
		return true
	}
	start := slices.Index(order, codes[0])
	if start < 0 || start+len(codes) > len(order) {
		return false
	}
	return slices.Equal(order[start:start+len(codes)], codes)
}

// build validates a query against cb and returns it in canonical form.
func build(cb *Codebook, r *rawQuery) (*Query, error) {
	bad := func(format string, args ...any) (*Query, error) {
		return nil, E(opQuery, Invalid, format, args...)
	}
	if cb == nil {
		return bad("no codebook")
	}
	q := &Query{Codebook: cb.Version}
	if r.codebook != "" && r.codebook != cb.Version {
		return bad("the query is for codebook %q; this node answers in codebook %q", clip(r.codebook), cb.Version)
	}

	// Measure.
	m := r.measure
	switch m.Func {
	case FuncCount:
		if m.Field != "" {
			return bad("COUNT counts cases: write COUNT(*), not COUNT(%s)", clip(m.Field))
		}
		if m.Q != 0 {
			return bad("q is only for QUANTILE")
		}
	case FuncSum, FuncAvg, FuncQuantile:
		if m.Field == "" {
			return bad("%s needs a measure field (%s)", m.Func, measureNames(cb))
		}
		if err := checkMeasureField(cb, m.Field); err != nil {
			return nil, err
		}
		if m.Func == FuncQuantile {
			if !(m.Q > 0 && m.Q < 1) {
				return bad("QUANTILE's q must be between 0 and 1 (exclusive), found %s", strconv.FormatFloat(m.Q, 'g', -1, 64))
			}
		} else if m.Q != 0 {
			return bad("q is only for QUANTILE")
		}
	case "":
		return bad("the query has no measure (COUNT, SUM, AVG or QUANTILE)")
	default:
		return bad("unknown measure function %q (COUNT, SUM, AVG or QUANTILE)", clip(m.Func))
	}
	q.Measure = m

	// GROUP BY.
	if len(r.groupBy) > MaxGroupBy {
		return bad("GROUP BY takes at most %d dimensions, found %d", MaxGroupBy, len(r.groupBy))
	}
	for i, g := range r.groupBy {
		if _, err := dimension(cb, g); err != nil {
			return nil, err
		}
		if slices.Contains(r.groupBy[:i], g) {
			return bad("GROUP BY names %s twice", g)
		}
	}
	if len(r.groupBy) > 0 {
		q.GroupBy = slices.Clone(r.groupBy)
	}

	// Filters: one code set per dimension.
	sets := map[string][]bool{} // dimension → code-list membership
	var order []string
	for _, c := range r.conds {
		d, err := dimension(cb, c.dim)
		if err != nil {
			return nil, err
		}
		set, err := condCodes(cb, d, c)
		if err != nil {
			return nil, err
		}
		prev, seen := sets[d.Name]
		if !seen {
			sets[d.Name] = set
			order = append(order, d.Name)
			continue
		}
		merged, err := combine(d, prev, set)
		if err != nil {
			return nil, err
		}
		sets[d.Name] = merged
	}
	slices.Sort(order)
	for _, name := range order {
		d, _ := cb.Dimension(name)
		set := sets[name]
		var codes []string
		for i, in := range set {
			if in {
				codes = append(codes, d.Codes.Codes[i].Value)
			}
		}
		if len(codes) == len(set) {
			// Every case has at least one code of the list: no restriction.
			continue
		}
		q.Filters = append(q.Filters, Filter{Dim: name, Codes: codes})
	}

	if q.Measure.Func == FuncQuantile {
		mf, _ := cb.Measure(q.Measure.Field)
		bins := int(mf.Hi - mf.Lo + 1)
		if cells := q.CellCount(cb); cells > MaxHistogramBins/bins {
			return bad("the query asks for %d cells of %d histogram bins each (%d bins); the limit is %d bins", cells, bins, cells*bins, MaxHistogramBins)
		}
	}
	return q, nil
}

// combine joins two conditions on one dimension. On a single-valued
// dimension "in A and in B" is "in A ∩ B". On a multi-valued one "has any
// of A and has any of B" is one condition only when one set holds the other
// (then it is the smaller set); otherwise the query is refused.
func combine(d *Dimension, a, b []bool) ([]bool, error) {
	if d.Multi {
		switch {
		case subset(a, b):
			return a, nil
		case subset(b, a):
			return b, nil
		}
		return nil, E(opQuery, Invalid, "%s has two conditions that cannot be combined: on a multi-valued dimension a condition means \"has any of\", so give one IN list", d.Name)
	}
	out := make([]bool, len(a))
	some := false
	for i := range a {
		out[i] = a[i] && b[i]
		some = some || out[i]
	}
	if !some {
		return nil, E(opQuery, Invalid, "the conditions on %s exclude every code: no case could match", d.Name)
	}
	return out, nil
}

func subset(a, b []bool) bool {
	for i := range a {
		if a[i] && !b[i] {
			return false
		}
	}
	return true
}

// condCodes returns the codes one condition selects, as code-list
// membership.
func condCodes(cb *Codebook, d *Dimension, c rawCond) ([]bool, error) {
	set := make([]bool, len(d.Codes.Codes))
	if len(c.values) == 0 {
		return nil, E(opQuery, Invalid, "the filter on %s has no codes", d.Name)
	}
	index := func(v rawValue) (int, error) {
		if v.number && d.Name != "registration_year" {
			return -1, E(opQuery, Invalid, "%s takes quoted codes ('%s'), found the number %s", d.Name, d.Codes.Codes[0].Value, clip(v.text))
		}
		i := d.Codes.Index(v.text)
		if i < 0 {
			return -1, unknownCode(cb, d, v.text)
		}
		return i, nil
	}
	if c.op != opBetween {
		for _, v := range c.values {
			i, err := index(v)
			if err != nil {
				return nil, err
			}
			set[i] = true
		}
		return set, nil
	}

	if !isOrdered(d.Name) {
		return nil, E(opQuery, Invalid, "BETWEEN needs an ordered dimension (%s); %s is not ordered: use IN", strings.Join(OrderedDimensions, ", "), d.Name)
	}
	lo, hi := c.values[0], c.values[1]
	if d.Name == "registration_year" {
		// A year range may reach past the codebook's years: it is clipped.
		a, okA := parseYear(lo.text)
		b, okB := parseYear(hi.text)
		switch {
		case !okA:
			return nil, E(opQuery, Invalid, "registration_year BETWEEN takes years, found %s", quoteLit(lo))
		case !okB:
			return nil, E(opQuery, Invalid, "registration_year BETWEEN takes years, found %s", quoteLit(hi))
		case a > b:
			return nil, E(opQuery, Invalid, "empty range: %d is after %d", a, b)
		case b < cb.FirstYear || a > cb.LastYear:
			return nil, E(opQuery, Invalid, "no registration year of codebook %s (%d–%d) is between %d and %d", cb.Version, cb.FirstYear, cb.LastYear, a, b)
		}
		for y := max(a, cb.FirstYear); y <= min(b, cb.LastYear); y++ {
			set[d.Codes.Index(strconv.Itoa(y))] = true
		}
		return set, nil
	}
	i, err := index(lo)
	if err != nil {
		return nil, err
	}
	j, err := index(hi)
	if err != nil {
		return nil, err
	}
	unknown := d.Codes.Index(CodeUnknown)
	switch {
	case i == unknown || j == unknown:
		return nil, E(opQuery, Invalid, "unknown has no place in the order of %s: use IN", d.Name)
	case i > j:
		return nil, E(opQuery, Invalid, "empty range: '%s' comes after '%s' in %s", hi.text, lo.text, d.Name)
	}
	for k := i; k <= j; k++ {
		set[k] = true
	}
	return set, nil
}

// parseYear reads a year written as at most 9 decimal digits.
func parseYear(s string) (int, bool) {
	if len(s) > 9 || !isDigits(s) {
		return 0, false
	}
	y, err := strconv.Atoi(s)
	return y, err == nil
}

func quoteLit(v rawValue) string {
	if v.number {
		return clip(v.text)
	}
	return "'" + clip(v.text) + "'"
}

// clip shortens a user-given string for an error message.
func clip(s string) string {
	r := []rune(s)
	if len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// unknownCode builds the error for a code that is not in d's list, with a
// suggestion when one is close.
func unknownCode(cb *Codebook, d *Dimension, v string) error {
	msg := fmt.Sprintf("unknown code '%s' for %s", clip(v), d.Name)
	if s := suggestCode(cb, d, v); s != "" {
		msg += fmt.Sprintf(" (did you mean '%s'?)", s)
	} else if d.Name == "registration_year" {
		msg += fmt.Sprintf(" (years %d–%d)", cb.FirstYear, cb.LastYear)
	} else if len(d.Codes.Codes) <= 16 {
		msg += " (codes: " + strings.Join(d.Codes.Values(), ", ") + ")"
	} else {
		msg += " (ISO 3166-1 alpha-3 codes such as 'FRA')"
	}
	return E(opQuery, Invalid, "%s", msg)
}

func suggestCode(cb *Codebook, d *Dimension, v string) string {
	t := strings.TrimSpace(v)
	for _, c := range d.Codes.Codes {
		if strings.EqualFold(c.Value, t) || strings.EqualFold(c.Label, t) {
			return c.Value
		}
	}
	if d.Codes.Has("AFG") {
		if a3, ok := cb.CountryFromAlpha2(t); ok && d.Codes.Has(a3) {
			return a3
		}
	}
	if d.Name == "registration_year" {
		return ""
	}
	return closest(strings.ToLower(t), d.Codes.Values())
}

// closest returns the name in names nearest to s by edit distance, if it is
// near enough to be a likely typing mistake.
func closest(s string, names []string) string {
	s = strings.ToLower(s)
	best, bestD := "", math.MaxInt
	for _, n := range names {
		if d := editDistance(s, strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if bestD <= max(2, len(s)/4) && bestD < len(s) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func dimensionNames(cb *Codebook) []string {
	out := make([]string, len(cb.Dimensions))
	for i, d := range cb.Dimensions {
		out[i] = d.Name
	}
	return out
}

func measureNames(cb *Codebook) string {
	out := make([]string, len(cb.Measures))
	for i, m := range cb.Measures {
		out[i] = m.Name
	}
	return strings.Join(out, ", ")
}

// notQueryable explains why a field of the record can never be queried, or
// returns "" when it is not such a field.
func notQueryable(cb *Codebook, name string) string {
	f, ok := cb.Field(name)
	switch {
	case !ok:
		return ""
	case f.Identity:
		return fmt.Sprintf("%s is an identity field: it can never be queried", name)
	case f.Type == TypeText:
		return fmt.Sprintf("%s is free text: it can never be queried", name)
	case f.Type == TypeDate && name == "registration_date":
		return fmt.Sprintf("%s is an exact date: it can never be queried (use registration_year)", name)
	case f.Type == TypeDate:
		return fmt.Sprintf("%s is an exact date: it can never be queried", name)
	}
	return ""
}

// dimension returns the dimension named name, or a clear refusal.
func dimension(cb *Codebook, name string) (*Dimension, error) {
	if why := notQueryable(cb, name); why != "" {
		return nil, E(opQuery, Invalid, "%s", why)
	}
	if d, ok := cb.Dimension(name); ok {
		return d, nil
	}
	if _, ok := cb.Measure(name); ok {
		hint := ""
		switch name {
		case "age":
			hint = " (group by age_band)"
		case "age_at_exploitation":
			hint = " (group by age_band_exploitation)"
		case "months_in_exploitation":
			hint = " (group by months_band)"
		}
		return nil, E(opQuery, Invalid, "%s is a measure, not a dimension%s", name, hint)
	}
	msg := fmt.Sprintf("unknown dimension %q", clip(name))
	if _, ok := cb.Field(name); ok {
		msg = fmt.Sprintf("%s is not a query dimension", name)
	}
	if s := closest(name, dimensionNames(cb)); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return nil, E(opQuery, Invalid, "%s", msg)
}

// checkMeasureField refuses a field that SUM, AVG and QUANTILE cannot read.
func checkMeasureField(cb *Codebook, name string) error {
	if why := notQueryable(cb, name); why != "" {
		return E(opQuery, Invalid, "%s", why)
	}
	if _, ok := cb.Measure(name); ok {
		return nil
	}
	if _, ok := cb.Dimension(name); ok {
		return E(opQuery, Invalid, "%s is a dimension, not a measure (measures: %s)", name, measureNames(cb))
	}
	names := make([]string, len(cb.Measures))
	for i, m := range cb.Measures {
		names[i] = m.Name
	}
	msg := fmt.Sprintf("unknown measure field %q", clip(name))
	if s := closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		msg += " (measures: " + measureNames(cb) + ")"
	}
	return E(opQuery, Invalid, "%s", msg)
}
