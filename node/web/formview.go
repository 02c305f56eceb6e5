package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/ctfed/ctfed/node"
)

// fieldView is one input of a generated form, ready for the "field"
// template. Kind is text, textarea, date, number, select, checkboxes,
// country, countries, readonly or records.
type fieldView struct {
	Name, ID, Label, Kind string
	Value                 string
	Checked               map[string]bool
	Options               []node.Code
	Min, Max, MaxLen      int
	Required              bool
	Hint, Error           string
	// Records: one fieldset of inputs per entry, and the noun of one entry.
	Rows []rowView
	Noun string
}

// DescribedBy is the aria-describedby of the input: its hint and error.
func (f fieldView) DescribedBy() string {
	var ids []string
	if f.Hint != "" {
		ids = append(ids, f.ID+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, f.ID+"-err")
	}
	return strings.Join(ids, " ")
}

type rowView struct {
	Legend string
	Fields []fieldView
}

// groupView is one fieldset of a form: the fields of one codebook group.
type groupView struct {
	Legend string
	Fields []fieldView
}

// formError is one line of a form's error summary, linking to its input
// when the form has one.
type formError struct {
	Href, Text string
}

func inputID(key string) string { return "f-" + strings.ReplaceAll(key, ".", "-") }

// groupLegend returns a codebook group's name as a fieldset legend.
func groupLegend(g string) string {
	if g == "" {
		return g
	}
	return strings.ToUpper(g[:1]) + g[1:]
}

const dateHint = "YYYY, YYYY-MM or YYYY-MM-DD"

// formErrorKey returns the form key of a field error's field:
// "traffickers[2].sex" → "traffickers.<row of entry 2>.sex".
func formErrorKey(field string, rows map[string][]int) string {
	name, rest, ok := strings.Cut(field, "[")
	if !ok {
		return field
	}
	num, sub, ok := strings.Cut(rest, "].")
	i, err := strconv.Atoi(num)
	if !ok || err != nil {
		return field
	}
	if r := rows[name]; i >= 1 && i <= len(r) {
		i = r[i-1]
	}
	return fmt.Sprintf("%s.%d.%s", name, i, sub)
}

// errorLabel returns the label of a form key for messages: "Age at
// registration", "Trafficker 2: Sex".
func (cf *caseForm) errorLabel(key string) string {
	name, rest, ok := strings.Cut(key, ".")
	if !ok {
		if f, ok := cf.cb.Field(key); ok {
			return f.Label
		}
		return key
	}
	num, sub, _ := strings.Cut(rest, ".")
	label := sub
	for _, col := range recordFields[name] {
		if col.Name == sub {
			label = col.Label
		}
	}
	return fmt.Sprintf("%s %s: %s", recordNoun[name], num, label)
}

// errorText words a field error for people, beside its input.
func errorText(fe node.FieldError, raw string) string {
	msg := fe.Msg
	if raw == "" && strings.HasPrefix(msg, "is not a code of") {
		return "Choose a value."
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// view builds the form's fieldsets from the codebook, filled with v (what
// the user typed, or the stored case), with errs beside their inputs and
// in the summary. more names a records field that gets extra blank rows.
func (cf *caseForm) view(v url.Values, errs node.FieldErrors, rows map[string][]int, more string) ([]groupView, []formError) {
	byKey := map[string]string{}
	var summary []formError
	shown := map[string]bool{}
	for i := range cf.cb.Fields {
		f := &cf.cb.Fields[i]
		if cf.includes(f) {
			shown[f.Name] = true
		}
	}
	for _, fe := range errs {
		key := formErrorKey(fe.Field, rows)
		text := errorText(fe, strings.TrimSpace(v.Get(key)))
		if _, dup := byKey[key]; !dup {
			byKey[key] = text
		}
		base, _, _ := strings.Cut(key, ".")
		e := formError{Text: cf.errorLabel(key) + ": " + text}
		if shown[base] {
			e.Href = "#" + inputID(key)
		}
		summary = append(summary, e)
	}

	var groups []groupView
	for i := range cf.cb.Fields {
		f := &cf.cb.Fields[i]
		if !cf.includes(f) {
			continue
		}
		if len(groups) == 0 || groups[len(groups)-1].Legend != groupLegend(f.Group) {
			groups = append(groups, groupView{Legend: groupLegend(f.Group)})
		}
		g := &groups[len(groups)-1]
		g.Fields = append(g.Fields, cf.fieldView(f, v, byKey, more))
	}
	return groups, summary
}

func (cf *caseForm) fieldView(f *node.Field, v url.Values, errs map[string]string, more string) fieldView {
	fv := fieldView{Name: f.Name, ID: inputID(f.Name), Label: f.Label, Value: v.Get(f.Name), Error: errs[f.Name],
		Required: f.Required, MaxLen: f.MaxLen}
	a := fieldAccess[f.Name]
	switch {
	case f.Name == "case_code" && !cf.create, f.Name == "caseworker" && !cf.admin:
		fv.Kind = "readonly"
		fv.Name = ""
		if f.Name == "caseworker" {
			fv.Hint = "An admin assigns cases."
		}
	case f.Type == node.TypeRecords:
		fv.Kind = "records"
		fv.Noun = recordNoun[f.Name]
		n := 0
		if idx := rowIndexes(f.Name, v); len(idx) > 0 {
			n = idx[len(idx)-1]
		}
		n += blankRows
		if more == f.Name {
			n += moreRows
		}
		n = min(n, maxFormRows)
		for r := 1; r <= n; r++ {
			row := rowView{Legend: fmt.Sprintf("%s %d", fv.Noun, r)}
			for _, col := range recordFields[f.Name] {
				key := fmt.Sprintf("%s.%d.%s", f.Name, r, col.Name)
				cv := fieldView{Name: key, ID: inputID(key), Label: col.Label, Value: v.Get(key), Error: errs[key], MaxLen: col.MaxLen}
				switch {
				case col.Country:
					cv.Kind = "country"
				case col.Date:
					cv.Kind, cv.Hint = "date", dateHint
				case col.Options != nil:
					cv.Kind = "select"
					cv.Options = append([]node.Code{{Value: "", Label: "—"}}, col.Options...)
				default:
					cv.Kind = "text"
				}
				row.Fields = append(row.Fields, cv)
			}
			fv.Rows = append(fv.Rows, row)
		}
	case f.Type == node.TypeText && f.MaxLen > 1024:
		fv.Kind = "textarea"
	case f.Type == node.TypeText && a.list != nil:
		fv.Kind, fv.Hint = "text", "Separate several with ;"
	case f.Type == node.TypeText:
		fv.Kind = "text"
	case f.Type == node.TypeDate:
		fv.Kind, fv.Hint = "date", dateHint
	case f.Type == node.TypeInt:
		fv.Kind, fv.Min, fv.Max = "number", f.Min, f.Max
	case f.Type == node.TypeCode && isCountryList(f):
		fv.Kind = "country"
	case f.Type == node.TypeCode:
		fv.Kind = "select"
		fv.Options = []node.Code{{Value: "", Label: "Unknown"}}
		for _, c := range f.Codes.Codes {
			if c.Value != node.CodeUnknown {
				fv.Options = append(fv.Options, c)
			}
		}
	case f.Type == node.TypeCodes && isCountryList(f):
		fv.Kind, fv.Hint = "countries", "Names or ISO codes; separate countries with ;"
	case f.Type == node.TypeCodes:
		fv.Kind = "checkboxes"
		fv.Checked = map[string]bool{}
		for _, c := range v[f.Name] {
			fv.Checked[c] = true
		}
		for _, c := range f.Codes.Codes {
			if c.Value != node.CodeUnknown && c.Value != node.CodeNoneRecorded {
				fv.Options = append(fv.Options, c)
			}
		}
	}
	return fv
}

// hasCountry reports whether a form's groups hold a country input, which
// needs the countries' datalist.
func hasCountry(groups []groupView) bool {
	for _, g := range groups {
		for _, f := range g.Fields {
			if f.Kind == "country" || f.Kind == "countries" {
				return true
			}
			for _, r := range f.Rows {
				for _, c := range r.Fields {
					if c.Kind == "country" {
						return true
					}
				}
			}
		}
	}
	return false
}
