package casefile

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// manyCases returns a ctfed CSV of n cases.
func manyCases(n int) string {
	var b strings.Builder
	b.WriteString(ctfedHeader)
	for i := range n {
		fmt.Fprintf(&b, "M-%04d,%d,woman,%d,UKR,,,threats,,yes\n", i, 2015+i%10, 18+i%30)
	}
	return b.String()
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	res := mustRead(t, manyCases(10), "cases.csv", ReadOptions{})
	store := newMemStore()
	var progress []string
	opt := ImportOptions{BatchSize: 3, By: "test", Progress: func(done, total int) {
		progress = append(progress, fmt.Sprintf("%d/%d", done, total))
	}}
	got, err := Import(ctx, store, res, opt)
	if err != nil {
		t.Fatal(err)
	}
	if want := (node.PutResult{Created: 10}); got != want {
		t.Errorf("result: got %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(store.sizes), "[3 3 3 1]"; got != want {
		t.Errorf("batches: got %v, want %v", got, want)
	}
	if got, want := strings.Join(progress, " "), "3/10 6/10 9/10 10/10"; got != want {
		t.Errorf("progress: got %v, want %v", got, want)
	}
	t.Run("ReimportUnchanged", func(t *testing.T) {
		res := mustRead(t, manyCases(10), "cases.csv", ReadOptions{})
		got, err := Import(ctx, store, res, ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := (node.PutResult{Unchanged: 10}); got != want {
			t.Errorf("result: got %v, want %v", got, want)
		}
	})
}

func TestImportFailingBatch(t *testing.T) {
	ctx := context.Background()
	res := mustRead(t, manyCases(10), "cases.csv", ReadOptions{})
	store := newMemStore()
	store.failAt = 2
	got, err := Import(ctx, store, res, ImportOptions{BatchSize: 4})
	if got, want := node.KindOf(err), node.Unavailable; got != want {
		t.Fatalf("kind: got %v, want %v (%v)", got, want, err)
	}
	if !strings.Contains(err.Error(), "lines 6–9") {
		t.Errorf("error %q does not name the batch's lines", err)
	}
	if want := (node.PutResult{Created: 4}); got != want {
		t.Errorf("result: got %v, want %v", got, want)
	}
	// Importing again completes the file: whole batches, no duplicate.
	store.failAt = 0
	got, err = Import(ctx, store, res, ImportOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := (node.PutResult{Created: 6, Unchanged: 4}); got != want {
		t.Errorf("result: got %v, want %v", got, want)
	}
	if n, _ := store.CaseCount(ctx); n != 10 {
		t.Errorf("stored: got %v, want %v", n, 10)
	}
}

func TestImportReader(t *testing.T) {
	ctx := context.Background()
	data := manyCases(7) + "BAD,2020,woman,999,UKR,,,,,\n"
	store := newMemStore()
	res, put, err := ImportReader(ctx, store, strings.NewReader(data), "cases.csv", ReadOptions{}, ImportOptions{BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if want := (node.PutResult{Created: 7}); put != want {
		t.Errorf("result: got %v, want %v", put, want)
	}
	if got, want := fmt.Sprint(res.Rejected, res.Valid, len(res.Cases)), "[9] 7 0"; got != want {
		t.Errorf("rejected, valid, kept: got %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(store.sizes), "[5 2]"; got != want {
		t.Errorf("batches: got %v, want %v", got, want)
	}
}

func TestImportCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := mustRead(t, manyCases(3), "cases.csv", ReadOptions{})
	_, err := Import(ctx, newMemStore(), res, ImportOptions{})
	if got, want := node.KindOf(err), node.Unavailable; got != want {
		t.Errorf("kind: got %v, want %v", got, want)
	}
}
