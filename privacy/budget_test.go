package privacy

import (
	"errors"
	"maps"
	"math"
	"strconv"
	"testing"
)

func TestToMicro(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   float64
		want Micro
		ok   bool
	}{
		{"Zero", 0, 0, true},
		{"Half", 0.5, 500_000, true},
		{"Decimal", 0.1, 100_000, true},
		{"DecimalSum", 0.1 + 0.2, 300_000, true},
		{"Eight", 8, 8_000_000, true},
		{"RoundsUp", 0.1000001, 100_001, true},
		{"RoundsUpTiny", 1e-12, 1, true},
		{"DeltaMicro", 1e-6, 1, true},
		{"DeltaTiny", 1e-16, 1, true},
		{"Large", 123456.7, 123_456_700_000, true},
		{"DeltaBelowMicro", 1e-8, 1, true},
		{"DeltaAboveMicro", 1.5e-6, 2, true},
		{"ErrNegative", -0.1, 0, false},
		{"ErrNaN", math.NaN(), 0, false},
		{"ErrInf", math.Inf(1), 0, false},
		{"ErrHuge", 1e15, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ToMicro(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ToMicro(%v): got %v, %v, want %v (ok=%v)", tc.in, int64(got), err, int64(tc.want), tc.ok)
			}
		})
	}
	a, err := ToAmount(0.5, 1e-6)
	if err != nil || a != (Amount{500_000, 1}) {
		t.Fatalf("ToAmount(0.5, 1e-6): got %+v, %v", a, err)
	}
	if _, err := ToAmount(0.5, -1); err == nil {
		t.Fatal("ToAmount with negative δ: got nil error, want one")
	}
}

func TestMicroString(t *testing.T) {
	for _, tc := range []struct {
		in   Micro
		want string
	}{
		{0, "0.0"}, {1, "0.000001"}, {500_000, "0.5"}, {1_000_000, "1.0"},
		{7_800_000, "7.8"}, {8_000_000, "8.0"}, {10, "0.00001"}, {1_234_567, "1.234567"}, {-500_000, "-0.5"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Micro(%d).String(): got %q, want %q", int64(tc.in), got, tc.want)
		}
	}
	if got := Micro(2_500_000).Float64(); got != 2.5 {
		t.Errorf("Float64: got %v, want 2.5", got)
	}
}

func TestCaps(t *testing.T) {
	d := DefaultCaps()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Caps{NodePerYear: Amount{8_000_000, 100}, OrgPerYear: Amount{4_000_000, 100}, PerQuery: Amount{1_000_000, 10}}
	if d != want {
		t.Fatalf("DefaultCaps: got %+v, want %+v", d, want)
	}
	for name, c := range map[string]Caps{
		"ErrZeroEpsilon":    {NodePerYear: Amount{8, 0}, OrgPerYear: Amount{0, 0}, PerQuery: Amount{1, 0}},
		"ErrNegativeDelta":  {NodePerYear: Amount{8, -1}, OrgPerYear: Amount{4, 0}, PerQuery: Amount{1, 0}},
		"ErrZeroQueryCap":   {NodePerYear: Amount{8, 0}, OrgPerYear: Amount{4, 0}},
		"ErrEverythingZero": {},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: got nil error, want one", name)
		}
	}
}

func TestCharge(t *testing.T) {
	caps := DefaultCaps()
	half := Amount{Epsilon: 500_000}
	gauss := Amount{Epsilon: 500_000, Delta: 1}
	for _, tc := range []struct {
		name     string
		node     map[int]Amount
		org      map[int]Amount
		cost     Amount
		years    []int
		wantNode map[int]Amount
		wantOrg  map[int]Amount
		cap      *CapError
		text     string
	}{
		{
			name: "OK", cost: half, years: []int{2021, 2022},
			node:     map[int]Amount{2021: {1_000_000, 0}},
			org:      map[int]Amount{},
			wantNode: map[int]Amount{2021: {1_500_000, 0}, 2022: half},
			wantOrg:  map[int]Amount{2021: half, 2022: half},
		},
		{
			name: "OKGaussian", cost: gauss, years: []int{2020},
			node:     map[int]Amount{2020: {0, 99}},
			org:      map[int]Amount{2020: {0, 50}},
			wantNode: map[int]Amount{2020: {500_000, 100}},
			wantOrg:  map[int]Amount{2020: {500_000, 51}},
		},
		{
			name: "OKUpToTheCap", cost: half, years: []int{2021},
			node:     map[int]Amount{2021: {7_500_000, 0}},
			org:      map[int]Amount{2021: {3_500_000, 0}},
			wantNode: map[int]Amount{2021: {8_000_000, 0}},
			wantOrg:  map[int]Amount{2021: {4_000_000, 0}},
		},
		{
			name: "OKDuplicateYears", cost: half, years: []int{2022, 2021, 2022},
			wantNode: map[int]Amount{2021: half, 2022: half},
			wantOrg:  map[int]Amount{2021: half, 2022: half},
		},
		{
			name: "OKNoYears", cost: half,
			wantNode: map[int]Amount{}, wantOrg: map[int]Amount{},
		},
		{
			name: "ErrPerQueryEpsilon", cost: Amount{Epsilon: 1_500_000}, years: []int{2021},
			cap:  &CapError{Cap: CapPerQuery, Param: "ε", Limit: 1_000_000, Cost: 1_500_000},
			text: "per-query ε cap 1.0",
		},
		{
			name: "ErrPerQueryDelta", cost: Amount{Epsilon: 1, Delta: 11}, years: []int{2021},
			cap:  &CapError{Cap: CapPerQuery, Param: "δ", Limit: 10, Cost: 11},
			text: "per-query δ cap 0.00001",
		},
		{
			name: "ErrNodeEpsilon", cost: half, years: []int{2020, 2021},
			node: map[int]Amount{2021: {7_800_000, 0}},
			cap:  &CapError{Cap: CapNode, Param: "ε", Year: 2021, Limit: 8_000_000, Spent: 7_800_000, Cost: 500_000},
			text: "node-wide ε cap for 2021 (8.0; spent 7.8)",
		},
		{
			name: "ErrNodeDelta", cost: gauss, years: []int{2021},
			node: map[int]Amount{2021: {0, 100}},
			cap:  &CapError{Cap: CapNode, Param: "δ", Year: 2021, Limit: 100, Spent: 100, Cost: 1},
			text: "node-wide δ cap for 2021 (0.0001; spent 0.0001)",
		},
		{
			name: "ErrOrgEpsilon", cost: half, years: []int{2021, 2022},
			node: map[int]Amount{2022: {3_900_000, 0}},
			org:  map[int]Amount{2022: {3_900_000, 0}},
			cap:  &CapError{Cap: CapOrg, Param: "ε", Year: 2022, Limit: 4_000_000, Spent: 3_900_000, Cost: 500_000},
			text: "organisation ε cap for 2022 (4.0; spent 3.9)",
		},
		{
			name: "ErrOrgDelta", cost: gauss, years: []int{2021},
			org:  map[int]Amount{2021: {0, 100}},
			cap:  &CapError{Cap: CapOrg, Param: "δ", Year: 2021, Limit: 100, Spent: 100, Cost: 1},
			text: "organisation δ cap for 2021 (0.0001; spent 0.0001)",
		},
		{
			name: "ErrNodeFirst", cost: half, years: []int{2021},
			node: map[int]Amount{2021: {8_000_000, 0}},
			org:  map[int]Amount{2021: {4_000_000, 0}},
			cap:  &CapError{Cap: CapNode, Param: "ε", Year: 2021, Limit: 8_000_000, Spent: 8_000_000, Cost: 500_000},
			text: "node-wide ε cap for 2021 (8.0; spent 8.0)",
		},
		{
			name: "ErrOverflow", cost: half, years: []int{2021},
			node: map[int]Amount{2021: {math.MaxInt64, 0}},
			cap:  &CapError{Cap: CapNode, Param: "ε", Year: 2021, Limit: 8_000_000, Spent: math.MaxInt64, Cost: 500_000},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodeBefore, orgBefore := maps.Clone(tc.node), maps.Clone(tc.org)
			gotNode, gotOrg, err := caps.Charge(tc.node, tc.org, tc.cost, tc.years)
			if !maps.Equal(tc.node, nodeBefore) || !maps.Equal(tc.org, orgBefore) {
				t.Fatal("Charge modified its arguments")
			}
			if tc.cap == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				if !maps.Equal(gotNode, tc.wantNode) || !maps.Equal(gotOrg, tc.wantOrg) {
					t.Fatalf("got node %v org %v, want node %v org %v", gotNode, gotOrg, tc.wantNode, tc.wantOrg)
				}
				return
			}
			var ce *CapError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CapError", err)
			}
			if *ce != *tc.cap {
				t.Fatalf("got %+v, want %+v", *ce, *tc.cap)
			}
			if gotNode != nil || gotOrg != nil {
				t.Fatalf("got node %v org %v with a refusal, want nothing charged", gotNode, gotOrg)
			}
			if tc.text != "" && ce.Error() != tc.text {
				t.Fatalf("got text %q, want %q", ce.Error(), tc.text)
			}
		})
	}
	t.Run("ErrNegativeCost", func(t *testing.T) {
		if _, _, err := caps.Charge(nil, nil, Amount{Epsilon: -1}, []int{2021}); err == nil {
			t.Fatal("got nil error, want one")
		}
	})
	t.Run("PublicHidesNodeSpending", func(t *testing.T) {
		e := &CapError{Cap: CapNode, Param: "ε", Year: 2021, Limit: 8_000_000, Spent: 7_800_000}
		if got, want := e.Public(), "node-wide ε cap for 2021 reached"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		o := &CapError{Cap: CapOrg, Param: "ε", Year: 2021, Limit: 4_000_000, Spent: 3_900_000}
		if o.Public() != o.Error() {
			t.Fatalf("organisation refusal: got %q, want %q", o.Public(), o.Error())
		}
	})
}

func TestMoveYear(t *testing.T) {
	for _, tc := range []struct {
		name          string
		src, dst, out Amount
	}{
		{"SourceHigher", Amount{3_000_000, 5}, Amount{1_000_000, 1}, Amount{3_000_000, 5}},
		{"DestinationHigher", Amount{1_000_000, 1}, Amount{2_000_000, 7}, Amount{2_000_000, 7}},
		{"Mixed", Amount{3_000_000, 1}, Amount{1_000_000, 7}, Amount{3_000_000, 7}},
		{"Empty", Amount{}, Amount{}, Amount{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MoveYear(tc.src, tc.dst); got != tc.out {
				t.Fatalf("got %+v, want %+v", got, tc.out)
			}
		})
	}
	a := Amount{3, 4}
	if got := a.Add(Amount{1, 1}); got != (Amount{4, 5}) {
		t.Fatalf("Add: got %+v", got)
	}
	if got := a.Sub(Amount{5, 1}); got != (Amount{0, 3}) {
		t.Fatalf("Sub: got %+v", got)
	}
}

func FuzzToMicro(f *testing.F) {
	for _, x := range []float64{0, 0.1, 0.5, 1, 8, 1e-6, 1e-8, 1e-16, 0.30000000000000004, 123456.7, -1, 1e300} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		m, err := ToMicro(x)
		if err != nil {
			return
		}
		if m < 0 || float64(m) < x*MicroPerUnit*(1-1e-12)-1e-12 {
			t.Fatalf("ToMicro(%v) = %d, below %v micro-units", x, int64(m), x*MicroPerUnit)
		}
		if x > 0 && m == 0 {
			t.Fatalf("ToMicro(%v) = 0, want at least 1", x)
		}
		back, err := strconv.ParseFloat(m.String(), 64)
		if err != nil {
			t.Fatalf("%q does not parse: %v", m.String(), err)
		}
		if again, err := ToMicro(back); err != nil || again != m {
			t.Fatalf("String round trip of %d: got %d, %v", int64(m), int64(again), err)
		}
	})
}
