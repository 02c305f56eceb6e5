package web_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/synth"
	"github.com/ctfed/ctfed/node/web"
)

// The admin browser test's file and people.
const (
	adminImportCases = 12         // rows of the uploaded file, the bad one included
	adminImportSeed  = 7          // its synthetic cases' seed
	adminBadRow      = 3          // the row (1-based, after the header) with an age that is no number
	adminNewUser     = "cw-added" // the caseworker the admin adds
	adminTokenName   = "reporting-system"
	adminGlassReason = "Court hearing tomorrow, the prosecutor asked for the contact details"
)

// adminImportFile writes the synthetic cases of the admin test's upload as a
// ctfed CSV in dir, the row adminBadRow with age "abc". It returns the
// file's path, the line where the bad row starts, the codes of the good
// rows, and the code of the first good row that awaits its eligibility
// decision (screened).
func adminImportFile(t *testing.T, dir string) (path string, badLine int, good []string, screened string) {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.WriteCSV(&buf, adminImportCases, adminImportSeed, ""); err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(&buf)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, name := range []string{"case_code", "age", "status"} {
		if _, ok := col[name]; !ok {
			t.Fatalf("got columns %q, want a %s column", header, name)
		}
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	if err := w.Write(header); err != nil {
		t.Fatal(err)
	}
	for row := 1; ; row++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if row == adminBadRow {
			rec[col["age"]] = "abc"
		} else {
			good = append(good, rec[col["case_code"]])
			if screened == "" && rec[col["status"]] == "screened" {
				screened = rec[col["case_code"]]
			}
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if screened == "" {
		t.Fatalf("got no screened case among the %d synthetic cases of seed %d, want one for the eligibility decision", adminImportCases, adminImportSeed)
	}
	// The line where the bad row starts, as written (a narrative may span
	// lines).
	rr := csv.NewReader(bytes.NewReader(out.Bytes()))
	for row := 0; row <= adminBadRow; row++ {
		if _, err := rr.Read(); err != nil {
			t.Fatal(err)
		}
	}
	badLine, _ = rr.FieldPos(0)
	path = filepath.Join(dir, "synthetic-cases.csv")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, badLine, good, screened
}

// TestBrowserAdmin is an admin's work: sign in, add a caseworker, create an
// API token (its secret shown once), import a CSV file of synthetic cases
// (a bad row reported, the good ones imported), find them in the case list,
// record an eligibility decision, erase a case's identity, and read the
// break-the-glass log after the added caseworker broke the glass on a case.
func TestBrowserAdmin(t *testing.T) {
	b := newBrowserEnv(t, 0, nil)
	start := time.Now()
	ctx := context.Background()
	file, badLine, good, screened := adminImportFile(t, t.TempDir())

	// Sign in, from the admin pages.
	b.login(browserAdmin, "/admin", "")
	b.wantText("h1", "Admin")

	// Add a caseworker.
	b.load("open the users page", chromedp.Click(chromedp.CSS(`nav.subnav a[href="/admin/users"]`)))
	b.wantText("h1", "Users")
	b.do("fill in the new user",
		b.typeIn("#new-name", adminNewUser),
		b.choose("#new-role", string(node.RoleCaseworker)),
		b.typeIn("#new-password", browserPassword),
	)
	b.submit(`form[action="/admin/users"] button[type=submit]`, http.StatusOK)
	b.wantText(".notice", "The user "+adminNewUser+" was added.")
	var added []string
	for _, row := range b.tableRows("table.list tbody tr") {
		if len(row) > 1 && row[0] == adminNewUser {
			added = row
		}
	}
	if len(added) < 2 || added[1] != string(node.RoleCaseworker) {
		b.fail("got user row %q, want %s a caseworker", added, adminNewUser)
	}
	if u, err := b.db.User(ctx, adminNewUser); err != nil || u.Role != node.RoleCaseworker || u.CreatedBy != browserAdmin {
		b.fail("got stored user %+v (%v), want a caseworker added by %s", u, err, browserAdmin)
	}
	b.shot("users", "admin-users")

	// Create an API token: its secret is shown once.
	b.load("open the API tokens page", chromedp.Click(chromedp.CSS(`nav.subnav a[href="/admin/tokens"]`)))
	b.wantText("h1", "API tokens")
	b.do("fill in the new token", b.typeIn("#token-name", adminTokenName), b.choose("#token-role", string(node.RoleAnalyst)))
	b.submit(`form[action="/admin/tokens"] button[type=submit]`, http.StatusCreated)
	b.wantText(".notice.warn", "Copy it now: it is not shown again.")
	secret := b.value("#secret")
	if len(secret) < 20 {
		b.fail("got a secret of %d characters, want a long one", len(secret))
	}
	b.shot("token-secret", "")
	req, err := http.NewRequest(http.MethodGet, b.url+"/api/openapi.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.fail("got status %d with the new token, want %d", resp.StatusCode, http.StatusOK)
	}
	b.open("/admin/tokens", http.StatusOK)
	if n := len(b.texts("#secret")); n != 0 {
		b.fail("got the secret shown again on reloading the page, want it shown once")
	}
	var listed []string
	for _, row := range b.tableRows("table.list tbody tr") {
		if len(row) > 5 && row[1] == adminTokenName {
			listed = row
		}
	}
	if listed == nil || listed[2] != string(node.RoleAnalyst) || strings.Contains(strings.Join(listed, " "), secret) {
		b.fail("got token row %q, want %s an analyst token, its secret not shown", listed, adminTokenName)
	}
	b.shot("tokens", "")

	// Import the file: the bad row reported by line and column, then the
	// good rows imported.
	b.load("open the import page", chromedp.Click(chromedp.CSS(`nav.subnav a[href="/import"]`)))
	b.wantText("h1", "Import cases")
	b.do("choose the file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
	b.shot("import-form", "")
	b.submit(`form[action="/import"] button[type=submit]`, http.StatusOK)
	b.wantText("h1", "Check the import")
	b.wantText("main", strconv.Itoa(len(good))+" valid")
	b.wantText("main", "1 rejected")
	problems := b.tableRows("table.list tbody tr")
	if len(problems) != 1 || len(problems[0]) < 4 || problems[0][0] != strconv.Itoa(badLine) || problems[0][1] != "age" {
		b.fail("got problems %q, want one, at line %d, column age", problems, badLine)
	}
	b.shot("import-check", "import-check")
	if n, err := b.db.CaseCount(ctx); err != nil || n != 0 {
		b.fail("got %d cases (%v) before confirming, want none", n, err)
	}
	b.submit(`form[action$="/confirm"] button[type=submit]`, http.StatusOK)
	b.wantText(".notice", "synthetic-cases.csv was imported.")
	if got, want := b.dd("New cases"), strconv.Itoa(len(good)); got != want {
		b.fail("got %s new cases, want %s", got, want)
	}
	if got := b.dd("Rejected rows, not imported"); got != "1" {
		b.fail("got %s rejected rows, want 1", got)
	}
	b.shot("import-done", "")

	// The imported cases in the case list.
	b.load("go to the cases", chromedp.Click(chromedp.CSS(`main a[href="/cases"]`)))
	b.wantText("h1", "Cases")
	b.wantText("p.count", "of "+strconv.Itoa(len(good)))
	codes := b.texts("table.list tbody tr td:first-child")
	slices.Sort(codes)
	want := slices.Sorted(slices.Values(good))
	if !slices.Equal(codes, want) {
		b.fail("got codes %q in the case list, want the imported %q", codes, want)
	}
	b.shot("case-list", "")

	// The eligibility decision on a screened case.
	b.open("/cases/"+screened, http.StatusOK)
	b.wantText("h1", "Case "+screened)
	b.shot("screened-case", "")
	b.submit(`form[action$="/eligibility"] button[value=eligible]`, http.StatusOK)
	b.wantText(".notice", "The case was saved.")
	if got := b.dd("Status"); got != "Eligible" {
		b.fail("got status %q after the decision, want Eligible", got)
	}
	if n := len(b.texts(`form[action$="/eligibility"]`)); n != 0 {
		b.fail("got the eligibility buttons after the decision, want them gone")
	}
	if c, err := b.db.Case(ctx, screened, false); err != nil || c.Status != "eligible" {
		b.fail("got stored case %v, want it eligible", err)
	}
	b.shot("eligible-case", "")

	// Erase the identity of another case, through the confirmation step.
	erased := good[0]
	if erased == screened {
		erased = good[1]
	}
	b.open("/cases/"+erased, http.StatusOK)
	if got := b.dd("Full name"); got == "" || got == "Unknown" {
		b.fail("got no full name on case %s before erasing, want its identity shown to an admin", erased)
	}
	b.submit(`button[formaction$="/erase-identity"]`, http.StatusOK)
	b.wantText("h1", "Erase the identity of case "+erased+"?")
	if c, err := b.db.Case(ctx, erased, true); err != nil || c.Identity.FullName == "" {
		b.fail("got case %s's identity erased (%v) before confirming, want it kept", erased, err)
	}
	b.shot("erase-confirm", "")
	b.submit(`form[action$="/erase-identity"] button[type=submit]`, http.StatusOK)
	b.wantText("h1", "Case "+erased)
	b.wantText("main", "This case's identity fields were erased.")
	if got := b.dd("Full name"); got != "Unknown" {
		b.fail("got a full name on case %s after erasing (not shown here), want Unknown", erased)
	}
	if c, err := b.db.Case(ctx, erased, true); err != nil || c.Identity.FullName != "" {
		b.fail("got case %s's identity kept (%v) after erasing, want it erased", erased, err)
	}
	b.shot("identity-erased", "")

	// The added caseworker, at another computer, breaks the glass on a case
	// not assigned to them.
	glass := good[len(good)-1]
	cw := b.newTab()
	cw.login(adminNewUser, "/cases/"+glass, "")
	cw.wantText("h1", "Case "+glass)
	cw.do("state the reason", cw.typeIn("#reason", adminGlassReason))
	cw.submit(`form[action$="/break-glass"] button[type=submit]`, http.StatusOK)
	cw.wantText(".notice.warn", "You broke the glass")
	cw.shot("broke-glass", "")

	// The admin reads the break-the-glass log.
	b.open("/admin/break-glass", http.StatusOK)
	b.wantText("h1", "Break the glass")
	rows := b.tableRows("table.list tbody tr")
	if len(rows) != 1 || len(rows[0]) != 4 || rows[0][1] != adminNewUser || rows[0][2] != glass || rows[0][3] != adminGlassReason {
		b.fail("got break-the-glass rows %q, want %s on %s with the reason", rows, adminNewUser, glass)
	}
	b.wantText("p.count", "1 in all.")
	b.shot("break-glass-log", "break-glass-log")

	var audited []string
	if err := b.db.AuditEntries(ctx, 0, func(e *node.AuditEntry) error {
		if e.Actor == browserAdmin || e.Actor == adminNewUser {
			audited = append(audited, e.Action)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{web.ActionBreakGlass, web.ActionCaseEraseIdentity} {
		if !slices.Contains(audited, a) {
			t.Errorf("got audit actions %q, want %s", audited, a)
		}
	}
	t.Logf("admin work in the browser: %v", time.Since(start).Round(time.Millisecond))
}
