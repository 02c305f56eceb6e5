package storage

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

// TestDB_CaseStore runs the node.CaseStore conformance suite against DB.
func TestDB_CaseStore(t *testing.T) {
	testCaseStore(t, func(tb testing.TB) node.CaseStore { return MustOpenDB(tb) })
}

// testCaseStore is the conformance suite of node.CaseStore: every
// implementation must pass it.
func testCaseStore(t *testing.T, open func(testing.TB) node.CaseStore) {
	ctx := context.Background()

	t.Run("PutGet", func(t *testing.T) {
		s := open(t)
		in := testCase(1)
		want := testCase(1)
		want.Normalize()
		res := MustPut(t, s, node.CreateOnly, in)
		if got := (node.PutResult{Created: 1}); res != got {
			t.Fatalf("got %+v, want %+v", res, got)
		}
		if in.Version != 1 || in.UpdatedBy != "tester" || in.UpdatedAt.IsZero() {
			t.Fatalf("got version %d by %q at %v, want version 1 by tester", in.Version, in.UpdatedBy, in.UpdatedAt)
		}
		got, err := s.Case(ctx, want.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		assertSameCase(t, got, want)
		if got.Version != 1 || got.UpdatedBy != "tester" || !got.UpdatedAt.Equal(in.UpdatedAt) {
			t.Fatalf("got version %d by %q at %v, want 1 by tester at %v", got.Version, got.UpdatedBy, got.UpdatedAt, in.UpdatedAt)
		}
		noID, err := s.Case(ctx, want.Code, false)
		if err != nil {
			t.Fatal(err)
		}
		if !noID.Identity.IsZero() {
			t.Fatal("got identity fields, want none without withIdentity")
		}
		n, err := s.CaseCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("got count %d, want 1", n)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		if _, err := s.Case(ctx, "NOPE", true); node.KindOf(err) != node.NotFound {
			t.Fatalf("Case: got %v, want NotFound", err)
		}
		if _, err := s.CaseHistory(ctx, "NOPE", true); node.KindOf(err) != node.NotFound {
			t.Fatalf("CaseHistory: got %v, want NotFound", err)
		}
		if err := s.EraseIdentity(ctx, "NOPE", "tester"); node.KindOf(err) != node.NotFound {
			t.Fatalf("EraseIdentity: got %v, want NotFound", err)
		}
	})

	t.Run("UpdateHistory", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, node.CreateOnly, testCase(1))
		v2 := testCase(1)
		v2.Status = "closed"
		v2.Identity.Phone = "+000 555 0000000"
		res, err := s.PutCases(ctx, []*node.Case{v2}, node.Upsert, "editor")
		if err != nil {
			t.Fatal(err)
		}
		if got := (node.PutResult{Updated: 1}); res != got {
			t.Fatalf("got %+v, want %+v", res, got)
		}
		v3 := testCase(1)
		v3.Status = "assisted"
		v3.Identity = node.Identity{} // identity removed in the latest version
		if _, err := s.PutCases(ctx, []*node.Case{v3}, node.Upsert, "closer"); err != nil {
			t.Fatal(err)
		}
		hist, err := s.CaseHistory(ctx, v2.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 3 {
			t.Fatalf("got %d versions, want 3", len(hist))
		}
		wantBy := []string{"tester", "editor", "closer"}
		wantStatus := []string{testCase(1).Status, "closed", "assisted"}
		for i, c := range hist {
			if c.Version != i+1 || c.UpdatedBy != wantBy[i] || c.Status != wantStatus[i] {
				t.Fatalf("version %d: got version %d by %q status %q, want %d by %q status %q",
					i+1, c.Version, c.UpdatedBy, c.Status, i+1, wantBy[i], wantStatus[i])
			}
			if i > 0 && c.UpdatedAt.Before(hist[i-1].UpdatedAt) {
				t.Fatalf("version %d: updated at %v before version %d's %v", i+1, c.UpdatedAt, i, hist[i-1].UpdatedAt)
			}
		}
		if hist[0].Identity.FullName != fakeName(1) || hist[1].Identity.Phone != "+000 555 0000000" || !hist[2].Identity.IsZero() {
			t.Fatal("got wrong identity in history versions")
		}
		cur, err := s.Case(ctx, v2.Code, false)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Version != 3 || cur.Status != "assisted" {
			t.Fatalf("got current version %d status %q, want 3 assisted", cur.Version, cur.Status)
		}
		if n, _ := s.CaseCount(ctx); n != 1 {
			t.Fatalf("got count %d, want 1", n)
		}
	})

	t.Run("UpdateMovesYear", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, node.CreateOnly, testCase(1))
		moved := testCase(1)
		moved.RegistrationDate = "2023-01-01"
		if got := MustPut(t, s, node.Upsert, moved); got != (node.PutResult{Updated: 1}) {
			t.Fatalf("got %+v, want 1 updated", got)
		}
		list, total, err := s.ListCases(ctx, node.CaseFilter{Year: 2023})
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || list[0].Code != moved.Code {
			t.Fatalf("got %d cases in 2023, want the moved one", total)
		}
	})

	t.Run("Unchanged", func(t *testing.T) {
		for _, mode := range []node.PutMode{node.CreateOnly, node.Upsert} {
			s := open(t)
			MustPut(t, s, node.CreateOnly, testCases(0, 3)...)
			res := MustPut(t, s, mode, testCases(0, 3)...)
			if got := (node.PutResult{Unchanged: 3}); res != got {
				t.Fatalf("mode %d: got %+v, want %+v", mode, res, got)
			}
			hist, err := s.CaseHistory(ctx, testCase(0).Code, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 1 {
				t.Fatalf("mode %d: got %d versions, want 1", mode, len(hist))
			}
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, node.CreateOnly, testCases(0, 2)...)
		changed := testCase(1)
		changed.Status = "closed"
		_, err := s.PutCases(ctx, []*node.Case{testCase(2), changed}, node.CreateOnly, "tester")
		if node.KindOf(err) != node.Conflict {
			t.Fatalf("got %v, want Conflict", err)
		}
		if _, err := s.Case(ctx, testCase(2).Code, false); node.KindOf(err) != node.NotFound {
			t.Fatalf("got %v, want NotFound: a refused batch writes nothing", err)
		}
	})

	t.Run("ErrDuplicateInBatch", func(t *testing.T) {
		s := open(t)
		_, err := s.PutCases(ctx, []*node.Case{testCase(1), testCase(2), testCase(1)}, node.Upsert, "tester")
		if node.KindOf(err) != node.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
		if n, _ := s.CaseCount(ctx); n != 0 {
			t.Fatalf("got count %d, want 0", n)
		}
	})

	t.Run("ErrInvalidWritesNothing", func(t *testing.T) {
		s := open(t)
		bad := testCase(5)
		bad.Citizenship = "XXX"
		noDate := testCase(6)
		noDate.RegistrationDate = ""
		for name, batch := range map[string][]*node.Case{
			"BadCountry":       {testCase(1), testCase(2), bad},
			"NoDate":           {noDate, testCase(3)},
			"EmptyCode":        {testCase(4), {RegistrationDate: "2020"}},
			"NilCase":          {testCase(4), nil},
			"SlashInCode":      {{Code: "a/b", RegistrationDate: "2020"}},
			"TooLongNarrative": {withNarrative(testCase(7), 30000)},
		} {
			_, err := s.PutCases(ctx, batch, node.Upsert, "tester")
			if node.KindOf(err) != node.Invalid {
				t.Fatalf("%s: got %v, want Invalid", name, err)
			}
		}
		if n, _ := s.CaseCount(ctx); n != 0 {
			t.Fatalf("got count %d, want 0", n)
		}
		list, total, err := s.ListCases(ctx, node.CaseFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if total != 0 || len(list) != 0 {
			t.Fatalf("got %d cases, want 0", total)
		}
	})

	t.Run("ErrNoAuthor", func(t *testing.T) {
		s := open(t)
		if _, err := s.PutCases(ctx, []*node.Case{testCase(1)}, node.Upsert, ""); node.KindOf(err) != node.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})

	t.Run("ListCases", func(t *testing.T) {
		s := open(t)
		all := testCases(0, 40)
		MustPut(t, s, node.CreateOnly, all...)
		for _, tt := range []struct {
			name string
			f    node.CaseFilter
			keep func(*node.Case) bool
		}{
			{"All", node.CaseFilter{}, func(*node.Case) bool { return true }},
			{"Prefix", node.CaseFilter{CodePrefix: "T000001"}, func(c *node.Case) bool { return c.Code >= "T0000010" && c.Code <= "T0000019" }},
			{"Status", node.CaseFilter{Status: "closed"}, func(c *node.Case) bool { return c.Status == "closed" }},
			{"Year", node.CaseFilter{Year: 2012}, func(c *node.Case) bool { return c.RegistrationYear() == 2012 }},
			{"Citizenship", node.CaseFilter{Citizenship: "PHL"}, func(c *node.Case) bool { return c.Citizenship == "PHL" }},
			{"Exploitation", node.CaseFilter{ExploitationType: "forced_labour"}, func(c *node.Case) bool { return slices.Contains(c.ExploitationTypes, "forced_labour") }},
			{"NoneRecorded", node.CaseFilter{ExploitationType: "none_recorded"}, func(c *node.Case) bool { return len(c.ExploitationTypes) == 0 }},
			{"Combined", node.CaseFilter{Status: "screened", Citizenship: "UKR"}, func(c *node.Case) bool { return c.Status == "screened" && c.Citizenship == "UKR" }},
			{"Paged", node.CaseFilter{Offset: 5, Limit: 7}, func(*node.Case) bool { return true }},
			{"PagedPastEnd", node.CaseFilter{Offset: 100, Limit: 7}, func(*node.Case) bool { return true }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var want []string
				for _, c := range all {
					if tt.keep(c) {
						want = append(want, c.Code)
					}
				}
				slices.Sort(want)
				wantTotal := len(want)
				want = want[min(tt.f.Offset, len(want)):]
				if tt.f.Limit > 0 {
					want = want[:min(tt.f.Limit, len(want))]
				}
				got, total, err := s.ListCases(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var codes []string
				for _, c := range got {
					codes = append(codes, c.Code)
					if !c.Identity.IsZero() {
						t.Fatalf("case %s: got identity fields in a listing", c.Code)
					}
				}
				if total != wantTotal || !slices.Equal(codes, want) {
					t.Fatalf("got %d %v, want %d %v", total, codes, wantTotal, want)
				}
			})
		}
		if _, _, err := s.ListCases(ctx, node.CaseFilter{Offset: -1}); node.KindOf(err) != node.Invalid {
			t.Fatalf("negative offset: got %v, want Invalid", err)
		}
	})

	t.Run("ForEachCase", func(t *testing.T) {
		s := open(t)
		cases := testCases(0, 25)
		slices.Reverse(cases)
		MustPut(t, s, node.CreateOnly, cases...)
		var codes []string
		err := s.ForEachCase(ctx, true, func(c *node.Case) error {
			codes = append(codes, c.Code)
			if c.Identity.FullName == "" {
				t.Errorf("case %s: got no identity, want it", c.Code)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) != 25 || !slices.IsSorted(codes) {
			t.Fatalf("got %v, want 25 codes in order", codes)
		}
		stop := errors.New("stop")
		n := 0
		err = s.ForEachCase(ctx, false, func(*node.Case) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		})
		if err != stop || n != 3 {
			t.Fatalf("got %v after %d cases, want stop after 3", err, n)
		}
	})

	t.Run("EraseIdentity", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, node.CreateOnly, testCases(0, 3)...)
		v2 := testCase(1)
		v2.Status = "closed"
		MustPut(t, s, node.Upsert, v2)
		if err := s.EraseIdentity(ctx, v2.Code, "officer"); err != nil {
			t.Fatal(err)
		}
		hist, err := s.CaseHistory(ctx, v2.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 {
			t.Fatalf("got %d versions, want 2", len(hist))
		}
		for _, c := range hist {
			if !c.Identity.IsZero() || !c.IdentityErased {
				t.Fatalf("version %d: got identity %v erased %v, want none and erased", c.Version, !c.Identity.IsZero(), c.IdentityErased)
			}
		}
		if hist[1].Status != "closed" || hist[1].Citizenship != v2.Citizenship {
			t.Fatal("erase changed the rest of the record")
		}
		for _, i := range []int{0, 2} {
			c, err := s.Case(ctx, testCase(i).Code, true)
			if err != nil {
				t.Fatal(err)
			}
			if c.Identity.FullName != fakeName(i) || c.IdentityErased {
				t.Fatalf("case %d: got its identity lost, want it kept", i)
			}
		}
		// Re-importing the original leaves the erased identity erased.
		res := MustPut(t, s, node.CreateOnly, v2)
		if got := (node.PutResult{Unchanged: 1}); res != got {
			t.Fatalf("re-import: got %+v, want %+v", res, got)
		}
		c, err := s.Case(ctx, v2.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Identity.IsZero() || !c.IdentityErased {
			t.Fatal("re-import brought an erased identity back")
		}
	})
}

func withNarrative(c *node.Case, n int) *node.Case {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	c.Identity.Narrative = string(b)
	return c
}

// assertSameCase compares two cases ignoring the store's own fields.
func assertSameCase(tb testing.TB, got, want *node.Case) {
	tb.Helper()
	g, w := *got, *want
	g.Version, g.UpdatedAt, g.UpdatedBy, g.IdentityErased = 0, time.Time{}, "", false
	w.Version, w.UpdatedAt, w.UpdatedBy, w.IdentityErased = 0, time.Time{}, "", false
	if !reflect.DeepEqual(&g, &w) {
		tb.Fatalf("case %s: stored case differs from the one written", want.Code)
	}
}

func TestDB_Reopen(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	MustPut(t, db, node.CreateOnly, testCases(0, 50)...)
	v2 := testCase(7)
	v2.Status = "closed"
	MustPut(t, db, node.Upsert, v2)

	db = MustReopenDB(t, db)
	n, err := db.CaseCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 50 {
		t.Fatalf("got count %d, want 50", n)
	}
	for i := range 50 {
		want := testCase(i)
		if i == 7 {
			want = v2
		}
		want.Normalize()
		got, err := db.Case(ctx, want.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		assertSameCase(t, got, want)
	}
	hist, err := db.CaseHistory(ctx, v2.Code, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Fatalf("got %d versions, want 2", len(hist))
	}
	// Writes continue after reopening.
	res := MustPut(t, db, node.CreateOnly, testCases(45, 55)...)
	if got := (node.PutResult{Created: 5, Unchanged: 5}); res != got {
		t.Fatalf("got %+v, want %+v", res, got)
	}
}

func TestDB_OnChange(t *testing.T) {
	ctx := context.Background()
	kr, _ := MustCreateKeyring(t)
	db := NewTestDB(kr.Dir(), kr)
	type call struct {
		oldVersion, newVersion int
		code                   string
		identity               bool
	}
	var calls []call
	db.OnChange = func(old, cur *node.Case) {
		c := call{newVersion: cur.Version, code: cur.Code, identity: !cur.Identity.IsZero()}
		if old != nil {
			c.oldVersion = old.Version
			c.identity = c.identity || !old.Identity.IsZero()
		}
		calls = append(calls, c)
	}
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	MustPut(t, db, node.CreateOnly, testCases(0, 2)...)
	v2 := testCase(1)
	v2.Status = "closed"
	MustPut(t, db, node.Upsert, testCase(0), v2)
	if _, err := db.PutCases(ctx, []*node.Case{testCase(9), {Code: "bad"}}, node.Upsert, "tester"); err == nil {
		t.Fatal("got no error, want Invalid")
	}
	want := []call{
		{0, 1, testCase(0).Code, false},
		{0, 1, testCase(1).Code, false},
		{1, 2, testCase(1).Code, false},
	}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("got %+v, want %+v", calls, want)
	}
}

func TestPutCases_ErrTooMany(t *testing.T) {
	db := MustOpenDB(t)
	cases := make([]*node.Case, MaxBatch+1)
	_, err := db.PutCases(context.Background(), cases, node.Upsert, "tester")
	if node.KindOf(err) != node.Invalid {
		t.Fatalf("got %v, want Invalid", err)
	}
}

func TestPutCases_ErrTxnTooBig(t *testing.T) {
	kr, _ := MustCreateKeyring(t)
	db := NewTestDB(kr.Dir(), kr)
	db.MemTableSize = 1 << 20 // a transaction of about 150 KB
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	_, err := db.PutCases(context.Background(), testCases(0, 2000), node.Upsert, "tester")
	if node.KindOf(err) != node.Invalid {
		t.Fatalf("got %v, want Invalid", err)
	}
	if n, _ := db.CaseCount(context.Background()); n != 0 {
		t.Fatalf("got count %d, want 0", n)
	}
}

func TestDB_ClosedUnavailable(t *testing.T) {
	kr, _ := MustCreateKeyring(t)
	db := NewTestDB(kr.Dir(), kr)
	if _, err := db.Case(context.Background(), "x", false); node.KindOf(err) != node.Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
}

func TestDB_ErrSecondOpen(t *testing.T) {
	db := MustOpenDB(t)
	other := NewTestDB(db.Dir, db.Keyring)
	if err := other.Open(context.Background()); node.KindOf(err) != node.Unavailable {
		other.Close(context.Background())
		t.Fatalf("got %v, want Unavailable", err)
	}
}

// TestDB_Concurrent runs writers, readers, a backup and an erase at once;
// run it with -race.
func TestDB_Concurrent(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	MustPut(t, db, node.CreateOnly, testCases(0, 100)...)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 2 {
		wg.Go(func() {
			for b := range 5 {
				from := 1000 + w*10000 + b*100
				if _, err := db.PutCases(ctx, testCases(from, from+100), node.CreateOnly, "writer"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			if _, err := db.Case(ctx, testCase(i).Code, true); err != nil {
				errs <- err
				return
			}
		}
		if _, _, err := db.ListCases(ctx, node.CaseFilter{Status: "closed"}); err != nil {
			errs <- err
		}
	})
	wg.Go(func() {
		if err := db.EraseIdentity(ctx, testCase(7).Code, "officer"); err != nil {
			errs <- err
		}
	})
	wg.Go(func() {
		if err := db.Backup(ctx, io.Discard); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, _ := db.CaseCount(ctx); n != 1100 {
		t.Fatalf("got count %d, want 1100", n)
	}
	c, err := db.Case(ctx, testCase(8).Code, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity.FullName != fakeName(8) {
		t.Fatal("got an identity lost")
	}
}
