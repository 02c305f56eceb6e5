package web

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ctfed/ctfed/node"
)

// The two forms of a case. The Screening form holds the case, identity,
// victim profile, trafficking process, traffickers, earlier trafficking
// and consent; the Assistance form holds the assistance group (services,
// return, reintegration, follow-ups) and re-trafficking after assistance.
const (
	formScreening  = "screening"
	formAssistance = "assistance"
)

// sectionOf returns the form a codebook field belongs to.
func sectionOf(f *node.Field) string {
	if f.Group == node.GroupAssistance || f.Name == "retrafficked" {
		return formAssistance
	}
	return formScreening
}

// recordField is one field of a list-of-records field's entries.
type recordField struct {
	Name, Label string
	Options     []node.Code // a code list; nil for text and dates
	Country     bool
	Date        bool
	MaxLen      int
}

// withoutNone returns l's codes without none_recorded: the codes one entry
// may hold.
func withoutNone(l *node.CodeList) []node.Code {
	return slices.DeleteFunc(slices.Clone(l.Codes), func(c node.Code) bool { return c.Value == node.CodeNoneRecorded })
}

// recordFields declares the entries of the codebook's TypeRecords fields,
// in node.Trafficker, node.Service and node.FollowUp order.
var recordFields = map[string][]recordField{
	"traffickers": {
		{Name: "sex", Label: "Sex", Options: withoutNone(node.ListTraffSex)},
		{Name: "nationality", Label: "Nationality", Country: true},
		{Name: "role", Label: "Role", Options: withoutNone(node.ListTraffRole)},
		{Name: "relation", Label: "Relation to the victim", Options: node.ListRelation.Codes},
	},
	"assistance": {
		{Name: "service", Label: "Service", Options: slices.DeleteFunc(withoutNone(node.ListService), func(c node.Code) bool { return c.Value == node.CodeUnknown })},
		{Name: "date", Label: "Date", Date: true},
		{Name: "provider", Label: "Provider", MaxLen: 256},
	},
	"follow_ups": {
		{Name: "date", Label: "Date", Date: true},
		{Name: "outcome", Label: "Outcome", Options: node.ListFollowUp.Codes},
	},
}

// recordNoun names one entry of a records field.
var recordNoun = map[string]string{"traffickers": "Trafficker", "assistance": "Service", "follow_ups": "Follow-up"}

// Limits on the rows of a records field a form may send.
const (
	maxFormRows = 100
	blankRows   = 1
	moreRows    = 3
)

// recordValues returns the entries of records field name of c as strings,
// in recordFields order.
func recordValues(name string, c *node.Case) [][]string {
	var out [][]string
	switch name {
	case "traffickers":
		for _, t := range c.Traffickers {
			out = append(out, []string{t.Sex, countryName(t.Nationality), t.Role, t.Relation})
		}
	case "assistance":
		for _, s := range c.Assistance {
			out = append(out, []string{s.Service, string(s.Date), s.Provider})
		}
	case "follow_ups":
		for _, f := range c.FollowUps {
			out = append(out, []string{string(f.Date), f.Outcome})
		}
	}
	return out
}

// setRecords replaces records field name of c with rows (recordFields
// order).
func setRecords(name string, c *node.Case, rows [][]string) {
	switch name {
	case "traffickers":
		c.Traffickers = nil
		for _, r := range rows {
			c.Traffickers = append(c.Traffickers, node.Trafficker{Sex: r[0], Nationality: r[1], Role: r[2], Relation: r[3]})
		}
	case "assistance":
		c.Assistance = nil
		for _, r := range rows {
			c.Assistance = append(c.Assistance, node.Service{Service: r[0], Date: node.Date(r[1]), Provider: r[2]})
		}
	case "follow_ups":
		c.FollowUps = nil
		for _, r := range rows {
			c.FollowUps = append(c.FollowUps, node.FollowUp{Date: node.Date(r[0]), Outcome: r[1]})
		}
	}
}

// Countries are typed as a name or an ISO code (alpha-3 or alpha-2); forms
// show the name.
var countryIndex = sync.OnceValue(func() map[string]string {
	cb := node.DefaultCodebook()
	m := map[string]string{}
	for _, c := range cb.Countries.Codes {
		m[strings.ToLower(c.Value)] = c.Value
		m[strings.ToLower(c.Label)] = c.Value
	}
	return m
})

// parseCountry returns the code of the country typed as v: "" for an
// empty v, false for one that names no country.
func parseCountry(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", true
	}
	if c, ok := countryIndex()[strings.ToLower(v)]; ok {
		return c, true
	}
	if len(v) == 2 {
		return node.DefaultCodebook().CountryFromAlpha2(v)
	}
	return "", false
}

// countryName returns the name of a country code, "" for unknown.
func countryName(code string) string {
	if code == "" || code == node.CodeUnknown {
		return ""
	}
	return node.DefaultCodebook().Countries.Label(code)
}

// caseForm reads one form of a case.
type caseForm struct {
	cb      *node.Codebook
	section string
	// identity: the form holds the identity fields (the user may see them).
	identity bool
	// admin: the form may change the caseworker.
	admin bool
	// create: the form holds the case code (a new case).
	create bool
}

// includes reports whether the form has an input for f.
func (cf *caseForm) includes(f *node.Field) bool {
	switch {
	case sectionOf(f) != cf.section:
		return false
	case f.Identity:
		return cf.identity
	}
	return true
}

// rowIndexes returns the row numbers of records field name present in v,
// ascending, at most maxFormRows of them.
func rowIndexes(name string, v url.Values) []int {
	seen := map[int]bool{}
	prefix := name + "."
	for k := range v {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		n, _, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		if i, err := strconv.Atoi(n); err == nil && i > 0 && i <= maxFormRows {
			seen[i] = true
		}
	}
	out := make([]int, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// formReading is what apply read: the problems found while reading values
// (numbers, countries), and for each records field the form row of each
// entry kept, so that a validation error on entry i points at its row.
type formReading struct {
	errs node.FieldErrors
	rows map[string][]int
}

// apply writes the values of v for the form's fields into c. Fields the
// form does not hold keep c's values; the case code and the caseworker
// are left to the caller unless the form may set them.
func (cf *caseForm) apply(c *node.Case, v url.Values) formReading {
	rd := formReading{rows: map[string][]int{}}
	bad := func(field, msg string) { rd.errs = append(rd.errs, node.FieldError{Field: field, Msg: msg}) }
	for i := range cf.cb.Fields {
		f := &cf.cb.Fields[i]
		if !cf.includes(f) || f.Name == "case_code" && !cf.create || f.Name == "caseworker" && !cf.admin {
			continue
		}
		if f.Type == node.TypeRecords {
			rd.rows[f.Name] = cf.applyRecords(f.Name, c, v, bad)
			continue
		}
		a := fieldAccess[f.Name]
		raw := v.Get(f.Name)
		switch {
		case a.str != nil && isCountryList(f):
			code, ok := parseCountry(raw)
			if !ok {
				bad(f.Name, "is not a country: type its name or its ISO code")
			}
			*a.str(c) = code
		case a.str != nil && f.Name == "narrative":
			*a.str(c) = strings.ReplaceAll(raw, "\r\n", "\n")
		case a.str != nil:
			*a.str(c) = strings.TrimSpace(raw)
		case a.date != nil:
			*a.date(c) = node.Date(strings.TrimSpace(raw))
		case a.num != nil:
			raw = strings.TrimSpace(raw)
			if raw == "" {
				*a.num(c) = nil
				break
			}
			n, err := strconv.Atoi(raw)
			if err != nil {
				bad(f.Name, "is not a whole number")
				*a.num(c) = nil
				break
			}
			*a.num(c) = &n
		case a.list != nil && isCountryList(f):
			var codes []string
			for _, part := range strings.Split(raw, ";") {
				if strings.TrimSpace(part) == "" {
					continue
				}
				code, ok := parseCountry(part)
				if !ok {
					bad(f.Name, "names something that is not a country: separate countries with ;")
					continue
				}
				codes = append(codes, code)
			}
			*a.list(c) = codes
		case a.list != nil && f.Type == node.TypeCodes:
			*a.list(c) = slices.Clone(v[f.Name])
		case a.list != nil:
			var items []string
			for _, part := range strings.Split(raw, ";") {
				if p := strings.TrimSpace(part); p != "" {
					items = append(items, p)
				}
			}
			*a.list(c) = items
		}
	}
	return rd
}

// applyRecords reads the rows of records field name; a row with every
// input empty is left out. It returns the form row of each entry kept.
func (cf *caseForm) applyRecords(name string, c *node.Case, v url.Values, bad func(field, msg string)) []int {
	cols := recordFields[name]
	var rows [][]string
	var kept []int
	for _, i := range rowIndexes(name, v) {
		row := make([]string, len(cols))
		empty := true
		for j, col := range cols {
			raw := strings.TrimSpace(v.Get(fmt.Sprintf("%s.%d.%s", name, i, col.Name)))
			if raw != "" {
				empty = false
			}
			if col.Country {
				code, ok := parseCountry(raw)
				if !ok {
					bad(fmt.Sprintf("%s[%d].%s", name, len(rows)+1, col.Name), "is not a country: type its name or its ISO code")
				}
				raw = code
			}
			row[j] = raw
		}
		if empty {
			continue
		}
		rows = append(rows, row)
		kept = append(kept, i)
	}
	setRecords(name, c, rows)
	return kept
}

// formValues returns the form values that show c in the form.
func (cf *caseForm) formValues(c *node.Case) url.Values {
	v := url.Values{}
	for i := range cf.cb.Fields {
		f := &cf.cb.Fields[i]
		if !cf.includes(f) {
			continue
		}
		if f.Type == node.TypeRecords {
			for r, row := range recordValues(f.Name, c) {
				for j, col := range recordFields[f.Name] {
					v.Set(fmt.Sprintf("%s.%d.%s", f.Name, r+1, col.Name), row[j])
				}
			}
			continue
		}
		vals := rawValue(f, c)
		if isCountryList(f) {
			names := make([]string, 0, len(vals))
			for _, part := range strings.Split(strings.Join(vals, ";"), ";") {
				if n := countryName(strings.TrimSpace(part)); n != "" {
					names = append(names, n)
				}
			}
			vals = []string{strings.Join(names, listSep)}
		}
		v[f.Name] = vals
	}
	return v
}
