package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
	"go.uber.org/zap"
)

// Limits and defaults of a federated query asked from the console or the
// API.
const (
	// DefaultFederatedTimeout is how long a federated query waits for
	// answers when the querier gives no timeout.
	DefaultFederatedTimeout = 30 * time.Second
	// MaxFederatedTimeout is the longest wait a querier may ask for; the
	// web server's write timeout is longer.
	MaxFederatedTimeout = 90 * time.Second
	// DefaultResultTTL is how long the console keeps a result for its
	// page and downloads.
	DefaultResultTTL = 30 * time.Minute
	maxEpsilon       = 10
	minPurposeLen    = 10
	maxPurposeLen    = 500
	maxQueryIDLen    = 64
	maxStoredResults = 100
	maxTableRows     = 1000
)

// fedAsk is a federated query as a person or a program asks it: the
// query as SQL or in its JSON form, ε (0: the policy's default), δ and
// mechanism (API only), the timeout (0: the default), the purpose shown to
// the nodes' operators, and a query ID to ask again (empty: a new one).
type fedAsk struct {
	SQL       string
	JSON      json.RawMessage
	Epsilon   float64
	Delta     float64
	Mechanism string
	Timeout   time.Duration
	Purpose   string
	QueryID   string
}

// invalidText returns the cause of an Invalid error as a sentence: the
// text a person may see (it names the query's own words and codes, never
// a record).
func invalidText(err error) string {
	var ne *node.Error
	msg := ""
	if errors.As(err, &ne) && ne.Err != nil {
		msg = ne.Err.Error()
	}
	msg = strings.TrimRight(msg, ". ")
	if msg == "" {
		msg = node.Invalid.Message()
	}
	return sentence(msg)
}

// checkPurpose returns the problem with a stated purpose, or "".
func checkPurpose(purpose string) string {
	n := utf8.RuneCountInString(purpose)
	switch {
	case !utf8.ValidString(purpose):
		return "The purpose must be valid text."
	case n == 0:
		return "State the purpose of the query: the nodes' operators read it."
	case n < minPurposeLen:
		return fmt.Sprintf("State the purpose in at least %d characters.", minPurposeLen)
	case n > maxPurposeLen:
		return fmt.Sprintf("State the purpose in at most %d characters.", maxPurposeLen)
	case strings.ContainsFunc(purpose, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' || r == 0x7f }):
		return "The purpose contains control characters."
	}
	return ""
}

// validQueryID reports whether id may name a query asked again.
func validQueryID(id string) bool {
	if id == "" || len(id) > maxQueryIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// maxCells is the cell limit of the node's policy.
func (s *Server) maxCells() int {
	if s.Query != nil && s.Query.Policy.MaxCells > 0 {
		return s.Query.Policy.MaxCells
	}
	return node.DefaultMaxCells
}

// defaultEpsilon is the ε of a query that names none.
func (s *Server) defaultEpsilon() float64 {
	if s.Query != nil && s.Query.Policy.DefaultEpsilon > 0 {
		return s.Query.Policy.DefaultEpsilon
	}
	return privacy.DefaultQueryEpsilon
}

// fedRequest validates a and returns the request to send and its timeout,
// or the problems, one per field ("sql", "query", "epsilon", "delta",
// "mechanism", "timeout", "purpose", "query_id"), as sentences.
func (s *Server) fedRequest(a *fedAsk) (*node.QueryRequest, time.Duration, node.FieldErrors) {
	var errs node.FieldErrors
	bad := func(field, msg string) { errs = append(errs, node.FieldError{Field: field, Msg: msg}) }
	hasJSON := len(bytes.TrimSpace(a.JSON)) > 0 && string(bytes.TrimSpace(a.JSON)) != "null"
	var q *node.Query
	var err error
	switch {
	case strings.TrimSpace(a.SQL) != "" && hasJSON:
		bad("query", "Send the query as SQL or in its JSON form, not both.")
	case hasJSON:
		q, err = node.ParseJSON(s.Codebook, a.JSON)
		if err != nil {
			bad("query", invalidText(err))
		}
	case strings.TrimSpace(a.SQL) == "":
		bad("sql", "Write the query.")
	default:
		q, err = node.ParseSQL(s.Codebook, a.SQL)
		if err != nil {
			bad("sql", invalidText(err))
		}
	}
	if q != nil {
		if err := q.Check(s.Codebook, s.maxCells()); err != nil {
			field := "sql"
			if hasJSON {
				field = "query"
			}
			bad(field, invalidText(err))
		}
	}
	eps := a.Epsilon
	if eps == 0 {
		eps = s.defaultEpsilon()
	}
	if !(eps > 0 && eps <= maxEpsilon) {
		bad("epsilon", fmt.Sprintf("ε must be a number above 0 and at most %d.", maxEpsilon))
	}
	if !(a.Delta >= 0 && a.Delta < 1) {
		bad("delta", "δ must be at least 0 and below 1.")
	}
	if a.Mechanism != "" {
		if _, err := privacy.ParseMechanism(a.Mechanism); err != nil {
			bad("mechanism", "The mechanism is laplace or gaussian.")
		}
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = DefaultFederatedTimeout
	}
	if timeout < time.Second || timeout > MaxFederatedTimeout {
		bad("timeout", fmt.Sprintf("The timeout must be between 1 and %d seconds.", int(MaxFederatedTimeout/time.Second)))
	}
	if msg := checkPurpose(strings.TrimSpace(a.Purpose)); msg != "" {
		bad("purpose", msg)
	}
	if a.QueryID != "" && !validQueryID(a.QueryID) {
		bad("query_id", fmt.Sprintf("A query ID is at most %d letters, digits, dots, dashes and underscores.", maxQueryIDLen))
	}
	if len(errs) > 0 {
		return nil, 0, errs
	}
	return &node.QueryRequest{ID: a.QueryID, Query: q, Epsilon: eps, Delta: a.Delta, Mechanism: a.Mechanism,
		Purpose: strings.TrimSpace(a.Purpose)}, timeout, nil
}

// runFederated runs req through the federation as p and writes the audit
// entry (who asked what, with what purpose, and the coverage; never a
// value) before anyone sees the result.
func (s *Server) runFederated(ctx context.Context, p *principal, req *node.QueryRequest, timeout time.Duration) (*FederatedResult, error) {
	if s.Federation == nil {
		return nil, errNotInFederation
	}
	res, err := s.Federation.Query(ctx, req, timeout)
	if err != nil {
		return nil, err
	}
	if res.Query == nil {
		res.Query = req.Query
	}
	if res.SQL == "" {
		res.SQL = res.Query.Canonical()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "query=%q epsilon=%g purpose=%q", res.SQL, req.Epsilon, req.Purpose)
	for _, st := range coverageStatuses {
		fmt.Fprintf(&b, " %s=%d", st, res.Count(st))
	}
	if p.Token {
		b.WriteString(" via=api")
	}
	if err := s.audit(ctx, p, ActionFederatedQuery, res.QueryID, b.String()); err != nil {
		return nil, err
	}
	return res, nil
}

// fedFailure says why a federated query could not run, for people.
func fedFailure(err error) string {
	switch node.KindOf(err) {
	case node.Invalid:
		return invalidText(err)
	case node.Permission:
		return "This node may not ask the federation: it is not a current member with the querier role."
	case node.Unavailable:
		if errors.Is(err, errNotInFederation) {
			return "This node is not in a federation."
		}
		return "The federation cannot be reached now (the node has no roster yet, or its network is down). Try again later."
	}
	return ""
}

// Results kept for the console.

// resultStore keeps the console's recent results in memory, each for the
// person who ran it, for a short time; its zero value is ready.
type resultStore struct {
	mu sync.Mutex
	m  map[string]*storedResult
}

type storedResult struct {
	owner   string
	created time.Time
	res     *FederatedResult
	ask     consoleForm
}

func (s *Server) resultTTL() time.Duration {
	if s.ResultTTL > 0 {
		return s.ResultTTL
	}
	return DefaultResultTTL
}

// put stores a result and returns its ID, dropping expired results and,
// beyond maxStoredResults, the oldest.
func (rs *resultStore) put(now time.Time, ttl time.Duration, sr *storedResult) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[string]*storedResult{}
	}
	for id, r := range rs.m {
		if now.Sub(r.created) > ttl {
			delete(rs.m, id)
		}
	}
	for len(rs.m) >= maxStoredResults {
		oldest := ""
		for id, r := range rs.m {
			if oldest == "" || r.created.Before(rs.m[oldest].created) {
				oldest = id
			}
		}
		delete(rs.m, oldest)
	}
	id := randomToken()[:22]
	sr.created = now
	rs.m[id] = sr
	return id
}

// get returns the result with the ID if owner ran it and it has not
// expired.
func (rs *resultStore) get(now time.Time, ttl time.Duration, owner, id string) (*storedResult, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[id]
	if !ok || r.owner != owner || now.Sub(r.created) > ttl {
		return nil, false
	}
	return r, true
}

// The console page.

// consoleForm is what the console's form holds, as typed.
type consoleForm struct {
	SQL, Epsilon, Timeout, Purpose, QueryID string
}

type dimInfo struct {
	Name, Codes string
	Multi       bool
}

type measureInfo struct {
	Name, Bounds string
}

type consoleErrors struct {
	SQL, Epsilon, Timeout, Purpose string
}

type resultRow struct {
	Key                                []string
	Value, Interval, Count, Suppressed string
}

type coverageRow struct {
	Org, Country, Peer, ShortPeer string
	Status, Why, Charged          string
	Answered                      bool
}

type resultView struct {
	ID, QueryID, Words, SQL     string
	Epsilon, Mechanism, Elapsed string
	MinCellSize                 int
	Columns                     []string
	Measure                     string
	ShowCount                   bool
	Rows                        []resultRow
	Hidden                      int
	Released, Suppressed        int
	Chart                       template.HTML
	ChartNote                   string
	Coverage                    []coverageRow
	Summary                     string
	Pending                     bool
	Ask                         consoleForm
}

type consoleData struct {
	fedBase
	F              consoleForm
	E              consoleErrors
	Summary        []formProblem
	Problem        string
	Dims           []dimInfo
	Measures       []measureInfo
	DefaultEpsilon string
	DefaultTimeout int
	MaxTimeout     int
	Example        string
	Result         *resultView
}

// formProblem is one line of a form's error summary.
type formProblem struct {
	Href, Text string
}

// codebookInfo lists the codebook's dimensions with their codes, and its
// measure fields with their bounds, for the console's side panel.
// Countries are named by their ISO code rather than listed.
func codebookInfo(cb *node.Codebook) ([]dimInfo, []measureInfo) {
	var dims []dimInfo
	for _, d := range cb.Dimensions {
		di := dimInfo{Name: d.Name, Multi: d.Multi}
		switch {
		case d.Name == "registration_year":
			di.Codes = yearSpan(cb.FirstYear, cb.LastYear)
		case countryDims[d.Name]:
			var extra []string
			for _, c := range []string{node.CodeUnknown, node.CodeNoneRecorded} {
				if d.Codes.Has(c) {
					extra = append(extra, c)
				}
			}
			di.Codes = "ISO 3166-1 alpha-3 codes such as 'NPL', or " + strings.Join(extra, ", ")
		default:
			di.Codes = strings.Join(d.Codes.Values(), ", ")
		}
		dims = append(dims, di)
	}
	var ms []measureInfo
	for _, m := range cb.Measures {
		ms = append(ms, measureInfo{Name: m.Name, Bounds: fmt.Sprintf("%d–%d", m.Lo, m.Hi)})
	}
	return dims, ms
}

func (s *Server) consoleData(p *principal, r *http.Request) consoleData {
	dims, ms := codebookInfo(s.Codebook)
	return consoleData{fedBase: s.fedBase(p, r), Dims: dims, Measures: ms,
		DefaultEpsilon: epsilonText(s.defaultEpsilon()), DefaultTimeout: int(DefaultFederatedTimeout / time.Second),
		MaxTimeout: int(MaxFederatedTimeout / time.Second),
		Example:    fmt.Sprintf("SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN %d AND %d GROUP BY citizenship", s.Codebook.LastYear-10, s.Codebook.LastYear-6)}
}

func (s *Server) fedConsole(w http.ResponseWriter, r *http.Request, p *principal) {
	d := s.consoleData(p, r)
	d.F.Epsilon = d.DefaultEpsilon
	d.F.Timeout = strconv.Itoa(d.DefaultTimeout)
	s.render(w, r, http.StatusOK, "fed_console", &pageData{Title: "Federated query", User: p, Data: d})
}

// fedRunQuery runs the console's query and sends the browser to the
// result's page (so that reloading it never asks the federation again),
// or shows the form again with its problems.
func (s *Server) fedRunQuery(w http.ResponseWriter, r *http.Request, p *principal) {
	f := consoleForm{SQL: strings.ReplaceAll(r.PostForm.Get("sql"), "\r\n", "\n"), Epsilon: strings.TrimSpace(r.PostForm.Get("epsilon")),
		Timeout: strings.TrimSpace(r.PostForm.Get("timeout")), Purpose: strings.TrimSpace(r.PostForm.Get("purpose")),
		QueryID: strings.TrimSpace(r.PostForm.Get("query_id"))}
	d := s.consoleData(p, r)
	d.F = f
	a := fedAsk{SQL: f.SQL, Purpose: f.Purpose, QueryID: f.QueryID}
	var errs node.FieldErrors
	if f.Epsilon != "" {
		v, err := strconv.ParseFloat(f.Epsilon, 64)
		if err != nil || math.IsNaN(v) || v <= 0 {
			errs = append(errs, node.FieldError{Field: "epsilon", Msg: fmt.Sprintf("ε must be a number above 0 and at most %d.", maxEpsilon)})
		} else {
			a.Epsilon = v
		}
	}
	if f.Timeout != "" {
		v, err := strconv.Atoi(f.Timeout)
		if err != nil || v < 1 {
			errs = append(errs, node.FieldError{Field: "timeout", Msg: fmt.Sprintf("The timeout must be between 1 and %d seconds.", d.MaxTimeout)})
		} else {
			a.Timeout = time.Duration(min(v, 1<<20)) * time.Second
		}
	}
	req, timeout, more := s.fedRequest(&a)
	for _, e := range more {
		if !slices.ContainsFunc(errs, func(o node.FieldError) bool { return o.Field == e.Field }) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			switch e.Field {
			case "sql", "query":
				d.E.SQL = e.Msg
			case "epsilon":
				d.E.Epsilon = e.Msg
			case "timeout":
				d.E.Timeout = e.Msg
			case "purpose":
				d.E.Purpose = e.Msg
			default:
				d.Problem = e.Msg
				continue
			}
			d.Summary = append(d.Summary, formProblem{Href: "#" + strings.Replace(e.Field, "query", "sql", 1), Text: e.Msg})
		}
		s.render(w, r, http.StatusBadRequest, "fed_console", &pageData{Title: "Federated query", User: p, Data: d})
		return
	}
	res, err := s.runFederated(r.Context(), p, req, timeout)
	if err != nil {
		msg := fedFailure(err)
		if msg == "" {
			s.pageError(w, r, p, err)
			return
		}
		s.logError(r, node.KindOf(err), err)
		d.Problem = msg
		s.render(w, r, statusOf(node.KindOf(err)), "fed_console", &pageData{Title: "Federated query", User: p, Data: d})
		return
	}
	f.QueryID = res.QueryID
	id := s.fedResults.put(s.Now(), s.resultTTL(), &storedResult{owner: p.Name, res: res, ask: f})
	http.Redirect(w, r, "/federation/results/"+id, http.StatusSeeOther)
}

// fedResult shows a result the person ran, or sends it as CSV or JSON.
func (s *Server) fedResult(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	sr, ok := s.fedResults.get(s.Now(), s.resultTTL(), p.Name, id)
	if !ok {
		s.pageFail(w, r, p, http.StatusNotFound, fmt.Sprintf("There is no such result. A result is kept for %s, for the person who ran the query: run it again from the console.", s.resultTTL()))
		return
	}
	switch format := r.URL.Query().Get("format"); format {
	case "":
	case "csv", "json":
		if err := s.audit(r.Context(), p, ActionResultExport, sr.res.QueryID, format); err != nil {
			s.pageError(w, r, p, err)
			return
		}
		name := "ctfed-" + safeFileName(sr.res.QueryID) + "." + format
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		if format == "json" {
			writeJSON(w, http.StatusOK, s.apiResult(sr.res))
			return
		}
		b, err := resultCSV(s.Codebook, sr.res)
		if err != nil {
			s.pageError(w, r, p, node.E("web.fedResult", node.Internal, "%w", err))
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		return
	default:
		s.pageFail(w, r, p, http.StatusBadRequest, "A result downloads as csv or json.")
		return
	}
	d := s.consoleData(p, r)
	d.F = sr.ask
	d.F.QueryID = ""
	d.Result = s.resultView(id, sr)
	s.render(w, r, http.StatusOK, "fed_console", &pageData{Title: "Federated query result", User: p, Data: d})
}

// safeFileName keeps the letters, digits, dashes and underscores of s.
func safeFileName(s string) string {
	b := []byte(s)
	out := b[:0]
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "result"
	}
	return string(out[:min(len(out), 64)])
}

// measureHeading is the heading of a result's value column.
func measureHeading(cb *node.Codebook, m node.Measure) string {
	if m.Func == node.FuncCount {
		return "Cases"
	}
	return upperFirst(strings.TrimPrefix(describeMeasure(cb, m), "the "))
}

// cellLabel joins the labels of a cell's codes: "Nepal · Sexual".
func cellLabel(cb *node.Codebook, q *node.Query, key []string) []string {
	out := make([]string, len(key))
	for i, c := range key {
		dim := ""
		if i < len(q.GroupBy) {
			dim = q.GroupBy[i]
		}
		out[i] = codeLabel(cb, dim, c)
	}
	return out
}

// resultView lays a stored result out for the console: the query in
// words, the table (at most maxTableRows rows), the chart (at most
// maxChartBars bars), the coverage and a summary of it.
func (s *Server) resultView(id string, sr *storedResult) *resultView {
	cb, res := s.Codebook, sr.res
	q := res.Query
	dec := measureDecimals(q.Measure)
	v := &resultView{ID: id, QueryID: res.QueryID, Words: sentence(describeQuery(cb, q)), SQL: res.SQL,
		Epsilon: epsilonText(res.Epsilon), Mechanism: res.Mechanism, MinCellSize: res.MinCellSize,
		Measure: measureHeading(cb, q.Measure), ShowCount: q.Measure.Func != node.FuncCount, Ask: sr.ask}
	if res.Elapsed > 0 {
		v.Elapsed = res.Elapsed.Round(time.Millisecond).String()
	}
	for _, g := range q.GroupBy {
		v.Columns = append(v.Columns, upperFirst(dimWords(g)))
	}
	var bars []chartBar
	for i, c := range res.Cells {
		labels := cellLabel(cb, q, c.Key)
		if len(labels) == 0 {
			labels = []string{"All cases"}
		}
		row := resultRow{Key: labels}
		bar := chartBar{Label: strings.Join(labels, " · ")}
		if c.Value == nil {
			v.Suppressed++
			row.Suppressed = suppressedWords(c.Suppressed, res.MinCellSize)
			bar.Suppressed = c.Suppressed
		} else {
			v.Released++
			row.Value = formatValue(*c.Value, dec)
			bar.Value = *c.Value
			if c.Lo != nil && c.Hi != nil {
				row.Interval = formatValue(*c.Lo, dec) + " to " + formatValue(*c.Hi, dec)
				bar.Lo, bar.Hi = *c.Lo, *c.Hi
				bar.Interval = true
			}
			if c.Count != nil {
				row.Count = formatValue(*c.Count, 0)
			}
		}
		if i < maxTableRows {
			v.Rows = append(v.Rows, row)
		} else {
			v.Hidden++
		}
		if len(bars) < maxChartBars {
			bars = append(bars, bar)
		}
	}
	if v.Released > 0 {
		c := barChart{ID: "chart-t", Title: sentence(describeQuery(cb, q)) + ", with 95% intervals", Axis: v.Measure, Decimals: dec, Bars: bars,
			Desc: "Noised figures combined from the contributing nodes, each with its 95% interval; suppressed cells are marked. The table below has the same figures."}
		if svg, err := c.render(); err != nil {
			// The error names no figure, but only its kind is logged.
			s.Logger.Error("web: draw the federated result's chart", zap.String("kind", node.KindOf(err).String()))
			v.ChartNote = "The chart could not be drawn; the table has the figures."
		} else {
			v.Chart = svg
		}
		if v.Chart != "" && len(res.Cells) > len(bars) {
			v.ChartNote = fmt.Sprintf("The chart shows the first %d of %d cells; the table and the downloads hold them all.", len(bars), len(res.Cells))
		}
	}
	counts := map[string]int{}
	for _, c := range res.Coverage {
		counts[c.Status]++
		row := coverageRow{Org: c.Org, Country: countryName(c.Country), Peer: c.PeerID, ShortPeer: shortPeer(c.PeerID),
			Status: coverageStatusWords(c.Status), Answered: c.Status == coverageAnswered}
		if row.Country == "" {
			row.Country = c.Country
		}
		switch c.Status {
		case coverageRefused:
			row.Why = reasonWords(c.Reason, c.Detail)
		case coveragePending:
			row.Why = "waits for its operator's approval: ask again with the same query ID to collect the answer"
			v.Pending = true
		case coverageUnreachable:
			row.Why = "this node could not connect to it"
		case coverageTimedOut:
			row.Why = "it did not answer before the timeout"
		}
		if c.ChargedEpsilon > 0 {
			row.Charged = "ε " + epsilonText(c.ChargedEpsilon)
		}
		v.Coverage = append(v.Coverage, row)
	}
	var parts []string
	for _, st := range coverageStatuses {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(coverageStatusWords(st))))
		}
	}
	if len(parts) == 0 {
		v.Summary = "No contributor was asked: the roster lists none."
	} else {
		v.Summary = fmt.Sprintf("Of %d contributors: %s.", len(res.Coverage), joinWords(parts, "and"))
	}
	return v
}

// resultCSV writes a result as CSV: one row per cell, each dimension's
// code and label, the value, its 95% interval, the count (for SUM, AVG
// and QUANTILE), why a cell is suppressed, and the noise that lets anyone
// recompute the interval.
func resultCSV(cb *node.Codebook, res *FederatedResult) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	q := res.Query
	var head []string
	for _, g := range q.GroupBy {
		head = append(head, g, g+"_label")
	}
	head = append(head, "value", "lo", "hi", "count", "suppressed", "mechanism", "scale", "l0", "linf", "nodes")
	if err := w.Write(head); err != nil {
		return nil, err
	}
	num := func(f *float64) string {
		if f == nil {
			return ""
		}
		return strconv.FormatFloat(*f, 'g', -1, 64)
	}
	for _, c := range res.Cells {
		var row []string
		labels := cellLabel(cb, q, c.Key)
		for i, k := range c.Key {
			row = append(row, k, labels[i])
		}
		row = append(row, num(c.Value), num(c.Lo), num(c.Hi), num(c.Count), c.Suppressed, c.Mechanism,
			strconv.FormatFloat(c.Scale, 'g', -1, 64), strconv.FormatInt(c.L0, 10), strconv.FormatInt(c.LInf, 10), strconv.Itoa(c.Nodes))
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}
