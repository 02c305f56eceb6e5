package casefile

import (
	"io"
	"runtime"
	"sync"

	"github.com/ctfed/ctfed/node"
)

// Scan reads a file's rows in three stages. One goroutine splits the file
// into rows, in order, and groups them in batches; GOMAXPROCS workers decode,
// normalise and validate the batches' rows, several batches at once; the
// caller's goroutine takes the batches back in file order and does what
// depends on the rows before (duplicate case codes, counts, the row errors'
// order, fn). Only a few batches are in flight at a time, so a file of any
// size is read in bounded memory, and a stop (fn's error, a problem with the
// file) leaves at most those batches read ahead.

const (
	// batchRows and batchBytes bound one batch: at most batchRows rows,
	// closed once its fields reach batchBytes.
	batchRows  = 256
	batchBytes = 1 << 20
)

// row is one data row of a file on its way through Scan.
type row struct {
	line   int
	fields []string  // nil when the row could not be split (rowErr)
	rowErr *RowError // the row could not be split into fields
	size   int       // the bytes of the row's fields
	occ    uint32    // from shape.order

	// Set by a worker.
	c        *node.Case
	errs     []RowError
	labels   []label
	panicked bool
}

// rowBatch is consecutive rows of a file. err, if set, is the problem that
// stopped reading after the batch's rows.
type rowBatch struct {
	rows []row
	slab []string // the rows' fields, in one allocation
	err  error
	done chan struct{} // closed when a worker has decoded the rows
}

// scanner runs one Scan's stages.
type scanner struct {
	op    string
	src   source
	sh    *shape
	cb    *node.Codebook
	lim   Limits
	stop  chan struct{}  // closed when the caller stops taking batches
	work  chan *rowBatch // batches for the workers
	order chan *rowBatch // the same batches, in file order, for the caller
	free  chan *rowBatch // batches the caller is done with, for reuse
	wg    sync.WaitGroup
}

// start starts the reading goroutine and the workers. The caller takes
// batches from s.order and calls s.close when done.
func (s *scanner) start() {
	workers := max(1, runtime.GOMAXPROCS(0))
	s.stop = make(chan struct{})
	s.work = make(chan *rowBatch, workers)
	s.order = make(chan *rowBatch, 2*workers+2)
	s.free = make(chan *rowBatch, 3*workers+4)
	s.wg.Go(s.read)
	for range workers {
		s.wg.Go(s.decode)
	}
}

// close stops the stages and waits for them.
func (s *scanner) close() {
	close(s.stop)
	s.wg.Wait()
}

// read splits the file into batches of rows and hands each to the workers
// and, in order, to the caller.
func (s *scanner) read() {
	defer close(s.order)
	defer close(s.work)
	rows := 0
	for {
		var b *rowBatch
		select {
		case b = <-s.free:
		default:
			b = &rowBatch{rows: make([]row, 0, batchRows)}
		}
		b.done = make(chan struct{})
		last := s.fill(b, &rows)
		select {
		case s.work <- b:
		case <-s.stop:
			return
		}
		select {
		case s.order <- b:
		case <-s.stop:
			return
		}
		if last {
			return
		}
	}
}

// fill reads the next batch's rows; rows counts the file's rows so far. It
// reports whether reading is over (the end of the file, or b.err).
func (s *scanner) fill(b *rowBatch, rows *int) (last bool) {
	defer func() {
		if p := recover(); p != nil {
			b.err = node.E(s.op, node.Internal, "the row after line %d could not be read", lastLine(b))
			last = true
		}
	}()
	slab := b.slab
	defer func() { b.slab = slab }()
	size := 0
	for len(b.rows) < batchRows && size < batchBytes {
		line, fields, rowErr, err := s.src.next()
		if err == io.EOF {
			return true
		}
		if err != nil {
			b.err = fileError(s.op, err)
			return true
		}
		*rows++
		if *rows > s.lim.MaxRows {
			b.err = node.E(s.op, node.Invalid, "the file has more than %d rows", s.lim.MaxRows)
			return true
		}
		r := row{line: line, rowErr: rowErr}
		if rowErr == nil {
			if cap(slab)-len(slab) < len(fields) {
				slab = make([]string, 0, max(len(fields), batchRows*len(fields)))
			}
			n := len(slab)
			slab = append(slab, fields...)
			r.fields = slab[n:len(slab):len(slab)]
			for _, f := range fields {
				r.size += len(f)
			}
			if s.sh.order != nil {
				r.occ = s.sh.order(r.fields)
			}
		}
		size += r.size
		b.rows = append(b.rows, r)
	}
	return false
}

func lastLine(b *rowBatch) int {
	if len(b.rows) == 0 {
		return 0
	}
	return b.rows[len(b.rows)-1].line
}

// recycle takes back a batch the caller is done with.
func (s *scanner) recycle(b *rowBatch) {
	clear(b.rows)
	b.rows = b.rows[:0]
	clear(b.slab)
	b.slab = b.slab[:0]
	select {
	case s.free <- b:
	default:
	}
}

// decode is a worker: it decodes the rows of the batches it takes.
func (s *scanner) decode() {
	st := &rowState{}
	for b := range s.work {
		s.decodeBatch(st, b)
		close(b.done)
	}
}

func (s *scanner) decodeBatch(st *rowState, b *rowBatch) {
	for i := range b.rows {
		if i%32 == 0 {
			select {
			case <-s.stop:
				return
			default:
			}
		}
		if r := &b.rows[i]; r.rowErr == nil {
			s.decodeRow(st, r)
		}
	}
}

// decodeRow turns one row into a case and its problems. A panic (a bug:
// no input should cause one) becomes the row's panicked flag, which Scan
// reports as an Internal error, instead of ending the process.
func (s *scanner) decodeRow(st *rowState, r *row) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = true
			*st = rowState{}
		}
	}()
	sh, cb := s.sh, s.cb
	st.reset(r.line)
	st.occ = r.occ
	c := st.c
	for i, v := range r.fields {
		if f := sh.cols[i]; f != nil {
			if msg := f(st, v); msg != "" {
				st.fail(sh.header[i], sh.value(i, v), msg, sh.fieldOf[i])
			}
		}
	}
	if sh.finish != nil {
		sh.finish(st, r.fields)
	}
	c.Normalize()
	if err := c.Validate(cb); err != nil {
		for _, fe := range node.FieldErrorsOf(err) {
			field := fieldName(fe.Field)
			if st.failed[field] {
				continue // already reported by the column decoder
			}
			msg := fe.Msg
			if fe.Field != field {
				msg = fe.Field + " " + fe.Msg
			}
			value := fe.Value
			if cb.IsIdentity(field) {
				value = ""
			}
			st.errs = append(st.errs, RowError{Column: sh.columnOf(field), Value: truncate(value, maxValueLen), Msg: msg})
		}
	}
	r.c = c
	if len(st.errs) > 0 {
		r.errs = append([]RowError(nil), st.errs...)
	}
	if len(st.labels) > 0 {
		r.labels = append([]label(nil), st.labels...)
	}
}
