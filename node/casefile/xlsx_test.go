package casefile

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/ctfed/ctfed/node"
)

// xlsxOf returns a workbook whose first sheet holds rows (row 1 first; a nil
// row is left empty).
func xlsxOf(t *testing.T, rows [][]string) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.NewSheet("Other")
	sheet := f.GetSheetName(0)
	for i, r := range rows {
		if r == nil {
			continue
		}
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &vals); err != nil {
			t.Fatal(err)
		}
	}
	f.SetCellValue("Other", "A1", "not read")
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadXLSX(t *testing.T) {
	cases := sampleCases()
	recs := [][]string{ctfedColumns(node.DefaultCodebook(), true)}
	w := &Writer{}
	w.encode = func(c *node.Case, row []string) {
		for i, name := range recs[0] {
			row[i] = ctfedFields[name].enc(c)
		}
	}
	for i, c := range cases {
		row := make([]string, len(recs[0]))
		w.encode(c, row)
		recs = append(recs, row)
		if i == 1 {
			recs = append(recs, nil) // an empty row, skipped
		}
	}
	data := xlsxOf(t, recs)
	for _, name := range []string{"cases.xlsx", "upload"} {
		t.Run(name, func(t *testing.T) {
			res, err := Read(bytes.NewReader(data), name, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Err(); err != nil {
				t.Fatalf("Err: %v (%v)", err, res.Errors)
			}
			if got, want := fmt.Sprint(res.Lines), "[2 3 5 6]"; got != want {
				t.Errorf("rows: got %v, want %v", got, want)
			}
			for i := range cases {
				if !reflect.DeepEqual(res.Cases[i], cases[i]) {
					t.Errorf("case %d:\ngot  %+v\nwant %+v", i, res.Cases[i], cases[i])
				}
			}
		})
	}
}

func TestReadXLSXErrors(t *testing.T) {
	t.Run("RowError", func(t *testing.T) {
		data := xlsxOf(t, [][]string{
			{"yearOfRegistration", "gender", "citizenship"},
			{"2019", "Woman", "UKR"},
			nil,
			{"2019", "Woman", "ZZZ"},
			{"2020", "Man", "THA", "extra"},
		})
		res, err := Read(bytes.NewReader(data), "ctdc.xlsx", ReadOptions{HMACKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(res.Rejected), "[4 5]"; got != want {
			t.Fatalf("rejected: got %v, want %v (%v)", got, want, res.Errors)
		}
		if e := res.Errors[0]; e.Column != "citizenship" || e.Value != "ZZZ" {
			t.Errorf("got %v, want citizenship ZZZ", e)
		}
	})
	t.Run("NotAWorkbook", func(t *testing.T) {
		_, err := Read(strings.NewReader("PK\x03\x04 not a zip"), "cases.xlsx", ReadOptions{})
		if got, want := node.KindOf(err), node.Invalid; got != want {
			t.Errorf("kind: got %v, want %v (%v)", got, want, err)
		}
	})
	t.Run("OversizedCell", func(t *testing.T) {
		data := xlsxOf(t, [][]string{{"case_code", "registration_date", "narrative"}, {"A", "2020", strings.Repeat("x", 100)}})
		_, err := Read(bytes.NewReader(data), "cases.xlsx", ReadOptions{Limits: Limits{MaxFieldBytes: 50}})
		if got, want := node.KindOf(err), node.Invalid; got != want {
			t.Fatalf("kind: got %v, want %v (%v)", got, want, err)
		}
		if fe := fileErrOf(t, err); fe.line != 2 || fe.column != "3" {
			t.Errorf("got line %d column %s, want line 2 column 3", fe.line, fe.column)
		}
	})
	t.Run("EmptySheet", func(t *testing.T) {
		_, err := Read(bytes.NewReader(xlsxOf(t, nil)), "cases.xlsx", ReadOptions{})
		if got, want := node.KindOf(err), node.Invalid; got != want {
			t.Errorf("kind: got %v, want %v (%v)", got, want, err)
		}
	})
}
