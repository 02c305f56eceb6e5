package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/casefile"
)

// caseCSV writes cases in ctfed's shape with their identity columns, then
// lets edit change the rows (header first) before they are encoded.
func caseCSV(tb testing.TB, cases []*node.Case, edit func(rows [][]string)) []byte {
	tb.Helper()
	var buf bytes.Buffer
	wr, err := casefile.NewWriter(&buf, casefile.WriteOptions{IncludeIdentity: true})
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range cases {
		if err := wr.Write(c); err != nil {
			tb.Fatal(err)
		}
	}
	if err := wr.Close(); err != nil {
		tb.Fatal(err)
	}
	if edit == nil {
		return buf.Bytes()
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	edit(rows)
	var out bytes.Buffer
	cw := csv.NewWriter(&out)
	cw.WriteAll(rows)
	return out.Bytes()
}

// setCell sets the column named col of row i (1 is the first data row).
func setCell(rows [][]string, i int, col, v string) {
	j := slices.Index(rows[0], col)
	if j < 0 {
		panic("no column " + col)
	}
	rows[i][j] = v
}

// multipartBody returns a multipart form with fields (in order) and a file
// part named file.
func multipartBody(tb testing.TB, fields [][2]string, filename string, data []byte) (*bytes.Buffer, string) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	if filename != "" || data != nil {
		fw, err := mw.CreateFormFile("file", filename)
		if err != nil {
			tb.Fatal(err)
		}
		fw.Write(data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// upload posts a file to the import page with the session's CSRF token
// (csrf "-" leaves it out) and the consent.
func (c *client) upload(path, csrf, consent, filename string, data []byte) *httptest.ResponseRecorder {
	c.tb.Helper()
	var fields [][2]string
	switch csrf {
	case "":
		fields = append(fields, [2]string{"csrf", c.csrf})
	case "-":
	default:
		fields = append(fields, [2]string{"csrf", csrf})
	}
	if consent != "" {
		fields = append(fields, [2]string{"consent", consent})
	}
	body, ct := multipartBody(c.tb, fields, filename, data)
	req := httptest.NewRequest(http.MethodPost, path, body)
	req.Header.Set("Content-Type", ct)
	if c.bearer == "" && c.csrf != "" && strings.HasPrefix(path, "/api/") {
		req.Header.Set(csrfHeader, c.csrf)
	}
	return c.do(req)
}

func (e *testEnv) pendingImports() int {
	e.srv.imports.mu.Lock()
	defer e.srv.imports.mu.Unlock()
	return len(e.srv.imports.m)
}

var importIDRE = regexp.MustCompile(`^/import/([A-Za-z0-9_-]{22})$`)

// uploadOK uploads data as c and returns the import's ID.
func uploadOK(tb testing.TB, c *client, name string, data []byte) string {
	tb.Helper()
	rec := c.upload("/import", "", "unknown", name, data)
	m := importIDRE.FindStringSubmatch(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || m == nil {
		tb.Fatalf("upload: got %d to %q, want 303 to the check page: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	return m[1]
}

func TestImport(t *testing.T) {
	e := newTestEnv(t)
	admin := e.login(t, userAdmin)
	cases := synthCases(t, 6)
	var secrets []string
	for _, c := range cases {
		secrets = append(secrets, identityValues(c)...)
	}
	const secretDOB = "FAKE-DOB-9f3a"
	file := caseCSV(t, cases, func(rows [][]string) {
		setCell(rows, 2, "gender", "martian")
		setCell(rows, 4, "date_of_birth", secretDOB)
	})

	var id string
	t.Run("Check", func(t *testing.T) {
		id = uploadOK(t, admin, "cases.csv", file)
		if n := e.caseCount(t); n != 0 {
			t.Fatalf("got %d cases, want none before confirmation", n)
		}
		rec := admin.get("/import/" + id)
		body := rec.Body.String()
		for _, want := range []string{"cases.csv", "6 rows", "4 valid", "2 rejected", "</td><td>gender</td><td>martian</td>",
			"</td><td>date_of_birth</td><td></td>", `action="/import/` + id + `/confirm"`, "Import the 4 valid cases"} {
			if !strings.Contains(body, want) {
				t.Fatalf("got no %q in the check page: %s", want, body)
			}
		}
		if v := leaked(body, append(secrets, secretDOB)); v != "" {
			t.Fatalf("got identity value %q in the check page", v)
		}
	})
	t.Run("Confirm", func(t *testing.T) {
		rec := admin.post("/import/"+id+"/confirm", nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "<dt>New cases</dt><dd>4</dd>") || !strings.Contains(body, "<dt>Rejected rows, not imported</dt><dd>2</dd>") {
			t.Fatalf("got %d, want 200 with the counts: %s", rec.Code, body)
		}
		if n := e.caseCount(t); n != 4 {
			t.Fatalf("got %d cases, want 4", n)
		}
		got, err := e.db.Case(context.Background(), cases[0].Code, true)
		if err != nil {
			t.Fatal(err)
		}
		if got.UpdatedBy != userAdmin || got.Identity.FullName != cases[0].Identity.FullName {
			t.Fatalf("got a case by %q, want by %s with its identity", got.UpdatedBy, userAdmin)
		}
		var audit *node.AuditEntry
		for _, a := range e.auditEntries(t) {
			if a.Action == ActionCaseImport {
				audit = a
			}
		}
		if audit == nil || audit.Actor != userAdmin || !strings.Contains(audit.Detail, "6 rows, 4 valid, 2 rejected; 4 created, 0 updated, 0 unchanged") {
			t.Fatalf("got audit entry %+v, want case.import with the counts", audit)
		}
		if v := leaked(audit.Detail, secrets); v != "" || strings.Contains(audit.Detail, "cases.csv") {
			t.Fatal("got an identity value or the file name in the audit entry")
		}
	})
	t.Run("ConfirmTwice", func(t *testing.T) {
		if rec := admin.post("/import/"+id+"/confirm", nil); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", rec.Code)
		}
		if rec := admin.get("/import/" + id); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", rec.Code)
		}
		if n := e.caseCount(t); n != 4 {
			t.Fatalf("got %d cases, want 4", n)
		}
	})
	t.Run("Again", func(t *testing.T) {
		id := uploadOK(t, admin, "cases.csv", file)
		rec := admin.post("/import/"+id+"/confirm", nil)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<dt>Unchanged (already stored)</dt><dd>4</dd>") {
			t.Fatalf("got %d, want the same cases left unchanged: %s", rec.Code, rec.Body)
		}
	})
	t.Run("Conflict", func(t *testing.T) {
		changed := caseCSV(t, cases, func(rows [][]string) { setCell(rows, 1, "gender", "unknown") })
		id := uploadOK(t, admin, "changed.csv", changed)
		rec := admin.post("/import/"+id+"/confirm", nil)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "already stored with different content") {
			t.Fatalf("got %d, want 409 saying a code is taken: %s", rec.Code, rec.Body)
		}
		if n := e.caseCount(t); n != 4 {
			t.Fatalf("got %d cases, want 4: the batch refused whole", n)
		}
		if !e.hasAudit(t, userAdmin, ActionCaseImport, "") {
			t.Fatal("got no audit entry")
		}
		last := e.auditEntries(t)
		if a := last[len(last)-1]; a.Action != ActionCaseImport || !strings.HasSuffix(a.Detail, "stopped: conflict") {
			t.Fatalf("got %+v, want the stopped import audited", a)
		}
	})
}

func TestImportInvalid(t *testing.T) {
	e := newTestEnv(t)
	e.srv.MaxImportBytes = 4 << 10
	admin := e.login(t, userAdmin)
	cases := synthCases(t, 2)
	good := caseCSV(t, cases, nil)
	for _, tc := range []struct {
		name, filename, consent string
		data                    []byte
		status                  int
		msg                     string
	}{
		{"NoFile", "", "unknown", nil, http.StatusBadRequest, "Choose a CSV or XLSX file to import."},
		{"Empty", "empty.csv", "unknown", []byte{}, http.StatusBadRequest, "The file is empty."},
		{"TooLarge", "big.csv", "unknown", bytes.Repeat([]byte("x"), 5<<10), http.StatusRequestEntityTooLarge, "The file is larger than 4 KiB"},
		{"BadConsent", "cases.csv", "maybe", good, http.StatusBadRequest, "Choose the consent of rows that do not say."},
		{"NotACaseFile", "notes.csv", "unknown", []byte("colour,shape\nred,round\n"), http.StatusBadRequest, "notes.csv"},
		{"CTDCWithoutKey", "ctdc.csv", "yes", []byte(strings.Join(casefile.CTDCColumns(), ",") + "\n2020,Woman,18--20,UKR,POL,0--12 (0-1 yr)" + strings.Repeat(",", 21) + "\n"), http.StatusBadRequest, "key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := admin.upload("/import", "", tc.consent, tc.filename, tc.data)
			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(body, tc.msg) || !strings.Contains(body, `class="error-summary"`) {
				t.Fatalf("got %d, want %d with %q: %s", rec.Code, tc.status, tc.msg, body)
			}
			if e.pendingImports() != 0 || e.caseCount(t) != 0 {
				t.Fatal("got an import kept or a case stored")
			}
		})
	}
	t.Run("NoValidRow", func(t *testing.T) {
		bad := caseCSV(t, cases, func(rows [][]string) {
			setCell(rows, 1, "gender", "martian")
			setCell(rows, 2, "registration_date", "yesterday")
		})
		id := uploadOK(t, admin, "bad.csv", bad)
		body := admin.get("/import/" + id).Body.String()
		if !strings.Contains(body, "0 valid") || strings.Contains(body, "/confirm") || !strings.Contains(body, "nothing to import") {
			t.Fatalf("got %s, want no confirm button", body)
		}
		if rec := admin.post("/import/"+id+"/confirm", nil); rec.Code != http.StatusBadRequest || e.caseCount(t) != 0 {
			t.Fatalf("got %d, want 400 and nothing stored", rec.Code)
		}
	})
	t.Run("OtherSession", func(t *testing.T) {
		id := uploadOK(t, admin, "cases.csv", good)
		other := e.login(t, userAdmin)
		if rec := other.get("/import/" + id); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d from another session, want 404", rec.Code)
		}
		if rec := other.post("/import/"+id+"/confirm", nil); rec.Code != http.StatusNotFound || e.caseCount(t) != 0 {
			t.Fatalf("got %d from another session, want 404 and nothing stored", rec.Code)
		}
		if rec := admin.get("/import/" + id); rec.Code != http.StatusOK {
			t.Fatalf("got %d for the uploader, want the import still waiting", rec.Code)
		}
	})
	t.Run("Replaced", func(t *testing.T) {
		first := uploadOK(t, admin, "cases.csv", good)
		uploadOK(t, admin, "cases.csv", good)
		if rec := admin.get("/import/" + first); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want the session's earlier upload dropped", rec.Code)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		id := uploadOK(t, admin, "cases.csv", good)
		e.clock.Add(importTTL + time.Second)
		if rec := admin.post("/import/"+id+"/confirm", nil); rec.Code != http.StatusNotFound || e.caseCount(t) != 0 {
			t.Fatalf("got %d, want 404 and nothing stored", rec.Code)
		}
	})
	t.Run("BadCSRF", func(t *testing.T) {
		id := uploadOK(t, admin, "cases.csv", good)
		before := e.pendingImports()
		for _, token := range []string{"-", "forged", e.login(t, userAdmin).csrf} {
			if rec := admin.upload("/import", token, "unknown", "cases.csv", good); rec.Code != http.StatusForbidden || e.pendingImports() != before {
				t.Fatalf("upload with token %q: got %d, want 403 and nothing kept", token, rec.Code)
			}
			if rec := admin.postForm("/import/"+id+"/confirm", map[string][]string{"csrf": {token}}); rec.Code != http.StatusForbidden || e.caseCount(t) != 0 {
				t.Fatalf("confirm with token %q: got %d, want 403 and nothing stored", token, rec.Code)
			}
		}
		if rec := admin.get("/import/" + id); rec.Code != http.StatusOK {
			t.Fatalf("got %d, want the import still waiting", rec.Code)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, u := range []string{userCW, userAnalyst, userAuditor} {
			c := e.login(t, u)
			if rec := c.upload("/import", "", "unknown", "cases.csv", good); rec.Code != http.StatusForbidden {
				t.Fatalf("%s: got %d, want 403", u, rec.Code)
			}
		}
		if rec := e.anonymous(t).upload("/import", "x", "unknown", "cases.csv", good); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
			t.Fatalf("got %d, want a redirect to sign in", rec.Code)
		}
	})
}

// xlsxFile returns a workbook whose first sheet holds rows.
func xlsxFile(tb testing.TB, rows [][]string) []byte {
	tb.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	for i, r := range rows {
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &vals); err != nil {
			tb.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func TestImportFormats(t *testing.T) {
	e := newTestEnv(t)
	e.srv.ImportKey = bytes.Repeat([]byte{7}, 32)
	admin := e.login(t, userAdmin)
	t.Run("XLSX", func(t *testing.T) {
		rows, err := csv.NewReader(bytes.NewReader(caseCSV(t, synthCases(t, 3), nil))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		id := uploadOK(t, admin, "cases.xlsx", xlsxFile(t, rows))
		if body := admin.get("/import/" + id).Body.String(); !strings.Contains(body, "3 valid") {
			t.Fatalf("got %s, want 3 valid rows", body)
		}
		if rec := admin.post("/import/"+id+"/confirm", nil); rec.Code != http.StatusOK || e.caseCount(t) != 3 {
			t.Fatalf("got %d, want 3 cases imported", rec.Code)
		}
	})
	t.Run("CTDCConsent", func(t *testing.T) {
		row := func(year, gender string) string {
			return year + "," + gender + ",18--20,UKR,POL,0--12 (0-1 yr)" + strings.Repeat(",", 21)
		}
		stored := map[string]bool{}
		e.db.ForEachCase(context.Background(), false, func(c *node.Case) error { stored[c.Code] = true; return nil })
		data := strings.Join([]string{strings.Join(casefile.CTDCColumns(), ","), row("2020", "Woman"), row("2021", "Man")}, "\n") + "\n"
		rec := admin.upload("/import", "", "yes", "ctdc.csv", []byte(data))
		m := importIDRE.FindStringSubmatch(rec.Header().Get("Location"))
		if m == nil {
			t.Fatalf("got %d: %s", rec.Code, rec.Body)
		}
		if rec := admin.post("/import/"+m[1]+"/confirm", nil); rec.Code != http.StatusOK {
			t.Fatalf("got %d: %s", rec.Code, rec.Body)
		}
		n := 0
		e.db.ForEachCase(context.Background(), false, func(c *node.Case) error {
			if !stored[c.Code] {
				n++
				if c.Consent != "yes" || c.Citizenship != "UKR" {
					t.Fatalf("got consent %q citizenship %q, want yes from the form and UKR", c.Consent, c.Citizenship)
				}
			}
			return nil
		})
		if n != 2 {
			t.Fatalf("got %d CTDC cases, want 2", n)
		}
	})
}

func TestImportAPI(t *testing.T) {
	e := newTestEnv(t)
	tok, _ := e.tokenClient(t, node.RoleAdmin)
	cases := synthCases(t, 3)
	file := caseCSV(t, cases, func(rows [][]string) { setCell(rows, 3, "gender", "martian") })
	var got apiImport
	t.Run("Upload", func(t *testing.T) {
		rec := tok.upload("/api/imports", "-", "no", "cases.csv", file)
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusCreated || got.ID == "" || got.Rows != 3 || got.Valid != 2 || got.Rejected != 1 || got.Format != "ctfed" {
			t.Fatalf("got %d %+v, want 201 with an id, 3 rows, 2 valid", rec.Code, got)
		}
		if len(got.Errors) != 1 || got.Errors[0].Line < 4 || got.Errors[0].Column != "gender" || got.Errors[0].Value != "martian" || got.Errors[0].Message == "" {
			t.Fatalf("got errors %+v, want one of gender, martian", got.Errors)
		}
		want := []apiRowError{{Line: got.Errors[0].Line, Column: "gender", Value: "martian", Message: got.Errors[0].Message}}
		if !slices.Equal(got.Errors, want) {
			t.Fatalf("got errors %+v, want %+v", got.Errors, want)
		}
		if e.caseCount(t) != 0 {
			t.Fatal("got cases stored before confirmation")
		}
	})
	t.Run("OtherCaller", func(t *testing.T) {
		other := e.login(t, userAdmin)
		if rec := other.sendJSON("POST", "/api/imports/"+got.ID+"/confirm", nil); rec.Code != http.StatusNotFound || e.caseCount(t) != 0 {
			t.Fatalf("got %d, want 404 and nothing stored", rec.Code)
		}
	})
	t.Run("Confirm", func(t *testing.T) {
		rec := tok.sendJSON("POST", "/api/imports/"+got.ID+"/confirm", nil)
		var res apiImportResult
		decodeBody(t, rec, &res)
		if rec.Code != http.StatusOK || res != (apiImportResult{Created: 2, Rejected: 1}) {
			t.Fatalf("got %d %+v, want 2 created, 1 rejected", rec.Code, res)
		}
		c, err := e.db.Case(context.Background(), cases[0].Code, false)
		if err != nil || c.UpdatedBy != "token:tok-admin" {
			t.Fatalf("got %v by %q, want the case by the token", err, c.UpdatedBy)
		}
		if rec := tok.sendJSON("POST", "/api/imports/"+got.ID+"/confirm", nil); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d confirming twice, want 404", rec.Code)
		}
	})
	for _, tc := range []struct {
		name   string
		send   func() *httptest.ResponseRecorder
		status int
		msg    string
	}{
		{"JSON", func() *httptest.ResponseRecorder { return tok.sendJSON("POST", "/api/imports", `{"file":"x"}`) }, 400, "multipart/form-data"},
		{"NoFile", func() *httptest.ResponseRecorder { return tok.upload("/api/imports", "-", "", "", nil) }, 400, "choose a CSV or XLSX file"},
		{"BadConsent", func() *httptest.ResponseRecorder { return tok.upload("/api/imports", "-", "perhaps", "c.csv", file) }, 400, "consent"},
		{"NotACaseFile", func() *httptest.ResponseRecorder {
			return tok.upload("/api/imports", "-", "", "c.csv", []byte("a,b\n1,2\n"))
		}, 400, "c.csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.pendingImports()
			rec := tc.send()
			if b := apiErr(t, rec); rec.Code != tc.status || b.Kind != "invalid" || !strings.Contains(b.Message, tc.msg) {
				t.Fatalf("got %d %+v, want %d with %q", rec.Code, b, tc.status, tc.msg)
			}
			if e.pendingImports() != before {
				t.Fatal("got an import kept")
			}
		})
	}
	t.Run("NoValidRow", func(t *testing.T) {
		bad := caseCSV(t, cases[:1], func(rows [][]string) { setCell(rows, 1, "gender", "martian") })
		rec := tok.upload("/api/imports", "-", "", "c.csv", bad)
		var got apiImport
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || got.ID != "" || got.Valid != 0 || len(got.Errors) != 1 {
			t.Fatalf("got %d %+v, want 200 without an id", rec.Code, got)
		}
	})
	t.Run("SessionCSRF", func(t *testing.T) {
		c := e.login(t, userAdmin)
		body, ct := multipartBody(t, nil, "c.csv", file)
		req := httptest.NewRequest(http.MethodPost, "/api/imports", body)
		req.Header.Set("Content-Type", ct)
		if rec := c.do(req); rec.Code != http.StatusForbidden {
			t.Fatalf("got %d without the CSRF header, want 403", rec.Code)
		}
	})
}

func TestExport(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 4)
	e.putCases(t, cases...)
	var secrets []string
	for _, c := range cases {
		secrets = append(secrets, identityValues(c)...)
	}
	admin := e.login(t, userAdmin)
	t.Run("Form", func(t *testing.T) {
		rec := admin.get("/export")
		if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, `action="/export"`) || !strings.Contains(body, "(4)") {
			t.Fatalf("got %d, want the export form: %s", rec.Code, body)
		}
	})
	for _, tc := range []struct {
		name, query string
		header      string
		identity    bool
		detail      string
	}{
		{"Ctfed", "format=ctfed", "case_code,registration_date", false, "ctfed shape, without identity, 4 cases"},
		{"CtfedIdentity", "format=ctfed&identity=1", "full_name", true, "ctfed shape, with identity, 4 cases"},
		{"CTDC", "format=ctdc&identity=0", strings.Join(casefile.CTDCColumns()[:3], ","), false, "ctdc shape, without identity, 4 cases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := admin.get("/export?" + tc.query)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
				!strings.HasPrefix(rec.Header().Get("Content-Disposition"), "attachment; filename=") {
				t.Fatalf("got %d %v, want a CSV download", rec.Code, rec.Header())
			}
			first, _, _ := strings.Cut(body, "\n")
			if !strings.Contains(first, tc.header) || strings.Contains(first, "full_name") != tc.identity {
				t.Fatalf("got header %q, want %q (identity %v)", first, tc.header, tc.identity)
			}
			if n := strings.Count(body, "\n"); n < 5 {
				t.Fatalf("got %d lines, want a header and 4 cases", n)
			}
			if v := leaked(body, secrets); (v != "") != tc.identity {
				t.Fatalf("got identity value %q, want identity %v", v, tc.identity)
			}
			all := e.auditEntries(t)
			if a := all[len(all)-1]; a.Action != ActionCaseExport || a.Actor != userAdmin || a.Detail != tc.detail {
				t.Fatalf("got audit entry %+v, want case.export %q", a, tc.detail)
			}
		})
	}
	for _, tc := range []struct{ name, query, msg string }{
		{"BadFormat", "format=xml", "Choose the format"},
		{"NoFormat", "identity=1", "Choose the format"},
		{"CTDCIdentity", "format=ctdc&identity=1", "The CTDC shape has no identity columns"},
		{"BadIdentity", "format=ctfed&identity=yes", "identity is 0 or 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audits := len(e.auditEntries(t))
			rec := admin.get("/export?" + tc.query)
			if body := rec.Body.String(); rec.Code != http.StatusBadRequest || !strings.Contains(body, tc.msg) || leaked(body, secrets) != "" {
				t.Fatalf("got %d, want 400 with %q: %s", rec.Code, tc.msg, body)
			}
			if len(e.auditEntries(t)) != audits {
				t.Fatal("got an audit entry for a refused export")
			}
		})
	}
	t.Run("API", func(t *testing.T) {
		tok, _ := e.tokenClient(t, node.RoleAdmin)
		rec := tok.get("/api/export?format=ctdc")
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), casefile.CTDCColumns()[0]) {
			t.Fatalf("got %d, want the CTDC file", rec.Code)
		}
		if !e.hasAudit(t, "token:tok-admin", ActionCaseExport, "") {
			t.Fatal("got no audit entry")
		}
		rec = tok.get("/api/export?format=ctdc&identity=1")
		if b := apiErr(t, rec); rec.Code != http.StatusBadRequest || b.Kind != "invalid" {
			t.Fatalf("got %d %+v, want 400 invalid", rec.Code, b)
		}
		cw, _ := e.tokenClient(t, node.RoleCaseworker)
		if rec := cw.get("/api/export?format=ctfed&identity=1"); rec.Code != http.StatusForbidden || leaked(rec.Body.String(), secrets) != "" {
			t.Fatalf("got %d, want 403", rec.Code)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		data := admin.get("/export?format=ctfed&identity=1").Body.Bytes()
		e2 := newTestEnv(t)
		c := e2.login(t, userAdmin)
		id := uploadOK(t, c, "export.csv", data)
		if rec := c.post("/import/"+id+"/confirm", nil); rec.Code != http.StatusOK {
			t.Fatalf("got %d: %s", rec.Code, rec.Body)
		}
		for _, want := range cases {
			got, err := e2.db.Case(context.Background(), want.Code, true)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Identity) != fmt.Sprint(want.Identity) || got.Gender != want.Gender || got.RegistrationDate != want.RegistrationDate {
				t.Fatalf("%s: got the case changed by export and import", want.Code)
			}
		}
	})
}
