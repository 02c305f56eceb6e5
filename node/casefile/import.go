package casefile

import (
	"context"
	"fmt"
	"io"
	"unsafe"

	"github.com/ctfed/ctfed/node"
)

// DefaultBatchSize is how many cases Import writes per atomic batch.
const DefaultBatchSize = 2000

// DefaultMaxMemory is how much memory ImportFile may keep a checked file's
// cases in, by its estimate, before it writes them.
const DefaultMaxMemory = 256 << 20

// ImportOptions says how Import writes cases to a store.
type ImportOptions struct {
	// BatchSize is how many cases go in one atomic PutCases batch
	// (default DefaultBatchSize).
	BatchSize int
	// Mode is the PutCases mode: CreateOnly refuses changed cases, Upsert
	// stores new versions. Cases identical to the stored ones are unchanged
	// either way, so a re-import completes an interrupted one.
	Mode node.PutMode
	// By names who imports, for the cases' history.
	By string
	// Progress, if set, is called after each batch with the cases written
	// so far and the total (0 when ImportReader does not know it: set
	// Total).
	Progress func(done, total int)
	// Total is how many cases ImportReader will write, for Progress.
	Total int
	// MaxMemory bounds the memory ImportFile keeps a file's checked cases
	// in (default DefaultMaxMemory); a file whose cases need more is read
	// again to write them.
	MaxMemory int64
}

func (o ImportOptions) batchSize() int {
	if o.BatchSize <= 0 {
		return DefaultBatchSize
	}
	return o.BatchSize
}

func addPut(a, b node.PutResult) node.PutResult {
	return node.PutResult{Created: a.Created + b.Created, Updated: a.Updated + b.Updated, Unchanged: a.Unchanged + b.Unchanged}
}

// batcher writes cases to a store in batches.
type batcher struct {
	ctx   context.Context
	store node.CaseStore
	opt   ImportOptions
	cases []*node.Case
	lines []int
	done  int
	total int
	res   node.PutResult
}

func (b *batcher) add(line int, c *node.Case) error {
	b.cases = append(b.cases, c)
	b.lines = append(b.lines, line)
	if len(b.cases) >= b.opt.batchSize() {
		return b.flush()
	}
	return nil
}

func (b *batcher) flush() error {
	if len(b.cases) == 0 {
		return nil
	}
	if err := b.ctx.Err(); err != nil {
		return &node.Error{Op: "import", Kind: node.Unavailable, Err: err}
	}
	r, err := b.store.PutCases(b.ctx, b.cases, b.opt.Mode, b.opt.By)
	if err != nil {
		return &node.Error{Op: "import", Kind: node.KindOf(err),
			Err: fmt.Errorf("the batch of lines %d–%d: %w", b.lines[0], b.lines[len(b.lines)-1], err)}
	}
	b.res = addPut(b.res, r)
	b.done += len(b.cases)
	// The store may keep the slice it was given: start a new one.
	b.cases, b.lines = make([]*node.Case, 0, len(b.cases)), b.lines[:0]
	if b.opt.Progress != nil {
		b.opt.Progress(b.done, b.total)
	}
	return nil
}

// Import writes res.Cases to store in atomic batches of opt.BatchSize, in
// file order. A crash leaves whole batches; importing the file again
// completes it (identical cases are unchanged). Import writes the valid cases
// only: check res.Err() first unless bad rows may be skipped. It returns
// what was written until the first failing batch, and that batch's error
// (with its kind: Invalid, Conflict, ...).
func Import(ctx context.Context, store node.CaseStore, res *Result, opt ImportOptions) (node.PutResult, error) {
	b := &batcher{ctx: ctx, store: store, opt: opt, total: len(res.Cases)}
	for i, c := range res.Cases {
		line := 0
		if i < len(res.Lines) {
			line = res.Lines[i]
		}
		if err := b.add(line, c); err != nil {
			return b.res, err
		}
	}
	return b.res, b.flush()
}

// ImportReader reads a case file like Scan and writes its valid cases to
// store as it goes, in batches like Import, so that a file of any size
// imports in bounded memory. Bad rows are skipped and reported in the
// Result: to import nothing when any row is bad, Scan the file first.
func ImportReader(ctx context.Context, store node.CaseStore, r io.Reader, name string, ropt ReadOptions, iopt ImportOptions) (*Result, node.PutResult, error) {
	b := &batcher{ctx: ctx, store: store, opt: iopt, total: iopt.Total}
	res, err := Scan(r, name, ropt, b.add)
	if err != nil {
		return nil, b.res, err
	}
	return res, b.res, b.flush()
}

// ImportFile checks every row of a case file, then writes its valid cases to
// store in atomic batches, like Import, so that nothing is written when the
// file has a bad row. open opens the file; name labels it in messages.
// check is given the result of checking (its Cases empty) before anything is
// written: its error ends the import, and ImportFile returns it. A nil
// check refuses a file with any bad row (Result.Err). Once check accepts,
// the valid cases are written, the bad rows skipped. Progress totals
// Result.Valid unless opt.Total is set.
//
// The checked cases are kept in memory and written from there when they fit
// in opt.MaxMemory; a larger file is opened and read again as ImportReader
// reads it, in bounded memory. It returns the result of reading, what was
// written until the first failing batch, and that batch's error.
func ImportFile(ctx context.Context, store node.CaseStore, open func() (io.ReadCloser, error), name string, ropt ReadOptions, iopt ImportOptions, check func(*Result) error) (*Result, node.PutResult, error) {
	var none node.PutResult
	if check == nil {
		check = (*Result).Err
	}
	budget := iopt.MaxMemory
	if budget <= 0 {
		budget = DefaultMaxMemory
	}
	f, err := open()
	if err != nil {
		return nil, none, err
	}
	var kept keptCases
	keep := true
	res, err := scan(f, name, ropt, func(line int, c *node.Case, size int) error {
		if !keep {
			return nil
		}
		kept.mem += caseMemory(c, size)
		if kept.mem > budget {
			keep, kept = false, keptCases{}
			return nil
		}
		kept.cases = append(kept.cases, c)
		kept.lines = append(kept.lines, line)
		if len(kept.cases)%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return &node.Error{Op: "import", Kind: node.Unavailable, Err: err}
			}
		}
		return nil
	})
	f.Close()
	if err != nil {
		return nil, none, err
	}
	if err := check(res); err != nil {
		return res, none, err
	}
	if iopt.Total <= 0 {
		iopt.Total = res.Valid
	}
	if !keep {
		if f, err = open(); err != nil {
			return nil, none, err
		}
		defer f.Close()
		return ImportReader(ctx, store, f, name, ropt, iopt)
	}
	b := &batcher{ctx: ctx, store: store, opt: iopt, total: iopt.Total}
	for i, c := range kept.cases {
		kept.cases[i] = nil // written cases need not stay
		if err := b.add(kept.lines[i], c); err != nil {
			return res, b.res, err
		}
	}
	return res, b.res, b.flush()
}

// keptCases are the cases ImportFile keeps between checking and writing,
// and its estimate of their memory.
type keptCases struct {
	cases []*node.Case
	lines []int
	mem   int64
}

// caseMemory estimates the memory a decoded case holds: its row's text,
// which its strings share, and the case's own structures.
func caseMemory(c *node.Case, rowSize int) int64 {
	n := rowSize + int(unsafe.Sizeof(*c)) + 3*8 + 2*int(unsafe.Sizeof(c)) + 8 // the case, its numbers, the kept slices' entries
	strs := len(c.Identity.Aliases) + len(c.Identity.Documents) + len(c.TransitCountries) + len(c.RecruiterRelations) +
		len(c.MeansOfControl) + len(c.ExploitationTypes) + len(c.LabourTypes) + len(c.SexualExploitationTypes)
	n += strs * int(unsafe.Sizeof(""))
	n += len(c.Traffickers)*int(unsafe.Sizeof(node.Trafficker{})) + len(c.Assistance)*int(unsafe.Sizeof(node.Service{})) +
		len(c.FollowUps)*int(unsafe.Sizeof(node.FollowUp{}))
	return int64(n)
}
