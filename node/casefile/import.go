package casefile

import (
	"context"
	"fmt"
	"io"

	"github.com/ctfed/ctfed/node"
)

// DefaultBatchSize is how many cases Import writes per atomic batch.
const DefaultBatchSize = 2000

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
