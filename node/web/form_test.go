package web

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

func TestFieldAccessCoversCodebook(t *testing.T) {
	cb := node.DefaultCodebook()
	for _, f := range cb.Fields {
		t.Run(f.Name, func(t *testing.T) {
			if f.Type == node.TypeRecords {
				if len(recordFields[f.Name]) == 0 || recordNoun[f.Name] == "" {
					t.Fatalf("got no entry fields for records field %s", f.Name)
				}
				return
			}
			a, ok := fieldAccess[f.Name]
			if !ok {
				t.Fatalf("got no access to codebook field %s: forms would leave it out", f.Name)
			}
			n := 0
			for _, set := range []bool{a.str != nil, a.date != nil, a.num != nil, a.list != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("got %d accessors, want 1", n)
			}
		})
	}
	if len(fieldAccess) != len(cb.Fields)-len(recordFields) {
		t.Fatalf("got %d accessors for %d scalar fields: one names no codebook field", len(fieldAccess), len(cb.Fields)-len(recordFields))
	}
}

// storeFree returns c without the fields the store sets.
func storeFree(c *node.Case) *node.Case {
	d := c.Clone()
	d.Version, d.UpdatedAt, d.UpdatedBy, d.IdentityErased = 0, time.Time{}, "", false
	return d
}

// TestFormRoundTrip shows every synthetic case in both forms and reads the
// forms back: nothing is lost or changed.
func TestFormRoundTrip(t *testing.T) {
	cb := node.DefaultCodebook()
	for _, c := range synthCases(t, 300) {
		got := &node.Case{}
		for _, section := range []string{formScreening, formAssistance} {
			cf := &caseForm{cb: cb, section: section, identity: true, admin: true, create: true}
			v := cf.formValues(c)
			if rd := cf.apply(got, v); len(rd.errs) > 0 {
				t.Fatalf("%s %s: got errors %v reading the form back", c.Code, section, rd.errs)
			}
		}
		got.Normalize()
		if err := got.Validate(cb); err != nil {
			t.Fatalf("%s: %v", c.Code, err)
		}
		if want := storeFree(c); !reflect.DeepEqual(storeFree(got), want) {
			t.Fatalf("%s: got\n%+v\nwant\n%+v", c.Code, storeFree(got), want)
		}
	}
}

func TestFormApply(t *testing.T) {
	cb := node.DefaultCodebook()
	for _, tc := range []struct {
		name   string
		form   string
		check  func(c *node.Case) bool
		errors []string // fields with a reading error
	}{
		{"CountryByName", "citizenship=Nepal", func(c *node.Case) bool { return c.Citizenship == "NPL" }, nil},
		{"CountryByCode", "citizenship=npl", func(c *node.Case) bool { return c.Citizenship == "NPL" }, nil},
		{"CountryByAlpha2", "citizenship=NP", func(c *node.Case) bool { return c.Citizenship == "NPL" }, nil},
		{"CountryUnknownName", "citizenship=Atlantis", func(c *node.Case) bool { return c.Citizenship == "" }, []string{"citizenship"}},
		{"TransitList", "transit_countries=India%3B+THA+%3B", func(c *node.Case) bool {
			return reflect.DeepEqual(c.TransitCountries, []string{"IND", "THA"})
		}, nil},
		{"TransitBad", "transit_countries=India%3BNarnia", func(c *node.Case) bool { return len(c.TransitCountries) == 1 }, []string{"transit_countries"}},
		{"Age", "age=+31+", func(c *node.Case) bool { return c.Age != nil && *c.Age == 31 }, nil},
		{"AgeNotNumber", "age=thirty", func(c *node.Case) bool { return c.Age == nil }, []string{"age"}},
		{"Checkboxes", "means_of_control=threats&means_of_control=abuse", func(c *node.Case) bool {
			return reflect.DeepEqual(c.MeansOfControl, []string{"threats", "abuse"})
		}, nil},
		{"Aliases", "aliases=Fakename+A%3B+%3BFakename+B", func(c *node.Case) bool {
			return reflect.DeepEqual(c.Identity.Aliases, []string{"Fakename A", "Fakename B"})
		}, nil},
		{"NarrativeCRLF", "narrative=a%0D%0Ab", func(c *node.Case) bool { return c.Identity.Narrative == "a\nb" }, nil},
		{"BlankRowsDropped", "traffickers.1.sex=&traffickers.2.sex=male&traffickers.2.nationality=Ghana&traffickers.7.role=", func(c *node.Case) bool {
			return len(c.Traffickers) == 1 && c.Traffickers[0].Nationality == "GHA"
		}, nil},
		{"RowBadCountry", "traffickers.3.nationality=Narnia", func(c *node.Case) bool { return len(c.Traffickers) == 1 }, []string{"traffickers[1].nationality"}},
		{"RowsBeyondLimit", "traffickers.101.sex=male&traffickers.0.sex=male&traffickers.x.sex=male", func(c *node.Case) bool { return len(c.Traffickers) == 0 }, nil},
		{"OtherFormKept", "return_status=planned", func(c *node.Case) bool { return c.ReturnStatus == "" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.form)
			if err != nil {
				t.Fatal(err)
			}
			cf := &caseForm{cb: cb, section: formScreening, identity: true}
			c := &node.Case{}
			rd := cf.apply(c, v)
			var got []string
			for _, fe := range rd.errs {
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.errors, ",") {
				t.Fatalf("got errors on %q, want %q", got, tc.errors)
			}
			if !tc.check(c) {
				t.Fatalf("got %+v, want the value read", c)
			}
		})
	}
	t.Run("IdentityNotRead", func(t *testing.T) {
		cf := &caseForm{cb: cb, section: formScreening, identity: false}
		c := &node.Case{Identity: node.Identity{FullName: "Fakename Kept"}}
		cf.apply(c, url.Values{"full_name": {"Fakename Replaced"}, "narrative": {""}})
		if c.Identity.FullName != "Fakename Kept" {
			t.Fatalf("got %q, want identity fields left alone when the form has none", c.Identity.FullName)
		}
	})
	t.Run("CaseworkerOnlyForAdmins", func(t *testing.T) {
		c := &node.Case{Caseworker: "cw-a"}
		(&caseForm{cb: cb, section: formScreening}).apply(c, url.Values{"caseworker": {"cw-b"}})
		if c.Caseworker != "cw-a" {
			t.Fatalf("got %q, want the caseworker kept for a non-admin form", c.Caseworker)
		}
		(&caseForm{cb: cb, section: formScreening, admin: true}).apply(c, url.Values{"caseworker": {"cw-b"}})
		if c.Caseworker != "cw-b" {
			t.Fatalf("got %q, want an admin's form to assign", c.Caseworker)
		}
	})
}

func TestFormErrorKey(t *testing.T) {
	rows := map[string][]int{"traffickers": {2, 5}}
	for _, tc := range []struct{ in, want string }{
		{"age", "age"},
		{"traffickers[1].sex", "traffickers.2.sex"},
		{"traffickers[2].role", "traffickers.5.role"},
		{"traffickers[3].role", "traffickers.3.role"},
		{"assistance[1].date", "assistance.1.date"},
		{"odd[x].y", "odd[x].y"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := formErrorKey(tc.in, rows); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzCaseForm reads arbitrary form bodies as both forms: it never panics,
// and no error repeats an identity field's value.
func FuzzCaseForm(f *testing.F) {
	f.Add("case_code=A-1&registration_date=2024-01-02&age=31&citizenship=Nepal&full_name=Fakename+X")
	f.Add("traffickers.1.sex=male&traffickers.1.nationality=Ghana&traffickers.99.role=x&transit_countries=India%3BNarnia")
	f.Add("assistance.1.service=shelter&assistance.1.date=2024-13&follow_ups.2.outcome=zzz&age=-5")
	f.Add("aliases=%3B%3B%3B&documents=FAKE-1&date_of_birth=1990-02-30&means_of_control=threats&means_of_control=none_recorded")
	cb := node.DefaultCodebook()
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		for _, section := range []string{formScreening, formAssistance} {
			cf := &caseForm{cb: cb, section: section, identity: true, admin: true, create: true}
			c := &node.Case{}
			rd := cf.apply(c, v)
			c.Normalize()
			errs := append(rd.errs, node.FieldErrorsOf(c.Validate(cb))...)
			for _, fe := range errs {
				base, _, _ := strings.Cut(fe.Field, "[")
				if cb.IsIdentity(base) && fe.Value != "" {
					t.Fatalf("got the value of identity field %s in an error", fe.Field)
				}
			}
			cf.view(v, errs, rd.rows, v.Get("more"))
		}
	})
}
