package casefile

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

func readFile(t *testing.T, path string, opt ReadOptions) *Result {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return mustRead(t, string(data), path, opt)
}

func TestReadCTDCSample(t *testing.T) {
	res := readFile(t, "testdata/ctdc_sample.csv", ReadOptions{DefaultConsent: "yes"})
	if err := res.Err(); err != nil {
		t.Fatalf("Err: %v (%v)", err, res.Errors)
	}
	if got, want := res.Format, FormatCTDC; got != want {
		t.Errorf("format: got %v, want %v", got, want)
	}
	if got, want := len(res.Cases), 8; got != want {
		t.Fatalf("cases: got %v, want %v", got, want)
	}
	c := res.Cases[0]
	want := &node.Case{
		Code: c.Code, RegistrationDate: "2019", Gender: "woman", AgeBand: "18_20", Citizenship: "UKR",
		CountryOfExploitation: "POL", MonthsBand: "0_12", MeansOfControl: []string{"debt_bondage_earnings", "threats"},
		ExploitationTypes: []string{"sexual"}, SexualExploitationTypes: []string{"prostitution"},
		RecruiterRelations: []string{"friend"}, Consent: "yes",
	}
	want.Normalize()
	if got := fmt.Sprintf("%+v", c); got != fmt.Sprintf("%+v", want) {
		t.Errorf("first case:\ngot  %v\nwant %v", got, fmt.Sprintf("%+v", want))
	}
	// Three identical victims (the third spells its empty cells NULL): three
	// distinct codes.
	codes := []string{res.Cases[0].Code, res.Cases[1].Code, res.Cases[2].Code}
	if len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 3 {
		t.Errorf("identical rows got codes %v, want three distinct codes", codes)
	}
	for _, c := range res.Cases {
		if !strings.HasPrefix(c.Code, CTDCCodePrefix) || len(c.Code) != len(CTDCCodePrefix)+codeLen {
			t.Errorf("code %q is not %s and %d characters", c.Code, CTDCCodePrefix, codeLen)
		}
	}
	checks := []struct {
		i    int
		got  string
		want string
	}{
		{3, fmt.Sprint(res.Cases[3].MeansOfControl), "[debt_bondage_earnings deny_basic_needs excessive_hours withheld_documents]"},
		{3, res.Cases[3].MonthsBand, "13_24"},
		{4, res.Cases[4].Gender, "trans_nonconforming"},
		{4, res.Cases[4].AgeBandCode() + " " + res.Cases[4].MajorityCode(), "9_17 minor"},
		{4, fmt.Sprint(res.Cases[4].RecruiterRelations), "[intimate_partner]"},
		{5, res.Cases[5].Gender + " " + res.Cases[5].Citizenship + " " + res.Cases[5].MonthsBand, "unknown unknown unknown"},
		{5, fmt.Sprint(len(res.Cases[5].ExploitationTypes)), "0"},
		{6, res.Cases[6].AgeBand + " " + fmt.Sprint(res.Cases[6].LabourTypes), "48_plus [domestic_work]"},
		{7, fmt.Sprint(res.Cases[7].ExploitationTypes, res.Cases[7].LabourTypes), "[forced_labour other] [agriculture construction]"},
		{7, res.Cases[7].MonthsBand, "unknown"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("case %d: got %v, want %v", c.i, c.got, c.want)
		}
	}
}

// permuteColumns rewrites a CSV with its columns in reverse order and every
// empty cell written as NULL.
func permuteColumns(t *testing.T, data []byte) string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, r := range recs {
		slices.Reverse(r)
		for i := range r {
			if r[i] == "" {
				r[i] = "NULL"
			}
		}
		w.Write(r)
	}
	w.Flush()
	return b.String()
}

func TestCTDCCodes(t *testing.T) {
	data, err := os.ReadFile("testdata/ctdc_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	codes := func(data string, key []byte) []string {
		res := mustRead(t, data, "ctdc.csv", ReadOptions{HMACKey: key})
		var out []string
		for _, c := range res.Cases {
			out = append(out, c.Code)
		}
		return out
	}
	first := codes(string(data), testKey)
	t.Run("Stable", func(t *testing.T) {
		if got, want := codes(string(data), testKey), first; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("Distinct", func(t *testing.T) {
		if got, want := len(slices.Compact(slices.Sorted(slices.Values(first)))), len(first); got != want {
			t.Errorf("distinct codes: got %v, want %v", got, want)
		}
	})
	t.Run("ColumnOrderAndNULL", func(t *testing.T) {
		if got, want := codes(permuteColumns(t, data), testKey), first; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("OtherKey", func(t *testing.T) {
		other := codes(string(data), bytes.Repeat([]byte{7}, 32))
		for i := range other {
			if other[i] == first[i] {
				t.Errorf("row %d: same code %v under another key", i, other[i])
			}
		}
	})
	t.Run("AppendedRowsKeepCodes", func(t *testing.T) {
		lines := strings.SplitAfter(string(data), "\n")
		more := string(data) + lines[1] + lines[4]
		got := codes(more, testKey)
		if !slices.Equal(got[:len(first)], first) {
			t.Errorf("got %v, want the first %d codes unchanged %v", got, len(first), first)
		}
		if got[len(first)] == got[0] || got[len(first)] == got[1] || got[len(first)] == got[2] {
			t.Errorf("a fourth identical row reuses a code")
		}
	})
}

func TestReadCTDCRowErrors(t *testing.T) {
	header := strings.Join(ctdcColumns, ",") + "\n"
	row := func(vals map[int]string) string {
		r := make([]string, len(ctdcColumns))
		r[0] = "2019"
		for i, v := range vals {
			r[i] = v
		}
		return strings.Join(r, ",") + "\n"
	}
	tests := []struct {
		name   string
		row    string
		column string
		value  string
	}{
		{"BadYear", row(map[int]string{0: "19"}), "yearOfRegistration", "19"},
		{"YearOutsideCodebook", row(map[int]string{0: "1999"}), "yearOfRegistration", "1999"},
		{"MissingYear", row(map[int]string{0: "NULL"}), "yearOfRegistration", ""},
		{"BadGender", row(map[int]string{1: "Unknown gender"}), "gender", "Unknown gender"},
		{"BadAge", row(map[int]string{2: "18-25"}), "ageBroad", "18-25"},
		{"Alpha2Country", row(map[int]string{3: "UA"}), "citizenship", "UA"},
		{"BadCountry", row(map[int]string{4: "XXX"}), "CountryOfExploitation", "XXX"},
		{"BadMonths", row(map[int]string{5: "forever"}), "traffickMonths", "forever"},
		{"BadBinary", row(map[int]string{7: "yes"}), "meansThreats", "yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRead(t, header+row(nil)+tt.row, "ctdc.csv", ReadOptions{})
			if got, want := len(res.Errors), 1; got != want {
				t.Fatalf("errors: got %v, want %v (%v)", got, want, res.Errors)
			}
			e := res.Errors[0]
			if got, want := fmt.Sprintf("%d|%s|%s", e.Line, e.Column, e.Value), fmt.Sprintf("3|%s|%s", tt.column, tt.value); got != want {
				t.Errorf("got %v, want %v (%v)", got, want, e)
			}
		})
	}
}

func TestReadCTDCExtraColumns(t *testing.T) {
	data := "id,yearOfRegistration,gender,,Region\n1,2019,Man,x,Europe\n2,2019,Woman,y,Asia\n"
	res := mustRead(t, data, "ctdc.csv", ReadOptions{Format: FormatCTDC})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Cases), 2; got != want {
		t.Errorf("cases: got %v, want %v", got, want)
	}
	if got := strings.Join(res.Notes, "; "); !strings.Contains(got, "Region") || !strings.Contains(got, "id") {
		t.Errorf("notes %q do not name the ignored columns", got)
	}
}

func TestReadLegacySample(t *testing.T) {
	res := readFile(t, "testdata/ctdc_legacy_sample.csv", ReadOptions{DefaultConsent: "unknown"})
	if err := res.Err(); err != nil {
		t.Fatalf("Err: %v (%v)", err, res.Errors)
	}
	if got, want := res.Format, FormatCTDCLegacy; got != want {
		t.Errorf("format: got %v, want %v", got, want)
	}
	if got, want := len(res.Cases), 4; got != want {
		t.Fatalf("cases: got %v, want %v", got, want)
	}
	c := res.Cases
	checks := []struct {
		i         int
		got, want string
	}{
		{0, c[0].Gender + " " + c[0].AgeBandCode() + " " + c[0].MajorityCode() + " " + c[0].MajorityAtExploitationCode(), "woman 9_17 minor minor"},
		{0, c[0].Citizenship + ">" + c[0].CountryOfExploitation + " " + c[0].DataSource, "UKR>RUS assistance_case"},
		{0, fmt.Sprint(c[0].MeansOfControl, c[0].ExploitationTypes, c[0].SexualExploitationTypes, c[0].RecruiterRelations), "[abuse threats] [sexual] [prostitution] [friend]"},
		{1, c[1].Gender + " " + c[1].AgeBand + " " + c[1].Citizenship + ">" + c[1].CountryOfExploitation + " " + c[1].DataSource, "man 30_38 MDA>unknown hotline_report"},
		{1, fmt.Sprint(c[1].MeansOfControl, c[1].ExploitationTypes, c[1].LabourTypes), "[debt_bondage_earnings withheld_documents] [forced_labour] [construction fishing]"},
		{2, c[2].Gender + " " + c[2].MajorityCode() + " " + c[2].Citizenship + ">" + c[2].CountryOfExploitation, "unknown adult NAM>unknown"},
		{2, fmt.Sprintf("%v %v %v", c[2].ExploitationTypes, c[2].RecruitmentType, c[2].RecruiterRelations), "[forced_marriage] abduction [family]"},
		{3, fmt.Sprintf("%v %v %v", c[3].ExploitationTypes, c[3].MeansOfControl, c[3].MajorityCode()), "[begging forced_labour] [other] minor"},
		{3, c[3].Consent, "unknown"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("case %d: got %v, want %v", ch.i, ch.got, ch.want)
		}
	}
	notes := strings.Join(res.Notes, "; ")
	for _, w := range []string{"regionNote", "majorityEntry", "Mystery means"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes %q do not mention %q", notes, w)
		}
	}
}

func TestReadLegacyRowErrors(t *testing.T) {
	header := "yearOfRegistration,gender,majorityStatus,ageBroad,citizenship,meansOfControlThreats\n"
	tests := []struct {
		name, row, column, value string
	}{
		{"BadGender", "2015,Woman-ish,Adult,18--20,UA,1", "gender", "Woman-ish"},
		{"BadMajority", "2015,Female,Grown,18--20,UA,1", "majorityStatus", "Grown"},
		{"MajorityDisagrees", "2015,Female,Minor,18--20,UA,1", "majorityStatus", "minor"},
		{"BadCountry", "2015,Female,Adult,18--20,QQ,1", "citizenship", "QQ"},
		{"BadBinary", "2015,Female,Adult,18--20,UA,2", "meansOfControlThreats", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRead(t, header+"2015,Female,Adult,18--20,UA,1\n"+tt.row+"\n", "legacy.csv", ReadOptions{Format: FormatCTDCLegacy})
			if got, want := len(res.Errors), 1; got != want {
				t.Fatalf("errors: got %v, want %v (%v)", got, want, res.Errors)
			}
			e := res.Errors[0]
			if got, want := fmt.Sprintf("%d|%s|%s", e.Line, e.Column, e.Value), "3|"+tt.column+"|"+tt.value; got != want {
				t.Errorf("got %v, want %v (%v)", got, want, e)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   Format
	}{
		{"Ctfed", []string{"case_code", "registration_date"}, FormatCtfed},
		{"CTDC", ctdcColumns, FormatCTDC},
		{"Legacy", legacyColumns, FormatCTDCLegacy},
		{"SharedColumnsOnly", []string{"yearOfRegistration", "gender", "citizenship"}, FormatCTDC},
		{"LegacySubset", []string{"YearOfRegistration", "Datasource", "gender", "majorityStatus"}, FormatCTDCLegacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := detectFormat(tt.header)
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v, want %v", got, err, tt.want)
			}
		})
	}
	if got, want := len(ctdcColumns), 27; got != want {
		t.Errorf("CTDC columns: got %v, want %v", got, want)
	}
	if got, want := len(legacyColumns), 63; got != want {
		t.Errorf("legacy columns: got %v, want %v", got, want)
	}
	// Every column of both shapes is read (or knowingly ignored).
	cb := node.DefaultCodebook()
	ctdc, legacy := ctdcCols(cb), legacyCols(cb)
	for _, c := range ctdcColumns {
		if _, ok := ctdc[strings.ToLower(c)]; !ok {
			t.Errorf("CTDC column %s has no decoder", c)
		}
	}
	for _, c := range legacyColumns {
		n := strings.ToLower(c)
		if _, ok := legacy[n]; !ok && ignoredLegacy[n] == "" {
			t.Errorf("legacy column %s has no decoder", c)
		}
	}
}
