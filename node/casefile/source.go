package casefile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/ctfed/ctfed/node"
)

// source yields a file's rows: the header first, then each data row with its
// line number. A row that cannot be split into fields comes back as a
// RowError (the row is rejected, reading goes on); a problem with the file
// itself comes back as err (reading stops). The end is io.EOF.
type source interface {
	next() (line int, fields []string, rowErr *RowError, err error)
	setWidth(n int)
	close()
}

// fileErr is a problem with the whole file.
type fileErr struct {
	line   int
	column string
	msg    string
}

func (e *fileErr) Error() string {
	switch {
	case e.line > 0 && e.column != "":
		return fmt.Sprintf("line %d, column %s: %s", e.line, e.column, e.msg)
	case e.line > 0:
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

// fileError turns a source's error into an *node.Error for op.
func fileError(op string, err error) error {
	var fe *fileErr
	if errors.As(err, &fe) {
		return &node.Error{Op: op, Kind: node.Invalid, Err: fe}
	}
	var ne *node.Error
	if errors.As(err, &ne) {
		return err
	}
	return &node.Error{Op: op, Kind: node.Internal, Err: fmt.Errorf("reading the file: %w", err)}
}

var xlsxMagic = []byte("PK\x03\x04")

// openSource opens r as CSV or XLSX: by name's extension when it is .csv or
// .xlsx, else by the file's first bytes.
func openSource(r io.Reader, name string, lim Limits) (source, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	ext := strings.ToLower(filepath.Ext(name))
	isXLSX := ext == ".xlsx" || ext == ".xlsm"
	if ext != ".csv" && !isXLSX {
		head, _ := br.Peek(len(xlsxMagic))
		isXLSX = bytes.Equal(head, xlsxMagic)
	}
	if isXLSX {
		return openXLSX(br, lim)
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	s := &csvSource{lim: lim}
	s.g = &guard{r: br, maxBytes: lim.MaxBytes, maxPending: int64(lim.MaxRowBytes) + 8<<10}
	s.cr = csv.NewReader(s.g)
	s.cr.ReuseRecord = true
	s.cr.LazyQuotes = false
	s.cr.FieldsPerRecord = 0 // the header's width, checked for every row
	s.g.consumed = s.cr.InputOffset
	return s, nil
}

// guard bounds what the CSV reader may read: the whole file, and how far it
// may read past the end of the last complete row (one row's size).
type guard struct {
	r          io.Reader
	n          int64
	consumed   func() int64
	maxBytes   int64
	maxPending int64
}

var (
	errRowTooLarge  = errors.New("row too large")
	errFileTooLarge = errors.New("file too large")
)

func (g *guard) Read(p []byte) (int, error) {
	if g.n-g.consumed() > g.maxPending {
		return 0, errRowTooLarge
	}
	if g.n > g.maxBytes {
		return 0, errFileTooLarge
	}
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

type csvSource struct {
	cr       *csv.Reader
	g        *guard
	lim      Limits
	width    int
	lastLine int
	lastOff  int64
}

func (s *csvSource) setWidth(n int) { s.width = n }
func (s *csvSource) close()         {}

func (s *csvSource) next() (int, []string, *RowError, error) {
	rec, err := s.cr.Read()
	switch {
	case err == io.EOF:
		return 0, nil, nil, io.EOF
	case errors.Is(err, errRowTooLarge):
		return 0, nil, nil, &fileErr{line: s.lastLine + 1, msg: fmt.Sprintf("a row is larger than %s (the limit)", sizeString(int64(s.lim.MaxRowBytes)))}
	case errors.Is(err, errFileTooLarge):
		return 0, nil, nil, &fileErr{msg: fmt.Sprintf("the file is larger than %s (the limit)", sizeString(s.lim.MaxBytes))}
	}
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		return 0, nil, nil, err
	}
	start := 0
	if pe != nil {
		start = pe.StartLine
	} else {
		start, _ = s.cr.FieldPos(0)
	}
	off := s.cr.InputOffset()
	if off-s.lastOff > int64(s.lim.MaxRowBytes) {
		return 0, nil, nil, &fileErr{line: start, msg: fmt.Sprintf("a row is larger than %s (the limit)", sizeString(int64(s.lim.MaxRowBytes)))}
	}
	s.lastOff = off
	if pe != nil {
		s.lastLine = pe.Line
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			if err := s.check(rec); err != nil {
				return 0, nil, nil, err
			}
			return start, nil, &RowError{Msg: fmt.Sprintf("has %d fields, the header has %d", len(rec), s.width)}, nil
		}
		return start, nil, &RowError{Msg: fmt.Sprintf("is not well-formed CSV: %v (line %d, byte %d)", pe.Err, pe.Line, pe.Column)}, nil
	}
	s.lastLine, _ = s.cr.FieldPos(len(rec) - 1)
	if err := s.check(rec); err != nil {
		return 0, nil, nil, err
	}
	return start, rec, nil, nil
}

// check rejects the whole file for a field that is not UTF-8 or is too
// large.
func (s *csvSource) check(rec []string) error {
	for i, f := range rec {
		if len(f) > s.lim.MaxFieldBytes || !utf8.ValidString(f) {
			line, _ := s.cr.FieldPos(i)
			return fieldProblem(line, i, f, s.lim)
		}
	}
	return nil
}

// fieldProblem describes a field that is too large or not UTF-8. The column
// is named by its position, as the header may not be read yet; the value is
// never repeated.
func fieldProblem(line, i int, f string, lim Limits) error {
	col := fmt.Sprintf("%d", i+1)
	if len(f) > lim.MaxFieldBytes {
		return &fileErr{line: line, column: col, msg: fmt.Sprintf("a field is larger than %s (the limit)", sizeString(int64(lim.MaxFieldBytes)))}
	}
	return &fileErr{line: line, column: col, msg: "the text is not valid UTF-8 (save the file as UTF-8 CSV)"}
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// xlsxSource reads the first sheet of a workbook, row by row.
type xlsxSource struct {
	f     *excelize.File
	rows  *excelize.Rows
	row   int
	width int
	lim   Limits
}

func openXLSX(r io.Reader, lim Limits) (src source, err error) {
	defer func() {
		if p := recover(); p != nil {
			src, err = nil, &fileErr{msg: "the file is not a readable XLSX workbook"}
		}
	}()
	b, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > lim.MaxBytes {
		return nil, &fileErr{msg: fmt.Sprintf("the file is larger than %s (the limit)", sizeString(lim.MaxBytes))}
	}
	// The sheets stay in memory: excelize would otherwise unpack a large
	// sheet to a temporary file, a plain-text copy of identity fields.
	unzip := 8 * lim.MaxBytes
	f, err := excelize.OpenReader(bytes.NewReader(b), excelize.Options{UnzipSizeLimit: unzip, UnzipXMLSizeLimit: unzip})
	if err != nil {
		return nil, &fileErr{msg: "the file is not a readable XLSX workbook"}
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		f.Close()
		return nil, &fileErr{msg: "the workbook has no sheet"}
	}
	rows, err := f.Rows(sheets[0])
	if err != nil {
		f.Close()
		return nil, &fileErr{msg: "the workbook's first sheet cannot be read"}
	}
	return &xlsxSource{f: f, rows: rows, lim: lim}, nil
}

func (s *xlsxSource) setWidth(n int) { s.width = n }

func (s *xlsxSource) close() {
	s.rows.Close()
	s.f.Close()
}

func (s *xlsxSource) next() (line int, fields []string, rowErr *RowError, err error) {
	defer func() {
		if p := recover(); p != nil {
			line, fields, rowErr, err = 0, nil, nil, &fileErr{line: s.row, msg: "the sheet cannot be read"}
		}
	}()
	for s.rows.Next() {
		s.row++
		cells, err := s.rows.Columns()
		if err != nil {
			return 0, nil, nil, &fileErr{line: s.row, msg: "the row cannot be read"}
		}
		size := 0
		for i, c := range cells {
			if len(c) > s.lim.MaxFieldBytes || !utf8.ValidString(c) {
				return 0, nil, nil, fieldProblem(s.row, i, c, s.lim)
			}
			size += len(c)
		}
		if size > s.lim.MaxRowBytes {
			return 0, nil, nil, &fileErr{line: s.row, msg: fmt.Sprintf("a row is larger than %s (the limit)", sizeString(int64(s.lim.MaxRowBytes)))}
		}
		// Spreadsheets end rows at their last non-empty cell and keep
		// empty rows: skip those, trim the header's empty tail.
		n := len(cells)
		for n > 0 && strings.TrimSpace(cells[n-1]) == "" {
			n--
		}
		if n == 0 {
			continue
		}
		if s.width == 0 {
			return s.row, cells[:n], nil, nil
		}
		if n > s.width {
			return s.row, nil, &RowError{Msg: fmt.Sprintf("has %d cells, the header has %d", n, s.width)}, nil
		}
		for len(cells) < s.width {
			cells = append(cells, "")
		}
		return s.row, cells[:s.width], nil, nil
	}
	if err := s.rows.Error(); err != nil {
		return 0, nil, nil, &fileErr{line: s.row, msg: "the sheet cannot be read"}
	}
	return 0, nil, nil, io.EOF
}
