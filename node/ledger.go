package node

import (
	"context"
	"time"

	"github.com/ctfed/ctfed/privacy"
)

// Spending is what has been charged per registration year, node-wide and
// per querier organisation.
type Spending struct {
	Node map[int]privacy.Amount
	Orgs map[string]map[int]privacy.Amount
}

// Ledger keeps a node's privacy budget and its answer cache in the store.
// Amounts are integer micro-units; every write is synced to disk before the
// method returns.
type Ledger interface {
	// Charge adds cost to every year in years, node-wide and for org, in one
	// atomic, synced write, if no cap of caps would be exceeded. Otherwise
	// it returns BudgetExhausted wrapping the *privacy.CapError and charges
	// nothing. Concurrent charges never overspend.
	Charge(ctx context.Context, org string, years []int, cost privacy.Amount, caps privacy.Caps) error
	// CheckCharge is Charge without the write: what a dry run reports.
	CheckCharge(ctx context.Context, org string, years []int, cost privacy.Amount, caps privacy.Caps) error
	// Spending returns what has been charged.
	Spending(ctx context.Context) (*Spending, error)
	// CachedAnswer returns the stored answer under key, if any.
	CachedAnswer(ctx context.Context, key string) (*NoisyTable, bool, error)
	// CacheAnswer stores t under key until ttl has passed.
	CacheAnswer(ctx context.Context, key string, t *NoisyTable, ttl time.Duration) error
}

// AggregateOptions says how an Aggregator counts.
type AggregateOptions struct {
	// ConsentOnly counts only cases whose consent is yes.
	ConsentOnly bool
	// Bound keeps at most each multi-valued dimension's L0 codes of a case,
	// a uniformly random subset drawn afresh per query.
	Bound bool
	// MaxCells is the cell limit of the query.
	MaxCells int
}

// Aggregator computes exact tables over a node's cases.
type Aggregator interface {
	// Aggregate returns the exact table of q. Returns Invalid for a query
	// that fails Check.
	Aggregate(q *Query, opt AggregateOptions) (*ExactTable, error)
}
