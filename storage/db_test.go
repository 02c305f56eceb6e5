package storage

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// testPassphrase opens every keyring the tests create.
var testPassphrase = []byte("correct horse battery staple")

func TestMain(m *testing.M) {
	// Cheap argon2id parameters: the tests are about the format, not the cost.
	defaultKDF = kdfParams{Time: 1, MemoryKiB: 64, Threads: 1}
	os.Exit(m.Run())
}

// MustCreateKeyring creates a passphrase keyring in a new temporary node
// directory.
func MustCreateKeyring(tb testing.TB) (*Keyring, string) {
	tb.Helper()
	dir := tb.TempDir()
	kr, recovery, err := CreateKeyring(dir, testPassphrase, false)
	if err != nil {
		tb.Fatal(err)
	}
	return kr, recovery
}

// NewTestDB returns an unopened DB over dir with small badger settings.
func NewTestDB(dir string, kr *Keyring) *DB {
	db := NewDB(dir, kr)
	db.SyncWrites = false
	db.MemTableSize = 8 << 20
	db.NumMemtables = 1
	db.ValueLogFileSize = 1 << 20
	db.BlockCacheSize = 1 << 20
	db.IndexCacheSize = 1 << 20
	return db
}

// MustOpenDB opens a DB in a new node directory and closes it at the end of
// the test.
func MustOpenDB(tb testing.TB) *DB {
	tb.Helper()
	kr, _ := MustCreateKeyring(tb)
	return MustOpenDBAt(tb, kr.Dir(), kr)
}

// MustOpenDBAt opens the DB of node directory dir with kr.
func MustOpenDBAt(tb testing.TB, dir string, kr *Keyring) *DB {
	tb.Helper()
	db := NewTestDB(dir, kr)
	if err := db.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// MustReopenDB closes db and opens its directory again, unwrapping the
// keyring from keys.json with the passphrase.
func MustReopenDB(tb testing.TB, db *DB) *DB {
	tb.Helper()
	if err := db.Close(context.Background()); err != nil {
		tb.Fatal(err)
	}
	kr, err := OpenKeyring(db.Dir, testPassphrase)
	if err != nil {
		tb.Fatal(err)
	}
	return MustOpenDBAt(tb, db.Dir, kr)
}

// MustPut writes cases with Upsert and fails the test on error.
func MustPut(tb testing.TB, s node.CaseStore, mode node.PutMode, cases ...*node.Case) node.PutResult {
	tb.Helper()
	res, err := s.PutCases(context.Background(), cases, mode, "tester")
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

var (
	testStatuses  = []string{"screened", "eligible", "not_eligible", "assisted", "closed"}
	testCountries = []string{"UKR", "PHL", "NGA", "THA", "ROU", "VNM", "MDA"}
	testExploit   = [][]string{{"sexual"}, {"forced_labour"}, {"sexual", "forced_labour"}, {"forced_marriage"}, nil}
	testMeans     = []string{"debt_bondage_earnings", "threats", "abuse", "false_promises", "withheld_documents"}
)

// testCase returns a deterministic, valid case with fake, distinctive
// identity fields (see fakeName, fakeAlias, fakeDocument).
func testCase(i int) *node.Case {
	c := &node.Case{
		Code:             fmt.Sprintf("T%07d", i),
		RegistrationDate: node.Date(fmt.Sprintf("%d-%02d-%02d", 2010+i%14, 1+i%12, 1+i%28)),
		Status:           testStatuses[i%len(testStatuses)],
		DataSource:       "assistance_case",
		Caseworker:       "cw-7",
		Identity: node.Identity{
			FullName:  fakeName(i),
			Aliases:   []string{fakeAlias(i)},
			Phone:     fmt.Sprintf("+000 555 %07d", i),
			Documents: []string{fakeDocument(i)},
			Narrative: "Synthetic test narrative; not a real person.",
		},
		Gender:                []string{"woman", "man", "woman", "trans_nonconforming"}[i%4],
		Age:                   node.IntPtr(18 + i%30),
		Citizenship:           testCountries[i%len(testCountries)],
		CountryOfExploitation: testCountries[(i+2)%len(testCountries)],
		ExploitationTypes:     append([]string(nil), testExploit[i%len(testExploit)]...),
		MeansOfControl:        []string{testMeans[i%len(testMeans)], testMeans[(i+1)%len(testMeans)]},
		MonthsInExploitation:  node.IntPtr(i % 40),
		Traffickers:           []node.Trafficker{{Sex: "male", Nationality: testCountries[(i+1)%len(testCountries)], Role: "recruiter", Relation: "friend"}},
		Assistance:            []node.Service{{Service: "shelter", Date: "2021-03"}, {Service: "medical"}},
		Consent:               "yes",
	}
	return c
}

func fakeName(i int) string     { return fmt.Sprintf("Zyxqwerty Fakename %05d", i) }
func fakeAlias(i int) string    { return fmt.Sprintf("Qvxalias Pseudonym %05d", i) }
func fakeDocument(i int) string { return fmt.Sprintf("XJQ-DOCNUM-%07d", i) }

// testCases returns cases from..to-1.
func testCases(from, to int) []*node.Case {
	out := make([]*node.Case, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, testCase(i))
	}
	return out
}
