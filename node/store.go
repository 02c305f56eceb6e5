package node

import "context"

// PutMode says what PutCases does with a case whose code is already stored.
type PutMode uint8

// The put modes.
const (
	// CreateOnly refuses (Conflict) a case whose code exists with different
	// content; a case identical to the stored one is left unchanged.
	CreateOnly PutMode = iota
	// Upsert stores a new version of a case whose content differs.
	Upsert
)

// PutResult counts what PutCases did.
type PutResult struct {
	Created   int
	Updated   int
	Unchanged int
}

// CaseFilter selects cases for a listing. Zero fields do not filter.
type CaseFilter struct {
	CodePrefix       string
	Status           string
	Year             int
	Citizenship      string
	ExploitationType string
	Offset, Limit    int
}

// CaseStore keeps an organisation's case records. Identity fields are sealed
// at rest; every change keeps the previous version.
type CaseStore interface {
	// PutCases validates and writes cases in one atomic batch, as by. Either
	// every case of the batch is written or none is. Returns Invalid for a
	// case that fails validation or a code given twice in the batch, Conflict
	// for a code that exists with different content in CreateOnly mode.
	PutCases(ctx context.Context, cases []*Case, mode PutMode, by string) (PutResult, error)

	// Case returns the current version of the case with the given code, with
	// its identity fields when withIdentity is true. Returns NotFound.
	Case(ctx context.Context, code string, withIdentity bool) (*Case, error)

	// CaseHistory returns every stored version of a case, oldest first, with
	// identity fields when withIdentity is true. Returns NotFound.
	CaseHistory(ctx context.Context, code string, withIdentity bool) ([]*Case, error)

	// EraseIdentity destroys the identity fields of a case in every stored
	// version, as by. The rest of the record stays. Returns NotFound.
	EraseIdentity(ctx context.Context, code string, by string) error

	// ListCases returns the cases matching f without identity fields, and how
	// many match in all.
	ListCases(ctx context.Context, f CaseFilter) ([]*Case, int, error)

	// ForEachCase calls fn for the current version of every case, in code
	// order, with identity fields when withIdentity is true. It stops at fn's
	// first error and returns it.
	ForEachCase(ctx context.Context, withIdentity bool, fn func(*Case) error) error

	// CaseCount returns how many cases are stored.
	CaseCount(ctx context.Context) (int, error)
}
