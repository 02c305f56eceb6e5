package casefile

import (
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ctfed/ctfed/node"
)

// Limits bound what Read accepts, so that no file can exhaust a node's
// memory. Zero fields take the defaults.
type Limits struct {
	MaxBytes      int64 // the largest file, default 4 GiB
	MaxRows       int   // the most data rows, default 10 000 000
	MaxFieldBytes int   // the largest field, default 64 KiB
	MaxRowBytes   int   // the largest row, default 1 MiB
	MaxErrors     int   // the most row errors listed (the rest are counted), default 1000
}

// DefaultLimits are the limits Read uses for zero fields.
var DefaultLimits = Limits{
	MaxBytes:      4 << 30,
	MaxRows:       10_000_000,
	MaxFieldBytes: 64 << 10,
	MaxRowBytes:   1 << 20,
	MaxErrors:     1000,
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultLimits.MaxRows
	}
	if l.MaxFieldBytes <= 0 {
		l.MaxFieldBytes = DefaultLimits.MaxFieldBytes
	}
	if l.MaxRowBytes <= 0 {
		l.MaxRowBytes = DefaultLimits.MaxRowBytes
	}
	if l.MaxRowBytes < l.MaxFieldBytes {
		l.MaxRowBytes = l.MaxFieldBytes
	}
	if l.MaxErrors <= 0 {
		l.MaxErrors = DefaultLimits.MaxErrors
	}
	return l
}

// ReadOptions says how Read reads a file.
type ReadOptions struct {
	// Format is the file's shape; empty detects it from the header.
	Format Format
	// Codebook is the codebook cases are validated against; nil is
	// node.DefaultCodebook().
	Codebook *node.Codebook
	// HMACKey is the node's key for deriving case codes of CTDC rows, which
	// carry none. Required for the CTDC shapes.
	HMACKey []byte
	// DefaultConsent is the consent code (yes, no or unknown) given to rows
	// that carry none: every CTDC row, and ctfed rows whose consent is empty.
	// Empty means unknown.
	DefaultConsent string
	// Limits bound the file's size.
	Limits Limits
}

// RowError is one problem with one row of a file. Line is the row's line in
// a CSV file (its first line, for a row whose quoted fields span several) or
// its row number in a workbook. Column is the column's name as written in the
// header (empty when the problem is the whole row).
// Value is the offending value, truncated, and always empty for an identity
// column: an identity field's value is never repeated.
type RowError struct {
	Line   int
	Column string
	Value  string
	Msg    string
}

// Error implements error.
func (e RowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d", e.Line)
	if e.Column != "" {
		fmt.Fprintf(&b, ", column %s", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Value != "" {
		fmt.Fprintf(&b, " (got %q)", e.Value)
	}
	return b.String()
}

// Result is what Read found in a file.
type Result struct {
	Name   string
	Format Format
	// Cases are the file's valid cases, normalised and validated, in file
	// order; Lines[i] is the line (the row, for XLSX) of Cases[i]. Scan
	// leaves both empty.
	Cases []*node.Case
	Lines []int
	// RowCount is how many data rows the file has (blank lines aside).
	RowCount int
	// Valid is how many rows gave a valid case.
	Valid int
	// Rejected holds the line of every rejected row, ascending.
	Rejected []int
	// Errors lists the problems of the rejected rows, at most
	// Limits.MaxErrors of them; MoreErrors counts the rest.
	Errors     []RowError
	MoreErrors int
	// Notes say what was read but not used (ignored columns, unknown
	// labels), for the summary.
	Notes []string
}

// Err returns nil when every row is valid, else an *node.Error of kind
// Invalid saying how many rows are bad and what the first problem is.
func (r *Result) Err() error {
	if len(r.Rejected) == 0 {
		return nil
	}
	first := "see the row errors"
	if len(r.Errors) > 0 {
		first = r.Errors[0].Error()
	}
	return node.E("read "+r.Name, node.Invalid, "%d of %d rows are invalid (%d problems); first: %s",
		len(r.Rejected), r.RowCount, len(r.Errors)+r.MoreErrors, first)
}

// Summary returns a one-line summary of the result, with no record in it.
func (r *Result) Summary() string {
	s := fmt.Sprintf("%s: %s shape, %d rows, %d valid, %d rejected", r.Name, r.Format, r.RowCount, r.Valid, len(r.Rejected))
	if len(r.Notes) > 0 {
		s += "; " + strings.Join(r.Notes, "; ")
	}
	return s
}

func (r *Result) addError(e RowError, max int) {
	if len(r.Errors) < max {
		r.Errors = append(r.Errors, e)
	} else {
		r.MoreErrors++
	}
}

// Read reads every row of a case file (CSV or XLSX, told apart by name's
// extension or the file's first bytes) and returns its valid cases with
// every bad row's problems. name labels the file in messages. A problem with
// the whole file (an empty file, a header ctfed does not read, text that is
// not UTF-8, a field or a file over the limits) is an *node.Error of kind
// Invalid, with the line and column where it applies; problems of rows are
// in Result.Errors (see Result.Err). Read never returns an identity field's
// value in an error.
func Read(r io.Reader, name string, opt ReadOptions) (*Result, error) {
	var cases []*node.Case
	var lines []int
	res, err := Scan(r, name, opt, func(line int, c *node.Case) error {
		cases = append(cases, c)
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Cases, res.Lines = cases, lines
	return res, nil
}

// Scan reads a case file like Read but hands each valid case to fn with its
// line, in file order, instead of keeping it; fn may be nil to only check
// the file. fn is called from Scan's goroutine, one case at a time. Scan
// stops at fn's first error and returns it. Rows are decoded and validated
// on every core, a few batches of rows ahead of fn: r is read that far past
// the row where Scan stops, and Scan waits for a read in progress before it
// returns.
func Scan(r io.Reader, name string, opt ReadOptions, fn func(line int, c *node.Case) error) (*Result, error) {
	var each func(int, *node.Case, int) error
	if fn != nil {
		each = func(line int, c *node.Case, _ int) error { return fn(line, c) }
	}
	return scan(r, name, opt, each)
}

// scan is Scan; fn also gets the size in bytes of the case's row.
func scan(r io.Reader, name string, opt ReadOptions, fn func(line int, c *node.Case, size int) error) (*Result, error) {
	op := "read " + name
	opt.Limits = opt.Limits.withDefaults()
	if opt.Codebook == nil {
		opt.Codebook = node.DefaultCodebook()
	}
	switch opt.DefaultConsent {
	case "":
		opt.DefaultConsent = node.CodeUnknown
	case "yes", "no", node.CodeUnknown:
	default:
		return nil, node.E(op, node.Invalid, "default consent %q is not yes, no or unknown", truncate(opt.DefaultConsent, 20))
	}
	if opt.Format != "" {
		if _, err := ParseFormat(string(opt.Format)); err != nil {
			return nil, &node.Error{Op: op, Kind: node.Invalid, Err: err}
		}
	}

	src, err := openSource(r, name, opt.Limits)
	if err != nil {
		return nil, fileError(op, err)
	}
	defer src.close()

	_, header, rowErr, err := src.next()
	switch {
	case err == io.EOF:
		return nil, node.E(op, node.Invalid, "the file is empty: want a header row and one row per case")
	case err != nil:
		return nil, fileError(op, err)
	case rowErr != nil:
		return nil, node.E(op, node.Invalid, "the header row cannot be read: %s", rowErr.Msg)
	}
	header = slices.Clone(header)
	src.setWidth(len(header))
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	format := opt.Format
	if format == "" {
		if format, err = detectFormat(header); err != nil {
			return nil, &node.Error{Op: op, Kind: node.Invalid, Err: err}
		}
	}
	sh, err := newShape(format, header, &opt)
	if err != nil {
		return nil, &node.Error{Op: op, Kind: node.Invalid, Err: err}
	}

	s := &scanner{op: op, src: src, sh: sh, cb: opt.Codebook, lim: opt.Limits}
	s.start()
	defer s.close()

	res := &Result{Name: name, Format: format}
	maxErr := opt.Limits.MaxErrors
	seen := make(map[string]int) // case code → line of its first row
	for b := range s.order {
		<-b.done
		for i := range b.rows {
			r := &b.rows[i]
			res.RowCount++
			if r.rowErr != nil {
				r.rowErr.Line = r.line
				res.Rejected = append(res.Rejected, r.line)
				res.addError(*r.rowErr, maxErr)
				continue
			}
			if r.panicked {
				return nil, node.E(op, node.Internal, "line %d could not be decoded", r.line)
			}
			if sh.note != nil {
				for _, l := range r.labels {
					sh.note(l.col, l.label)
				}
			}
			c, errs := r.c, r.errs
			if c.Code != "" {
				if first, dup := seen[c.Code]; dup {
					errs = append(errs, RowError{Column: sh.columnOf("case_code"), Value: truncate(c.Code, maxValueLen),
						Msg: fmt.Sprintf("duplicates the case code of line %d", first)})
				} else {
					seen[c.Code] = r.line
				}
			}
			if len(errs) > 0 {
				res.Rejected = append(res.Rejected, r.line)
				for _, e := range errs {
					e.Line = r.line
					res.addError(e, maxErr)
				}
				continue
			}
			res.Valid++
			if fn != nil {
				if err := fn(r.line, c, r.size); err != nil {
					return nil, err
				}
			}
		}
		if b.err != nil {
			return nil, b.err
		}
		s.recycle(b)
	}
	res.Notes = append(res.Notes, sh.notes()...)
	if res.RowCount == 0 {
		res.Notes = append(res.Notes, "the file has a header but no rows")
	}
	return res, nil
}

// fieldName returns the node field a FieldError's field is in:
// "traffickers" for "traffickers[2].sex".
func fieldName(f string) string {
	f, _, _ = strings.Cut(f, "[")
	f, _, _ = strings.Cut(f, ".")
	return f
}

// rowState is the case being built from one row and that row's problems. A
// worker reuses one for all its rows.
type rowState struct {
	line   int
	c      *node.Case
	errs   []RowError
	failed map[string]bool // node fields whose column already failed
	occ    uint32          // the row's shape.order number
	labels []label         // labels noted for shape.note

	// Scratch space of the decoders and the shape's finish.
	parts [4]string
	mac   hash.Hash
	buf   []byte
}

// label is a value of a column that the shape noted, not refused.
type label struct{ col, label string }

func (st *rowState) reset(line int) {
	st.line = line
	st.c = &node.Case{}
	st.errs = st.errs[:0]
	st.labels = st.labels[:0]
	clear(st.failed)
}

func (st *rowState) fail(col, value, msg, field string) {
	st.errs = append(st.errs, RowError{Column: col, Value: value, Msg: msg})
	if field != "" {
		if st.failed == nil {
			st.failed = make(map[string]bool)
		}
		st.failed[field] = true
	}
}

// colFunc decodes one column's value into the row's case and returns a
// problem message, or "". It is called on several rows at once, each with
// its own rowState, so it changes nothing but st.
type colFunc func(st *rowState, v string) string

// shape is how one file's columns decode into a case.
type shape struct {
	header   []string
	cols     []colFunc // per column; nil for an ignored column
	fieldOf  []string  // per column: the node field it fills, if one
	identity []bool    // per column: an identity column, whose value is never repeated
	fieldCol map[string]string
	// order, if set, is called with each row that splits into fields, in
	// file order, before the row is decoded; finish gets its result in
	// rowState.occ.
	order func(fields []string) uint32
	// finish completes a row's case after its columns; it is called on
	// several rows at once.
	finish func(st *rowState, fields []string)
	// note, if set, is given the labels the columns noted (rowState.labels),
	// in file order.
	note  func(col, label string)
	notes func() []string
}

// value returns column i's value as a RowError may show it.
func (sh *shape) value(i int, v string) string {
	if sh.identity[i] {
		return ""
	}
	return truncate(strings.TrimSpace(v), maxValueLen)
}

// columnOf returns the column that fills a node field.
func (sh *shape) columnOf(field string) string {
	if c, ok := sh.fieldCol[field]; ok {
		return c
	}
	return field
}

func newShape(f Format, header []string, opt *ReadOptions) (*shape, error) {
	seen := make(map[string]int, len(header))
	for i, h := range header {
		n := strings.ToLower(h)
		if n == "" {
			continue
		}
		if j, dup := seen[n]; dup {
			return nil, fmt.Errorf("column %q appears twice in the header (columns %d and %d)", truncate(h, 40), j+1, i+1)
		}
		seen[n] = i
	}
	switch f {
	case FormatCtfed:
		return newCtfedShape(header, opt)
	case FormatCTDC, FormatCTDCLegacy:
		return newCTDCShape(f, header, opt)
	}
	return nil, fmt.Errorf("unknown file format %q", f)
}

const maxValueLen = 64

// truncate shortens s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
