package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// newStatsEnv is a test environment whose server answers statistics, with
// n synthetic cases stored.
func newStatsEnv(tb testing.TB, n int) (*testEnv, []*node.Case) {
	tb.Helper()
	e := newTestEnv(tb)
	e.srv.Query = &node.QueryService{Codebook: e.db.Codebook, Aggregator: e.db, Ledger: e.db, Audit: e.db,
		Policy: node.DefaultPolicy(), Org: "org-test", Now: e.clock.Now}
	var cases []*node.Case
	if n > 0 {
		cases = synthCases(tb, n)
		e.putCases(tb, cases...)
	}
	return e, cases
}

// exact answers sql with the node's query service, as the page must.
func (e *testEnv) statsExactTable(tb testing.TB, sql string) *node.ExactTable {
	tb.Helper()
	q, err := node.ParseSQL(e.db.Codebook, sql)
	if err != nil {
		tb.Fatal(err)
	}
	t, err := e.srv.Query.Exact(context.Background(), q)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// statsAudits returns the stats.exact entries of the audit log.
func (e *testEnv) statsAudits(tb testing.TB) []*node.AuditEntry {
	tb.Helper()
	var out []*node.AuditEntry
	for _, a := range e.auditEntries(tb) {
		if a.Action == ActionStatsExact {
			out = append(out, a)
		}
	}
	return out
}

// statsWant computes a cell's value the plain way: every value of the
// histogram written out, sorted, for quantiles.
func statsWant(cb *node.Codebook, m node.Measure, c node.Tally) string {
	switch m.Func {
	case node.FuncCount:
		return strconv.FormatInt(c.Count, 10)
	case node.FuncSum:
		return strconv.FormatInt(c.Sum, 10)
	case node.FuncAvg:
		if c.Count == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", float64(c.Sum)/float64(c.Count))
	case node.FuncQuantile:
		mf, _ := cb.Measure(m.Field)
		var vals []int64
		for i, h := range c.Hist {
			for range h {
				vals = append(vals, mf.Lo+int64(i))
			}
		}
		if len(vals) == 0 {
			return ""
		}
		k := int(math.Ceil(m.Q*float64(len(vals)))) - 1
		return strconv.FormatInt(vals[max(k, 0)], 10)
	}
	return "?"
}

var (
	statsRowRE = regexp.MustCompile(`<tr><th scope="row">([^<]*)</th>((?:<td>[^<]*</td>)*)</tr>`)
	statsTdRE  = regexp.MustCompile(`<td>([^<]*)</td>`)
	statsSVGRE = regexp.MustCompile(`(?s)<svg .*?</svg>`)
)

// statsPageRows reads the body rows of the page's table: the row label, then
// each cell.
func statsPageRows(body string) map[string][]string {
	out := map[string][]string{}
	for _, m := range statsRowRE.FindAllStringSubmatch(body, -1) {
		var cells []string
		for _, td := range statsTdRE.FindAllStringSubmatch(m[2], -1) {
			cells = append(cells, html.UnescapeString(td[1]))
		}
		out[html.UnescapeString(m[1])] = cells
	}
	return out
}

func TestStatsRoles(t *testing.T) {
	e, _ := newStatsEnv(t, 20)
	const sql = "SELECT COUNT(*) FROM cases GROUP BY gender"
	paths := []string{"/stats", "/stats?measure=count&group1=gender", "/stats.csv?measure=count&group1=gender"}
	api := "/api/stats?query=" + url.QueryEscape(sql)
	for _, tc := range []struct {
		name string
		user string
		page int
		api  int
	}{
		{"Analyst", userAnalyst, http.StatusOK, http.StatusOK},
		{"Admin", userAdmin, http.StatusOK, http.StatusOK},
		{"Caseworker", userCW, http.StatusForbidden, http.StatusForbidden},
		{"Auditor", userAuditor, http.StatusForbidden, http.StatusForbidden},
		{"NoSession", "", http.StatusSeeOther, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.anonymous(t)
			if tc.user != "" {
				c = e.login(t, tc.user)
			}
			for _, p := range paths {
				rec := c.get(p)
				if rec.Code != tc.page {
					t.Fatalf("%s: got %d, want %d", p, rec.Code, tc.page)
				}
				if tc.page == http.StatusSeeOther && !strings.HasPrefix(rec.Header().Get("Location"), "/login?next=") {
					t.Fatalf("%s: got Location %q, want the sign-in page", p, rec.Header().Get("Location"))
				}
				if rec.Code != http.StatusOK && strings.Contains(rec.Body.String(), "<svg") {
					t.Fatalf("%s: got a chart with status %d", p, rec.Code)
				}
			}
			rec := c.get(api)
			if rec.Code != tc.api {
				t.Fatalf("api: got %d, want %d: %s", rec.Code, tc.api, rec.Body)
			}
			if tc.api != http.StatusOK {
				if b := apiErr(t, rec); b.Kind != node.Permission.String() {
					t.Fatalf("api: got kind %q, want permission", b.Kind)
				}
			}
		})
	}
	t.Run("Navigation", func(t *testing.T) {
		for user, want := range map[string]bool{userAnalyst: true, userAdmin: true, userCW: false, userAuditor: false} {
			body := e.login(t, user).get("/no-such-page").Body.String()
			if got := strings.Contains(body, `<a href="/stats"`); got != want {
				t.Fatalf("%s: got a Statistics link %v, want %v", user, got, want)
			}
		}
		body := e.login(t, userAnalyst).get("/stats").Body.String()
		if !strings.Contains(body, `<a href="/stats" aria-current="page">Statistics</a>`) {
			t.Fatal("the Statistics link is not marked as the current page")
		}
	})
	t.Run("Tokens", func(t *testing.T) {
		for role, want := range map[node.Role]int{node.RoleAnalyst: http.StatusOK, node.RoleAdmin: http.StatusOK,
			node.RoleCaseworker: http.StatusForbidden, node.RoleAuditor: http.StatusForbidden} {
			c, _ := e.tokenClient(t, role)
			if rec := c.get(api); rec.Code != want {
				t.Fatalf("%s token: got %d, want %d", role, rec.Code, want)
			}
		}
	})
	t.Run("NoStore", func(t *testing.T) {
		c := e.login(t, userAnalyst)
		for _, p := range append(paths, api) {
			if got := c.get(p).Header().Get("Cache-Control"); got != "no-store" {
				t.Fatalf("%s: got Cache-Control %q, want no-store", p, got)
			}
		}
	})
}

func TestStatsBadForm(t *testing.T) {
	e, _ := newStatsEnv(t, 20)
	c := e.login(t, userAnalyst)
	for _, tc := range []struct {
		name  string
		query string
		key   string // the input the message is beside
		msg   string // part of the message
		kept  string // a typed value shown again
	}{
		{"UnknownMeasure", "measure=median&group1=gender", "measure", "Choose what to compute", ""},
		{"SumWithoutField", "measure=sum&group1=gender", "field", "Choose the number", ""},
		{"UnknownField", "measure=avg&field=height", "field", "Choose one of the numbers", ""},
		{"QuantileOutOfRange", "measure=quantile&field=age&q=1.5", "q", "between 0 and 1", `value="1.5"`},
		{"QuantileNotANumber", "measure=quantile&field=age&q=half", "q", "between 0 and 1", `value="half"`},
		{"UnknownDimension", "measure=count&group1=eye_colour", "group1", "Choose one of the dimensions", ""},
		{"SameDimensionTwice", "measure=count&group1=gender&group2=gender", "group2", "other than the first", ""},
		{"YearsReversed", "measure=count&year_from=2024&year_to=2020", "year_to", "comes before", ""},
		{"YearOutOfRange", "measure=count&year_from=1990", "year_from", "Choose a year from 2000 to 2030", ""},
		{"CodeWithoutDimension", "measure=count&filter_code=woman", "filter_dim", "Choose the dimension of the code", `value="woman"`},
		{"UnknownCode", "measure=count&filter_dim=gender&filter_code=womn", "filter_code", "has no code", `value="womn"`},
		{"UnknownCountry", "measure=count&filter_dim=citizenship&filter_code=Atlantis", "filter_code", "a country&#39;s name", `value="Atlantis"`},
		{"YearAsFilter", "measure=count&filter_dim=registration_year&filter_code=2020", "filter_dim", "registration years above", ""},
		{"TooManyCells", "measure=count&group1=citizenship&group2=country_of_origin", "group2", "cells; at most 20000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.statsAudits(t))
			rec := c.get("/stats?" + tc.query)
			body := rec.Body.String()
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("got %d, want 400", rec.Code)
			}
			re := regexp.MustCompile(`<p class="error-msg" id="` + inputID(tc.key) + `-err">([^<]*)</p>`)
			m := re.FindStringSubmatch(body)
			if m == nil || !strings.Contains(m[1], tc.msg) {
				t.Fatalf("got message %q beside %s, want one with %q", m, tc.key, tc.msg)
			}
			if !strings.Contains(body, `<a href="#`+inputID(tc.key)+`">`) {
				t.Fatalf("the error summary does not link to %s", tc.key)
			}
			if tc.kept != "" && !strings.Contains(body, tc.kept) {
				t.Fatalf("the typed value %s is not kept", tc.kept)
			}
			for _, nothing := range []string{"<svg", "<table", "Download every cell", `id="result-h"`} {
				if strings.Contains(body, nothing) {
					t.Fatalf("got %q on a page with errors", nothing)
				}
			}
			if n := len(e.statsAudits(t)); n != before {
				t.Fatalf("got %d stats audit entries, want %d: nothing was answered", n, before)
			}
			if rec := c.get("/stats.csv?" + tc.query); rec.Code != http.StatusBadRequest || rec.Header().Get("Content-Type") == "text/csv; charset=utf-8" {
				t.Fatalf("csv: got %d %s, want the page with its errors", rec.Code, rec.Header().Get("Content-Type"))
			}
		})
	}
	t.Run("FormAlone", func(t *testing.T) {
		rec := c.get("/stats")
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, `<form method="get" action="/stats"`) || strings.Contains(body, "<table") {
			t.Fatalf("got %d, want the form and no figures: %s", rec.Code, body)
		}
		if !strings.Contains(body, "do not share") {
			t.Fatal("the page does not say the figures are not to be shared")
		}
	})
	t.Run("CodeListShown", func(t *testing.T) {
		body := c.get("/stats?measure=count&filter_dim=gender&filter_code=womn").Body.String()
		if !strings.Contains(body, "trans_nonconforming") {
			t.Fatal("the codes of the filter's dimension are not listed")
		}
	})
}

func TestStatsAnswer(t *testing.T) {
	e, cases := newStatsEnv(t, 400)
	cb := e.db.Codebook
	c := e.login(t, userAnalyst)
	citizenship := cases[0].Citizenship
	for _, tc := range []struct {
		name  string
		form  string
		sql   string
		label func(key []string) string // the row label of a cell
		rows  bool                      // rows of cases (not a cross-tab)
	}{
		{"CountByGender", "measure=count&group1=gender", "SELECT COUNT(*) FROM cases GROUP BY gender", nil, true},
		{"AvgAgeByGenderInYears", "measure=avg&field=age&group1=gender&year_from=2018&year_to=2024",
			"SELECT AVG(age) FROM cases WHERE registration_year BETWEEN 2018 AND 2024 GROUP BY gender", nil, true},
		{"MedianAgeByExploitation", "measure=quantile&field=age&q=0.5&group1=exploitation_type",
			"SELECT QUANTILE(age, 0.5) FROM cases GROUP BY exploitation_type", nil, true},
		{"SumOfServicesByMajority", "measure=sum&field=services_count&group1=majority&filter_dim=citizenship&filter_code=" + url.QueryEscape(cb.Countries.Label(citizenship)),
			"SELECT SUM(services_count) FROM cases WHERE citizenship = '" + citizenship + "' GROUP BY majority", nil, true},
		{"QuantileOfMonthsForWomen", "measure=quantile&field=months_in_exploitation&q=0.9&group1=exploitation_type&filter_dim=gender&filter_code=Woman",
			"SELECT QUANTILE(months_in_exploitation, 0.9) FROM cases WHERE gender = 'woman' GROUP BY exploitation_type", nil, true},
		{"CrossTab", "measure=count&group1=exploitation_type&group2=gender", "SELECT COUNT(*) FROM cases GROUP BY exploitation_type, gender", nil, false},
		{"TwoDimensionsAsRows", "measure=avg&field=age&group1=gender&group2=majority", "SELECT AVG(age) FROM cases GROUP BY gender, majority",
			func(key []string) string { return key[0] }, true},
		{"GroupTwoAlone", "measure=count&group2=data_source", "SELECT COUNT(*) FROM cases GROUP BY data_source", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := e.statsExactTable(t, tc.sql)
			rec := c.get("/stats?" + tc.form)
			body := rec.Body.String()
			if rec.Code != http.StatusOK {
				t.Fatalf("got %d, want 200: %s", rec.Code, body)
			}
			if !strings.Contains(body, html.EscapeString(want.Query.Canonical())) {
				t.Fatalf("the page does not show the query %s", want.Query.Canonical())
			}
			var total int64
			for _, cell := range want.Cells {
				total += cell.Count
			}
			if total == 0 {
				t.Fatal("the query matches no case: the test proves nothing")
			}
			rows := statsPageRows(body)
			q := want.Query
			for i, cell := range want.Cells {
				key := want.CellKey(i)
				labels := make([]string, len(key))
				for j, code := range key {
					labels[j] = statsCodeLabel(cb, q.GroupBy[j], code)
				}
				if !tc.rows {
					// Cross-tab: a row per first code, a column per second.
					row, ok := rows[labels[0]]
					nc := len(want.Domains[1])
					if !ok {
						if cell.Count != 0 {
							t.Fatalf("no row %q", labels[0])
						}
						continue
					}
					if got, w := row[i%nc], strconv.FormatInt(cell.Count, 10); got != w {
						t.Fatalf("%v: got %s, want %s", key, got, w)
					}
					continue
				}
				var row []string
				var ok bool
				if len(labels) == 1 {
					row, ok = rows[labels[0]]
				} else {
					row, ok = statsTwoDimRow(body, labels)
				}
				if !ok {
					t.Fatalf("no row for %v", labels)
				}
				if got, w := row[len(row)-len(statsTail(q))], strconv.FormatInt(cell.Count, 10); got != w {
					t.Fatalf("%v cases: got %s, want %s", key, got, w)
				}
				if q.Measure.Func != node.FuncCount {
					if got, w := row[len(row)-1], statsWant(cb, q.Measure, cell); got != w {
						t.Fatalf("%v %s: got %q, want %q", key, q.Measure.Func, got, w)
					}
				}
			}
		})
	}
	t.Run("NoDimensions", func(t *testing.T) {
		want := e.statsExactTable(t, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2015 AND 2030")
		body := c.get("/stats?measure=count&year_from=2015").Body.String()
		if !strings.Contains(body, fmt.Sprintf("<dt>Cases</dt><dd>%d</dd>", want.Cells[0].Count)) {
			t.Fatalf("got no total of %d cases", want.Cells[0].Count)
		}
		if strings.Contains(body, "<svg") {
			t.Fatal("got a chart of one number")
		}
	})
	t.Run("EmptyCellsHidden", func(t *testing.T) {
		want := e.statsExactTable(t, "SELECT COUNT(*) FROM cases GROUP BY citizenship")
		empty := 0
		for _, cell := range want.Cells {
			if cell.Count == 0 {
				empty++
			}
		}
		body := c.get("/stats?measure=count&group1=citizenship").Body.String()
		if got := len(statsPageRows(body)); got != len(want.Cells)-empty {
			t.Fatalf("got %d rows, want %d (the cells with cases)", got, len(want.Cells)-empty)
		}
		if !strings.Contains(body, fmt.Sprintf("%d of %d cells have no case", empty, len(want.Cells))) {
			t.Fatal("the page does not say how many cells are not shown")
		}
		all := c.get("/stats?measure=count&group1=citizenship&all=1").Body.String()
		if got := len(statsPageRows(all)); got != len(want.Cells) {
			t.Fatalf("all: got %d rows, want %d", got, len(want.Cells))
		}
	})
}

// statsTail are the cells of a row after its dimension labels: cases,
// and the value unless the measure is a count.
func statsTail(q *node.Query) []string {
	if q.Measure.Func == node.FuncCount {
		return []string{"cases"}
	}
	return []string{"cases", "value"}
}

// statsTwoDimRow finds the row of a two-dimension table whose labels are
// labels, and returns its cells after the first label.
func statsTwoDimRow(body string, labels []string) ([]string, bool) {
	re := regexp.MustCompile(`<tr><th scope="row">` + regexp.QuoteMeta(html.EscapeString(labels[0])) + `</th><td>` +
		regexp.QuoteMeta(html.EscapeString(labels[1])) + `</td>((?:<td>[^<]*</td>)*)</tr>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return nil, false
	}
	var cells []string
	for _, td := range statsTdRE.FindAllStringSubmatch(m[1], -1) {
		cells = append(cells, html.UnescapeString(td[1]))
	}
	return cells, true
}

func TestStatsCSV(t *testing.T) {
	e, _ := newStatsEnv(t, 300)
	cb := e.db.Codebook
	c := e.login(t, userAnalyst)
	for _, tc := range []struct {
		name, form, sql string
	}{
		{"Count", "measure=count&group1=exploitation_type&group2=gender&year_from=2010",
			"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2010 AND 2030 GROUP BY exploitation_type, gender"},
		{"Average", "measure=avg&field=age_at_exploitation&group1=citizenship", "SELECT AVG(age_at_exploitation) FROM cases GROUP BY citizenship"},
		{"Total", "measure=quantile&field=age&q=0.25", "SELECT QUANTILE(age, 0.25) FROM cases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := e.statsExactTable(t, tc.sql)
			q := want.Query
			rec := c.get("/stats.csv?" + tc.form)
			if rec.Code != http.StatusOK {
				t.Fatalf("got %d, want 200: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Fatalf("got Content-Type %q, want text/csv", ct)
			}
			if cd := rec.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="exact-statistics-`) {
				t.Fatalf("got Content-Disposition %q, want an attachment", cd)
			}
			recs, err := csv.NewReader(rec.Body).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got, w := recs[0], statsCSVHeader(q); !slices.Equal(got, w) {
				t.Fatalf("got header %q, want %q", got, w)
			}
			if got, w := len(recs)-1, len(want.Cells); got != w {
				t.Fatalf("got %d rows, want every cell: %d", got, w)
			}
			for i, cell := range want.Cells {
				row := recs[i+1]
				key := want.CellKey(i)
				for j, code := range key {
					if row[2*j] != code || row[2*j+1] != statsCodeLabel(cb, q.GroupBy[j], code) {
						t.Fatalf("row %d: got %q, want the codes %q", i+1, row, key)
					}
				}
				if got, w := row[2*len(key)], strconv.FormatInt(cell.Count, 10); got != w {
					t.Fatalf("row %d cases: got %s, want %s", i+1, got, w)
				}
				if q.Measure.Func != node.FuncCount {
					if got, w := row[2*len(key)+1], statsWant(cb, q.Measure, cell); got != w {
						t.Fatalf("row %d value: got %q, want %q", i+1, got, w)
					}
				}
			}
			audits := e.statsAudits(t)
			if a := audits[len(audits)-1]; a.Actor != userAnalyst || a.Detail != q.Canonical() {
				t.Fatalf("got audit %s %q, want %s %q", a.Actor, a.Detail, userAnalyst, q.Canonical())
			}
		})
	}
	t.Run("LinkedFromPage", func(t *testing.T) {
		body := c.get("/stats?measure=count&group1=gender").Body.String()
		if !strings.Contains(body, `href="/stats.csv?group1=gender&amp;measure=count"`) {
			t.Fatal("the page has no CSV link with its parameters")
		}
	})
}

func TestStatsChart(t *testing.T) {
	e, _ := newStatsEnv(t, 300)
	c := e.login(t, userAnalyst)
	for _, tc := range []struct {
		name, form string
		bars       int
	}{
		{"Gender", "measure=count&group1=gender", len(node.ListGender.Codes)},
		{"AverageByTwo", "measure=avg&field=age&group1=gender&group2=majority", -1},
		{"LargestCountries", "measure=count&group1=citizenship", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := c.get("/stats?" + tc.form)
			body := rec.Body.String()
			svg := statsSVGRE.FindString(body)
			if svg == "" {
				t.Fatalf("got no chart: %s", body)
			}
			names := chartCheckSVG(t, svg)
			if !slices.Contains(names, "title") || !slices.Contains(names, "desc") || !strings.Contains(svg, `role="img"`) || !strings.Contains(svg, `aria-labelledby="stats-chart-title"`) {
				t.Fatal("the chart has no accessible name")
			}
			bars := strings.Count(svg, "<rect ")
			if tc.bars >= 0 && bars != tc.bars {
				t.Fatalf("got %d bars, want %d", bars, tc.bars)
			}
			if bars == 0 || bars > maxChartBars {
				t.Fatalf("got %d bars, want 1 to %d", bars, maxChartBars)
			}
			if strings.Contains(svg, "<path d=") {
				t.Fatal("got error bars on exact figures")
			}
			if tc.name == "LargestCountries" && !strings.Contains(body, "The chart") {
				t.Fatal("the page does not say which cells the chart leaves out")
			}
			// The page's CSP allows no inline style: nothing may need one.
			if strings.Contains(body, "style=") {
				t.Fatal("the page has a style attribute")
			}
		})
	}
}

func TestStatsWeight(t *testing.T) {
	e, _ := newStatsEnv(t, 1000)
	c := e.login(t, userAnalyst)
	for _, form := range []string{
		"",
		"measure=count&group1=exploitation_type",
		"measure=count&group1=exploitation_type&group2=gender",
		"measure=avg&field=age&group1=citizenship",
	} {
		rec := c.get("/stats?" + form)
		svg := statsSVGRE.FindString(rec.Body.String())
		t.Logf("/stats?%s: %d bytes (chart %d bytes)", form, rec.Body.Len(), len(svg))
		if rec.Body.Len() > 200<<10 {
			t.Fatalf("/stats?%s: got %d bytes, want at most 200 KiB", form, rec.Body.Len())
		}
	}
}

func TestStatsAudit(t *testing.T) {
	e, _ := newStatsEnv(t, 50)
	c := e.login(t, userAnalyst)
	tok, _ := e.tokenClient(t, node.RoleAdmin)
	const sql = "SELECT AVG(age) FROM cases WHERE registration_year BETWEEN 2015 AND 2020 AND gender = 'woman' GROUP BY majority"
	want := e.statsExactTable(t, sql).Query.Canonical()
	form := "/stats?measure=avg&field=age&group1=majority&year_from=2015&year_to=2020&filter_dim=gender&filter_code=woman"
	for _, tc := range []struct {
		name  string
		c     *client
		path  string
		actor string
	}{
		{"Page", c, form, userAnalyst},
		{"CSV", c, strings.Replace(form, "/stats?", "/stats.csv?", 1), userAnalyst},
		{"API", tok, "/api/stats?query=" + url.QueryEscape(sql), node.TokenActor("tok-admin")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.statsAudits(t))
			if rec := tc.c.get(tc.path); rec.Code != http.StatusOK {
				t.Fatalf("got %d, want 200: %s", rec.Code, rec.Body)
			}
			audits := e.statsAudits(t)
			if len(audits) != before+1 {
				t.Fatalf("got %d new entries, want 1", len(audits)-before)
			}
			a := audits[len(audits)-1]
			if a.Actor != tc.actor || a.Detail != want || a.Subject != "" {
				t.Fatalf("got %s %q %q, want %s and the canonical query %q", a.Actor, a.Subject, a.Detail, tc.actor, want)
			}
		})
	}
	t.Run("NotLogged", func(t *testing.T) {
		for _, l := range e.logs.All() {
			if strings.Contains(l.Message+fmt.Sprint(l.ContextMap()), "AVG(age)") {
				t.Fatalf("got log line %q: statistics are audited, not logged", l.Message)
			}
		}
	})
}

func TestStatsAPI(t *testing.T) {
	e, _ := newStatsEnv(t, 200)
	cb := e.db.Codebook
	c, _ := e.tokenClient(t, node.RoleAnalyst)
	for _, tc := range []struct {
		name, query, sql string
	}{
		{"SQL", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2010 AND 2025 GROUP BY gender, exploitation_type",
			"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2010 AND 2025 GROUP BY gender, exploitation_type"},
		{"JSON", `{"measure": {"func": "quantile", "field": "age", "q": 0.5}, "group_by": ["majority"], "filters": [{"dim": "gender", "codes": ["man", "woman"]}]}`,
			"SELECT QUANTILE(age, 0.5) FROM cases WHERE gender IN ('woman', 'man') GROUP BY majority"},
		{"Total", "select avg(age) from cases", "SELECT AVG(age) FROM cases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := e.statsExactTable(t, tc.sql)
			rec := c.get("/api/stats?query=" + url.QueryEscape(tc.query))
			if rec.Code != http.StatusOK {
				t.Fatalf("got %d, want 200: %s", rec.Code, rec.Body)
			}
			var got apiStatsAnswer
			decodeBody(t, rec, &got)
			q := want.Query
			if !got.Exact || got.Query != q.Canonical() || got.Codebook != cb.Version || !strings.Contains(got.Notice, "do not share") ||
				got.QueryJSON == nil || got.QueryJSON.Canonical() != q.Canonical() {
				t.Fatalf("got %+v, want the exact answer to %s", got, q.Canonical())
			}
			if len(got.Cells) != len(want.Cells) {
				t.Fatalf("got %d cells, want %d", len(got.Cells), len(want.Cells))
			}
			for i, cell := range want.Cells {
				g := got.Cells[i]
				if !slices.Equal(g.Key, want.CellKey(i)) || g.Cases != cell.Count {
					t.Fatalf("cell %d: got %v %d, want %v %d", i, g.Key, g.Cases, want.CellKey(i), cell.Count)
				}
				w := statsWant(cb, q.Measure, cell)
				switch {
				case w == "" && g.Value != nil:
					t.Fatalf("cell %d: got %v, want null", i, *g.Value)
				case w != "" && (g.Value == nil || statsFormat(q.Measure, *g.Value) != w):
					t.Fatalf("cell %d: got %v, want %s", i, g.Value, w)
				}
			}
		})
	}
	for _, tc := range []struct {
		name, query, msg string
	}{
		{"Missing", "", "query parameter is required"},
		{"BadSQL", "SELECT COUNT(*) FROM victims", "cases"},
		{"IdentityField", "SELECT COUNT(*) FROM cases GROUP BY full_name", "identity field"},
		{"TooManyCells", "SELECT COUNT(*) FROM cases GROUP BY citizenship, country_of_origin", "the limit is 20000"},
		{"BadJSON", `{"measure": {"func": "COUNT"}, "colour": 1}`, "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.statsAudits(t))
			rec := c.get("/api/stats?query=" + url.QueryEscape(tc.query))
			b := apiErr(t, rec)
			if rec.Code != http.StatusBadRequest || b.Kind != node.Invalid.String() || !strings.Contains(b.Message, tc.msg) {
				t.Fatalf("got %d %+v, want 400 invalid with %q", rec.Code, b, tc.msg)
			}
			if len(e.statsAudits(t)) != before {
				t.Fatal("a refused query was audited as answered")
			}
		})
	}
}

func TestStatsUnavailable(t *testing.T) {
	e := newTestEnv(t)
	c := e.login(t, userAnalyst)
	if rec := c.get("/stats?measure=count"); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not available") {
		t.Fatalf("page: got %d, want 503", rec.Code)
	}
	rec := c.get("/api/stats?query=" + url.QueryEscape("SELECT COUNT(*) FROM cases"))
	if b := apiErr(t, rec); rec.Code != http.StatusServiceUnavailable || b.Kind != node.Unavailable.String() {
		t.Fatalf("api: got %d %+v, want 503 unavailable", rec.Code, b)
	}
}

func TestStatsNoIdentity(t *testing.T) {
	e, cases := newStatsEnv(t, 200)
	var vals []string
	for _, c := range cases {
		vals = append(vals, identityValues(c)...)
	}
	if len(vals) == 0 {
		t.Fatal("the synthetic cases have no identity values: the test proves nothing")
	}
	for _, user := range []string{userAnalyst, userAdmin} {
		c := e.login(t, user)
		for _, p := range []string{
			"/stats",
			"/stats?measure=count&group1=citizenship&group2=gender&all=1",
			"/stats?measure=avg&field=age&group1=country_of_origin&all=1",
			"/stats?measure=count&group1=exploitation_type&filter_dim=gender&filter_code=woman",
			"/stats.csv?measure=count&group1=citizenship&group2=exploitation_type",
			"/api/stats?query=" + url.QueryEscape("SELECT COUNT(*) FROM cases GROUP BY trafficker_nationality, gender"),
		} {
			if v := leaked(c.get(p).Body.String(), vals); v != "" {
				t.Fatalf("%s %s: the response holds an identity value", user, p)
			}
		}
	}
	for _, l := range e.logs.All() {
		if v := leaked(l.Message+fmt.Sprint(l.ContextMap()), vals); v != "" {
			t.Fatalf("a log line holds an identity value: %q", l.Message)
		}
	}
	for _, a := range e.statsAudits(t) {
		if v := leaked(a.Detail, vals); v != "" {
			t.Fatal("an audit entry holds an identity value")
		}
	}
}

func TestStatsLabels(t *testing.T) {
	cb := node.DefaultCodebook()
	for _, d := range cb.Dimensions {
		if l := statsDimLabel(cb, d.Name); l == "" || strings.Contains(l, "_") {
			t.Fatalf("%s: got label %q, want words", d.Name, l)
		}
	}
	for _, tc := range []struct {
		m    node.Measure
		want string
	}{
		{node.Measure{Func: node.FuncCount}, "Cases"},
		{node.Measure{Func: node.FuncSum, Field: "services_count"}, "Sum of number of services"},
		{node.Measure{Func: node.FuncAvg, Field: "age"}, "Average age at registration"},
		{node.Measure{Func: node.FuncQuantile, Field: "months_in_exploitation", Q: 0.5}, "Median months in exploitation"},
		{node.Measure{Func: node.FuncQuantile, Field: "age", Q: 0.9}, "0.9 quantile of age at registration"},
	} {
		if got := statsMeasureLabel(cb, tc.m); got != tc.want {
			t.Fatalf("got %q, want %q", got, tc.want)
		}
	}
	keys := make([]string, 0, len(statsDimNames))
	for k := range statsDimNames {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := cb.Dimension(k); !ok {
			t.Fatalf("%s is named but is no dimension", k)
		}
	}
}

func TestStatsOpenAPI(t *testing.T) {
	doc, err := parseYAML(string(openAPI))
	if err != nil {
		t.Fatal(err)
	}
	schemas := at(t, doc, "components", "schemas")
	for name, want := range map[string][]string{
		"StatsAnswer":  statsJSONNames[apiStatsAnswer](),
		"StatsCell":    statsJSONNames[apiStatsCell](),
		"StatsQuery":   statsJSONNames[node.Query](),
		"StatsMeasure": statsJSONNames[node.Measure](),
		"StatsFilter":  statsJSONNames[node.Filter](),
	} {
		if got := keys(at(t, schemas, name, "properties")); !slices.Equal(got, want) {
			t.Fatalf("%s: got properties %q, want %q", name, got, want)
		}
	}
	var fields []string
	for _, m := range node.DefaultCodebook().Measures {
		fields = append(fields, m.Name)
	}
	if got := strs(at(t, schemas, "StatsMeasure", "properties", "field", "enum")); !slices.Equal(got, fields) {
		t.Fatalf("got measure fields %q, want %q", got, fields)
	}
}

func statsJSONNames[T any]() []string { return jsonNames(reflect.TypeFor[T]()) }
