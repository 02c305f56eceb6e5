package casefile

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

const ctfedHeader = "case_code,registration_date,gender,age,citizenship,date_of_birth,full_name,means_of_control,traffickers,consent\n"

func TestReadCtfed(t *testing.T) {
	data := "\xef\xbb\xbf" + ctfedHeader +
		"A-1,2023-05-02,woman,19,ukr,,Fakename One,threats;abuse,male|UKR|recruiter|friend,yes\n" +
		"\n" +
		"A-2,2024,man,,THA,,,,,\n"
	res := mustRead(t, data, "cases.csv", ReadOptions{DefaultConsent: "no"})
	if err := res.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
	if got, want := res.Format, FormatCtfed; got != want {
		t.Errorf("format: got %v, want %v", got, want)
	}
	if got, want := len(res.Cases), 2; got != want {
		t.Fatalf("cases: got %v, want %v", got, want)
	}
	if got, want := res.Lines, []int{2, 4}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines: got %v, want %v", got, want)
	}
	a, b := res.Cases[0], res.Cases[1]
	if got, want := a.Citizenship, "UKR"; got != want {
		t.Errorf("citizenship: got %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(a.MeansOfControl), "[abuse threats]"; got != want {
		t.Errorf("means: got %v, want %v", got, want)
	}
	if got, want := a.Traffickers, []node.Trafficker{{Sex: "male", Nationality: "UKR", Role: "recruiter", Relation: "friend"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("traffickers: got %v, want %v", got, want)
	}
	if got, want := a.Consent, "yes"; got != want {
		t.Errorf("consent: got %v, want %v", got, want)
	}
	if got, want := b.Consent, "no"; got != want {
		t.Errorf("default consent: got %v, want %v", got, want)
	}
	if got, want := b.Gender, "man"; got != want {
		t.Errorf("gender: got %v, want %v", got, want)
	}
}

// fileErrOf returns the file-level problem inside err.
func fileErrOf(t *testing.T, err error) *fileErr {
	t.Helper()
	var fe *fileErr
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a file error", err)
	}
	return fe
}

func TestReadFileErrors(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	tests := []struct {
		name     string
		data     string
		opt      ReadOptions
		line     int
		column   string
		contains []string // words the message must have
	}{
		{name: "Empty", data: "", contains: []string{"empty"}},
		{name: "OnlyBOM", data: "\xef\xbb\xbf\n\n", contains: []string{"empty"}},
		{name: "WrongHeader", data: "name,colour\nx,y\n", contains: []string{"case_code", "yearOfRegistration", `"colour"`}},
		{name: "UnknownCtfedColumn", data: "case_code,registration_date,colour\nA,2020,red\n", contains: []string{`"colour"`, "registration_date"}},
		{name: "MissingRequiredColumn", data: "case_code,gender\nA,woman\n", contains: []string{"registration_date"}},
		{name: "DuplicateColumn", data: "case_code,registration_date,gender,Gender\n", contains: []string{"twice", "3", "4"}},
		{name: "BrokenUTF8", data: ctfedHeader + "A-1,2020,woman,,,,,,,\nA-2,2020,woman,,,,Fake\xffname,,,\n", line: 3, column: "7", contains: []string{"UTF-8"}},
		{name: "BrokenUTF8InHeader", data: "case_code,registr\xe9ation_date\n", line: 1, column: "2", contains: []string{"UTF-8"}},
		{name: "OversizedField", data: ctfedHeader + "A-1,2020,woman,,,,,,,\nA-2,2020,woman,,,," + long + ",,,\n", line: 3, column: "7", contains: []string{"64 KiB"}},
		{name: "OversizedRow", data: ctfedHeader + "A-1,2020,woman,,,,,,,\nA-2,2020,woman,,,," + strings.Repeat("y,", 600) + "\n",
			opt: ReadOptions{Limits: Limits{MaxFieldBytes: 100, MaxRowBytes: 256}}, line: 3, contains: []string{"256 bytes"}},
		{name: "TooManyRows", data: ctfedHeader + strings.Repeat("A,2020,,,,,,,,\n", 4), opt: ReadOptions{Limits: Limits{MaxRows: 3}}, contains: []string{"3 rows"}},
		{name: "FileTooLarge", data: ctfedHeader + strings.Repeat("A,2020,,,,,,,,\n", 100), opt: ReadOptions{Limits: Limits{MaxBytes: 1000}}, contains: []string{"1000 bytes"}},
		{name: "BadDefaultConsent", data: ctfedHeader, opt: ReadOptions{DefaultConsent: "maybe"}, contains: []string{"consent"}},
		{name: "CTDCWithoutKey", data: "yearOfRegistration,gender\n2019,Man\n", opt: ReadOptions{HMACKey: []byte{}}, contains: []string{"HMAC key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := tt.opt
			if opt.HMACKey == nil {
				opt.HMACKey = testKey
			}
			res, err := Read(strings.NewReader(tt.data), "cases.csv", opt)
			if err == nil {
				t.Fatalf("got %d cases and no error, want an error", len(res.Cases))
			}
			if got, want := node.KindOf(err), node.Invalid; got != want {
				t.Fatalf("kind: got %v, want %v (%v)", got, want, err)
			}
			for _, w := range tt.contains {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not say %q", err, w)
				}
			}
			if tt.line != 0 {
				fe := fileErrOf(t, err)
				if got, want := fe.line, tt.line; got != want {
					t.Errorf("line: got %v, want %v", got, want)
				}
				if got, want := fe.column, tt.column; tt.column != "" && got != want {
					t.Errorf("column: got %v, want %v", got, want)
				}
			}
			if strings.Contains(err.Error(), "Fake") || strings.Contains(err.Error(), "xxxx") {
				t.Errorf("message %q repeats the field's value", err)
			}
		})
	}
}

func TestReadHeaderOnly(t *testing.T) {
	res := mustRead(t, ctfedHeader, "cases.csv", ReadOptions{})
	if got, want := len(res.Cases), 0; got != want {
		t.Errorf("cases: got %v, want %v", got, want)
	}
	if res.Err() != nil || len(res.Notes) == 0 {
		t.Errorf("got err %v and notes %v, want no error and a note", res.Err(), res.Notes)
	}
}

func TestReadRowErrors(t *testing.T) {
	tests := []struct {
		name   string
		row    string // under ctfedHeader, on line 2
		column string
		value  string
		msg    string // a word the message must have
	}{
		{name: "BadCountryCode", row: "A,2020,woman,30,XYZ,,,,,", column: "citizenship", value: "XYZ", msg: "country"},
		{name: "BadAge", row: "A,2020,woman,thirty,UKR,,,,,", column: "age", value: "thirty", msg: "whole number"},
		{name: "AgeOutOfRange", row: "A,2020,woman,130,UKR,,,,,", column: "age", value: "130", msg: "range"},
		{name: "BadCode", row: "A,2020,female,30,UKR,,,,,", column: "gender", value: "female", msg: "gender"},
		{name: "BadMultiCode", row: "A,2020,woman,30,UKR,,,threats;beating,,", column: "means_of_control", value: "beating", msg: "means_of_control"},
		{name: "BadDate", row: "A,2020-13-01,woman,30,UKR,,,,,", column: "registration_date", value: "2020-13-01", msg: "date"},
		{name: "YearOutsideCodebook", row: "A,1990,woman,30,UKR,,,,,", column: "registration_date", value: "1990", msg: "years"},
		{name: "MissingCode", row: ",2020,woman,30,UKR,,,,,", column: "case_code", msg: "required"},
		{name: "MissingDate", row: "A,,woman,30,UKR,,,,,", column: "registration_date", msg: "required"},
		{name: "IdentityValueNotRepeated", row: "A,2020,woman,30,UKR,31/02/1990,,,,", column: "date_of_birth", value: "", msg: "date"},
		{name: "TraffickerParts", row: "A,2020,woman,30,UKR,,,,male|UKR,", column: "traffickers", value: "male|UKR", msg: "sex|nationality|role|relation"},
		{name: "TraffickerCode", row: "A,2020,woman,30,UKR,,,,male|UKR|boss|friend,", column: "traffickers", value: "boss", msg: "traffickers[1].role"},
		{name: "LongValueTruncated", row: "A,2020,woman,30," + strings.Repeat("Z", 200) + ",,,,,", column: "citizenship", value: strings.Repeat("Z", maxValueLen) + "…", msg: "country"},
		{name: "FieldCount", row: "A,2020,woman", column: "", msg: "3 fields"},
		{name: "BareQuote", row: `A,20"20,woman,30,UKR,,,,,`, column: "", msg: "CSV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := ctfedHeader + "OK-1,2020,woman,30,UKR,,,,,\n" + tt.row + "\nOK-2,2021,man,40,THA,,,,,\n"
			res := mustRead(t, data, "cases.csv", ReadOptions{})
			if got, want := res.Valid, 2; got != want {
				t.Errorf("valid: got %v, want %v", got, want)
			}
			if got, want := fmt.Sprint(res.Rejected), "[3]"; got != want {
				t.Fatalf("rejected: got %v, want %v (%v)", got, want, res.Errors)
			}
			if len(res.Errors) == 0 {
				t.Fatalf("got no row error")
			}
			e := res.Errors[0]
			if got, want := e.Line, 3; got != want {
				t.Errorf("line: got %v, want %v", got, want)
			}
			if got, want := e.Column, tt.column; got != want {
				t.Errorf("column: got %v, want %v (%v)", got, want, e)
			}
			if got, want := e.Value, tt.value; got != want {
				t.Errorf("value: got %q, want %q", got, want)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q does not say %q", e.Msg, tt.msg)
			}
			if got, want := node.KindOf(res.Err()), node.Invalid; got != want {
				t.Errorf("Err kind: got %v, want %v", got, want)
			}
		})
	}
}

func TestReadDuplicateCode(t *testing.T) {
	data := ctfedHeader + "A-1,2020,,,,,,,,\nA-2,2020,,,,,,,,\nA-1,2021,,,,,,,,\n"
	res := mustRead(t, data, "cases.csv", ReadOptions{})
	if got, want := len(res.Errors), 1; got != want {
		t.Fatalf("errors: got %v, want %v", got, want)
	}
	e := res.Errors[0]
	if got, want := fmt.Sprintf("%d %s %s", e.Line, e.Column, e.Value), "4 case_code A-1"; got != want {
		t.Errorf("error: got %v, want %v", got, want)
	}
	if !strings.Contains(e.Msg, "line 2") {
		t.Errorf("message %q does not name the first line", e.Msg)
	}
	if got, want := node.KindOf(res.Err()), node.Invalid; got != want {
		t.Errorf("kind: got %v, want %v", got, want)
	}
}

func TestReadCollectsEveryError(t *testing.T) {
	var b strings.Builder
	b.WriteString(ctfedHeader)
	for i := range 30 {
		fmt.Fprintf(&b, "C-%d,2020,woman,%d,XYZ,,,,,\n", i, 200+i) // two problems a row
	}
	b.WriteString("C-ok,2020,woman,20,UKR,,,,,\n")
	res := mustRead(t, b.String(), "cases.csv", ReadOptions{Limits: Limits{MaxErrors: 25}})
	if got, want := len(res.Rejected), 30; got != want {
		t.Errorf("rejected: got %v, want %v", got, want)
	}
	if got, want := len(res.Errors), 25; got != want {
		t.Errorf("listed errors: got %v, want %v", got, want)
	}
	if got, want := res.MoreErrors, 35; got != want {
		t.Errorf("more errors: got %v, want %v", got, want)
	}
	if got, want := res.Valid, 1; got != want {
		t.Errorf("valid: got %v, want %v", got, want)
	}
}

func TestReadMultilineRecordLines(t *testing.T) {
	data := "case_code,registration_date,narrative\nA,2020,\"FAKE line one\nFAKE line two\"\nB,2020,x\nC,1990,y\n"
	res := mustRead(t, data, "cases.csv", ReadOptions{})
	if got, want := fmt.Sprint(res.Lines), "[2 4]"; got != want {
		t.Errorf("lines: got %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(res.Rejected), "[5]"; got != want {
		t.Errorf("rejected: got %v, want %v", got, want)
	}
}

func TestRowErrorNeverRepeatsIdentity(t *testing.T) {
	header := "case_code,registration_date," + strings.Join(node.DefaultCodebook().IdentityFields(), ",") + "\n"
	secret := "FAKESECRET"
	// Every identity column broken: control characters, bad date, too long.
	row := "A,2020," + strings.Join([]string{
		secret + "\x01", secret + "\x02", secret, secret + "\x03", secret + "\x04",
		secret + "\x05", secret + "\x06", strings.Repeat(secret, 3000),
	}, ",") + "\n"
	res := mustRead(t, header+row, "cases.csv", ReadOptions{})
	if got, want := len(res.Errors), 8; got != want {
		t.Fatalf("errors: got %v, want %v (%v)", got, want, res.Errors)
	}
	for _, e := range res.Errors {
		if e.Value != "" || strings.Contains(e.Error(), secret) {
			t.Errorf("error %v repeats an identity value", e)
		}
	}
	if strings.Contains(res.Err().Error(), secret) {
		t.Errorf("Err repeats an identity value")
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		ok   bool
	}{
		{"", "", true}, {"auto", "", true}, {"ctfed", FormatCtfed, true}, {"CTDC", FormatCTDC, true},
		{"ctdc-legacy", FormatCTDCLegacy, true}, {"legacy", FormatCTDCLegacy, true}, {"xml", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("got %v, %v, want %v, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}
