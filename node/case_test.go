package node

import "testing"

func TestParseDate(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"2024", true}, {"2024-02", true}, {"2024-02-29", true}, {"2000-02-29", true},
		{"2023-02-29", false}, {"1900-02-29", false}, {"2024-13", false}, {"2024-00", false},
		{"2024-04-31", false}, {"2024-04-30", true}, {"2024-4-1", false}, {"24", false},
		{"2024/01/01", false}, {"20x4", false}, {"2024-01-00", false}, {" 2024 ", true}, {"", true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseDate(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	c := &Case{Code: "T-1", RegistrationDate: "2024-02-30", Gender: "robot", Age: IntPtr(200),
		Identity:    Identity{FullName: "Fakename Secret", Aliases: []string{"Fakealias;Two"}},
		Traffickers: []Trafficker{{Sex: "female", Nationality: "XXX", Role: "recruiter", Relation: "friend"}},
		Assistance:  []Service{{Service: "shelter", Date: "2024-13"}}}
	c.Normalize()
	err := c.Validate(DefaultCodebook())
	if KindOf(err) != Invalid {
		t.Fatalf("got %v, want Invalid", err)
	}
	fe := FieldErrorsOf(err)
	want := map[string]bool{"registration_date": true, "gender": true, "age": true, "aliases": true,
		"traffickers[1].nationality": true, "assistance[1].date": true}
	for _, f := range fe {
		delete(want, f.Field)
		if f.Field == "aliases" && f.Value != "" {
			t.Fatalf("an identity field's value was repeated: %q", f.Value)
		}
	}
	if len(want) > 0 {
		t.Fatalf("problems not reported: %v (got %v)", want, err)
	}
}

func BenchmarkValidate(b *testing.B) {
	c := &Case{Code: "B-1", RegistrationDate: "2024-03-01", Gender: "woman", Age: IntPtr(24), Citizenship: "THA",
		ExploitationTypes: []string{"sexual"}, MeansOfControl: []string{"threats", "debt_bondage_earnings"},
		Traffickers: []Trafficker{{Sex: "male", Nationality: "THA", Role: "recruiter", Relation: "friend"}},
		Assistance:  []Service{{Service: "shelter", Date: "2024-03-02"}, {Service: "medical", Date: "2024-03-05"}},
		FollowUps:   []FollowUp{{Date: "2024-09", Outcome: "reached_stable"}}}
	c.Normalize()
	cb := DefaultCodebook()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Validate(cb); err != nil {
			b.Fatal(err)
		}
	}
}
