package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

// endpoint is one route of the server with a request that reaches it.
type endpoint struct {
	method, path string
	api          bool
	roles        []node.Role
	form         url.Values // for a page POST
	body         string     // for an API request
	// people: only a signed-in person may, never an API token (but an
	// admin token, which sees identity anyway).
	people bool
}

func (ep endpoint) String() string { return ep.method + " " + ep.path }

// endpoints lists every route of the server, for a stored case code.
// TestEndpointsCoverRoutes keeps its API part in step with apiRoutes.
func endpoints(code string) []endpoint {
	all := node.Roles()
	p := "/cases/" + url.PathEscape(code)
	newCase := `{"case_code":"API-1","registration_date":"2024-05-01"}`
	return []endpoint{
		{method: "GET", path: "/", roles: all},
		{method: "POST", path: "/logout", roles: all},
		{method: "GET", path: "/cases", roles: caseRoles},
		{method: "GET", path: "/cases?status=assisted&year=2024&citizenship=NPL&exploitation_type=sexual&page=2", roles: caseRoles},
		{method: "GET", path: "/new-case", roles: caseRoles},
		{method: "POST", path: "/cases", roles: caseRoles, form: url.Values{"form": {"screening"}, "case_code": {"FORM-1"}, "registration_date": {"2024-02-03"}}},
		{method: "GET", path: p, roles: caseRoles},
		{method: "POST", path: p, roles: caseRoles, form: url.Values{"form": {"assistance"}, "version": {"1"}, "return_status": {"planned"}}},
		{method: "GET", path: p + "/edit?form=screening", roles: caseRoles},
		{method: "GET", path: p + "/edit?form=assistance", roles: caseRoles},
		{method: "GET", path: p + "/history", roles: caseRoles},
		{method: "POST", path: p + "/break-glass", roles: caseRoles, form: url.Values{"reason": {"Court hearing preparation today"}}},
		{method: "GET", path: "/api/openapi.yaml", api: true, roles: all},
		{method: "GET", path: "/api/cases", api: true, roles: caseRoles},
		{method: "POST", path: "/api/cases", api: true, roles: caseRoles, body: newCase},
		{method: "GET", path: "/api" + p, api: true, roles: caseRoles},
		{method: "PUT", path: "/api" + p, api: true, roles: caseRoles, body: `{"registration_date":"2024-05-01","status":"closed"}`},
		{method: "GET", path: "/api" + p + "/history", api: true, roles: caseRoles},
		{method: "POST", path: "/api" + p + "/break-glass", api: true, roles: caseRoles, body: `{"reason":"Court hearing preparation today"}`, people: true},
		{method: "GET", path: "/stats?measure=count&group1=gender", roles: statsRoles},
		{method: "GET", path: "/stats.csv?measure=count", roles: statsRoles},
		{method: "GET", path: "/api/stats?query=SELECT+COUNT%28%2A%29+FROM+cases", api: true, roles: statsRoles},
		{method: "GET", path: "/admin", roles: adminRoles},
		{method: "GET", path: "/admin/users", roles: adminRoles},
		{method: "POST", path: "/admin/users", roles: adminRoles, form: url.Values{"name": {"web-user"}, "role": {"analyst"}, "password": {testPassword}}},
		{method: "POST", path: "/admin/users/web-user", roles: adminRoles, form: url.Values{"action": {"role"}, "role": {"auditor"}}},
		{method: "GET", path: "/admin/tokens", roles: adminRoles},
		{method: "POST", path: "/admin/tokens", roles: adminRoles, form: url.Values{"name": {"web-token"}, "role": {"analyst"}}},
		{method: "POST", path: "/admin/tokens/0123456789abcdef/revoke", roles: adminRoles},
		{method: "GET", path: "/admin/break-glass", roles: adminRoles},
		{method: "GET", path: "/import", roles: adminRoles},
		{method: "POST", path: "/import", roles: adminRoles, form: url.Values{"consent": {"yes"}}},
		{method: "GET", path: "/import/no-such-import", roles: adminRoles},
		{method: "POST", path: "/import/no-such-import/confirm", roles: adminRoles},
		{method: "GET", path: "/export", roles: adminRoles},
		{method: "GET", path: "/export?format=ctfed&identity=1", roles: adminRoles},
		{method: "POST", path: p + "/close", roles: caseRoles},
		{method: "POST", path: p + "/reopen", roles: caseRoles},
		{method: "POST", path: p + "/eligibility", roles: caseRoles, form: url.Values{"decision": {"eligible"}}},
		{method: "POST", path: p + "/erase-identity", roles: adminRoles, form: url.Values{"confirm": {"yes"}}},
		{method: "GET", path: "/api/users", api: true, roles: adminRoles},
		{method: "POST", path: "/api/users", api: true, roles: adminRoles, body: `{"name":"api-user","role":"analyst","password":"` + testPassword + `"}`},
		{method: "POST", path: "/api/users/api-user", api: true, roles: adminRoles, body: `{"role":"auditor"}`},
		{method: "GET", path: "/api/tokens", api: true, roles: adminRoles},
		{method: "POST", path: "/api/tokens", api: true, roles: adminRoles, body: `{"name":"api-token","role":"analyst"}`},
		{method: "DELETE", path: "/api/tokens/0123456789abcdef", api: true, roles: adminRoles},
		{method: "POST", path: "/api/imports", api: true, roles: adminRoles},
		{method: "POST", path: "/api/imports/no-such-import/confirm", api: true, roles: adminRoles},
		{method: "GET", path: "/api/export?format=ctdc", api: true, roles: adminRoles},
	}
}

// request sends ep as c.
func (c *client) request(ep endpoint) *httptest.ResponseRecorder {
	c.tb.Helper()
	switch {
	case ep.api && ep.body != "":
		return c.sendJSON(ep.method, ep.path, ep.body)
	case ep.api:
		return c.sendJSON(ep.method, ep.path, nil)
	case ep.method == http.MethodPost:
		v := url.Values{}
		for k, vs := range ep.form {
			v[k] = slices.Clone(vs)
		}
		return c.post(ep.path, v)
	}
	return c.get(ep.path)
}

func TestEndpointsCoverRoutes(t *testing.T) {
	s := NewServer(nil, nil, nil)
	var want []string
	for _, rt := range s.apiRoutes() {
		if slices.ContainsFunc(s.federationAPIRoutes(), func(f apiRoute) bool { return f.pattern == rt.pattern }) {
			continue // TestFederationEndpointsCoverRoutes
		}
		want = append(want, rt.pattern)
	}
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		mux.Handle(rt.pattern, http.NotFoundHandler())
	}
	var got []string
	for _, ep := range endpoints("C1") {
		if ep.api {
			_, pattern := mux.Handler(httptest.NewRequest(ep.method, ep.path, nil))
			if !slices.Contains(got, pattern) {
				got = append(got, pattern)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got API endpoints %q, want %q", got, want)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newTestEnv(t)
	anon := e.anonymous(t)
	cw := e.login(t, userCW)
	for _, tc := range []struct {
		name string
		c    *client
		path string
	}{
		{"Login", anon, "/login"},
		{"Stylesheet", anon, "/static/style.css"},
		{"RedirectToLogin", anon, "/cases"},
		{"API401", anon, "/api/cases"},
		{"Page", cw, "/cases"},
		{"NotFound", cw, "/nowhere"},
		{"API", cw, "/api/cases"},
		{"APINotFound", cw, "/api/nowhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.c.get(tc.path)
			for h, want := range map[string]string{
				"Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'",
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
			} {
				if got := rec.Header().Get(h); got != want {
					t.Fatalf("%s: got %s %q, want %q", tc.path, h, got, want)
				}
			}
		})
	}
	t.Run("NoInlineScriptOrStyle", func(t *testing.T) {
		for _, p := range []string{"/cases", "/new-case"} {
			body := cw.get(p).Body.String()
			for _, bad := range []string{"<script", "style=", "<style", "onclick", "javascript:", "http://", "https://"} {
				if strings.Contains(body, bad) {
					t.Fatalf("%s: got %q in the page, want no inline script, style or outside resource", p, bad)
				}
			}
		}
	})
}

func TestLogin(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if err := e.db.SetUserDisabled(ctx, userAuditor, true, userAdmin); err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		c := e.anonymous(t)
		rec := c.signIn(userCW, testPassword, "/cases?status=assisted")
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases?status=assisted" {
			t.Fatalf("got %d to %q, want 303 to the page asked for", rec.Code, rec.Header().Get("Location"))
		}
		ck := c.cookies[sessionCookie]
		if ck == nil {
			t.Fatal("got no session cookie")
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/" || len(ck.Value) < 43 {
			t.Fatalf("got cookie %+v, want HttpOnly, SameSite=Strict, Path=/, a 32-byte ID, not Secure without TLS", ck)
		}
		if c.cookies[loginCookie] != nil {
			t.Fatal("got the sign-in token cookie kept, want it cleared")
		}
		if got := c.get("/cases"); got.Code != http.StatusOK {
			t.Fatalf("got %d, want the case list", got.Code)
		}
		if !e.hasAudit(t, userCW, ActionLogin, "") {
			t.Fatal("got no login audit entry")
		}
	})
	for _, tc := range []struct {
		name, user, password string
	}{
		{"WrongPassword", userCW, testPassword + "x"},
		{"UnknownUser", "nobody", testPassword},
		{"Disabled", userAuditor, testPassword},
		{"Empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.anonymous(t)
			c.remote = "198.51.100.7:1"
			rec := c.signIn(tc.user, tc.password, "")
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Wrong user name or password.") {
				t.Fatalf("got %d, want 401 with the one message: %s", rec.Code, rec.Body)
			}
			if c.cookies[sessionCookie] != nil {
				t.Fatal("got a session cookie, want none")
			}
			if strings.Contains(rec.Body.String(), tc.password) && tc.password != "" {
				t.Fatal("got the password back in the page")
			}
		})
	}
	t.Run("FailuresAudited", func(t *testing.T) {
		if !e.hasAudit(t, "anonymous", ActionLoginFailed, userCW) {
			t.Fatal("got no audit entry of the failed sign-in")
		}
	})
	t.Run("BadToken", func(t *testing.T) {
		c := e.anonymous(t)
		c.get("/login")
		rec := c.postForm("/login", url.Values{"user": {userCW}, "password": {testPassword}, "csrf": {"forged"}})
		if rec.Code != http.StatusForbidden || c.cookies[sessionCookie] != nil {
			t.Fatalf("got %d and cookie %v, want 403 and no session", rec.Code, c.cookies[sessionCookie])
		}
	})
	t.Run("NoTokenCookie", func(t *testing.T) {
		c := e.anonymous(t)
		m := csrfRE.FindStringSubmatch(c.get("/login").Body.String())
		delete(c.cookies, loginCookie)
		rec := c.postForm("/login", url.Values{"user": {userCW}, "password": {testPassword}, "csrf": {m[1]}})
		if rec.Code != http.StatusForbidden || c.cookies[sessionCookie] != nil {
			t.Fatalf("got %d, want 403 and no session", rec.Code)
		}
	})
	t.Run("CrossSite", func(t *testing.T) {
		c := e.anonymous(t)
		m := csrfRE.FindStringSubmatch(c.get("/login").Body.String())
		req := newFormRequest("/login", url.Values{"user": {userCW}, "password": {testPassword}, "csrf": {m[1]}})
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if rec := c.do(req); rec.Code != http.StatusForbidden || c.cookies[sessionCookie] != nil {
			t.Fatalf("got %d, want 403 for a cross-site form", rec.Code)
		}
	})
	for _, tc := range []struct{ name, next, want string }{
		{"NextOtherSite", "//evil.example/x", "/"},
		{"NextScheme", "https://evil.example/", "/"},
		{"NextBackslash", "/\\evil.example", "/"},
		{"NextLocal", "/cases/A-1/history", "/cases/A-1/history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.anonymous(t).signIn(userCW, testPassword, tc.next)
			if got := rec.Header().Get("Location"); got != tc.want {
				t.Fatalf("got redirect to %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("SignedInSkipsForm", func(t *testing.T) {
		c := e.login(t, userCW)
		if rec := c.get("/login?next=/cases"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases" {
			t.Fatalf("got %d to %q, want 303 to /cases", rec.Code, rec.Header().Get("Location"))
		}
	})
}

func newFormRequest(path string, v url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestLoginRateLimit(t *testing.T) {
	e := newTestEnv(t)
	t.Run("PerUser", func(t *testing.T) {
		for i := range e.srv.LoginLimitUser {
			c := e.anonymous(t)
			c.remote = "198.51.100.1:1"
			if rec := c.signIn(userCW, "wrong password "+string(rune('a'+i)), ""); rec.Code != http.StatusUnauthorized {
				t.Fatalf("attempt %d: got %d, want 401", i+1, rec.Code)
			}
		}
		c := e.anonymous(t)
		c.remote = "203.0.113.9:1"
		rec := c.signIn(userCW, testPassword, "")
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "Too many failed sign-ins") {
			t.Fatalf("got %d, want 429 with Retry-After even with the right password, from another address", rec.Code)
		}
		if c.cookies[sessionCookie] != nil {
			t.Fatal("got a session while limited")
		}
		if rec := e.anonymous(t).signIn(userCW2, testPassword, ""); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d for another user, want 303", rec.Code)
		}
		e.clock.Add(e.srv.LoginWindow)
		if rec := e.anonymous(t).signIn(userCW, testPassword, ""); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d after the window, want 303", rec.Code)
		}
	})
	t.Run("PerAddress", func(t *testing.T) {
		for i := range e.srv.LoginLimitAddr {
			c := e.anonymous(t)
			c.remote = "198.51.100.2:1"
			if rec := c.signIn("guess-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "whatever-password", ""); rec.Code != http.StatusUnauthorized {
				t.Fatalf("attempt %d: got %d, want 401", i+1, rec.Code)
			}
		}
		c := e.anonymous(t)
		c.remote = "198.51.100.2:2"
		if rec := c.signIn(userCW2, testPassword, ""); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("got %d, want 429 from the address", rec.Code)
		}
		if rec := e.anonymous(t).signIn(userCW2, testPassword, ""); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d from another address, want 303", rec.Code)
		}
	})
}

func TestLoginLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		failures int
		key      string
		after    time.Duration
		blocked  bool
	}{
		{"UnderUserLimit", 2, userKey("x"), 0, false},
		{"AtUserLimit", 3, userKey("x"), 0, true},
		{"WindowEnded", 3, userKey("x"), time.Minute, false},
		{"UnderAddrLimit", 3, addrKey("a"), 0, false},
		{"AtAddrLimit", 5, addrKey("a"), 59 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLoginLimiter(3, 5, time.Minute)
			for range tc.failures {
				l.fail(t0, tc.key)
			}
			if got, _ := l.blocked(t0.Add(tc.after), tc.key); got != tc.blocked {
				t.Fatalf("got blocked %v, want %v", got, tc.blocked)
			}
		})
	}
	t.Run("Overflow", func(t *testing.T) {
		l := newLoginLimiter(3, 5, time.Minute)
		l.maxKeys = 4
		for i := range 4 {
			l.fail(t0, userKey(string(rune('a'+i))))
		}
		for i := range 3 {
			l.fail(t0, userKey(string(rune('p'+i))))
		}
		if len(l.m) > l.maxKeys+1 {
			t.Fatalf("got %d keys, want at most %d", len(l.m), l.maxKeys+1)
		}
		if got, _ := l.blocked(t0, userKey("z")); !got {
			t.Fatal("got a new key let through while the overflow count is at its limit")
		}
		if got, _ := l.blocked(t0.Add(time.Minute), userKey("z")); got {
			t.Fatal("got the overflow count kept past its window")
		}
	})
	t.Run("Forget", func(t *testing.T) {
		l := newLoginLimiter(1, 5, time.Minute)
		l.fail(t0, userKey("x"))
		l.forget(userKey("x"))
		if got, _ := l.blocked(t0, userKey("x")); got {
			t.Fatal("got blocked after forget")
		}
	})
}

func TestLogout(t *testing.T) {
	e := newTestEnv(t)
	c := e.login(t, userCW)
	sid := c.cookies[sessionCookie].Value

	t.Run("BadToken", func(t *testing.T) {
		if rec := c.post("/logout", url.Values{"csrf": {"forged"}}); rec.Code != http.StatusForbidden {
			t.Fatalf("got %d, want 403", rec.Code)
		}
		if _, err := e.db.Session(context.Background(), sid); err != nil {
			t.Fatalf("got %v, want the session alive after a forged sign-out", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		rec := c.post("/logout", nil)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login" {
			t.Fatalf("got %d to %q, want 303 to /login", rec.Code, rec.Header().Get("Location"))
		}
		if _, err := e.db.Session(context.Background(), sid); node.KindOf(err) != node.NotFound {
			t.Fatalf("got %v, want the session ended", err)
		}
		if !e.hasAudit(t, userCW, ActionLogout, "") {
			t.Fatal("got no logout audit entry")
		}
	})
	t.Run("OldCookie", func(t *testing.T) {
		c.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: sid}
		if rec := c.get("/cases"); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d with the ended session's cookie, want a redirect to sign in", rec.Code)
		}
	})
}

func TestSessionEnds(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	t.Run("Expiry", func(t *testing.T) {
		c := e.login(t, userCW)
		e.clock.Add(e.srv.SessionTTL)
		if rec := c.get("/cases"); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d after the session's lifetime, want a redirect to sign in", rec.Code)
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		c := e.login(t, userCW2)
		if err := e.db.SetUserDisabled(ctx, userCW2, true, userAdmin); err != nil {
			t.Fatal(err)
		}
		if rec := c.get("/cases"); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d for a disabled user's session, want a redirect to sign in", rec.Code)
		}
	})
	t.Run("RoleChanged", func(t *testing.T) {
		c := e.login(t, userAnalyst)
		if err := e.db.SetUserRole(ctx, userAnalyst, node.RoleCaseworker, userAdmin); err != nil {
			t.Fatal(err)
		}
		if rec := c.get("/cases"); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d after a role change, want the session ended", rec.Code)
		}
	})
}

func TestNoSession(t *testing.T) {
	e := newTestEnv(t)
	e.putCases(t, synthCases(t, 1)...)
	code := synthCases(t, 1)[0].Code
	for _, ep := range endpoints(code) {
		t.Run(ep.String(), func(t *testing.T) {
			c := e.anonymous(t)
			c.csrf = "whatever"
			rec := c.request(ep)
			if ep.api {
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("got %d, want 401", rec.Code)
				}
				if b := apiErr(t, rec); b.Kind != "permission" || b.Message == "" {
					t.Fatalf("got %+v, want kind permission with a message", b)
				}
				return
			}
			loc := rec.Header().Get("Location")
			if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
				t.Fatalf("got %d to %q, want 303 to the sign-in page", rec.Code, loc)
			}
			if ep.method == http.MethodGet {
				if next, _ := url.QueryUnescape(strings.TrimPrefix(loc, "/login?next=")); next != ep.path {
					t.Fatalf("got next %q, want %q", next, ep.path)
				}
			}
		})
	}
	if n := e.caseCount(t); n != 1 {
		t.Fatalf("got %d cases, want 1: nothing stored without a session", n)
	}
}

func TestRoles(t *testing.T) {
	e := newTestEnv(t)
	cs := synthCases(t, 1)
	e.putCases(t, cs...)
	code := cs[0].Code
	for _, u := range testUsers {
		for _, viaToken := range []bool{false, true} {
			name := u.name
			if viaToken {
				if u.name == userCW2 {
					continue // the same role as userCW
				}
				name = "token-" + string(u.role)
			}
			t.Run(name, func(t *testing.T) {
				for _, ep := range endpoints(code) {
					if viaToken && !ep.api {
						continue
					}
					if ep.method == http.MethodPost && ep.path == "/logout" {
						continue // would end the session the loop uses
					}
					var c *client
					if viaToken {
						c, _ = e.tokenClient(t, u.role)
					} else {
						c = e.login(t, u.name)
					}
					before := e.caseCount(t)
					audits := len(e.auditEntries(t))
					rec := c.request(ep)
					may := allowed(u.role, ep.roles) && !(viaToken && ep.people && u.role != node.RoleAdmin)
					switch {
					case !may && rec.Code != http.StatusForbidden:
						t.Fatalf("%s: got %d, want 403 for %s", ep, rec.Code, u.role)
					case !may && ep.api && apiErr(t, rec).Kind != "permission":
						t.Fatalf("%s: got %s, want kind permission", ep, rec.Body)
					case may && (rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized):
						t.Fatalf("%s: got %d for %s, want it allowed: %s", ep, rec.Code, u.role, rec.Body)
					}
					if !may {
						if n := e.caseCount(t); n != before {
							t.Fatalf("%s: got %d cases, want %d: nothing stored when refused", ep, n, before)
						}
						for _, a := range e.auditEntries(t)[audits:] {
							if strings.HasPrefix(a.Action, "case.") {
								t.Fatalf("%s: got audit entry %s when refused", ep, a.Action)
							}
						}
					}
				}
			})
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newTestEnv(t)
	cs := synthCases(t, 1)
	e.putCases(t, cs...)
	code := cs[0].Code
	c := e.login(t, userCW)
	stored := func(t *testing.T) *node.Case {
		t.Helper()
		got, err := e.db.Case(context.Background(), code, false)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, ep := range endpoints(code) {
		if ep.method == http.MethodGet {
			continue
		}
		for _, tc := range []struct{ name, token string }{{"Missing", "-"}, {"Forged", "forged-token"}, {"OtherSession", e.login(t, userCW2).csrf}} {
			t.Run(ep.String()+"/"+tc.name, func(t *testing.T) {
				before, version := e.caseCount(t), stored(t).Version
				var rec *httptest.ResponseRecorder
				if ep.api {
					cc := *c
					cc.csrf = ""
					if tc.token != "-" {
						cc.csrf = tc.token
					}
					rec = cc.request(ep)
				} else {
					v := url.Values{}
					for k, vs := range ep.form {
						v[k] = vs
					}
					if tc.token != "-" {
						v.Set("csrf", tc.token)
					}
					rec = c.postForm(ep.path, v)
				}
				if rec.Code != http.StatusForbidden {
					t.Fatalf("got %d, want 403", rec.Code)
				}
				if e.caseCount(t) != before || stored(t).Version != version {
					t.Fatal("got a change stored with a bad CSRF token")
				}
			})
		}
	}
	t.Run("CrossSite", func(t *testing.T) {
		req := newFormRequest("/cases", url.Values{"csrf": {c.csrf}, "form": {"screening"}, "case_code": {"X-1"}, "registration_date": {"2024"}})
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if rec := c.do(req); rec.Code != http.StatusForbidden || e.caseCount(t) != 1 {
			t.Fatalf("got %d, want 403 and nothing stored", rec.Code)
		}
	})
	t.Run("SessionOK", func(t *testing.T) {
		if rec := c.post("/logout", nil); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d with the right token, want 303", rec.Code)
		}
	})
}

func TestAPITokens(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c, tok := e.tokenClient(t, node.RoleCaseworker)
	if rec := c.get("/api/cases"); rec.Code != http.StatusOK {
		t.Fatalf("got %d, want 200 with a caseworker token", rec.Code)
	}
	t.Run("NotForPages", func(t *testing.T) {
		if rec := c.get("/cases"); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want pages to need a session", rec.Code)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, h := range []string{"Basic abc", "Bearer", "Bearer ctfed_nope", "Token " + c.bearer} {
			req := httptestRequest(http.MethodGet, "/api/cases")
			req.Header.Set("Authorization", h)
			rec := e.anonymous(t).do(req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("%q: got %d, want 401", h, rec.Code)
			}
		}
	})
	t.Run("Revoked", func(t *testing.T) {
		if err := e.db.RevokeToken(ctx, tok.ID, userAdmin); err != nil {
			t.Fatal(err)
		}
		rec := c.get("/api/cases")
		if rec.Code != http.StatusUnauthorized || apiErr(t, rec).Kind != "permission" {
			t.Fatalf("got %d, want 401 for a revoked token", rec.Code)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		secret, _, err := e.db.CreateToken(ctx, "short", node.RoleCaseworker, e.clock.Now().Add(time.Hour), userAdmin)
		if err != nil {
			t.Fatal(err)
		}
		c := e.anonymous(t)
		c.bearer = secret
		e.clock.Add(time.Hour)
		if rec := c.get("/api/cases"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401 for an expired token", rec.Code)
		}
	})
}

func httptestRequest(method, path string) *http.Request {
	req, _ := http.NewRequest(method, path, nil)
	return req
}

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/cases", "/cases"},
		{"/cases?status=closed", "/cases?status=closed"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"cases", "/"},
		{"/x\r\nSet-Cookie: a=b", "/"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := localPath(tc.in); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
