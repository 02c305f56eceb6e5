package columnar_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage/columnar"
)

// reference computes q's exact table the naive way: case by case, through
// node.Case.DimensionCodes and MeasureValue.
func reference(tb testing.TB, cases []*node.Case, q *node.Query, consentOnly bool) []node.Tally {
	tb.Helper()
	cb := node.DefaultCodebook()
	domains := q.Domains(cb)
	cells := make([]node.Tally, q.CellCount(cb))
	var lo, hi int64
	bins := 0
	if q.Measure.Func != node.FuncCount {
		m, _ := cb.Measure(q.Measure.Field)
		lo, hi = m.Lo, m.Hi
		bins = int(hi - lo + 1)
	}
	if q.Measure.Func == node.FuncQuantile {
		for i := range cells {
			cells[i].Hist = make([]int64, bins)
		}
	}
next:
	for _, c := range cases {
		if consentOnly && c.Consent != "yes" {
			continue
		}
		for _, f := range q.Filters {
			if !slices.ContainsFunc(c.DimensionCodes(f.Dim), func(v string) bool { return slices.Contains(f.Codes, v) }) {
				continue next
			}
		}
		var v int64
		if q.Measure.Func != node.FuncCount {
			var ok bool
			if v, ok = c.MeasureValue(q.Measure.Field); !ok {
				continue
			}
			v = min(max(v, lo), hi)
		}
		idx := []int{0}
		for d, g := range q.GroupBy {
			var next []int
			for _, code := range c.DimensionCodes(g) {
				pos := slices.Index(domains[d], code)
				if pos < 0 {
					continue
				}
				for _, i := range idx {
					next = append(next, i*len(domains[d])+pos)
				}
			}
			idx = next
		}
		for _, i := range idx {
			cells[i].Count++
			if q.Measure.Func != node.FuncCount {
				cells[i].Sum += v
			}
			if q.Measure.Func == node.FuncQuantile {
				cells[i].Hist[v-lo]++
			}
		}
	}
	return cells
}

func mustBuild(tb testing.TB, cases []*node.Case) *columnar.Table {
	tb.Helper()
	t := columnar.New(node.DefaultCodebook())
	for _, c := range cases {
		t.Upsert(c)
	}
	if t.Len() != len(cases) {
		tb.Fatalf("got %d rows, want %d", t.Len(), len(cases))
	}
	return t
}

func mustQuery(tb testing.TB, sql string) *node.Query {
	tb.Helper()
	q, err := node.ParseSQL(node.DefaultCodebook(), sql)
	if err != nil {
		tb.Fatalf("ParseSQL(%q): %v", sql, err)
	}
	return q
}

// checkExact compares the table's answer to q with the reference.
func checkExact(t *testing.T, tab *columnar.Table, cases []*node.Case, q *node.Query, consentOnly bool) {
	t.Helper()
	got, err := tab.Aggregate(q, columnar.Options{ConsentOnly: consentOnly, MaxCells: 1 << 20})
	if err != nil {
		t.Fatalf("Aggregate(%s): %v", q.Canonical(), err)
	}
	want := reference(t, cases, q, consentOnly)
	if len(got.Cells) != len(want) {
		t.Fatalf("%s: got %d cells, want %d", q.Canonical(), len(got.Cells), len(want))
	}
	if !reflect.DeepEqual(got.Domains, q.Domains(node.DefaultCodebook())) {
		t.Errorf("%s: got domains %v, want %v", q.Canonical(), got.Domains, q.Domains(node.DefaultCodebook()))
	}
	bad := 0
	for i := range want {
		g, w := got.Cells[i], want[i]
		if g.Count != w.Count || g.Sum != w.Sum || !slices.Equal(g.Hist, w.Hist) {
			if bad < 3 {
				t.Errorf("%s: cell %v: got count %d sum %d, want count %d sum %d (hist equal: %v)",
					q.Canonical(), got.CellKey(i), g.Count, g.Sum, w.Count, w.Sum, slices.Equal(g.Hist, w.Hist))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d cells differ", q.Canonical(), bad, len(want))
	}
	if got.Bounded {
		t.Errorf("got Bounded, want exact")
	}
}

// filterCodes picks some codes of dimension d that the data has: a few,
// with the none or unknown code now and then.
func filterCodes(r *rand.Rand, d *node.Dimension) []string {
	v := d.Codes.Values()
	if len(v) > 30 {
		// Countries and years: the commonest codes are first in neither
		// list, so take a random handful and sometimes the last code.
		out := []string{}
		for range 1 + r.IntN(40) {
			out = append(out, v[r.IntN(len(v))])
		}
		if d.Name != "registration_year" {
			common := countryOrder(node.DefaultCodebook())[:8]
			for range r.IntN(3) {
				out = append(out, common[r.IntN(len(common))])
			}
		}
		if r.IntN(3) == 0 {
			out = append(out, v[len(v)-1])
		}
		return out
	}
	var out []string
	for range 1 + r.IntN(min(3, len(v)-1)) {
		out = append(out, v[r.IntN(len(v))])
	}
	return out
}

func TestAggregateEveryDimension(t *testing.T) {
	cb := node.DefaultCodebook()
	cases := genCases(t, 1, 3000)
	tab := mustBuild(t, cases)
	r := rand.New(rand.NewPCG(7, 7))
	measures := []string{"COUNT(*)", "SUM(age)", "AVG(months_in_exploitation)", "QUANTILE(age_at_exploitation, 0.5)", "SUM(services_count)"}
	for _, d := range cb.Dimensions {
		for i, m := range measures {
			t.Run(d.Name+"/group/"+m, func(t *testing.T) {
				checkExact(t, tab, cases, mustQuery(t, fmt.Sprintf("SELECT %s FROM cases GROUP BY %s", m, d.Name)), i == 1)
			})
		}
		t.Run(d.Name+"/filter", func(t *testing.T) {
			for range 10 {
				codes := filterCodes(r, &d)
				data, _ := jsonOf(node.Query{Measure: node.Measure{Func: "COUNT"}, GroupBy: []string{"gender"}, Filters: []node.Filter{{Dim: d.Name, Codes: codes}}})
				q, err := node.ParseJSON(cb, data)
				if err != nil {
					t.Fatal(err)
				}
				checkExact(t, tab, cases, q, false)
			}
		})
		t.Run(d.Name+"/filter-grouped", func(t *testing.T) {
			codes := filterCodes(r, &d)
			second := "majority"
			if d.Name == second {
				second = "gender"
			}
			data, _ := jsonOf(node.Query{Measure: node.Measure{Func: "AVG", Field: "age"}, GroupBy: []string{d.Name, second}, Filters: []node.Filter{{Dim: d.Name, Codes: codes}}})
			q, err := node.ParseJSON(cb, data)
			if err != nil {
				t.Fatal(err)
			}
			checkExact(t, tab, cases, q, false)
		})
	}
}

func TestAggregateRandomQueries(t *testing.T) {
	t.Run("Scan", testAggregateRandomQueries)
	t.Run("Pairs", func(t *testing.T) {
		defer columnar.SetPairRowsPerEntry(0)()
		testAggregateRandomQueries(t)
	})
}

func testAggregateRandomQueries(t *testing.T) {
	cb := node.DefaultCodebook()
	cases := genCases(t, 2, 2000)
	tab := mustBuild(t, cases)
	r := rand.New(rand.NewPCG(11, 12))
	measures := []node.Measure{
		{Func: "COUNT"}, {Func: "SUM", Field: "age"}, {Func: "AVG", Field: "age_at_exploitation"},
		{Func: "QUANTILE", Field: "services_count", Q: 0.9}, {Func: "QUANTILE", Field: "months_in_exploitation", Q: 0.1},
	}
	done := 0
	for done < 300 {
		raw := node.Query{Measure: measures[r.IntN(len(measures))]}
		for range r.IntN(4) {
			raw.GroupBy = append(raw.GroupBy, cb.Dimensions[r.IntN(len(cb.Dimensions))].Name)
		}
		for range r.IntN(4) {
			d := &cb.Dimensions[r.IntN(len(cb.Dimensions))]
			raw.Filters = append(raw.Filters, node.Filter{Dim: d.Name, Codes: filterCodes(r, d)})
		}
		data, _ := jsonOf(raw)
		q, err := node.ParseJSON(cb, data)
		if err != nil || q.Check(cb, 1<<20) != nil {
			continue // duplicate groups, conflicting filters, too many bins
		}
		done++
		consent := r.IntN(4) == 0
		t.Run(q.Canonical(), func(t *testing.T) { checkExact(t, tab, cases, q, consent) })
	}
}

func TestAggregateMultiValued(t *testing.T) {
	cases := []*node.Case{
		{Code: "a", RegistrationDate: "2020", ExploitationTypes: []string{"sexual", "begging"}, TransitCountries: []string{"AFG", "ALB", "DZA", "FRA", "DEU"}},
		{Code: "b", RegistrationDate: "2021", ExploitationTypes: []string{"begging"}, TransitCountries: []string{"FRA"}},
		{Code: "c", RegistrationDate: "2021"},
		{Code: "d", RegistrationDate: "2022", RecruiterRelations: []string{"friend", "family"}, Traffickers: []node.Trafficker{{Nationality: "FRA"}, {Sex: "male"}}},
	}
	for _, c := range cases {
		c.Normalize()
	}
	tab := mustBuild(t, cases)
	tests := []struct {
		name string
		sql  string
		want map[string]int64 // cell key joined by "/" → count; absent cells are 0
	}{
		{"InIsHasAny", "SELECT COUNT(*) FROM cases WHERE exploitation_type IN ('sexual', 'begging')", map[string]int64{"": 2}},
		{"NoneRecorded", "SELECT COUNT(*) FROM cases GROUP BY exploitation_type", map[string]int64{"sexual": 1, "begging": 2, "none_recorded": 2}},
		{"NoneFilter", "SELECT COUNT(*) FROM cases WHERE transit_country = 'none_recorded'", map[string]int64{"": 2}},
		{"Overflow", "SELECT COUNT(*) FROM cases WHERE transit_country = 'DEU'", map[string]int64{"": 1}},
		{"OverflowGroup", "SELECT COUNT(*) FROM cases WHERE transit_country IN ('DEU', 'FRA', 'AFG') GROUP BY transit_country", map[string]int64{"AFG": 1, "FRA": 2, "DEU": 1}},
		{"RecruiterUnknown", "SELECT COUNT(*) FROM cases GROUP BY recruiter_relation", map[string]int64{"friend": 1, "family": 1, "unknown": 3}},
		{"TraffickerUnknown", "SELECT COUNT(*) FROM cases GROUP BY trafficker_nationality", map[string]int64{"FRA": 1, "unknown": 1, "none_recorded": 3}},
		{"TwoMulti", "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY exploitation_type, transit_country",
			map[string]int64{"sexual/AFG": 1, "sexual/ALB": 1, "sexual/DZA": 1, "sexual/FRA": 1, "sexual/DEU": 1, "begging/AFG": 1, "begging/ALB": 1, "begging/DZA": 1, "begging/FRA": 1, "begging/DEU": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustQuery(t, tt.sql)
			got, err := tab.Aggregate(q, columnar.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range got.Cells {
				key := ""
				for j, k := range got.CellKey(i) {
					if j > 0 {
						key += "/"
					}
					key += k
				}
				if c.Count != tt.want[key] {
					t.Errorf("cell %q: got %d, want %d", key, c.Count, tt.want[key])
				}
			}
			checkExact(t, tab, cases, q, false)
		})
	}
}

func TestAggregateMeasures(t *testing.T) {
	cases := []*node.Case{
		{Code: "a", RegistrationDate: "2020", Age: node.IntPtr(110), Gender: "woman"}, // clamped to 100
		{Code: "b", RegistrationDate: "2020", Age: node.IntPtr(30), Gender: "woman", Consent: "yes"},
		{Code: "c", RegistrationDate: "2020", AgeBand: "30_38", Gender: "woman"}, // age unknown
		{Code: "d", RegistrationDate: "2020", Age: node.IntPtr(0), Gender: "man", Assistance: []node.Service{{Service: "legal"}, {Service: "medical"}}},
	}
	for _, c := range cases {
		c.Normalize()
	}
	tab := mustBuild(t, cases)
	tests := []struct {
		name    string
		sql     string
		consent bool
		count   []int64
		sum     []int64
	}{
		{"Count", "SELECT COUNT(*) FROM cases GROUP BY gender", false, []int64{3, 1, 0, 0}, []int64{0, 0, 0, 0}},
		{"SumClamped", "SELECT SUM(age) FROM cases GROUP BY gender", false, []int64{2, 1, 0, 0}, []int64{130, 0, 0, 0}},
		{"Avg", "SELECT AVG(age) FROM cases", false, []int64{3}, []int64{130}},
		{"Consent", "SELECT SUM(age) FROM cases", true, []int64{1}, []int64{30}},
		{"Services", "SELECT SUM(services_count) FROM cases", false, []int64{4}, []int64{2}},
		{"Quantile", "SELECT QUANTILE(age, 0.5) FROM cases WHERE gender = 'woman'", false, []int64{2}, []int64{130}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tab.Aggregate(mustQuery(t, tt.sql), columnar.Options{ConsentOnly: tt.consent})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range got.Cells {
				if c.Count != tt.count[i] || c.Sum != tt.sum[i] {
					t.Errorf("cell %d: got count %d sum %d, want %d %d", i, c.Count, c.Sum, tt.count[i], tt.sum[i])
				}
			}
		})
	}
	t.Run("Hist", func(t *testing.T) {
		got, err := tab.Aggregate(mustQuery(t, "SELECT QUANTILE(age, 0.5) FROM cases"), columnar.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h := got.Cells[0].Hist
		if len(h) != 101 || h[0] != 1 || h[30] != 1 || h[100] != 1 {
			t.Errorf("got hist of %d bins with [0]=%d [30]=%d [100]=%d, want 101 bins with 1, 1, 1", len(h), h[0], h[30], h[100])
		}
	})
}

func TestAggregateParallel(t *testing.T) {
	defer columnar.SetMinWorkerRows(100)()
	defer columnar.SetPairRowsPerEntry(0)()
	cases := genCases(t, 3, 5000)
	tab := mustBuild(t, cases)
	for _, sql := range []string{
		"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2012 AND 2020 GROUP BY citizenship, exploitation_type",
		"SELECT QUANTILE(age, 0.5) FROM cases GROUP BY transit_country",
		"SELECT SUM(months_in_exploitation) FROM cases WHERE means_of_control IN ('threats', 'none_recorded') GROUP BY trafficker_role, gender",
		// Too many cells for the pair path.
		"SELECT COUNT(*) FROM cases GROUP BY citizenship, country_of_origin, exploitation_type",
		"SELECT AVG(age) FROM cases GROUP BY exploitation_type, country_of_exploitation, citizenship",
	} {
		t.Run(sql, func(t *testing.T) { checkExact(t, tab, cases, mustQuery(t, sql), false) })
	}
}

func TestUpsertReplaces(t *testing.T) {
	cases := genCases(t, 4, 500)
	tab := mustBuild(t, cases)
	g := newGen(99)
	for i := 0; i < len(cases); i += 3 {
		c := &node.Case{}
		g.fill(c, cases[i].Code)
		cases[i] = c
		tab.Upsert(c)
	}
	if tab.Len() != len(cases) {
		t.Fatalf("got %d rows, want %d", tab.Len(), len(cases))
	}
	if b := tab.Bytes(); b < 40*len(cases) || b > 1000*len(cases) {
		t.Errorf("got %d bytes for %d cases, want 40–1000 per case", b, len(cases))
	}
	for _, sql := range []string{
		"SELECT COUNT(*) FROM cases GROUP BY gender, exploitation_type",
		"SELECT SUM(age) FROM cases GROUP BY transit_country",
		"SELECT QUANTILE(months_in_exploitation, 0.5) FROM cases WHERE trafficker_nationality IN ('unknown', 'none_recorded')",
	} {
		t.Run(sql, func(t *testing.T) { checkExact(t, tab, cases, mustQuery(t, sql), true) })
	}
}

func TestDelete(t *testing.T) {
	cases := genCases(t, 5, 1000)
	tab := mustBuild(t, cases)
	r := rand.New(rand.NewPCG(5, 5))
	r.Shuffle(len(cases), func(i, j int) { cases[i], cases[j] = cases[j], cases[i] })
	for _, c := range cases[:600] {
		if !tab.Delete(c.Code) {
			t.Fatalf("Delete(%s): got false, want true", c.Code)
		}
	}
	if tab.Delete(cases[0].Code) {
		t.Errorf("Delete of a deleted case: got true, want false")
	}
	if tab.Delete("no-such-case") {
		t.Errorf("Delete of an unknown case: got true, want false")
	}
	left := cases[600:]
	if tab.Len() != len(left) {
		t.Fatalf("got %d rows, want %d", tab.Len(), len(left))
	}
	for _, sql := range []string{
		"SELECT COUNT(*) FROM cases GROUP BY registration_year, transit_country",
		"SELECT AVG(age) FROM cases WHERE trafficker_nationality IN ('unknown') GROUP BY trafficker_sex",
	} {
		t.Run(sql, func(t *testing.T) { checkExact(t, tab, left, mustQuery(t, sql), false) })
	}
	// Every remaining code is still found: upserting it again adds no row.
	for _, c := range left {
		tab.Upsert(c)
	}
	if tab.Len() != len(left) {
		t.Errorf("got %d rows after re-upserting, want %d", tab.Len(), len(left))
	}
	for _, c := range left {
		tab.Delete(c.Code)
	}
	if tab.Len() != 0 {
		t.Errorf("got %d rows, want 0", tab.Len())
	}
	got, err := tab.Aggregate(mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY gender"), columnar.Options{})
	if err != nil || len(got.Cells) != 4 || got.Cells[0].Count != 0 {
		t.Errorf("got %v, %v, want 4 empty cells", got, err)
	}
}

func TestDeleteCompacts(t *testing.T) {
	// Enough deleted code bytes to trigger the arena's compaction.
	tab := columnar.New(node.DefaultCodebook())
	const n = 70000 // past 1<<16 rows, where the index widens its row field
	code := func(i int) string { return fmt.Sprintf("case-with-a-long-code-%08d", i) }
	for i := range n {
		tab.Upsert(&node.Case{Code: code(i), RegistrationDate: "2020", Gender: "man"})
	}
	for i := 0; i < n; i++ {
		if i%10 != 0 {
			tab.Delete(code(i))
		}
	}
	for i := 0; i < n; i += 10 {
		tab.Upsert(&node.Case{Code: code(i), RegistrationDate: "2021", Gender: "woman"})
	}
	if tab.Len() != n/10 {
		t.Fatalf("got %d rows, want %d", tab.Len(), n/10)
	}
	got, err := tab.Aggregate(mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2021 GROUP BY gender"), columnar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Cells[0].Count != n/10 {
		t.Errorf("got %d women in 2021, want %d", got.Cells[0].Count, n/10)
	}
}

func TestAggregateInvalid(t *testing.T) {
	tab := columnar.New(node.DefaultCodebook())
	tests := []struct {
		name string
		q    node.Query
		opt  columnar.Options
	}{
		{"UnknownDimension", node.Query{Codebook: node.CodebookVersion, Measure: node.Measure{Func: "COUNT"}, GroupBy: []string{"full_name"}}, columnar.Options{}},
		{"MaxCells", *mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY citizenship, gender"), columnar.Options{MaxCells: 100}},
		{"NotCanonical", node.Query{Codebook: node.CodebookVersion, Measure: node.Measure{Func: "COUNT"}, Filters: []node.Filter{{Dim: "gender", Codes: []string{"man", "woman"}}}}, columnar.Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tab.Aggregate(&tt.q, tt.opt); node.KindOf(err) != node.Invalid {
				t.Errorf("got %v, want Invalid", err)
			}
		})
	}
}

func TestConcurrentReadersAndWriter(t *testing.T) {
	cases := genCases(t, 6, 2000)
	tab := mustBuild(t, cases[:1000])
	q := mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY exploitation_type")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := tab.Aggregate(q, columnar.Options{Bound: true})
				if err != nil {
					errs <- err
					return
				}
				var total int64
				for _, c := range got.Cells {
					total += c.Count
				}
				// Each case counts in 1 or 2 cells (L0 = 2).
				if n := int64(tab.Len()); total < 0 || total > 2*int64(len(cases)) {
					errs <- fmt.Errorf("got total %d with about %d rows", total, n)
					return
				}
			}
		}()
	}
	for _, c := range cases[1000:] {
		tab.Upsert(c)
	}
	for _, c := range cases[:500] {
		tab.Delete(c.Code)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkExact(t, tab, cases[500:], q, false)
}

func TestBoundedSingleCase(t *testing.T) {
	c := &node.Case{
		Code: "one", RegistrationDate: "2020",
		ExploitationTypes: []string{"sexual", "forced_labour", "forced_marriage", "begging", "slavery_like", "other"},
		TransitCountries:  []string{"AFG", "ALB", "DZA", "FRA", "DEU"},
		MeansOfControl:    []string{"threats", "abuse"},
	}
	c.Normalize()
	tab := mustBuild(t, []*node.Case{c})
	tests := []struct {
		name  string
		sql   string
		l0    int
		cells int64 // cells the case reaches in every draw
	}{
		{"One", "SELECT COUNT(*) FROM cases GROUP BY exploitation_type", 2, 2},
		{"Two", "SELECT COUNT(*) FROM cases GROUP BY exploitation_type, transit_country", 4, 4},
		{"Three", "SELECT COUNT(*) FROM cases WHERE transit_country IN ('AFG', 'ALB', 'DZA', 'FRA', 'DEU', 'ITA') GROUP BY exploitation_type, transit_country, means_of_control", 12, 8},
		{"FewerCodesThanL0", "SELECT COUNT(*) FROM cases GROUP BY means_of_control", 3, 2},
		{"RestrictedDomain", "SELECT COUNT(*) FROM cases WHERE exploitation_type IN ('sexual', 'begging', 'organ_removal') GROUP BY exploitation_type", 2, 2},
		{"DomainOfOne", "SELECT COUNT(*) FROM cases WHERE transit_country = 'FRA' GROUP BY transit_country", 1, 1},
		{"None", "SELECT COUNT(*) FROM cases GROUP BY labour_type", 1, 1},
		{"Single", "SELECT COUNT(*) FROM cases GROUP BY gender", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustQuery(t, tt.sql)
			seen := map[int]int{}
			const draws = 2000
			for range draws {
				got, err := tab.Aggregate(q, columnar.Options{Bound: true, MaxCells: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if !got.Bounded || got.L0 != tt.l0 {
					t.Fatalf("got Bounded %v L0 %d, want true %d", got.Bounded, got.L0, tt.l0)
				}
				var total int64
				for i, cell := range got.Cells {
					if cell.Count > 1 {
						t.Fatalf("cell %v: got %d, want at most 1", got.CellKey(i), cell.Count)
					}
					total += cell.Count
					if cell.Count == 1 {
						seen[i]++
					}
				}
				if total != tt.cells {
					t.Fatalf("got %d cells reached, want %d", total, tt.cells)
				}
			}
			// Each code of the case is kept equally often: with k codes and
			// bound l, each cell is reached with probability l/k per
			// dimension. Check the spread is within 6 standard deviations.
			p := float64(tt.cells) / float64(len(seen))
			sd := math.Sqrt(draws * p * (1 - p))
			for i, n := range seen {
				if math.Abs(float64(n)-draws*p) > 6*sd+1 {
					t.Errorf("cell %d: reached %d times in %d draws, want about %.0f", i, n, draws, draws*p)
				}
			}
		})
	}
}

func TestBoundedExpectation(t *testing.T) {
	t.Run("Scan", testBoundedExpectation)
	t.Run("Pairs", func(t *testing.T) {
		defer columnar.SetPairRowsPerEntry(0)()
		testBoundedExpectation(t)
	})
}

func testBoundedExpectation(t *testing.T) {
	cb := node.DefaultCodebook()
	cases := genCases(t, 8, 4000)
	tab := mustBuild(t, cases)
	for _, sql := range []string{
		"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2010 AND 2020 GROUP BY citizenship, exploitation_type",
		"SELECT SUM(age) FROM cases GROUP BY means_of_control, transit_country",
		"SELECT COUNT(*) FROM cases WHERE assistance_service IN ('legal', 'shelter', 'medical') GROUP BY assistance_service",
		"SELECT SUM(age) FROM cases GROUP BY gender, means_of_control",
		"SELECT QUANTILE(age, 0.5) FROM cases GROUP BY exploitation_type",
		"SELECT COUNT(*) FROM cases GROUP BY trafficker_nationality",
	} {
		t.Run(sql, func(t *testing.T) {
			q := mustQuery(t, sql)
			domains := q.Domains(cb)
			got, err := tab.Aggregate(q, columnar.Options{Bound: true})
			if err != nil {
				t.Fatal(err)
			}
			// The expected count of each cell: a case with k codes of a
			// bounded dimension in the domain keeps each with probability
			// min(1, L0/k); the total is exact.
			mean := make([]float64, len(got.Cells))
			variance := make([]float64, len(got.Cells))
			sumMean := make([]float64, len(got.Cells))
			sumVar := make([]float64, len(got.Cells))
			var total float64
		next:
			for _, c := range cases {
				for _, f := range q.Filters {
					if !slices.ContainsFunc(c.DimensionCodes(f.Dim), func(v string) bool { return slices.Contains(f.Codes, v) }) {
						continue next
					}
				}
				var v float64
				if q.Measure.Func != node.FuncCount {
					x, ok := c.MeasureValue(q.Measure.Field)
					if !ok {
						continue
					}
					m, _ := cb.Measure(q.Measure.Field)
					v = float64(min(max(x, m.Lo), m.Hi))
				}
				type cell struct {
					i int
					p float64
				}
				cells := []cell{{0, 1}}
				for d, g := range q.GroupBy {
					var in []int
					for _, code := range c.DimensionCodes(g) {
						if pos := slices.Index(domains[d], code); pos >= 0 {
							in = append(in, pos)
						}
					}
					p := 1.0
					if dim, _ := cb.Dimension(g); dim.Multi && len(in) > dim.L0 {
						p = float64(dim.L0) / float64(len(in))
					}
					var next []cell
					for _, cl := range cells {
						for _, pos := range in {
							next = append(next, cell{cl.i*len(domains[d]) + pos, cl.p * p})
						}
					}
					cells = next
				}
				reached := 1.0
				for d, g := range q.GroupBy {
					n := 0
					for _, code := range c.DimensionCodes(g) {
						if slices.Contains(domains[d], code) {
							n++
						}
					}
					if dim, _ := cb.Dimension(g); dim.Multi {
						n = min(n, dim.L0)
					}
					reached *= float64(n)
				}
				total += reached
				for _, cl := range cells {
					mean[cl.i] += cl.p
					variance[cl.i] += cl.p * (1 - cl.p)
					sumMean[cl.i] += v * cl.p
					sumVar[cl.i] += v * v * cl.p * (1 - cl.p)
				}
			}
			var gotTotal int64
			for i, cell := range got.Cells {
				gotTotal += cell.Count
				if math.Abs(float64(cell.Count)-mean[i]) > 6*math.Sqrt(variance[i])+1e-9 {
					t.Errorf("cell %v: got %d, want %.1f ± %.1f", got.CellKey(i), cell.Count, mean[i], math.Sqrt(variance[i]))
				}
				if math.Abs(float64(cell.Sum)-sumMean[i]) > 6*math.Sqrt(sumVar[i])+1e-9 {
					t.Errorf("cell %v: got sum %d, want %.1f ± %.1f", got.CellKey(i), cell.Sum, sumMean[i], math.Sqrt(sumVar[i]))
				}
				if q.Measure.Func == node.FuncQuantile {
					var n int64
					for _, h := range cell.Hist {
						n += h
					}
					if n != cell.Count {
						t.Errorf("cell %v: got %d in the histogram, want the count %d", got.CellKey(i), n, cell.Count)
					}
				}
			}
			if float64(gotTotal) != total {
				t.Errorf("got %d contributions in all, want exactly %.0f", gotTotal, total)
			}
		})
	}
}

func TestBoundedSeeded(t *testing.T) {
	cases := genCases(t, 9, 1000)
	tab := mustBuild(t, cases)
	q := mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY exploitation_type, means_of_control")
	run := func(seed uint64) []node.Tally {
		got, err := tab.Aggregate(q, columnar.Options{Bound: true, Rand: rand.New(rand.NewPCG(seed, 0))})
		if err != nil {
			t.Fatal(err)
		}
		return got.Cells
	}
	if a, b := run(1), run(1); !reflect.DeepEqual(a, b) {
		t.Errorf("got different tables from one seed, want equal")
	}
	if a, b := run(1), run(2); reflect.DeepEqual(a, b) {
		t.Errorf("got equal tables from two seeds, want different draws")
	}
}

// jsonOf is the wire form of a query given field by field.
func jsonOf(q node.Query) ([]byte, error) {
	q.Codebook = node.CodebookVersion
	return json.Marshal(q)
}

func TestGrow(t *testing.T) {
	cases := genCases(t, 10, 3000)
	tab := columnar.New(node.DefaultCodebook())
	tab.Grow(1000, 0)
	for _, c := range cases[:1000] {
		tab.Upsert(c)
	}
	tab.Grow(2000, 8) // rehashes the codes of the rows already there
	for _, c := range cases[1000:] {
		tab.Upsert(c)
	}
	for _, c := range cases[:10] {
		tab.Upsert(c)
	}
	if tab.Len() != len(cases) {
		t.Fatalf("got %d rows, want %d", tab.Len(), len(cases))
	}
	checkExact(t, tab, cases, mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY gender, exploitation_type"), false)
}
