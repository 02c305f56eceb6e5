package casefile

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

// bigFile returns a ctfed CSV of n rows spanning many batches, in which
// every row i with i%97 == 5 has a bad age and every row i with i%251 == 7
// repeats the case code of row i-1; it returns the data and the lines of
// the bad rows.
func bigFile(n int) (string, []int) {
	var b strings.Builder
	b.WriteString(ctfedHeader)
	var bad []int
	for i := range n {
		code, age := fmt.Sprintf("B-%05d", i), 18+i%30
		line := i + 2
		switch {
		case i%97 == 5:
			age = 500
			bad = append(bad, line)
		case i%251 == 7:
			code = fmt.Sprintf("B-%05d", i-1)
			bad = append(bad, line)
		}
		fmt.Fprintf(&b, "%s,%d,woman,%d,UKR,,,threats,,yes\n", code, 2015+i%10, age)
	}
	return b.String(), bad
}

// waitGoroutines fails t unless the number of goroutines drops to at most
// want before a deadline.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: got %v, want at most %v", runtime.NumGoroutine(), want)
		}
		runtime.Gosched()
	}
}

func TestScanOrder(t *testing.T) {
	const n = 5000
	data, bad := bigFile(n)
	var lines []int
	var codes []string
	res, err := Scan(strings.NewReader(data), "big.csv", ReadOptions{}, func(line int, c *node.Case) error {
		lines = append(lines, line)
		codes = append(codes, c.Code)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.RowCount, n; got != want {
		t.Errorf("rows: got %v, want %v", got, want)
	}
	if got, want := res.Rejected, bad; !slices.Equal(got, want) {
		t.Errorf("rejected: got %v, want %v", got, want)
	}
	if got, want := len(lines), n-len(bad); got != want {
		t.Fatalf("cases: got %v, want %v", got, want)
	}
	if !slices.IsSorted(lines) {
		t.Errorf("lines are not in file order")
	}
	for i, line := range lines {
		if got, want := codes[i], fmt.Sprintf("B-%05d", line-2); got != want {
			t.Fatalf("line %d: got %v, want %v", line, got, want)
		}
	}
	var errLines []int
	for _, e := range res.Errors {
		errLines = append(errLines, e.Line)
	}
	if got, want := errLines, bad; !slices.Equal(got, want) {
		t.Errorf("error lines: got %v, want %v", got, want)
	}
	if got, want := res.Errors[1].Msg, "duplicates the case code of line 8"; got != want {
		t.Errorf("duplicate: got %v, want %v", got, want)
	}
}

func TestScanStops(t *testing.T) {
	const n = 5000
	data, bad := bigFile(n)
	validIn := func(rows int) int { // valid rows among the first rows
		k := 0
		for _, line := range bad {
			if line-1 <= rows {
				k++
			}
		}
		return rows - k
	}
	tests := []struct {
		name     string
		data     string
		opt      ReadOptions
		stopAt   int // fn fails at this case, if not 0
		wantKind node.Kind
		wantMsg  string
		wantFn   int // calls of fn
	}{
		{name: "FnError", data: data, stopAt: 3000, wantMsg: "stop", wantFn: 3000},
		{name: "FnErrorFirst", data: data, stopAt: 1, wantMsg: "stop", wantFn: 1},
		{name: "MaxRows", data: data, opt: ReadOptions{Limits: Limits{MaxRows: 2000}}, wantKind: node.Invalid,
			wantMsg: "more than 2000 rows", wantFn: validIn(2000)},
		{name: "FileErrorLate", data: data + "X-1,2020,wo\xffman,,,,,,,\n" + data[len(ctfedHeader):], wantKind: node.Invalid,
			wantMsg: fmt.Sprintf("line %d, column 3: the text is not valid UTF-8", n+2), wantFn: validIn(n)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			calls := 0
			_, err := Scan(strings.NewReader(tt.data), "big.csv", tt.opt, func(line int, c *node.Case) error {
				calls++
				if calls == tt.stopAt {
					return errors.New("stop")
				}
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error: got %v, want one saying %q", err, tt.wantMsg)
			}
			if tt.wantKind != node.Unknown {
				if got := node.KindOf(err); got != tt.wantKind {
					t.Errorf("kind: got %v, want %v", got, tt.wantKind)
				}
			}
			if got, want := calls, tt.wantFn; got != want {
				t.Errorf("calls of fn: got %v, want %v", got, want)
			}
			waitGoroutines(t, before)
		})
	}
}

func TestScanManyIdenticalCTDCRows(t *testing.T) {
	// Identical rows across many batches get distinct codes, the same
	// ones on every read.
	var b strings.Builder
	b.WriteString("yearOfRegistration,gender,ageBroad\n")
	for range 1500 {
		b.WriteString("2019,Woman,09--17\n")
	}
	data := b.String()
	read := func() []string {
		res := mustRead(t, data, "ctdc.csv", ReadOptions{})
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, c := range res.Cases {
			codes = append(codes, c.Code)
		}
		return codes
	}
	first := read()
	if got, want := len(slices.Compact(slices.Sorted(slices.Values(first)))), 1500; got != want {
		t.Errorf("distinct codes: got %v, want %v", got, want)
	}
	if got := read(); !slices.Equal(got, first) {
		t.Errorf("a second read gave other codes")
	}
	// The first rows' codes do not depend on the rows after them.
	short := strings.Join(strings.SplitAfter(data, "\n")[:11], "")
	res := mustRead(t, short, "ctdc.csv", ReadOptions{})
	for i, c := range res.Cases {
		if got, want := c.Code, first[i]; got != want {
			t.Errorf("row %d: got %v, want %v", i+2, got, want)
		}
	}
}

func TestScanLegacyLabelNotesInFileOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString("yearOfRegistration,gender,typeOfExploitConcatenated\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "2015,Female,Sexual exploitation;Mystery %d\n", 9-i/200)
	}
	res := mustRead(t, b.String(), "legacy.csv", ReadOptions{Format: FormatCTDCLegacy})
	want := "typeOfExploitConcatenated: 2000 label(s) ctfed does not know were ignored (Mystery 9, Mystery 8, Mystery 7, Mystery 6, Mystery 5)"
	if got := strings.Join(res.Notes, "; "); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestScanDecoderPanic(t *testing.T) {
	// No input should make a decoder panic; if one does, Scan reports the
	// row as an Internal error instead of ending the process.
	saved := ctfedFields["gender"]
	t.Cleanup(func() { ctfedFields["gender"] = saved })
	ctfedFields["gender"] = ctfedField{dec: func(st *rowState, v string) string {
		if v == "boom" {
			panic("decoder bug")
		}
		return saved.dec(st, v)
	}, enc: saved.enc}
	data, _ := bigFile(1000)
	data = strings.Replace(data, "B-00600,2015,woman", "B-00600,2015,boom", 1)
	calls := 0
	_, err := Scan(strings.NewReader(data), "big.csv", ReadOptions{}, func(int, *node.Case) error { calls++; return nil })
	if got, want := node.KindOf(err), node.Internal; got != want {
		t.Fatalf("kind: got %v, want %v (%v)", got, want, err)
	}
	if !strings.Contains(err.Error(), "line 602") {
		t.Errorf("error %q does not name line 602", err)
	}
	if calls == 0 || calls >= 600 {
		t.Errorf("calls of fn: got %v, want the valid rows before line 602", calls)
	}
}
