package casefile

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

func TestCodebookFieldsHaveColumns(t *testing.T) {
	for _, f := range node.DefaultCodebook().Fields {
		cf, ok := ctfedFields[f.Name]
		if !ok || cf.dec == nil || cf.enc == nil {
			t.Errorf("field %s has no column decoder and encoder", f.Name)
		}
	}
}

func TestRoundTripCtfed(t *testing.T) {
	cases := sampleCases()
	first := writeCSV(t, cases, WriteOptions{IncludeIdentity: true})
	res := mustRead(t, first, "export.csv", ReadOptions{})
	if err := res.Err(); err != nil {
		t.Fatalf("Err: %v (%v)", err, res.Errors)
	}
	if got, want := len(res.Cases), len(cases); got != want {
		t.Fatalf("cases: got %v, want %v", got, want)
	}
	for i := range cases {
		if !reflect.DeepEqual(res.Cases[i], cases[i]) {
			t.Errorf("case %d:\ngot  %+v\nwant %+v", i, res.Cases[i], cases[i])
		}
	}
	second := writeCSV(t, res.Cases, WriteOptions{IncludeIdentity: true})
	if second != first {
		t.Errorf("second export differs from the first:\n%s\n---\n%s", second, first)
	}
}

func TestWriteWithoutIdentity(t *testing.T) {
	cases := sampleCases()
	out := writeCSV(t, cases, WriteOptions{})
	header, _, _ := strings.Cut(out, "\n")
	for _, f := range node.DefaultCodebook().IdentityFields() {
		if strings.Contains(header, f) {
			t.Errorf("header %q has identity column %s", header, f)
		}
	}
	for _, fake := range []string{"Fakename", "Fakealias", "FAKE", "+000", "example.invalid", "1999-02"} {
		if strings.Contains(out, fake) {
			t.Errorf("export without identity holds %q", fake)
		}
	}
	res := mustRead(t, out, "export.csv", ReadOptions{})
	if err := res.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
	for i, c := range res.Cases {
		want := cases[i].Clone()
		want.Identity = node.Identity{}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("case %d:\ngot  %+v\nwant %+v", i, c, want)
		}
	}
}

func TestWriteCTDC(t *testing.T) {
	cases := sampleCases()
	out := writeCSV(t, cases, WriteOptions{Format: FormatCTDC})
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(recs[0], ","), strings.Join(ctdcColumns, ","); got != want {
		t.Errorf("header: got %v, want %v", got, want)
	}
	row := func(i int) map[string]string {
		m := map[string]string{}
		for j, v := range recs[i+1] {
			if v != "" {
				m[ctdcColumns[j]] = v
			}
		}
		return m
	}
	tests := []struct {
		name string
		i    int
		want map[string]string
	}{
		{"Full", 0, map[string]string{
			"yearOfRegistration": "2024", "gender": "Woman", "ageBroad": "24--26", "citizenship": "UKR",
			"CountryOfExploitation": "NLD", "traffickMonths": "0--12 (0-1 yr)", "meansDebtBondageEarnings": "1",
			"meansThreats": "1", "meansWithholdDocs": "1", "isSexualExploit": "1", "typeOfSexProstitution": "1",
			"recruiterRelationFriend": "1",
		}},
		{"BandOnly", 1, map[string]string{
			"yearOfRegistration": "2021", "gender": "Man", "ageBroad": "09--17", "citizenship": "MMR",
			"CountryOfExploitation": "THA", "traffickMonths": "13--24 (1-2 yrs)", "meansDenyBasicNeeds": "1",
			"meansExcessiveWorkHours": "1", "isForcedLabour": "1", "recruiterRelationFamily": "1", "recruiterRelationOther": "1",
		}},
		{"MajorityOnly", 2, map[string]string{
			"yearOfRegistration": "2019", "gender": "Trans/Transgender/NonConforming", "citizenship": "ETH",
			"CountryOfExploitation": "SAU", "isForcedLabour": "1", "isOtherExploit": "1",
		}},
		{"Bare", 3, map[string]string{"yearOfRegistration": "2020"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := row(tt.i); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// The CTDC file reads back with the same coarse values.
	res := mustRead(t, out, "ctdc.csv", ReadOptions{})
	if err := res.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
	for i, c := range res.Cases {
		for _, dim := range []string{"registration_year", "gender", "age_band", "citizenship", "country_of_exploitation", "months_band", "sexual_exploitation_type"} {
			if got, want := c.DimensionCodes(dim), cases[i].DimensionCodes(dim); !reflect.DeepEqual(got, want) {
				t.Errorf("case %d %s: got %v, want %v", i, dim, got, want)
			}
		}
	}
}

func TestWriteOptions(t *testing.T) {
	t.Run("ConsentedOnly", func(t *testing.T) {
		var b bytes.Buffer
		w, err := NewWriter(&b, WriteOptions{ConsentedOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range sampleCases() {
			if err := w.Write(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := w.Written(), 1; got != want {
			t.Errorf("written: got %v, want %v", got, want)
		}
	})
	t.Run("EmptyHasHeader", func(t *testing.T) {
		out := writeCSV(t, nil, WriteOptions{})
		res := mustRead(t, out, "empty.csv", ReadOptions{})
		if got, want := len(res.Cases), 0; got != want {
			t.Errorf("cases: got %v, want %v", got, want)
		}
	})
	t.Run("LegacyRefused", func(t *testing.T) {
		_, err := NewWriter(&bytes.Buffer{}, WriteOptions{Format: FormatCTDCLegacy})
		if got, want := node.KindOf(err), node.Invalid; got != want {
			t.Errorf("kind: got %v, want %v", got, want)
		}
	})
	t.Run("CTDCWithIdentityRefused", func(t *testing.T) {
		_, err := NewWriter(&bytes.Buffer{}, WriteOptions{Format: FormatCTDC, IncludeIdentity: true})
		if got, want := node.KindOf(err), node.Invalid; got != want {
			t.Errorf("kind: got %v, want %v", got, want)
		}
	})
}
