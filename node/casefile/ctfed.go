package casefile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ctfed/ctfed/node"
)

// ctfedField decodes and encodes one codebook field in ctfed's shape.
type ctfedField struct {
	dec colFunc
	enc func(c *node.Case) string
}

// List separators of ctfed's shape: entries of a multi-valued field, and the
// parts of one trafficker, assistance or follow-up entry.
const (
	listSep = ";"
	partSep = "|"
)

func textField(get func(c *node.Case) *string) ctfedField {
	return ctfedField{
		dec: func(st *rowState, v string) string { *get(st.c) = v; return "" },
		enc: func(c *node.Case) string { return *get(c) },
	}
}

// countryValue trims a country code and upper-cases a three-letter one.
func countryValue(v string) string {
	v = strings.TrimSpace(v)
	if len(v) == 3 {
		return strings.ToUpper(v)
	}
	return v
}

func codeField(get func(c *node.Case) *string) ctfedField {
	return ctfedField{
		dec: func(st *rowState, v string) string { *get(st.c) = strings.TrimSpace(v); return "" },
		enc: func(c *node.Case) string { return *get(c) },
	}
}

func countryField(get func(c *node.Case) *string) ctfedField {
	return ctfedField{
		dec: func(st *rowState, v string) string { *get(st.c) = countryValue(v); return "" },
		enc: func(c *node.Case) string { return *get(c) },
	}
}

func splitList(v string, country bool) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	out := make([]string, 0, strings.Count(v, listSep)+1)
	for rest, more := v, true; more; {
		var p string
		p, rest, more = strings.Cut(rest, listSep)
		p = strings.TrimSpace(p)
		if country {
			p = countryValue(p)
		}
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func listField(get func(c *node.Case) *[]string, country bool) ctfedField {
	return ctfedField{
		dec: func(st *rowState, v string) string { *get(st.c) = splitList(v, country); return "" },
		enc: func(c *node.Case) string { return strings.Join(*get(c), listSep) },
	}
}

func intField(get func(c *node.Case) **int) ctfedField {
	return ctfedField{
		dec: func(st *rowState, v string) string {
			v = strings.TrimSpace(v)
			if v == "" {
				return ""
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return "is not a whole number"
			}
			*get(st.c) = &n
			return ""
		},
		enc: func(c *node.Case) string {
			if p := *get(c); p != nil {
				return strconv.Itoa(*p)
			}
			return ""
		},
	}
}

func dateField(get func(c *node.Case) *node.Date) ctfedField {
	return ctfedField{
		dec: func(st *rowState, v string) string { *get(st.c) = node.Date(strings.TrimSpace(v)); return "" },
		enc: func(c *node.Case) string { return string(*get(c)) },
	}
}

// eachEntry calls fn with st and the trimmed parts of each entry of a
// records field, checking that each has between lo and hi (at most 4)
// parts, and with the number of entries the field may have; it returns a
// problem message, or "".
func eachEntry(st *rowState, v string, lo, hi int, want string, fn func(st *rowState, parts []string, entries int)) string {
	parts := st.parts[:]
	entries := strings.Count(v, listSep) + 1
	i := 0
	for rest, more := v, true; more; {
		var e string
		e, rest, more = strings.Cut(rest, listSep)
		i++
		if strings.TrimSpace(e) == "" {
			continue
		}
		n := 0
		for p, pmore := e, true; pmore; n++ {
			var part string
			part, p, pmore = strings.Cut(p, partSep)
			if n < len(parts) {
				parts[n] = strings.TrimSpace(part)
			}
		}
		if n < lo || n > hi {
			return fmt.Sprintf("entry %d has %d parts, want %s", i, n, want)
		}
		fn(st, parts[:n], entries)
	}
	return ""
}

// grow returns s with room for n elements when it has none yet.
func grow[T any](s []T, n int) []T {
	if s == nil {
		return make([]T, 0, n)
	}
	return s
}

var ctfedFields = map[string]ctfedField{
	"case_code":         textField(func(c *node.Case) *string { return &c.Code }),
	"registration_date": dateField(func(c *node.Case) *node.Date { return &c.RegistrationDate }),
	"status":            codeField(func(c *node.Case) *string { return &c.Status }),
	"referral_source":   codeField(func(c *node.Case) *string { return &c.ReferralSource }),
	"data_source":       codeField(func(c *node.Case) *string { return &c.DataSource }),
	"caseworker":        textField(func(c *node.Case) *string { return &c.Caseworker }),

	"full_name":     textField(func(c *node.Case) *string { return &c.Identity.FullName }),
	"aliases":       listField(func(c *node.Case) *[]string { return &c.Identity.Aliases }, false),
	"date_of_birth": dateField(func(c *node.Case) *node.Date { return &c.Identity.DateOfBirth }),
	"phone":         textField(func(c *node.Case) *string { return &c.Identity.Phone }),
	"email":         textField(func(c *node.Case) *string { return &c.Identity.Email }),
	"address":       textField(func(c *node.Case) *string { return &c.Identity.Address }),
	"documents":     listField(func(c *node.Case) *[]string { return &c.Identity.Documents }, false),
	"narrative":     textField(func(c *node.Case) *string { return &c.Identity.Narrative }),

	"gender":                   codeField(func(c *node.Case) *string { return &c.Gender }),
	"age":                      intField(func(c *node.Case) **int { return &c.Age }),
	"age_band":                 codeField(func(c *node.Case) *string { return &c.AgeBand }),
	"majority":                 codeField(func(c *node.Case) *string { return &c.Majority }),
	"age_at_exploitation":      intField(func(c *node.Case) **int { return &c.AgeAtExploitation }),
	"age_band_exploitation":    codeField(func(c *node.Case) *string { return &c.AgeBandExploitation }),
	"majority_at_exploitation": codeField(func(c *node.Case) *string { return &c.MajorityAtExploitation }),
	"citizenship":              countryField(func(c *node.Case) *string { return &c.Citizenship }),
	"country_of_residence":     countryField(func(c *node.Case) *string { return &c.CountryOfResidence }),
	"education":                codeField(func(c *node.Case) *string { return &c.Education }),
	"marital_status":           codeField(func(c *node.Case) *string { return &c.MaritalStatus }),
	"occupation_before":        codeField(func(c *node.Case) *string { return &c.OccupationBefore }),

	"country_of_origin":         countryField(func(c *node.Case) *string { return &c.CountryOfOrigin }),
	"transit_countries":         listField(func(c *node.Case) *[]string { return &c.TransitCountries }, true),
	"country_of_exploitation":   countryField(func(c *node.Case) *string { return &c.CountryOfExploitation }),
	"recruitment_type":          codeField(func(c *node.Case) *string { return &c.RecruitmentType }),
	"recruiter_relations":       listField(func(c *node.Case) *[]string { return &c.RecruiterRelations }, false),
	"means_of_control":          listField(func(c *node.Case) *[]string { return &c.MeansOfControl }, false),
	"months_in_exploitation":    intField(func(c *node.Case) **int { return &c.MonthsInExploitation }),
	"months_band":               codeField(func(c *node.Case) *string { return &c.MonthsBand }),
	"exploitation_types":        listField(func(c *node.Case) *[]string { return &c.ExploitationTypes }, false),
	"labour_types":              listField(func(c *node.Case) *[]string { return &c.LabourTypes }, false),
	"sexual_exploitation_types": listField(func(c *node.Case) *[]string { return &c.SexualExploitationTypes }, false),

	"traffickers": {
		dec: func(st *rowState, v string) string {
			return eachEntry(st, v, 4, 4, "sex|nationality|role|relation", func(st *rowState, p []string, entries int) {
				st.c.Traffickers = append(grow(st.c.Traffickers, entries), node.Trafficker{Sex: p[0], Nationality: countryValue(p[1]), Role: p[2], Relation: p[3]})
			})
		},
		enc: func(c *node.Case) string {
			var b strings.Builder
			for i, t := range c.Traffickers {
				if i > 0 {
					b.WriteString(listSep)
				}
				b.WriteString(t.Sex + partSep + t.Nationality + partSep + t.Role + partSep + t.Relation)
			}
			return b.String()
		},
	},
	"assistance": {
		dec: func(st *rowState, v string) string {
			return eachEntry(st, v, 1, 3, "service|date|provider", func(st *rowState, p []string, entries int) {
				s := node.Service{Service: p[0]}
				if len(p) > 1 {
					s.Date = node.Date(p[1])
				}
				if len(p) > 2 {
					s.Provider = p[2]
				}
				st.c.Assistance = append(grow(st.c.Assistance, entries), s)
			})
		},
		enc: func(c *node.Case) string {
			var b strings.Builder
			for i, s := range c.Assistance {
				if i > 0 {
					b.WriteString(listSep)
				}
				b.WriteString(s.Service + partSep + string(s.Date) + partSep + s.Provider)
			}
			return b.String()
		},
	},
	"return_status":        codeField(func(c *node.Case) *string { return &c.ReturnStatus }),
	"reintegration_status": codeField(func(c *node.Case) *string { return &c.ReintegrationStatus }),
	"follow_ups": {
		dec: func(st *rowState, v string) string {
			return eachEntry(st, v, 2, 2, "date|outcome", func(st *rowState, p []string, entries int) {
				st.c.FollowUps = append(grow(st.c.FollowUps, entries), node.FollowUp{Date: node.Date(p[0]), Outcome: p[1]})
			})
		},
		enc: func(c *node.Case) string {
			var b strings.Builder
			for i, f := range c.FollowUps {
				if i > 0 {
					b.WriteString(listSep)
				}
				b.WriteString(string(f.Date) + partSep + f.Outcome)
			}
			return b.String()
		},
	},

	"previously_trafficked": codeField(func(c *node.Case) *string { return &c.PreviouslyTrafficked }),
	"retrafficked":          codeField(func(c *node.Case) *string { return &c.Retrafficked }),

	"consent":      codeField(func(c *node.Case) *string { return &c.Consent }),
	"consent_date": dateField(func(c *node.Case) *node.Date { return &c.ConsentDate }),
}

func newCtfedShape(header []string, opt *ReadOptions) (*shape, error) {
	cb := opt.Codebook
	sh := &shape{
		header:   header,
		cols:     make([]colFunc, len(header)),
		fieldOf:  make([]string, len(header)),
		identity: make([]bool, len(header)),
		fieldCol: make(map[string]string, len(header)),
	}
	var unknown []string
	for i, h := range header {
		name := strings.ToLower(h)
		f, inBook := cb.Field(name)
		cf, ok := ctfedFields[name]
		if !inBook || !ok {
			if h == "" {
				h = fmt.Sprintf("(column %d has no name)", i+1)
			}
			unknown = append(unknown, h)
			continue
		}
		sh.cols[i] = cf.dec
		sh.fieldOf[i] = f.Name
		sh.identity[i] = f.Identity
		sh.fieldCol[f.Name] = h
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("the header has columns that are not ctfed fields: %s; ctfed's columns are %s",
			quoteList(unknown, 8), strings.Join(ctfedColumns(cb, true), ", "))
	}
	for _, req := range []string{"case_code", "registration_date"} {
		if _, ok := sh.fieldCol[req]; !ok {
			return nil, fmt.Errorf("the header has no %s column, which ctfed's shape requires", req)
		}
	}
	consent := opt.DefaultConsent
	sh.finish = func(st *rowState, _ []string) {
		if st.c.Consent == "" {
			st.c.Consent = consent
		}
	}
	sh.notes = func() []string { return nil }
	return sh, nil
}
