package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// The statistics page: exact figures of the node's own cases for its
// analysts and admins, from a small GET form (measure, up to two GROUP BY
// dimensions, a registration-year range and one dimension = code),
// validated on the server and answered by node.QueryService.Exact. The
// figures are shown as a table and a bar chart, and downloaded as CSV
// (/stats.csv with the same parameters); /api/stats answers a query in SQL
// or JSON. Exact figures stay on the node: they are never cached (every
// response is no-store), never sent to other members and never logged;
// each answer is written to the audit log with its canonical query only.

// statsRoles may use the statistics page, its CSV download and its API.
var statsRoles = []node.Role{node.RoleAnalyst, node.RoleAdmin}

// ActionStatsExact is the audit action of every exact statistics answer
// (page, CSV or API); its Detail is the canonical query, never a figure.
const ActionStatsExact = "stats.exact"

// statsNotice labels every exact answer.
const statsNotice = "Exact figures of this organisation's own cases — do not share."

// Limits of the statistics page.
const (
	// statsAllCells: a table of at most this many cells shows every cell;
	// a larger one shows the cells with cases unless asked for all.
	statsAllCells = 60
	// statsMaxRows is the most rows a page shows; the CSV has every cell.
	statsMaxRows = 2000
	// statsMatrixCols: two dimensions are shown as a cross-tab when the
	// second has at most this many codes (COUNT only).
	statsMatrixCols = 12
	// statsChartAllBars: a chart of at most this many cells draws the
	// empty ones too.
	statsChartAllBars = 12
)

func (s *Server) statsRoutes(mux *http.ServeMux) {
	mux.Handle("GET /stats", s.page(s.statsPage, statsRoles...))
	mux.Handle("GET /stats.csv", s.page(s.statsCSV, statsRoles...))
}

func (s *Server) statsAPIRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/stats", s.apiStats, statsRoles},
	}
}

// statsForm is the statistics form as typed: every value kept as a string
// so that a form with errors shows what was sent.
type statsForm struct {
	Measure, Field, Q        string
	Group1, Group2           string
	YearFrom, YearTo         string
	FilterDim, FilterCode    string
	All                      bool
	submitted                bool
	errs                     map[string]string // form key → message
	general                  []string          // problems of the whole query
	groupErrKey, filterCodes string
}

// The form's keys, in the order of the form and of its error summary.
var statsKeys = []string{"measure", "field", "q", "group1", "group2", "year_from", "year_to", "filter_dim", "filter_code"}

func readStatsForm(v url.Values) *statsForm {
	f := &statsForm{errs: map[string]string{}}
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	f.Measure, f.Field, f.Q = strings.ToLower(get("measure")), get("field"), get("q")
	f.Group1, f.Group2 = get("group1"), get("group2")
	f.YearFrom, f.YearTo = get("year_from"), get("year_to")
	f.FilterDim, f.FilterCode = get("filter_dim"), get("filter_code")
	f.All = v.Get("all") == "1"
	for _, k := range statsKeys {
		if v.Has(k) {
			f.submitted = true
		}
	}
	return f
}

// values returns the form as URL parameters: the link to the same answer.
func (f *statsForm) values() url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"measure": f.Measure, "field": f.Field, "q": f.Q, "group1": f.Group1, "group2": f.Group2,
		"year_from": f.YearFrom, "year_to": f.YearTo, "filter_dim": f.FilterDim, "filter_code": f.FilterCode} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if f.Measure == "" {
		v.Set("measure", "count")
	}
	return v
}

func (f *statsForm) bad(key, msg string) {
	if _, ok := f.errs[key]; !ok {
		f.errs[key] = msg
	}
}

// query builds the canonical node.Query the form asks for and checks it;
// nil when the form has errors (in f.errs and f.general).
func (s *Server) statsQuery(f *statsForm) *node.Query {
	cb := s.Codebook
	q := &node.Query{Codebook: cb.Version}

	// Measure.
	switch f.Measure {
	case "", "count":
		q.Measure.Func = node.FuncCount
	case "sum":
		q.Measure.Func = node.FuncSum
	case "avg":
		q.Measure.Func = node.FuncAvg
	case "quantile":
		q.Measure.Func = node.FuncQuantile
	default:
		f.bad("measure", "Choose what to compute: a count of cases, a sum, an average or a quantile.")
	}
	if q.Measure.Func != "" && q.Measure.Func != node.FuncCount {
		switch _, ok := cb.Measure(f.Field); {
		case f.Field == "":
			f.bad("field", "Choose the number to compute it of.")
		case !ok:
			f.bad("field", "Choose one of the numbers listed.")
		default:
			q.Measure.Field = f.Field
		}
	}
	if q.Measure.Func == node.FuncQuantile {
		v, err := strconv.ParseFloat(strings.ReplaceAll(f.Q, ",", "."), 64)
		switch {
		case f.Q == "":
			f.bad("q", "Type the quantile: a number between 0 and 1, such as 0.5 for the median.")
		case err != nil || !(v > 0 && v < 1):
			f.bad("q", "The quantile must be a number between 0 and 1 (not 0 or 1), such as 0.5 for the median.")
		default:
			q.Measure.Q = v
		}
	}

	// GROUP BY: group2 alone counts as the first.
	groups := slices.DeleteFunc([]string{f.Group1, f.Group2}, func(g string) bool { return g == "" })
	keys := []string{"group1", "group2"}
	if f.Group1 == "" {
		keys = keys[1:]
	}
	for i, g := range groups {
		switch _, ok := cb.Dimension(g); {
		case !ok:
			f.bad(keys[i], "Choose one of the dimensions listed.")
		case i > 0 && g == groups[0]:
			f.bad(keys[i], "Choose a dimension other than the first, or none.")
		default:
			q.GroupBy = append(q.GroupBy, g)
		}
	}
	f.groupErrKey = "group1"
	if len(keys) > 0 {
		f.groupErrKey = keys[len(keys)-1]
	}

	// Filters: the year range, then one dimension = code.
	var filters []node.Filter
	if years, ok := s.statsYears(f); ok && years != nil {
		filters = append(filters, node.Filter{Dim: "registration_year", Codes: years})
	}
	switch d, ok := cb.Dimension(f.FilterDim); {
	case f.FilterDim == "" && f.FilterCode != "":
		f.bad("filter_dim", "Choose the dimension of the code, or clear the code.")
	case f.FilterDim == "":
	case !ok:
		f.bad("filter_dim", "Choose one of the dimensions listed.")
	case d.Name == "registration_year":
		f.bad("filter_dim", "Choose the registration years above.")
	case f.FilterCode == "":
		f.bad("filter_code", "Type a code or a label of "+statsDimLabel(cb, d.Name)+".")
		f.filterCodes = d.Name
	default:
		code, ok := statsResolveCode(cb, d, f.FilterCode)
		if !ok {
			f.bad("filter_code", statsUnknownCode(cb, d, f.FilterCode))
			f.filterCodes = d.Name
			break
		}
		if len(d.Codes.Codes) > 1 {
			filters = append(filters, node.Filter{Dim: d.Name, Codes: []string{code}})
		}
	}
	sort.Slice(filters, func(i, j int) bool { return filters[i].Dim < filters[j].Dim })
	q.Filters = filters
	if len(q.GroupBy) == 0 {
		q.GroupBy = nil
	}
	if len(q.Filters) == 0 {
		q.Filters = nil
	}
	if len(f.errs) > 0 {
		return nil
	}

	// The size of the answer, said beside the dimensions.
	maxCells := s.statsMaxCells()
	cells := q.CellCount(cb)
	if cells > maxCells {
		f.bad(f.groupErrKey, fmt.Sprintf("The table would have %d cells; at most %d are allowed. Group by smaller dimensions, or filter one of them.", cells, maxCells))
		return nil
	}
	if q.Measure.Func == node.FuncQuantile {
		m, _ := cb.Measure(q.Measure.Field)
		if bins := int(m.Hi - m.Lo + 1); cells > node.MaxHistogramBins/bins {
			f.bad(f.groupErrKey, fmt.Sprintf("A quantile of %s over %d cells is too large to compute (%d values per cell). Group by smaller dimensions.", statsFieldLabel(cb, q.Measure.Field), cells, bins))
			return nil
		}
	}
	if err := q.Check(cb, maxCells); err != nil {
		f.general = append(f.general, sentence(statsErrText(err)))
		return nil
	}
	return q
}

// statsYears reads the registration-year range: the years' codes, nil for
// every year (no filter), false on an error.
func (s *Server) statsYears(f *statsForm) ([]string, bool) {
	cb := s.Codebook
	from, to := cb.FirstYear, cb.LastYear
	ok := true
	read := func(key, v string, dst *int) {
		if v == "" {
			return
		}
		y, err := strconv.Atoi(v)
		if err != nil || y < cb.FirstYear || y > cb.LastYear {
			f.bad(key, fmt.Sprintf("Choose a year from %d to %d.", cb.FirstYear, cb.LastYear))
			ok = false
			return
		}
		*dst = y
	}
	read("year_from", f.YearFrom, &from)
	read("year_to", f.YearTo, &to)
	if !ok {
		return nil, false
	}
	if from > to {
		f.bad("year_to", fmt.Sprintf("The last year (%d) comes before the first (%d).", to, from))
		return nil, false
	}
	if from == cb.FirstYear && to == cb.LastYear {
		return nil, true
	}
	var out []string
	for y := from; y <= to; y++ {
		out = append(out, strconv.Itoa(y))
	}
	return out, true
}

func (s *Server) statsMaxCells() int {
	if s.Query != nil && s.Query.Policy.MaxCells > 0 {
		return s.Query.Policy.MaxCells
	}
	return node.DefaultMaxCells
}

// statsErrText returns the message of a query error for the person who
// wrote the query: the query checker's own words (they depend only on the
// query), or the kind's fixed message.
func statsErrText(err error) string {
	var ne *node.Error
	if node.KindOf(err) == node.Invalid && errors.As(err, &ne) && ne.Err != nil {
		return ne.Err.Error()
	}
	return node.KindOf(err).Message()
}

// statsResolveCode returns the code of d typed as v: its code or its label
// in any case, and for a country dimension an ISO alpha-2 code too.
func statsResolveCode(cb *node.Codebook, d *node.Dimension, v string) (string, bool) {
	if d.Codes.Has(v) {
		return v, true
	}
	for _, c := range d.Codes.Codes {
		if strings.EqualFold(c.Value, v) || strings.EqualFold(c.Label, v) {
			return c.Value, true
		}
	}
	if d.Codes.Has("AFG") && len(v) == 2 {
		if a3, ok := cb.CountryFromAlpha2(v); ok && d.Codes.Has(a3) {
			return a3, true
		}
	}
	return "", false
}

// statsUnknownCode says that v is no code of d, and which codes are.
func statsUnknownCode(cb *node.Codebook, d *node.Dimension, v string) string {
	label := statsDimLabel(cb, d.Name)
	if d.Codes.Has("AFG") {
		return fmt.Sprintf("%s has no code %q: type a country's name or its ISO code (FRA or FR).", label, statsClip(v))
	}
	return fmt.Sprintf("%s has no code %q: see its codes below.", label, statsClip(v))
}

// statsClip shortens typed text for a message.
func statsClip(s string) string {
	r := []rune(s)
	if len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// Labels.

// statsDimNames are the labels of dimensions that are not a field of the
// record under the same name.
var statsDimNames = map[string]string{
	"registration_year":        "Registration year",
	"transit_country":          "Transit country",
	"exploitation_type":        "Type of exploitation",
	"labour_type":              "Type of labour",
	"sexual_exploitation_type": "Type of sexual exploitation",
	"recruiter_relation":       "Recruiter relation",
	"trafficker_role":          "Trafficker role",
	"trafficker_sex":           "Trafficker sex",
	"trafficker_nationality":   "Trafficker nationality",
	"assistance_service":       "Assistance service",
}

// statsDimLabel returns the label people see for dimension name.
func statsDimLabel(cb *node.Codebook, name string) string {
	if l, ok := statsDimNames[name]; ok {
		return l
	}
	if f, ok := cb.Field(name); ok {
		return f.Label
	}
	return groupLegend(strings.ReplaceAll(name, "_", " "))
}

// statsFieldLabel returns the label of a measure field, in lower case.
func statsFieldLabel(cb *node.Codebook, name string) string {
	if name == "services_count" {
		return "number of services"
	}
	if f, ok := cb.Field(name); ok {
		return strings.ToLower(f.Label[:1]) + f.Label[1:]
	}
	return strings.ReplaceAll(name, "_", " ")
}

// statsMeasureLabel names what a query's cells hold: "Cases", "Average age
// at registration", "Median months in exploitation".
func statsMeasureLabel(cb *node.Codebook, m node.Measure) string {
	field := statsFieldLabel(cb, m.Field)
	switch m.Func {
	case node.FuncSum:
		return "Sum of " + field
	case node.FuncAvg:
		return "Average " + field
	case node.FuncQuantile:
		if m.Q == 0.5 {
			return "Median " + field
		}
		return groupLegend(strconv.FormatFloat(m.Q, 'f', -1, 64) + " quantile of " + field)
	}
	return "Cases"
}

// statsCodeLabel returns the label of code of dimension dim.
func statsCodeLabel(cb *node.Codebook, dim, code string) string {
	if d, ok := cb.Dimension(dim); ok {
		return d.Codes.Label(code)
	}
	return code
}

// Figures.

// statsValue returns the exact value of cell c for measure m, false when
// the cell has none (an average or quantile of no case). A quantile is the
// first value whose cumulative count reaches q × cases.
func statsValue(cb *node.Codebook, m node.Measure, c node.Tally) (float64, bool) {
	switch m.Func {
	case node.FuncCount:
		return float64(c.Count), true
	case node.FuncSum:
		return float64(c.Sum), true
	case node.FuncAvg:
		if c.Count == 0 {
			return 0, false
		}
		return float64(c.Sum) / float64(c.Count), true
	case node.FuncQuantile:
		mf, ok := cb.Measure(m.Field)
		if c.Count == 0 || !ok {
			return 0, false
		}
		need := max(int64(math.Ceil(m.Q*float64(c.Count))), 1)
		var acc int64
		for i, h := range c.Hist {
			if acc += h; acc >= need {
				return float64(mf.Lo + int64(i)), true
			}
		}
	}
	return 0, false
}

// statsFormat writes a value: averages with two decimals, the rest whole.
func statsFormat(m node.Measure, v float64) string {
	return strconv.FormatFloat(v, 'f', statsDecimals(m), 64)
}

// statsDecimals is how many decimals statsFormat writes.
func statsDecimals(m node.Measure) int {
	if m.Func == node.FuncAvg {
		return 2
	}
	return 0
}

// The page.

type statsRow struct {
	Keys  []string
	Cases int64
	Value string
}

type statsMatrix struct {
	RowHead string
	Cols    []string
	Rows    []statsMatrixRow
}

type statsMatrixRow struct {
	Label  string
	Values []int64
}

type statsResult struct {
	Heading       string
	Query         string
	MeasureLabel  string
	Headers       []string // dimension labels
	ValueCol      bool     // a value column besides cases
	Rows          []statsRow
	Matrix        *statsMatrix
	Cells         int
	Hidden        int    // empty cells not shown
	Cut           int    // cells past statsMaxRows not shown
	AllURL        string // the same answer with every cell
	CSVURL        string
	Chart         template.HTML
	ChartNote     string
	ConsentOnly   bool
	NoDimensions  bool
	MultiDimNotes []string
}

type statsData struct {
	Notice                   string
	Measure, Field, Q        fieldView
	Group1, Group2           fieldView
	YearFrom, YearTo         fieldView
	FilterDim, FilterCode    fieldView
	Errors                   []formError
	FilterCodesLabel         string
	FilterCodes              []node.Code
	Result                   *statsResult
	ConsentOnly, Unavailable bool
}

func (s *Server) statsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	f := readStatsForm(r.URL.Query())
	s.statsRespond(w, r, p, f, false)
}

func (s *Server) statsCSV(w http.ResponseWriter, r *http.Request, p *principal) {
	f := readStatsForm(r.URL.Query())
	s.statsRespond(w, r, p, f, true)
}

// statsRespond answers the form: the page with the form alone (nothing
// asked), with its errors (400), or with the answer; or the answer as CSV.
func (s *Server) statsRespond(w http.ResponseWriter, r *http.Request, p *principal, f *statsForm, asCSV bool) {
	ctx := r.Context()
	page := func(status int, d statsData) {
		s.render(w, r, status, "stats", &pageData{Title: "Statistics", User: p, Data: d})
	}
	if s.Query == nil {
		d := s.statsData(f)
		d.Unavailable = true
		page(http.StatusServiceUnavailable, d)
		return
	}
	if !f.submitted && !asCSV {
		page(http.StatusOK, s.statsData(f))
		return
	}
	q := s.statsQuery(f)
	d := s.statsData(f)
	if q == nil {
		page(http.StatusBadRequest, d)
		return
	}
	t, err := s.statsExact(ctx, p, q)
	if err != nil {
		s.pageError(w, r, p, err)
		return
	}
	if asCSV {
		s.writeStatsCSV(w, r, p, t)
		return
	}
	d.Result = s.statsResult(t, f)
	page(http.StatusOK, d)
}

// statsExact answers q exactly and writes the audit entry, before any
// figure is shown; no audit entry, no figures.
func (s *Server) statsExact(ctx context.Context, p *principal, q *node.Query) (*node.ExactTable, error) {
	t, err := s.Query.Exact(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, p, ActionStatsExact, "", q.Canonical()); err != nil {
		return nil, err
	}
	return t, nil
}

// statsData lays out the form with what was typed and its errors.
func (s *Server) statsData(f *statsForm) statsData {
	cb := s.Codebook
	d := statsData{Notice: statsNotice}
	d.ConsentOnly = s.Query == nil || !s.Query.Policy.CountWithoutConsent
	field := func(key, label, kind, value string, opts []node.Code) fieldView {
		return fieldView{Name: key, ID: inputID(key), Label: label, Kind: kind, Value: value, Options: opts, Error: f.errs[key]}
	}
	measure := f.Measure
	if measure == "" {
		measure = "count"
	}
	d.Measure = field("measure", "Compute", "select", measure, []node.Code{
		{Value: "count", Label: "Number of cases"}, {Value: "sum", Label: "Sum of a number"},
		{Value: "avg", Label: "Average of a number"}, {Value: "quantile", Label: "Quantile of a number"}})
	measures := []node.Code{{Value: "", Label: "— (not for a count)"}}
	for _, m := range cb.Measures {
		measures = append(measures, node.Code{Value: m.Name, Label: groupLegend(statsFieldLabel(cb, m.Name))})
	}
	d.Field = field("field", "Of the number", "select", f.Field, measures)
	d.Q = field("q", "Quantile", "", f.Q, nil)
	d.Q.Hint = "For a quantile only: 0.5 is the median, 0.9 the value 90% of cases are at or below."
	dims := []node.Code{{Value: "", Label: "None"}}
	filterDims := []node.Code{{Value: "", Label: "None"}}
	for _, dm := range cb.Dimensions {
		c := node.Code{Value: dm.Name, Label: statsDimLabel(cb, dm.Name)}
		dims = append(dims, c)
		if dm.Name != "registration_year" {
			filterDims = append(filterDims, c)
		}
	}
	d.Group1 = field("group1", "First dimension", "select", f.Group1, dims)
	d.Group2 = field("group2", "Second dimension", "select", f.Group2, dims)
	years := []node.Code{{Value: "", Label: "Any"}}
	for _, y := range cb.Years() {
		ys := strconv.Itoa(y)
		years = append(years, node.Code{Value: ys, Label: ys})
	}
	d.YearFrom = field("year_from", "Registered from", "select", f.YearFrom, years)
	d.YearTo = field("year_to", "Registered up to", "select", f.YearTo, years)
	d.FilterDim = field("filter_dim", "Only cases whose", "select", f.FilterDim, filterDims)
	d.FilterCode = field("filter_code", "Is (or includes)", "", f.FilterCode, nil)
	d.FilterCode.Hint = "A code or its label, such as woman, or a country's name or ISO code."
	if dm, ok := cb.Dimension(f.filterCodes); ok && !dm.Codes.Has("AFG") {
		d.FilterCodesLabel = statsDimLabel(cb, dm.Name)
		d.FilterCodes = dm.Codes.Codes
	}
	for _, k := range statsKeys {
		if msg, ok := f.errs[k]; ok {
			d.Errors = append(d.Errors, formError{Href: "#" + inputID(k), Text: msg})
		}
	}
	for _, msg := range f.general {
		d.Errors = append(d.Errors, formError{Text: msg})
	}
	return d
}

// statsResult lays out an exact table for the page.
func (s *Server) statsResult(t *node.ExactTable, f *statsForm) *statsResult {
	cb := s.Codebook
	q := t.Query
	res := &statsResult{Query: q.Canonical(), MeasureLabel: statsMeasureLabel(cb, q.Measure), ValueCol: q.Measure.Func != node.FuncCount,
		Cells: len(t.Cells), NoDimensions: len(q.GroupBy) == 0, ConsentOnly: s.Query == nil || !s.Query.Policy.CountWithoutConsent}
	v := f.values()
	res.CSVURL = "/stats.csv?" + v.Encode()
	res.Heading = res.MeasureLabel
	for i, g := range q.GroupBy {
		if i == 0 {
			res.Heading += " by "
		} else {
			res.Heading += " and "
		}
		l := statsDimLabel(cb, g)
		res.Heading += strings.ToLower(l[:1]) + l[1:]
		res.Headers = append(res.Headers, statsDimLabel(cb, g))
		if d, ok := cb.Dimension(g); ok && d.Multi {
			res.MultiDimNotes = append(res.MultiDimNotes, statsDimLabel(cb, g))
		}
	}
	showAll := f.All || len(t.Cells) <= statsAllCells
	if !showAll {
		v.Set("all", "1")
		res.AllURL = "/stats?" + v.Encode()
	}
	labels := func(i int) []string {
		key := t.CellKey(i)
		out := make([]string, len(key))
		for j, c := range key {
			out[j] = statsCodeLabel(cb, q.GroupBy[j], c)
		}
		return out
	}
	for i, c := range t.Cells {
		if c.Count == 0 && !showAll {
			res.Hidden++
			continue
		}
		if len(res.Rows) >= statsMaxRows {
			res.Cut++
			continue
		}
		row := statsRow{Keys: labels(i), Cases: c.Count}
		if val, ok := statsValue(cb, q.Measure, c); ok {
			row.Value = statsFormat(q.Measure, val)
		}
		res.Rows = append(res.Rows, row)
	}
	if q.Measure.Func == node.FuncCount && len(t.Domains) == 2 && len(t.Domains[1]) <= statsMatrixCols && len(t.Domains[0]) <= statsMaxRows {
		res.Matrix = statsCrossTab(cb, t, showAll)
	}
	s.statsChart(t, res)
	return res
}

// statsCrossTab lays out a two-dimension COUNT as rows of the first
// dimension and columns of the second; rows with no case are left out
// unless showAll.
func statsCrossTab(cb *node.Codebook, t *node.ExactTable, showAll bool) *statsMatrix {
	q := t.Query
	m := &statsMatrix{RowHead: statsDimLabel(cb, q.GroupBy[0])}
	for _, c := range t.Domains[1] {
		m.Cols = append(m.Cols, statsCodeLabel(cb, q.GroupBy[1], c))
	}
	nc := len(t.Domains[1])
	for i, code := range t.Domains[0] {
		row := statsMatrixRow{Label: statsCodeLabel(cb, q.GroupBy[0], code), Values: make([]int64, nc)}
		var any int64
		for j := range nc {
			row.Values[j] = t.Cells[i*nc+j].Count
			any += row.Values[j]
		}
		if any == 0 && !showAll {
			continue
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

// statsChart draws the answer's bars: every cell of a small table, else
// the cells with cases, the largest maxChartBars of them when there are more. A query without dimensions
// has no chart.
func (s *Server) statsChart(t *node.ExactTable, res *statsResult) {
	cb := s.Codebook
	q := t.Query
	if len(q.GroupBy) == 0 {
		return
	}
	type cell struct {
		i int
		v float64
	}
	var all, withValue []cell
	for i, c := range t.Cells {
		v, ok := statsValue(cb, q.Measure, c)
		if !ok {
			continue
		}
		all = append(all, cell{i, v})
		if c.Count > 0 {
			withValue = append(withValue, cell{i, v})
		}
	}
	// Every cell of a small table; the cells with cases of a larger one.
	bars := all
	if len(bars) > statsChartAllBars {
		bars = withValue
	}
	if len(bars) == 0 {
		res.ChartNote = "No cell has a value to draw."
		return
	}
	if len(bars) > maxChartBars {
		sort.SliceStable(bars, func(a, b int) bool { return bars[a].v > bars[b].v })
		res.ChartNote = fmt.Sprintf("The chart shows the %d largest of %d cells with cases; the table lists them all.", maxChartBars, len(bars))
		bars = bars[:maxChartBars]
	} else if len(bars) < len(t.Cells) {
		res.ChartNote = "The chart leaves out the cells with no case."
	}
	c := barChart{ID: "stats-chart-title", Title: res.Heading, Axis: res.MeasureLabel, Decimals: statsDecimals(q.Measure),
		Desc: "Exact figures of this organisation's own cases; the table below has the same figures."}
	for _, b := range bars {
		key := t.CellKey(b.i)
		parts := make([]string, len(key))
		for j, code := range key {
			parts[j] = statsCodeLabel(cb, q.GroupBy[j], code)
		}
		c.Bars = append(c.Bars, chartBar{Label: strings.Join(parts, " · "), Value: b.v})
	}
	svg, err := c.render()
	if err != nil {
		// The error names no figure, but only its kind is logged.
		s.Logger.Error("web: draw the statistics chart", zap.String("kind", node.KindOf(err).String()))
		res.ChartNote = "The chart could not be drawn; the table has the figures."
		return
	}
	res.Chart = svg
}

// CSV.

// statsCSVHeader returns the header of an exact table's CSV: for each
// dimension its code and its label, then cases, then the measure (unless
// it is a count).
func statsCSVHeader(q *node.Query) []string {
	var head []string
	for _, g := range q.GroupBy {
		head = append(head, g, g+"_label")
	}
	head = append(head, "cases")
	if q.Measure.Func != node.FuncCount {
		head = append(head, statsMeasureName(q.Measure))
	}
	return head
}

// statsMeasureName names a measure as its SQL: "AVG(age)".
func statsMeasureName(m node.Measure) string {
	switch m.Func {
	case node.FuncCount:
		return "COUNT(*)"
	case node.FuncQuantile:
		return fmt.Sprintf("QUANTILE(%s, %s)", m.Field, strconv.FormatFloat(m.Q, 'f', -1, 64))
	}
	return m.Func + "(" + m.Field + ")"
}

// writeStatsCSV writes every cell of t as CSV, for download.
func (s *Server) writeStatsCSV(w http.ResponseWriter, r *http.Request, p *principal, t *node.ExactTable) {
	cb := s.Codebook
	q := t.Query
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write(statsCSVHeader(q))
	for i, c := range t.Cells {
		var row []string
		for j, code := range t.CellKey(i) {
			row = append(row, code, statsCodeLabel(cb, q.GroupBy[j], code))
		}
		row = append(row, strconv.FormatInt(c.Count, 10))
		if q.Measure.Func != node.FuncCount {
			val := ""
			if v, ok := statsValue(cb, q.Measure, c); ok {
				val = statsFormat(q.Measure, v)
			}
			row = append(row, val)
		}
		cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		s.pageError(w, r, p, node.E("web.statsCSV", node.Internal, "%w", err))
		return
	}
	name := "exact-statistics-" + s.Now().UTC().Format("2006-01-02") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// The API.

// apiStatsCell is one cell of an exact answer: its codes, its cases and its
// value (null for an average or quantile of no case).
type apiStatsCell struct {
	Key   []string `json:"key"`
	Cases int64    `json:"cases"`
	Value *float64 `json:"value"`
}

// apiStatsAnswer is the body of GET /api/stats.
type apiStatsAnswer struct {
	Exact      bool           `json:"exact"`
	Notice     string         `json:"notice"`
	Codebook   string         `json:"codebook"`
	Query      string         `json:"query"`
	QueryJSON  *node.Query    `json:"query_json"`
	Measure    string         `json:"measure"`
	Dimensions []string       `json:"dimensions"`
	Domains    [][]string     `json:"domains"`
	Cells      []apiStatsCell `json:"cells"`
}

// apiStats answers GET /api/stats?query=…: the query in SQL, or in its
// JSON form (a value starting with "{").
func (s *Server) apiStats(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	if s.Query == nil {
		s.apiFail(w, http.StatusServiceUnavailable, node.Unavailable, "statistics are not available on this node")
		return
	}
	text := strings.TrimSpace(r.URL.Query().Get("query"))
	if text == "" {
		s.apiFail(w, http.StatusBadRequest, node.Invalid, "the query parameter is required: a query in SQL (SELECT COUNT(*) FROM cases GROUP BY gender) or in JSON")
		return
	}
	var q *node.Query
	var err error
	if strings.HasPrefix(text, "{") {
		q, err = node.ParseJSON(s.Codebook, []byte(text))
	} else {
		q, err = node.ParseSQL(s.Codebook, text)
	}
	if err == nil {
		err = q.Check(s.Codebook, s.statsMaxCells())
	}
	if err != nil {
		s.apiError(w, r, err, statsErrText(err))
		return
	}
	t, err := s.statsExact(ctx, p, q)
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	out := apiStatsAnswer{Exact: true, Notice: statsNotice, Codebook: q.Codebook, Query: q.Canonical(), QueryJSON: q,
		Measure: statsMeasureName(q.Measure), Dimensions: q.GroupBy, Domains: t.Domains, Cells: make([]apiStatsCell, len(t.Cells))}
	if out.Dimensions == nil {
		out.Dimensions = []string{}
	}
	for i, c := range t.Cells {
		cell := apiStatsCell{Key: t.CellKey(i), Cases: c.Count}
		if v, ok := statsValue(s.Codebook, q.Measure, c); ok {
			cell.Value = &v
		}
		out.Cells[i] = cell
	}
	writeJSON(w, http.StatusOK, out)
}
