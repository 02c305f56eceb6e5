package web_test

// The browser tests drive the web application in headless Chromium
// (Debian's chromium package, which .ci/run installs) through chromedp:
// the pages as people use them, with the real stylesheet, forms, redirects,
// cookies and Content-Security-Policy. The server runs in the test process
// (httptest) over a real storage.DB.
//
// Each test saves screenshots (full page, PNG) in its output directory:
// $CTFED_SCREENSHOTS/<test name> when CTFED_SCREENSHOTS is set, else a
// temporary directory; the test logs the path. With CTFED_SCREENSHOTS set
// the main pages are also saved as $CTFED_SCREENSHOTS/<page>.png at
// 1280×900, the pictures docs/screenshots holds:
//
//	CTFED_SCREENSHOTS=$PWD/docs/screenshots go test -run Browser ./node/web/
//
// Without Chromium the tests fail; a developer without it sets
// CTFED_NO_BROWSER=1 to leave them out.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/synth"
	"github.com/ctfed/ctfed/node/web"
	"github.com/ctfed/ctfed/storage"
)

// The browser tests' users; each signs in with browserPassword.
const (
	browserPassword   = "correct horse battery"
	browserCaseworker = "cw-browser"
	browserAnalyst    = "analyst-browser"
	browserAdmin      = "admin-browser"
)

// Limits of a browser test.
const (
	browserTestTimeout = 60 * time.Second // a whole test, browser start included
	browserWidth       = 1280
	browserHeight      = 900
)

// browserEnv is a web.Server over a real store, served on a loopback
// address, and a tab of a headless Chromium of the test's own. newTab
// opens another tab with cookies of its own: another person.
type browserEnv struct {
	t    *testing.T
	db   *storage.DB
	srv  *web.Server
	url  string
	ctx  context.Context // the tab, with the test's deadline
	dir  string          // the test's screenshot directory
	docs string          // $CTFED_SCREENSHOTS, or ""
	// shots counts the test's screenshots, in every tab.
	shots *int
	// seeded is how many synthetic cases the store started with.
	seeded int
}

// chromiumPath returns the Chromium to run. It fails the test when there is
// none, and skips it only when CTFED_NO_BROWSER=1.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("CTFED_NO_BROWSER") == "1" {
		t.Skip("CTFED_NO_BROWSER=1: the browser tests are left out")
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	const debian = "/usr/bin/chromium"
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	t.Fatal("headless Chromium is not installed: the browser tests need Debian's chromium on PATH. " +
		".ci/run installs it (apt-get install chromium when `chromium` is not on PATH); install it the same way, " +
		"or set CTFED_NO_BROWSER=1 to leave the browser tests out on a machine without it")
	return ""
}

// newBrowserEnv opens a store with the browser tests' users and cases
// (synthetic, with fake identities), serves a web.Server over it on a
// loopback address, and starts Chromium. adjust, when not nil, sets the
// server's fields before its first request.
func newBrowserEnv(t *testing.T, cases int, adjust func(*web.Server, *storage.DB)) *browserEnv {
	t.Helper()
	exe := chromiumPath(t)
	ctx := context.Background()
	db := web.MustOpenTestDB(t, zap.NewNop())
	for _, u := range []struct {
		name string
		role node.Role
	}{
		{browserCaseworker, node.RoleCaseworker},
		{browserAnalyst, node.RoleAnalyst},
		{browserAdmin, node.RoleAdmin},
	} {
		if _, err := db.CreateUser(ctx, u.name, u.role, browserPassword, "setup"); err != nil {
			t.Fatal(err)
		}
	}
	if cases > 0 {
		seq, err := synth.Generate(cases, 11, "")
		if err != nil {
			t.Fatal(err)
		}
		var cs []*node.Case
		for c := range seq {
			c.Caseworker = browserCaseworker
			cs = append(cs, c)
		}
		if _, err := db.PutCases(ctx, cs, node.CreateOnly, "setup"); err != nil {
			t.Fatal(err)
		}
	}
	srv := web.NewServer(db, db, db)
	if adjust != nil {
		adjust(srv, db)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	b := &browserEnv{t: t, db: db, srv: srv, url: ts.URL, docs: os.Getenv("CTFED_SCREENSHOTS"), shots: new(int), seeded: cases}
	b.dir = t.TempDir()
	if b.docs != "" {
		b.dir = filepath.Join(b.docs, t.Name())
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", b.dir)

	profile := t.TempDir() // removed after the browser has stopped (cleanups run last first)
	deadline, cancelDeadline := context.WithTimeout(ctx, browserTestTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(deadline,
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(browserWidth, browserHeight),
	)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Close the browser gracefully and wait for it (at most until the
		// test's deadline), so that nothing writes in its profile
		// directory any more.
		if err := chromedp.Cancel(tab); err != nil {
			t.Logf("close the browser: %v", err)
		}
		cancelTab()
		cancelAlloc()
		cancelDeadline()
	})
	start := time.Now()
	// The window's size includes the headless browser's own frame: the
	// page gets browserWidth×browserHeight from the emulated viewport.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(browserWidth, browserHeight)); err != nil {
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	b.ctx = tab
	return b
}

// newTab opens a tab in a browser context of its own (its own cookies):
// another person at another computer.
func (b *browserEnv) newTab() *browserEnv {
	b.t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel) // before the browser closes
	if err := chromedp.Do(tab, chromedp.EmulateViewport(browserWidth, browserHeight)); err != nil {
		b.t.Fatalf("open a tab: %v", err)
	}
	c := *b
	c.ctx = tab
	return &c
}

// withQueryService gives the server the node's query service over db,
// with the default policy: the statistics pages need it.
func withQueryService(srv *web.Server, db *storage.DB) {
	srv.Query = &node.QueryService{Codebook: srv.Codebook, Aggregator: db, Ledger: db, Approvals: db, Audit: db,
		Policy: node.DefaultPolicy(), Org: "browser-test-org", Logger: zap.NewNop()}
}

// do runs steps in the tab and fails the test on an error.
func (b *browserEnv) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// fail saves a screenshot of the page as it is, then fails the test.
func (b *browserEnv) fail(format string, args ...any) {
	b.t.Helper()
	b.shot("failed", "")
	b.t.Fatalf(format, args...)
}

// load runs steps that end in a page load (a link followed, a form
// submitted) and returns the final response: its status, after any
// redirect, and its URL.
func (b *browserEnv) load(what string, steps ...chromedp.Action[chromedp.Void]) *network.Response {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, steps...)
	if err != nil {
		b.fail("%s: %v", what, err)
	}
	return resp
}

// open loads the page at path and checks its status.
func (b *browserEnv) open(path string, wantStatus int) {
	b.t.Helper()
	resp := b.load("open "+path, chromedp.Navigate(b.url+path))
	if int(resp.Status) != wantStatus {
		b.fail("open %s: got status %d, want %d", path, resp.Status, wantStatus)
	}
}

// submit clicks the button sel, which submits a form, and checks the
// status of the page it leads to.
func (b *browserEnv) submit(sel string, wantStatus int) *network.Response {
	b.t.Helper()
	resp := b.load("submit "+sel, chromedp.Click(chromedp.CSS(sel)))
	if int(resp.Status) != wantStatus {
		b.fail("submit %s: got status %d at %s, want %d", sel, resp.Status, resp.URL, wantStatus)
	}
	return resp
}

// path returns the path and query of the tab's current URL.
func (b *browserEnv) path() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.fail("location: %v", err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.fail("location %q: %v", loc, err)
	}
	return u.RequestURI()
}

// text returns the text of the first element matching sel.
func (b *browserEnv) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// texts returns the text of every element matching sel (none: empty).
func (b *browserEnv) texts(sel string) []string {
	b.t.Helper()
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q), e => (e.innerText ?? e.textContent ?? "").trim())`, sel)))
	if err != nil {
		b.fail("texts of %s: %v", sel, err)
	}
	return out
}

// tableRows returns the cells' text of the rows matching sel.
func (b *browserEnv) tableRows(sel string) [][]string {
	b.t.Helper()
	rows, err := chromedp.Run(b.ctx, chromedp.Evaluate[[][]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q), tr => Array.from(tr.children, c => c.innerText.trim()))`, sel)))
	if err != nil {
		b.fail("read the rows %s: %v", sel, err)
	}
	return rows
}

// logWeight logs the bytes the browser received for the page shown: its
// HTML and every resource it loaded (the stylesheet), as sent over the
// wire before decompression.
func (b *browserEnv) logWeight(page string) {
	b.t.Helper()
	w, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]int](
		`[performance.getEntriesByType("navigation")[0].encodedBodySize, performance.getEntriesByType("resource").reduce((n, r) => n + r.encodedBodySize, 0)]`))
	if err != nil || len(w) != 2 {
		b.t.Errorf("page weight of %s: %v", page, err)
		return
	}
	b.t.Logf("page weight of %s: %d bytes of HTML, %d bytes of other resources", page, w[0], w[1])
}

// wantText checks that the first element matching sel holds want.
func (b *browserEnv) wantText(sel, want string) {
	b.t.Helper()
	if got := b.text(sel); !strings.Contains(got, want) {
		b.fail("got %s %q, want it to hold %q", sel, got, want)
	}
}

// value returns the value of the form control sel.
func (b *browserEnv) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fail("value of %s: %v", sel, err)
	}
	return v
}

// checked reports whether the checkbox sel is checked.
func (b *browserEnv) checked(sel string) bool {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).checked`, sel)))
	if err != nil {
		b.fail("checked %s: %v", sel, err)
	}
	return ok
}

// typeIn types s into the empty text input sel, key by key.
func (b *browserEnv) typeIn(sel, s string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), s)
}

// choose selects the option with value v of the select sel.
func (b *browserEnv) choose(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(sel), v)
}

// login signs user in through the sign-in page, from path (a page that
// needs a session), and checks that the page was reached.
func (b *browserEnv) login(user, path string, shot string) {
	b.t.Helper()
	b.open(path, http.StatusOK)
	if got := b.path(); !strings.HasPrefix(got, "/login?next=") {
		b.fail("got %s without a session, want the sign-in page", got)
	}
	b.wantText("h1", "Sign in")
	b.do("fill in the sign-in form", b.typeIn("#user", user), b.typeIn("#password", browserPassword))
	if shot != "" {
		b.shot(shot, shot)
	}
	b.submit(`form[action="/login"] button[type=submit]`, http.StatusOK)
	if got := b.path(); got == "/login" || strings.HasPrefix(got, "/login?") {
		b.fail("got %s after signing in, want to leave the sign-in page (%s)", got, b.text("main"))
	}
	b.wantText("header.top form.signout", user)
}

// shot saves a full-page screenshot as NN-name.png in the test's
// directory. When docsName is set and CTFED_SCREENSHOTS is, it also saves
// the window (1280×900) as $CTFED_SCREENSHOTS/<docsName>.png.
func (b *browserEnv) shot(name, docsName string) {
	b.t.Helper()
	b.shotAt(name, docsName, "")
}

// shotAt is shot with the window's picture taken with the element sel
// (when not empty) scrolled to the top: the part of a long page to show.
func (b *browserEnv) shotAt(name, docsName, sel string) {
	b.t.Helper()
	if b.ctx == nil {
		return
	}
	*b.shots++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", *b.shots, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot %s", p)
	if docsName == "" || b.docs == "" {
		return
	}
	if sel != "" {
		if err := chromedp.Do(b.ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollIntoView()`, sel))); err != nil {
			b.t.Errorf("screenshot %s: scroll to %s: %v", docsName, sel, err)
			return
		}
		defer chromedp.Do(b.ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	}
	png, err = chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Errorf("screenshot %s: %v", docsName, err)
		return
	}
	p = filepath.Join(b.docs, docsName+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", docsName, err)
		return
	}
	b.t.Logf("screenshot %s", p)
}

// browserCaseCode is the code of the case the browser tests create; no
// synthetic case has it.
const browserCaseCode = "WEB-2024-0042"

// createCaseInBrowser fills in the Screening form of a new case, first
// with an age out of range, checks the message and that what was typed
// is kept, corrects the age and saves: the case's page follows.
func (b *browserEnv) createCaseInBrowser(shots bool) {
	b.t.Helper()
	b.load("open the New case page", chromedp.Click(chromedp.CSS(`nav a[href="/new-case"]`)))
	b.wantText("h1", "New case: screening")
	if got := b.value("#f-caseworker"); got != browserCaseworker {
		b.fail("got caseworker %q on a new case, want its creator %q", got, browserCaseworker)
	}
	if shots {
		b.shot("screening-form", "screening-form")
	}
	b.do("fill in the Screening form",
		b.typeIn("#f-case_code", browserCaseCode),
		b.typeIn("#f-registration_date", "2024-03-15"),
		b.choose("#f-status", "eligible"),
		b.choose("#f-referral_source", "ngo"),
		b.typeIn("#f-full_name", "Fakename Browsertest"),
		b.choose("#f-gender", "woman"),
		b.typeIn("#f-age", "230"), // out of range 0–120
		b.typeIn("#f-citizenship", "Nepal"),
		b.typeIn("#f-country_of_exploitation", "India"),
		chromedp.Click(chromedp.CSS(`input[name="means_of_control"][value="threats"]`)),
		chromedp.Click(chromedp.CSS(`input[name="exploitation_types"][value="forced_labour"]`)),
		b.choose("#f-traffickers-1-sex", "male"),
		b.typeIn("#f-traffickers-1-nationality", "India"),
		b.choose("#f-traffickers-1-role", "recruiter"),
		b.choose("#f-consent", "yes"),
		b.typeIn("#f-consent_date", "2024-03-15"),
	)
	b.submit(`form.case-form button[type=submit]`, http.StatusBadRequest)
	b.wantText(".error-summary", "The case was not saved: 1 problem")
	b.wantText("#f-age-err", "Is out of range 0–120.")
	if shots {
		b.shot("screening-form-error", "")
	}
	for sel, want := range map[string]string{
		"#f-case_code":                 browserCaseCode,
		"#f-registration_date":         "2024-03-15",
		"#f-status":                    "eligible",
		"#f-full_name":                 "Fakename Browsertest",
		"#f-age":                       "230",
		"#f-citizenship":               "Nepal",
		"#f-country_of_exploitation":   "India",
		"#f-traffickers-1-nationality": "India",
		"#f-traffickers-1-role":        "recruiter",
		"#f-consent_date":              "2024-03-15",
	} {
		if got := b.value(sel); got != want {
			b.fail("got %s %q after the error, want what was typed, %q", sel, got, want)
		}
	}
	for _, sel := range []string{`input[name="means_of_control"][value="threats"]`, `input[name="exploitation_types"][value="forced_labour"]`} {
		if !b.checked(sel) {
			b.fail("got %s unchecked after the error, want it kept", sel)
		}
	}
	if n, err := b.db.CaseCount(context.Background()); err != nil || n != b.seeded {
		b.fail("got %d cases (%v) after an invalid form, want nothing stored", n, err)
	}
	// The summary links to the field.
	b.do("follow the summary's link", chromedp.Click(chromedp.CSS(`.error-summary a[href="#f-age"]`)))
	b.do("correct the age", chromedp.Clear(chromedp.CSS("#f-age")), b.typeIn("#f-age", "23"))
	b.submit(`form.case-form button[type=submit]`, http.StatusOK)
	if got, want := b.path(), "/cases/"+browserCaseCode+"?saved=1"; got != want {
		b.fail("got %s after saving, want %s", got, want)
	}
	b.wantText("h1", "Case "+browserCaseCode)
	b.wantText(".notice", "The case was saved.")
}

// browserSeedCases is how many synthetic cases the browser tests' store
// starts with: enough for a case list of several pages and statistics of
// a few cases a year.
const browserSeedCases = 120

// dd returns the text of the definition beside the term label on a case
// page ("" when there is none).
func (b *browserEnv) dd(label string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { for (const dt of document.querySelectorAll("dt")) if (dt.innerText.trim() === %q) return dt.nextElementSibling.innerText.trim(); return ""; })()`, label)))
	if err != nil {
		b.fail("definition of %s: %v", label, err)
	}
	return s
}

var countRE = regexp.MustCompile(`^Cases (\d+)–(\d+) of (\d+)$`)

// TestBrowserCaseWork is a caseworker's day: sign in, create a case
// through the Screening form (an error first, then the fix), find it in
// the case list, add assistance through the Assistance form, and read the
// case's history.
func TestBrowserCaseWork(t *testing.T) {
	b := newBrowserEnv(t, browserSeedCases, nil)
	start := time.Now()

	// Sign in, from the start page.
	b.login(browserCaseworker, "/", "login")
	if got := b.path(); got != "/cases" {
		b.fail("got %s after signing in, want the case list", got)
	}
	b.wantText("h1", "Cases")

	// Create a case.
	b.createCaseInBrowser(true)
	for label, want := range map[string]string{
		"Full name":           "Fakename Browsertest",
		"Age at registration": "23",
		"Citizenship":         "Nepal",
		"Means of control":    "Threats",
		"Status":              "Eligible",
	} {
		if got := b.dd(label); !strings.Contains(got, want) {
			b.fail("got %s %q on the case page, want %q", label, got, want)
		}
	}
	b.shot("case", "case")

	// Find it in the case list: the list pages, then a search by code.
	b.load("open the case list", chromedp.Click(chromedp.CSS(`nav a[href="/cases"]`)))
	m := countRE.FindStringSubmatch(b.text("p.count"))
	if m == nil || m[3] != fmt.Sprint(browserSeedCases+1) {
		b.fail("got count %q, want %d cases in all", b.text("p.count"), browserSeedCases+1)
	}
	if len(b.texts("nav.pager a[rel=next]")) == 0 {
		b.fail("got no next page link for %d cases", browserSeedCases+1)
	}
	b.shot("case-list", "case-list")
	b.logWeight("the case list (first page)")
	b.do("search by code", b.typeIn("#q", browserCaseCode[:8]))
	b.submit(`form.filters button[type=submit]`, http.StatusOK)
	if u, err := url.Parse(b.path()); err != nil || u.Path != "/cases" || u.Query().Get("q") != browserCaseCode[:8] {
		b.fail("got %s after searching, want the search in the case list's URL", b.path())
	}
	rows := b.texts("table.list tbody tr td:first-child")
	if len(rows) != 1 || rows[0] != browserCaseCode {
		b.fail("got codes %q for %q, want only %s", rows, browserCaseCode[:8], browserCaseCode)
	}
	b.wantText("p.count", "Cases 1–1 of 1")
	if got := b.value("#q"); got != browserCaseCode[:8] {
		b.fail("got search box %q, want the search kept", got)
	}
	b.shot("case-list-search", "")

	// Add assistance.
	b.load("open the case", chromedp.Click(chromedp.CSS("table.list tbody a")))
	b.load("open the Assistance form", chromedp.Click(chromedp.CSS(`a[href$="/edit?form=assistance"]`)))
	b.wantText("h1", "Case "+browserCaseCode+": Assistance")
	b.do("fill in the Assistance form",
		b.choose("#f-assistance-1-service", "shelter"),
		b.typeIn("#f-assistance-1-date", "2024-03-16"),
		b.typeIn("#f-assistance-1-provider", "Safe House North"),
		b.choose("#f-return_status", "planned"),
	)
	b.shot("assistance-form", "")
	b.submit(`form.case-form button[type=submit]`, http.StatusOK)
	b.wantText(".notice", "The case was saved.")
	b.wantText("p.meta", "Version 2")
	if got := b.dd("Assistance received"); !strings.Contains(got, "Shelter") || !strings.Contains(got, "Safe House North") {
		b.fail("got assistance %q on the case page, want the shelter service", got)
	}
	if got := b.dd("Return"); got != "Planned" {
		b.fail("got return %q, want Planned", got)
	}
	b.shot("case-with-assistance", "")

	// The case's history: created, then the assistance added.
	b.load("open the history", chromedp.Click(chromedp.CSS(`a[href$="/history"]`)))
	b.wantText("h1", "History of case "+browserCaseCode)
	versions := b.texts("ol.history > li h2")
	if len(versions) != 2 || versions[0] != "Version 2" || versions[1] != "Version 1" {
		b.fail("got versions %q, want Version 2 then Version 1", versions)
	}
	first := b.texts("ol.history > li:first-child .meta")
	if len(first) == 0 || !strings.Contains(first[0], "by "+browserCaseworker) {
		b.fail("got %q, want version 2 by %s", first, browserCaseworker)
	}
	changes := strings.Join(b.texts("ol.history > li:first-child table.changes tr"), "\n")
	if !strings.Contains(changes, "Return") || !strings.Contains(changes, "Planned") {
		b.fail("got changes\n%s\nwant the return status set", changes)
	}
	if got := b.texts("ol.history > li:last-child p"); !strings.Contains(strings.Join(got, " "), "Case created.") {
		b.fail("got %q, want version 1 created", got)
	}
	b.shot("history", "history")
	t.Logf("case work in the browser: %v", time.Since(start).Round(time.Millisecond))
}
