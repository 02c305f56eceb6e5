package casefile

import (
	"context"
	"fmt"
	"io"
	"reflect"
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

func TestImportFile(t *testing.T) {
	good := manyCases(10)
	bad := manyCases(7) + "BAD,2020,woman,999,UKR,,,,,\n" // line 9
	accept := func(*Result) error { return nil }
	refuse := func(*Result) error { return node.E("test", node.Permission, "not now") }
	tests := []struct {
		name         string
		data         string
		maxMemory    int64
		check        func(*Result) error
		cancel       bool
		wantKind     node.Kind
		wantPut      node.PutResult
		wantOpens    int
		wantBatches  string
		wantProgress string
	}{
		{name: "KeptInMemory", data: good, wantPut: node.PutResult{Created: 10}, wantOpens: 1,
			wantBatches: "[4 4 2]", wantProgress: "4/10 8/10 10/10"},
		{name: "ReadTwice", data: good, maxMemory: 2000, wantPut: node.PutResult{Created: 10}, wantOpens: 2,
			wantBatches: "[4 4 2]", wantProgress: "4/10 8/10 10/10"},
		{name: "BadRowRefused", data: bad, wantKind: node.Invalid, wantOpens: 1, wantBatches: "[]"},
		{name: "BadRowSkipped", data: bad, check: accept, wantPut: node.PutResult{Created: 7}, wantOpens: 1,
			wantBatches: "[4 3]", wantProgress: "4/7 7/7"},
		{name: "BadRowSkippedReadTwice", data: bad, maxMemory: 2000, check: accept, wantPut: node.PutResult{Created: 7},
			wantOpens: 2, wantBatches: "[4 3]", wantProgress: "4/7 7/7"},
		{name: "CheckRefuses", data: good, check: refuse, wantKind: node.Permission, wantOpens: 1, wantBatches: "[]"},
		{name: "Cancelled", data: good, cancel: true, wantKind: node.Unavailable, wantOpens: 1, wantBatches: "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			store := newMemStore()
			opens := 0
			open := func() (io.ReadCloser, error) {
				opens++
				return io.NopCloser(strings.NewReader(tt.data)), nil
			}
			var progress []string
			opt := ImportOptions{BatchSize: 4, By: "test", MaxMemory: tt.maxMemory, Progress: func(done, total int) {
				progress = append(progress, fmt.Sprintf("%d/%d", done, total))
			}}
			res, put, err := ImportFile(ctx, store, open, "cases.csv", ReadOptions{}, opt, tt.check)
			if got := node.KindOf(err); got != tt.wantKind {
				t.Fatalf("kind: got %v, want %v (%v)", got, tt.wantKind, err)
			}
			if put != tt.wantPut {
				t.Errorf("result: got %v, want %v", put, tt.wantPut)
			}
			if opens != tt.wantOpens {
				t.Errorf("opens: got %v, want %v", opens, tt.wantOpens)
			}
			if got := fmt.Sprint(store.sizes); got != tt.wantBatches {
				t.Errorf("batches: got %v, want %v", got, tt.wantBatches)
			}
			if got := strings.Join(progress, " "); got != tt.wantProgress {
				t.Errorf("progress: got %v, want %v", got, tt.wantProgress)
			}
			if err != nil {
				return
			}
			// The same result and the same stored cases as reading the file.
			want := mustRead(t, tt.data, "cases.csv", ReadOptions{})
			if got, w := fmt.Sprint(res.RowCount, res.Valid, res.Rejected, len(res.Cases)), fmt.Sprint(want.RowCount, want.Valid, want.Rejected, 0); got != w {
				t.Errorf("rows, valid, rejected, kept: got %v, want %v", got, w)
			}
			for _, c := range want.Cases {
				got, err := store.Case(ctx, c.Code, true)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, c) {
					t.Errorf("case %s: got %+v, want %+v", c.Code, got, c)
				}
			}
			// Importing again changes nothing.
			_, again, err := ImportFile(ctx, store, open, "cases.csv", ReadOptions{}, ImportOptions{By: "test", MaxMemory: tt.maxMemory}, tt.check)
			if err != nil {
				t.Fatal(err)
			}
			if want := (node.PutResult{Unchanged: tt.wantPut.Created}); again != want {
				t.Errorf("again: got %v, want %v", again, want)
			}
		})
	}
	t.Run("OpenFails", func(t *testing.T) {
		open := func() (io.ReadCloser, error) { return nil, node.E("test", node.NotFound, "no such file") }
		_, _, err := ImportFile(context.Background(), newMemStore(), open, "cases.csv", ReadOptions{}, ImportOptions{By: "test"}, nil)
		if got, want := node.KindOf(err), node.NotFound; got != want {
			t.Errorf("kind: got %v, want %v", got, want)
		}
	})
}
