package casefile

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// checkResult fails t unless a Read outcome keeps Read's promises: errors
// are Invalid, every case is valid and unique, identity values are never
// repeated.
func checkResult(t *testing.T, res *Result, err error) {
	t.Helper()
	cb := node.DefaultCodebook()
	if err != nil {
		if got, want := node.KindOf(err), node.Invalid; got != want {
			t.Fatalf("kind: got %v, want %v (%v)", got, want, err)
		}
		return
	}
	seen := map[string]bool{}
	for _, c := range res.Cases {
		if err := c.Validate(cb); err != nil {
			t.Fatalf("Read returned an invalid case: %v", err)
		}
		if seen[c.Code] {
			t.Fatalf("Read returned case code %q twice", c.Code)
		}
		seen[c.Code] = true
	}
	for _, e := range res.Errors {
		if cb.IsIdentity(e.Column) && e.Value != "" {
			t.Fatalf("row error %v repeats an identity value", e)
		}
		if len(e.Value) > maxValueLen+len("…") {
			t.Fatalf("row error value is %d bytes long", len(e.Value))
		}
	}
	if got, want := res.Valid+len(res.Rejected), res.RowCount; got != want {
		t.Fatalf("valid+rejected: got %v, want %v", got, want)
	}
	if res.Err() != nil && node.KindOf(res.Err()) != node.Invalid {
		t.Fatalf("Err kind: got %v, want %v", node.KindOf(res.Err()), node.Invalid)
	}
}

func FuzzReadCSV(f *testing.F) {
	for _, path := range []string{"testdata/ctdc_sample.csv", "testdata/ctdc_legacy_sample.csv"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, func(yield func(*node.Case) bool) {
		for _, c := range sampleCases() {
			if !yield(c) {
				return
			}
		}
	}, WriteOptions{IncludeIdentity: true}); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte(ctfedHeader + "A-1,2023-05-02,woman,19,UKR,,Fakename One,threats;abuse,male|UKR|recruiter|friend,yes\n"))
	f.Add([]byte(ctfedHeader + "A,2020,woman,thirty,XYZ,31/02/1990,,beating,male|UKR,\nA,2020\n\"unterminated"))
	f.Add([]byte("yearOfRegistration,gender,ageBroad\n2019,Woman,09--17\n2019,Woman,09--17\n2019,NULL,NULL\n"))
	f.Add([]byte("\xef\xbb\xbfcase_code,registration_date\r\nA,2020\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		opt := ReadOptions{HMACKey: testKey, Limits: Limits{MaxFieldBytes: 4096, MaxRowBytes: 16384, MaxErrors: 50}}
		res, err := Read(bytes.NewReader(data), "fuzz.csv", opt)
		checkResult(t, res, err)
	})
}

func FuzzValidateCase(f *testing.F) {
	for _, c := range sampleCases() {
		data, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"case_code":"A","registration_date":"2020","age":130,"age_band":"9_17","majority":"adult"}`))
	f.Add([]byte(`{"case_code":"A/B","registration_date":"2020-02-30","traffickers":[{"sex":"x"}],"means_of_control":["unknown",""]}`))
	f.Add([]byte(`A-1,2023-05-02,woman,19,UKR,,Fakename,threats;abuse,male|UKR|recruiter|friend,yes`))
	f.Add([]byte(`A,2020,woman,-5,unknown,2020-13,,none_recorded;;,|||,maybe`))
	cb := node.DefaultCodebook()
	f.Fuzz(func(t *testing.T, data []byte) {
		// As a JSON record.
		var c node.Case
		if json.Unmarshal(data, &c) == nil {
			c.Normalize()
			err := c.Validate(cb)
			if err != nil && node.KindOf(err) != node.Invalid {
				t.Fatalf("kind: got %v, want %v", node.KindOf(err), node.Invalid)
			}
			for _, fe := range node.FieldErrorsOf(err) {
				field, _, _ := strings.Cut(fe.Field, "[")
				if cb.IsIdentity(field) && fe.Value != "" {
					t.Fatalf("field error %v repeats an identity value", fe)
				}
			}
		}
		// As one ctfed CSV row under a fixed header.
		res, err := Read(strings.NewReader(ctfedHeader+string(data)), "fuzz.csv", ReadOptions{HMACKey: testKey})
		checkResult(t, res, err)
	})
}
