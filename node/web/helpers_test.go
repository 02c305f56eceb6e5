package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/synth"
	"github.com/ctfed/ctfed/storage"
)

// The users every test environment has; each signs in with testPassword.
const (
	testPassword = "correct horse battery"
	userAdmin    = "ana"
	userCW       = "cw-a" // assigned to the synthetic cases
	userCW2      = "cw-b" // assigned to none
	userAnalyst  = "al"
	userAuditor  = "au"
)

var testUsers = []struct {
	name string
	role node.Role
}{
	{userAdmin, node.RoleAdmin},
	{userCW, node.RoleCaseworker},
	{userCW2, node.RoleCaseworker},
	{userAnalyst, node.RoleAnalyst},
	{userAuditor, node.RoleAuditor},
}

// testClock is a settable clock shared by the store and the server.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is a Server over a real storage.DB in a temporary node
// directory, with the test users, a shared clock and an observed logger.
type testEnv struct {
	db    *storage.DB
	srv   *Server
	h     http.Handler
	clock *testClock
	logs  *observer.ObservedLogs
}

// MustOpenTestDB opens a store with an insecure keyring and small badger
// settings in a new temporary node directory, and closes it at the end of
// the test.
func MustOpenTestDB(tb testing.TB, logger *zap.Logger) *storage.DB {
	tb.Helper()
	dir := tb.TempDir()
	kr, _, err := storage.CreateKeyring(dir, nil, true)
	if err != nil {
		tb.Fatal(err)
	}
	db := storage.NewDB(dir, kr)
	db.Logger = logger
	db.SyncWrites = false
	db.MemTableSize = 8 << 20
	db.NumMemtables = 1
	db.ValueLogFileSize = 1 << 20
	db.BlockCacheSize = 1 << 20
	db.IndexCacheSize = 1 << 20
	if err := db.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func newTestEnv(tb testing.TB) *testEnv {
	tb.Helper()
	core, logs := observer.New(zap.DebugLevel)
	logger := zap.New(core)
	db := MustOpenTestDB(tb, logger)
	clock := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db.Now = clock.Now
	for _, u := range testUsers {
		if _, err := db.CreateUser(context.Background(), u.name, u.role, testPassword, "setup"); err != nil {
			tb.Fatal(err)
		}
	}
	srv := NewServer(db, db, db)
	srv.Logger = logger
	srv.Now = clock.Now
	srv.PageSize = 20
	return &testEnv{db: db, srv: srv, h: srv.Handler(), clock: clock, logs: logs}
}

// putCases stores cases as "setup".
func (e *testEnv) putCases(tb testing.TB, cases ...*node.Case) {
	tb.Helper()
	if _, err := e.db.PutCases(context.Background(), cases, node.CreateOnly, "setup"); err != nil {
		tb.Fatal(err)
	}
}

// synthCases returns n synthetic cases (fake identities), every one
// assigned to userCW.
func synthCases(tb testing.TB, n int) []*node.Case {
	tb.Helper()
	seq, err := synth.Generate(n, 7, "")
	if err != nil {
		tb.Fatal(err)
	}
	var out []*node.Case
	for c := range seq {
		c.Caseworker = userCW
		out = append(out, c)
	}
	return out
}

// auditEntries returns the audit log.
func (e *testEnv) auditEntries(tb testing.TB) []*node.AuditEntry {
	tb.Helper()
	var out []*node.AuditEntry
	if err := e.db.AuditEntries(context.Background(), 0, func(a *node.AuditEntry) error {
		out = append(out, a)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}

// hasAudit reports whether the log has an entry of actor's action on
// subject (any subject when empty).
func (e *testEnv) hasAudit(tb testing.TB, actor, action, subject string) bool {
	tb.Helper()
	for _, a := range e.auditEntries(tb) {
		if a.Actor == actor && a.Action == action && (subject == "" || a.Subject == subject) {
			return true
		}
	}
	return false
}

func (e *testEnv) caseCount(tb testing.TB) int {
	tb.Helper()
	n, err := e.db.CaseCount(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// client is a browser without JavaScript: it keeps cookies and sends
// requests straight to the handler.
type client struct {
	tb      testing.TB
	h       http.Handler
	cookies map[string]*http.Cookie
	csrf    string
	remote  string
	bearer  string
}

func (e *testEnv) anonymous(tb testing.TB) *client {
	return &client{tb: tb, h: e.h, cookies: map[string]*http.Cookie{}, remote: "192.0.2.1:1234"}
}

// tokenClient sends requests with an API token of role.
func (e *testEnv) tokenClient(tb testing.TB, role node.Role) (*client, *node.Token) {
	tb.Helper()
	secret, tok, err := e.db.CreateToken(context.Background(), "tok-"+string(role), role, time.Time{}, userAdmin)
	if err != nil {
		tb.Fatal(err)
	}
	c := e.anonymous(tb)
	c.bearer = secret
	return c, tok
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login signs user in with testPassword and keeps the session's CSRF
// token.
func (e *testEnv) login(tb testing.TB, user string) *client {
	tb.Helper()
	c := e.anonymous(tb)
	if rec := c.signIn(user, testPassword, ""); rec.Code != http.StatusSeeOther {
		tb.Fatalf("sign in %s: got status %d, want 303: %s", user, rec.Code, rec.Body)
	}
	// Any page of the session carries its token in the sign-out form.
	rec := c.get("/no-such-page")
	m := csrfRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		tb.Fatalf("no CSRF token on a page for %s: %s", user, rec.Body)
	}
	c.csrf = m[1]
	return c
}

// signIn fetches the sign-in form and posts it.
func (c *client) signIn(user, password, next string) *httptest.ResponseRecorder {
	c.tb.Helper()
	rec := c.get("/login")
	m := csrfRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		c.tb.Fatalf("no sign-in token on the sign-in page: %s", rec.Body)
	}
	return c.postForm("/login", url.Values{"user": {user}, "password": {password}, "csrf": {m[1]}, "next": {next}})
}

func (c *client) do(req *http.Request) *httptest.ResponseRecorder {
	c.tb.Helper()
	req.RemoteAddr = c.remote
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return rec
}

func (c *client) get(path string) *httptest.ResponseRecorder {
	c.tb.Helper()
	return c.do(httptest.NewRequest(http.MethodGet, path, nil))
}

// postForm posts v as a form, as is.
func (c *client) postForm(path string, v url.Values) *httptest.ResponseRecorder {
	c.tb.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// post posts v with the session's CSRF token added.
func (c *client) post(path string, v url.Values) *httptest.ResponseRecorder {
	c.tb.Helper()
	if v == nil {
		v = url.Values{}
	}
	if v.Get("csrf") == "" {
		v.Set("csrf", c.csrf)
	}
	return c.postForm(path, v)
}

// sendJSON sends body as JSON with method, with the session's CSRF
// header when the client has a session.
func (c *client) sendJSON(method, path string, body any) *httptest.ResponseRecorder {
	c.tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.tb.Fatal(err)
		}
		r = strings.NewReader(string(j))
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set(csrfHeader, c.csrf)
	}
	return c.do(req)
}

// decodeBody decodes rec's JSON body into v.
func decodeBody(tb testing.TB, rec *httptest.ResponseRecorder, v any) {
	tb.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("got Content-Type %q, want application/json (status %d: %s)", ct, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		tb.Fatalf("decode %s: %v", rec.Body, err)
	}
}

// apiErr decodes an API error body.
func apiErr(tb testing.TB, rec *httptest.ResponseRecorder) apiErrorBody {
	tb.Helper()
	var b apiErrorBody
	decodeBody(tb, rec, &b)
	return b
}

// identityValues returns the identity field values of c worth looking
// for in output: every non-trivial string of its Identity.
func identityValues(c *node.Case) []string {
	id := c.Identity
	vals := append([]string{id.FullName, string(id.DateOfBirth), id.Phone, id.Email, id.Address, id.Narrative}, id.Aliases...)
	vals = append(vals, id.Documents...)
	var out []string
	for _, v := range vals {
		if len(v) >= 6 {
			out = append(out, v)
		}
	}
	return out
}

// leaked returns the first of vals that body holds (HTML-escaped or not).
func leaked(body string, vals []string) string {
	for _, v := range vals {
		if strings.Contains(body, v) || strings.Contains(body, htmlEscape(v)) {
			return v
		}
	}
	return ""
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "+", "&#43;")

func htmlEscape(s string) string { return htmlEscaper.Replace(s) }

type responseRecorder = httptest.ResponseRecorder
