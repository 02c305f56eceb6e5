package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// This file says in words what the federation pages show: a query, a
// node's policy, a coverage line, a run of years.

// describeQuery says what q asks, in words: "the number of cases by
// citizenship, where registration year is 2020–2024".
func describeQuery(cb *node.Codebook, q *node.Query) string {
	if q == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(describeMeasure(cb, q.Measure))
	if len(q.GroupBy) > 0 {
		names := make([]string, len(q.GroupBy))
		for i, g := range q.GroupBy {
			names[i] = dimWords(g)
		}
		b.WriteString(" by ")
		b.WriteString(joinWords(names, "and"))
	}
	for i, f := range q.Filters {
		if i == 0 {
			b.WriteString(", where ")
		} else {
			b.WriteString(" and ")
		}
		verb := "is"
		if d, ok := cb.Dimension(f.Dim); ok && d.Multi {
			verb = "includes"
		}
		fmt.Fprintf(&b, "%s %s %s", dimWords(f.Dim), verb, joinWords(codeWords(cb, f.Dim, f.Codes), "or"))
	}
	return b.String()
}

// describeMeasure names a measure: "the number of cases", "the average
// age at registration", "the median months in exploitation".
func describeMeasure(cb *node.Codebook, m node.Measure) string {
	field := fieldWords(cb, m.Field)
	switch m.Func {
	case node.FuncCount:
		return "the number of cases"
	case node.FuncSum:
		return "the total " + field
	case node.FuncAvg:
		return "the average " + field
	case node.FuncQuantile:
		if m.Q == 0.5 {
			return "the median " + field
		}
		return fmt.Sprintf("the %s percentile of %s", ordinal(m.Q*100), field)
	}
	return strings.ToLower(m.Func) + " of " + field
}

// fieldWords names a measure field: "age" → "age at registration".
func fieldWords(cb *node.Codebook, name string) string {
	if f, ok := cb.Field(name); ok {
		return lowerFirst(f.Label)
	}
	return strings.ReplaceAll(name, "_", " ")
}

// ordinal writes a percentile: 25 → "25th", 90 → "90th", 2.5 → "2.5th".
func ordinal(p float64) string {
	s := strconv.FormatFloat(p, 'f', -1, 64)
	if p != math.Trunc(p) {
		return s + "th"
	}
	n := int64(p)
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return s + "th"
	case n%10 == 1:
		return s + "st"
	case n%10 == 2:
		return s + "nd"
	case n%10 == 3:
		return s + "rd"
	}
	return s + "th"
}

// dimWords names a dimension: "registration_year" → "registration year".
func dimWords(dim string) string { return strings.ReplaceAll(dim, "_", " ") }

// countryDims are the dimensions whose codes are countries: their labels
// are names and keep their capitals.
var countryDims = map[string]bool{
	"citizenship": true, "country_of_residence": true, "country_of_origin": true,
	"country_of_exploitation": true, "transit_country": true, "trafficker_nationality": true,
}

// codeLabel returns the label of a code of dimension dim, as a table or a
// chart shows it ("Nepal", "Forced labour", "18–20", "2024").
func codeLabel(cb *node.Codebook, dim, code string) string {
	if d, ok := cb.Dimension(dim); ok {
		return d.Codes.Label(code)
	}
	return code
}

// codeWords returns the codes of a filter in words, in the order given;
// runs of consecutive registration years become one range ("2020–2024").
func codeWords(cb *node.Codebook, dim string, codes []string) []string {
	if dim == "registration_year" {
		var years []int
		for _, c := range codes {
			y, err := strconv.Atoi(c)
			if err != nil {
				return codes
			}
			years = append(years, y)
		}
		return yearRuns(years)
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		l := codeLabel(cb, dim, c)
		if !countryDims[dim] || c == node.CodeUnknown || c == node.CodeNoneRecorded {
			l = lowerFirst(l)
		}
		out[i] = l
	}
	return out
}

// yearRuns writes ascending years as runs: [2018 2020 2021 2022] →
// ["2018", "2020–2022"].
func yearRuns(years []int) []string {
	var out []string
	for i := 0; i < len(years); {
		j := i
		for j+1 < len(years) && years[j+1] == years[j]+1 {
			j++
		}
		out = append(out, yearSpan(years[i], years[j]))
		i = j + 1
	}
	return out
}

// yearSpan writes "2020" or "2020–2024".
func yearSpan(from, to int) string {
	if from == to {
		return strconv.Itoa(from)
	}
	return fmt.Sprintf("%d–%d", from, to)
}

// joinWords joins items as a sentence does: "a", "a or b", "a, b or c".
func joinWords(items []string, conj string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}

// lowerFirst lower-cases the first letter of s unless the word is an
// acronym ("ISO") or holds a digit.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || !unicode.IsUpper(r) {
		return s
	}
	word, _, _ := strings.Cut(s, " ")
	if len(word) > 1 && strings.ToUpper(word) == word {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// upperFirst upper-cases the first letter of s.
func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// epsilonText writes an ε or δ amount for people, to 6 significant
// digits and without an exponent: "0.5", "0.000001".
func epsilonText(x float64) string {
	v, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	if err != nil {
		return strconv.FormatFloat(x, 'g', 6, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// amountText writes a budget amount: "ε 4.0" and, when δ is set, "δ …".
func amountText(a privacy.Amount) string {
	s := "ε " + a.Epsilon.String()
	if a.Delta != 0 {
		s += ", δ " + epsilonText(a.Delta.Float64())
	}
	return s
}

// Coverage statuses, as the federation reports them.
const (
	coverageAnswered    = "answered"
	coverageRefused     = "refused"
	coveragePending     = "pending"
	coverageUnreachable = "unreachable"
	coverageTimedOut    = "timed_out"
)

// coverageStatuses are the statuses in the order a summary lists them.
var coverageStatuses = []string{coverageAnswered, coverageRefused, coveragePending, coverageUnreachable, coverageTimedOut}

// coverageStatusWords names a coverage status.
func coverageStatusWords(status string) string {
	switch status {
	case coverageAnswered:
		return "Answered"
	case coverageRefused:
		return "Refused"
	case coveragePending:
		return "Pending approval"
	case coverageUnreachable:
		return "Unreachable"
	case coverageTimedOut:
		return "Timed out"
	}
	return lowerFirst(strings.ReplaceAll(status, "_", " "))
}

// reasonWords says why a node refused a query, from its fixed reason code
// (Detail) or, without one, the coverage's reason.
func reasonWords(reason, detail string) string {
	switch detail {
	case node.ReasonNotAllowed:
		return "its policy does not let this node ask"
	case node.ReasonDimension:
		return "its policy does not allow a dimension of the query"
	case node.ReasonMeasure:
		return "its policy does not allow the measure of the query"
	case node.ReasonRejected:
		return "its operator rejected the query"
	case node.ReasonCodebook:
		return "it answers at another codebook version"
	case node.ReasonBudgetPerQuery:
		return "the ε asked is above its largest ε for one query"
	case node.ReasonBudgetNode:
		return "its budget for these registration years is spent"
	case node.ReasonBudgetOrg:
		return "this organisation's budget at that node for these registration years is spent"
	case node.ReasonInvalidQuery:
		return "it found the query invalid"
	case node.ReasonUnavailableNode:
		return "it cannot answer now"
	}
	switch reason {
	case "permission":
		return "its policy does not allow this query"
	case "budget":
		return "its privacy budget does not allow this query"
	case "codebook_version":
		return "it answers at another codebook version"
	case "invalid":
		return "it found the query or its answer invalid"
	case "unavailable":
		return "it cannot answer now"
	case "internal":
		return "an internal error at that node"
	}
	if reason == "" {
		return ""
	}
	return strings.ReplaceAll(reason, "_", " ")
}

// suppressedWords says why a cell is not shown.
func suppressedWords(reason string, minCellSize int) string {
	switch reason {
	case privacy.ReasonBelowMinimum:
		return fmt.Sprintf("suppressed: below the minimum cell size (%d)", minCellSize)
	case privacy.ReasonIndistinguishable:
		return "suppressed: not distinguishable from zero"
	}
	return "suppressed"
}

// memberStatusWords names a roster member's status.
func memberStatusWords(status string) string {
	switch status {
	case "ok":
		return "Current member"
	case "expired":
		return "Expired"
	case "revoked":
		return "Revoked"
	case "not_yet_valid":
		return "Not yet valid"
	}
	return "Unknown"
}

// formatValue writes a released value with the decimals its measure
// needs: whole numbers for counts and sums, one decimal for averages and
// quantiles. Rounding a released value is post-processing.
func formatValue(v float64, decimals int) string {
	if decimals == 0 {
		v = math.Round(v)
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if s == "-0" || s == "-0.0" {
		s = s[1:]
	}
	return s
}

// measureDecimals is how many decimals a measure's values are shown with.
func measureDecimals(m node.Measure) int {
	if m.Func == node.FuncAvg || m.Func == node.FuncQuantile {
		return 1
	}
	return 0
}

// shortPeer shortens a peer ID for a table: its last 8 characters.
func shortPeer(id string) string {
	if len(id) <= 12 {
		return id
	}
	return "…" + id[len(id)-8:]
}

// utcTime writes a time for the federation pages.
func utcTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// utcDate writes a date for the federation pages.
func utcDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}
