package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

// mustUser returns the stored user named name.
func (e *testEnv) mustUser(tb testing.TB, name string) *node.User {
	tb.Helper()
	u, err := e.db.User(context.Background(), name)
	if err != nil {
		tb.Fatalf("user %s: %v", name, err)
	}
	return u
}

func (e *testEnv) userCount(tb testing.TB) int {
	tb.Helper()
	us, err := e.db.Users(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return len(us)
}

func (e *testEnv) tokens(tb testing.TB) []*node.Token {
	tb.Helper()
	ts, err := e.db.Tokens(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}

// tokenNamed returns the stored token named name.
func (e *testEnv) tokenNamed(tb testing.TB, name string) *node.Token {
	tb.Helper()
	for _, t := range e.tokens(tb) {
		if t.Name == name {
			return t
		}
	}
	tb.Fatalf("no token %s", name)
	return nil
}

func TestAdminUsersPage(t *testing.T) {
	e := newTestEnv(t)
	admin := e.login(t, userAdmin)

	t.Run("List", func(t *testing.T) {
		rec := admin.get("/admin/users")
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("got %d, want 200", rec.Code)
		}
		for _, u := range testUsers {
			if !strings.Contains(body, "<td>"+u.name) {
				t.Fatalf("got no row for %s", u.name)
			}
		}
		if strings.Contains(body, "argon2") {
			t.Fatal("got a password hash in the page")
		}
	})
	t.Run("Add", func(t *testing.T) {
		rec := admin.post("/admin/users", url.Values{"name": {"new-cw"}, "role": {"caseworker"}, "password": {"another long password"}})
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin/users?done=created&user=new-cw" {
			t.Fatalf("got %d to %q, want 303 to the list", rec.Code, rec.Header().Get("Location"))
		}
		if u := e.mustUser(t, "new-cw"); u.Role != node.RoleCaseworker || u.Disabled || u.CreatedBy != userAdmin {
			t.Fatalf("got %+v, want an enabled caseworker added by %s", u, userAdmin)
		}
		if rec := e.anonymous(t).signIn("new-cw", "another long password", ""); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d signing in as the new user, want 303", rec.Code)
		}
		if !e.hasAudit(t, userAdmin, "user.create", "new-cw") {
			t.Fatal("got no user.create audit entry")
		}
		if body := admin.get("/admin/users?done=created&user=new-cw").Body.String(); !strings.Contains(body, "The user new-cw was added.") {
			t.Fatal("got no notice after adding")
		}
	})
	for _, tc := range []struct {
		name, user, role, password string
		status                     int
		msg                        string
	}{
		{"BadName", "Bad Name", "analyst", testPassword, http.StatusBadRequest, "A user name holds only lower-case letters"},
		{"EmptyName", "", "analyst", testPassword, http.StatusBadRequest, "A user name has 1 to 64 characters"},
		{"BadRole", "someone", "root", testPassword, http.StatusBadRequest, "Choose one of the roles."},
		{"ShortPassword", "someone", "analyst", "short-pw", http.StatusBadRequest, "A password has at least 10 characters"},
		{"Taken", userCW, "analyst", "a-secret-password-x", http.StatusConflict, "This name is taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, audits := e.userCount(t), len(e.auditEntries(t))
			rec := admin.post("/admin/users", url.Values{"name": {tc.user}, "role": {tc.role}, "password": {tc.password}})
			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(body, tc.msg) || !strings.Contains(body, `class="error-summary"`) {
				t.Fatalf("got %d, want %d with %q and an error summary: %s", rec.Code, tc.status, tc.msg, body)
			}
			if strings.Contains(body, tc.password) {
				t.Fatal("got the password back in the page")
			}
			if tc.name != "Taken" && tc.user != "" && !strings.Contains(body, `value="`+htmlEscape(tc.user)+`"`) {
				t.Fatal("got the typed name dropped")
			}
			if n := e.userCount(t); n != before || len(e.auditEntries(t)) != audits {
				t.Fatalf("got %d users, want %d and no audit entry: nothing stored", n, before)
			}
		})
	}

	if _, err := e.db.CreateUser(context.Background(), "target", node.RoleCaseworker, testPassword, "setup"); err != nil {
		t.Fatal(err)
	}
	target := e.login(t, "target")
	t.Run("Disable", func(t *testing.T) {
		rec := admin.post("/admin/users/target", url.Values{"action": {"disable"}})
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303: %s", rec.Code, rec.Body)
		}
		if !e.mustUser(t, "target").Disabled {
			t.Fatal("got the user enabled")
		}
		if rec := target.get("/cases"); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d for the disabled user's session, want a redirect to sign in", rec.Code)
		}
		if !e.hasAudit(t, userAdmin, "user.disable", "target") {
			t.Fatal("got no user.disable audit entry")
		}
	})
	t.Run("Enable", func(t *testing.T) {
		if rec := admin.post("/admin/users/target", url.Values{"action": {"enable"}}); rec.Code != http.StatusSeeOther || e.mustUser(t, "target").Disabled {
			t.Fatalf("got %d, want 303 and the user enabled", rec.Code)
		}
	})
	t.Run("Role", func(t *testing.T) {
		if rec := admin.post("/admin/users/target", url.Values{"action": {"role"}, "role": {"auditor"}}); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303", rec.Code)
		}
		if u := e.mustUser(t, "target"); u.Role != node.RoleAuditor {
			t.Fatalf("got role %s, want auditor", u.Role)
		}
	})
	t.Run("Password", func(t *testing.T) {
		if rec := admin.post("/admin/users/target", url.Values{"action": {"password"}, "password": {"a brand new password"}}); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303", rec.Code)
		}
		if rec := e.anonymous(t).signIn("target", "a brand new password", ""); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d with the new password, want 303", rec.Code)
		}
		if rec := e.anonymous(t).signIn("target", testPassword, ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("got %d with the old password, want 401", rec.Code)
		}
	})
	for _, tc := range []struct {
		name   string
		user   string
		form   url.Values
		status int
		msg    string
	}{
		{"DisableSelf", userAdmin, url.Values{"action": {"disable"}}, http.StatusConflict, "you may not disable your own account"},
		{"DemoteSelf", userAdmin, url.Values{"action": {"role"}, "role": {"analyst"}}, http.StatusConflict, "you may not take the admin role from your own account"},
		{"NoRole", "target", url.Values{"action": {"role"}, "role": {"root"}}, http.StatusBadRequest, "choose one of the roles"},
		{"ShortPassword", "target", url.Values{"action": {"password"}, "password": {"short"}}, http.StatusBadRequest, "a password has at least 10 characters"},
		{"EmptyPassword", "target", url.Values{"action": {"password"}}, http.StatusBadRequest, "Type the new password of target."},
		{"BadAction", "target", url.Values{"action": {"delete"}}, http.StatusBadRequest, "There is no such action."},
		{"UnknownUser", "nobody", url.Values{"action": {"disable"}}, http.StatusNotFound, "There is no such user."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := *e.mustUser(t, userAdmin)
			beforeTarget := *e.mustUser(t, "target")
			audits := len(e.auditEntries(t))
			rec := admin.post("/admin/users/"+tc.user, tc.form)
			if body := rec.Body.String(); rec.Code != tc.status || !strings.Contains(body, tc.msg) {
				t.Fatalf("got %d, want %d with %q: %s", rec.Code, tc.status, tc.msg, body)
			}
			if after := *e.mustUser(t, userAdmin); after != before {
				t.Fatalf("got %+v, want %+v: nothing changed", after, before)
			}
			if after := *e.mustUser(t, "target"); after != beforeTarget {
				t.Fatalf("got %+v, want %+v: nothing changed", after, beforeTarget)
			}
			if len(e.auditEntries(t)) != audits {
				t.Fatal("got an audit entry for a refused change")
			}
		})
	}
	t.Run("ResetOwnPassword", func(t *testing.T) {
		c := e.login(t, userAdmin)
		rec := c.post("/admin/users/"+userAdmin, url.Values{"action": {"password"}, "password": {testPassword}})
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
			t.Fatalf("got %d to %q, want 303 to sign in again", rec.Code, rec.Header().Get("Location"))
		}
	})
}

var secretRE = regexp.MustCompile(`id="secret" type="text" value="(ctfed_[^"]+)"`)

func TestAdminTokensPage(t *testing.T) {
	e := newTestEnv(t)
	admin := e.login(t, userAdmin)
	var secret string
	t.Run("Create", func(t *testing.T) {
		rec := admin.post("/admin/tokens", url.Values{"name": {"reporting"}, "role": {"caseworker"}, "expires": {"2026-12-31"}})
		m := secretRE.FindStringSubmatch(rec.Body.String())
		if rec.Code != http.StatusCreated || m == nil {
			t.Fatalf("got %d, want 201 with the secret shown: %s", rec.Code, rec.Body)
		}
		secret = m[1]
		ts := e.tokens(t)
		if len(ts) != 1 || ts[0].Name != "reporting" || ts[0].Role != node.RoleCaseworker || !ts[0].Expires.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("got %+v, want one caseworker token valid until the end of 2026-12-31", ts)
		}
		c := e.anonymous(t)
		c.bearer = secret
		if rec := c.get("/api/cases"); rec.Code != http.StatusOK {
			t.Fatalf("got %d with the new token, want 200", rec.Code)
		}
		if strings.Contains(admin.get("/admin/tokens").Body.String(), secret) {
			t.Fatal("got the secret shown again")
		}
		if !e.hasAudit(t, userAdmin, "token.create", ts[0].ID) {
			t.Fatal("got no token.create audit entry")
		}
	})
	t.Run("NoExpiry", func(t *testing.T) {
		if rec := admin.post("/admin/tokens", url.Values{"name": {"forever"}, "role": {"analyst"}}); rec.Code != http.StatusCreated {
			t.Fatalf("got %d, want 201", rec.Code)
		}
		if tok := e.tokenNamed(t, "forever"); !tok.Expires.IsZero() {
			t.Fatalf("got expiry %v, want none", tok.Expires)
		}
	})
	for _, tc := range []struct {
		name, token, role, expires, msg string
	}{
		{"BadName", "Reporting System", "analyst", "", "A user name holds only lower-case letters"},
		{"BadRole", "x", "superuser", "", "Choose one of the roles."},
		{"BadDate", "x", "analyst", "31/12/2026", "Write the date as YYYY-MM-DD"},
		{"PastDate", "x", "analyst", "2026-03-01", "The date is in the past."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, audits := len(e.tokens(t)), len(e.auditEntries(t))
			rec := admin.post("/admin/tokens", url.Values{"name": {tc.token}, "role": {tc.role}, "expires": {tc.expires}})
			if body := rec.Body.String(); rec.Code != http.StatusBadRequest || !strings.Contains(body, tc.msg) || strings.Contains(body, `id="secret"`) {
				t.Fatalf("got %d, want 400 with %q and no secret: %s", rec.Code, tc.msg, body)
			}
			if len(e.tokens(t)) != before || len(e.auditEntries(t)) != audits {
				t.Fatal("got a token stored for invalid input")
			}
		})
	}
	t.Run("Revoke", func(t *testing.T) {
		id := e.tokenNamed(t, "reporting").ID
		rec := admin.post("/admin/tokens/"+id+"/revoke", nil)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin/tokens?done=revoked" {
			t.Fatalf("got %d to %q, want 303 to the list", rec.Code, rec.Header().Get("Location"))
		}
		if !e.tokenNamed(t, "reporting").Revoked {
			t.Fatal("got the token not revoked")
		}
		c := e.anonymous(t)
		c.bearer = secret
		if rec := c.get("/api/cases"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("got %d with a revoked token, want 401", rec.Code)
		}
		if body := admin.get("/admin/tokens?done=revoked").Body.String(); !strings.Contains(body, "The token was revoked") || strings.Contains(body, "/admin/tokens/"+id+"/revoke") {
			t.Fatal("got no notice, or a revoke button for a revoked token")
		}
	})
	t.Run("RevokeUnknown", func(t *testing.T) {
		if rec := admin.post("/admin/tokens/0123456789abcdef/revoke", nil); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", rec.Code)
		}
	})
}

func TestUsersAPI(t *testing.T) {
	e := newTestEnv(t)
	tok, _ := e.tokenClient(t, node.RoleAdmin)
	admin := e.login(t, userAdmin)

	t.Run("List", func(t *testing.T) {
		rec := tok.get("/api/users")
		var got apiUserList
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || len(got.Users) != len(testUsers) || strings.Contains(rec.Body.String(), "password") {
			t.Fatalf("got %d %s, want every user and no password hash", rec.Code, rec.Body)
		}
	})
	t.Run("Create", func(t *testing.T) {
		rec := tok.sendJSON("POST", "/api/users", apiNewUser{Name: "api-an", Role: node.RoleAnalyst, Password: testPassword})
		var got apiUserBody
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusCreated || got.User.Name != "api-an" || got.User.Role != node.RoleAnalyst || got.User.CreatedBy != "token:tok-admin" {
			t.Fatalf("got %d %+v, want 201 with the new analyst", rec.Code, got.User)
		}
	})
	for _, tc := range []struct {
		name, body string
		status     int
		kind, msg  string
	}{
		{"BadName", `{"name":"A B","role":"analyst","password":"correct horse battery"}`, 400, "invalid", "a user name holds only"},
		{"BadRole", `{"name":"ab","role":"root","password":"correct horse battery"}`, 400, "invalid", `"root" is not a role`},
		{"ShortPassword", `{"name":"ab","role":"analyst","password":"short"}`, 400, "invalid", "a password has at least 10 characters"},
		{"Taken", `{"name":"cw-a","role":"analyst","password":"correct horse battery"}`, 409, "conflict", "a user with this name exists"},
		{"UnknownField", `{"name":"ab","role":"analyst","password":"correct horse battery","admin":true}`, 400, "invalid", "unknown field"},
		{"NotJSON", `name=ab`, 400, "invalid", "not a valid JSON object"},
	} {
		t.Run("Create"+tc.name, func(t *testing.T) {
			before := e.userCount(t)
			rec := tok.sendJSON("POST", "/api/users", tc.body)
			b := apiErr(t, rec)
			if rec.Code != tc.status || b.Kind != tc.kind || !strings.Contains(b.Message, tc.msg) {
				t.Fatalf("got %d %+v, want %d %s with %q", rec.Code, b, tc.status, tc.kind, tc.msg)
			}
			if strings.Contains(rec.Body.String(), "correct horse") || strings.Contains(rec.Body.String(), "short") && tc.name == "ShortPassword" {
				t.Fatal("got the password back")
			}
			if e.userCount(t) != before {
				t.Fatal("got a user stored for invalid input")
			}
		})
	}
	t.Run("Change", func(t *testing.T) {
		rec := tok.sendJSON("POST", "/api/users/api-an", `{"disabled":true,"role":"auditor","password":"yet another password"}`)
		var got apiUserBody
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || !got.User.Disabled || got.User.Role != node.RoleAuditor {
			t.Fatalf("got %d %+v, want a disabled auditor", rec.Code, got.User)
		}
		rec = tok.sendJSON("POST", "/api/users/api-an", `{"disabled":false}`)
		decodeBody(t, rec, &got)
		if got.User.Disabled {
			t.Fatal("got the user still disabled")
		}
		if rec := e.anonymous(t).signIn("api-an", "yet another password", ""); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d with the new password, want 303", rec.Code)
		}
	})
	for _, tc := range []struct {
		name string
		c    *client
		user string
		body string
		code int
		kind string
	}{
		{"Nothing", tok, "api-an", `{}`, 400, "invalid"},
		{"BadRole", tok, "api-an", `{"disabled":true,"role":"root"}`, 400, "invalid"},
		{"ShortPassword", tok, "api-an", `{"disabled":true,"password":"short"}`, 400, "invalid"},
		{"Unknown", tok, "nobody", `{"disabled":true}`, 404, "not_found"},
		{"DisableSelf", admin, userAdmin, `{"disabled":true}`, 409, "conflict"},
		{"LastAdmin", tok, userAdmin, `{"role":"analyst"}`, 409, "conflict"},
	} {
		t.Run("Change"+tc.name, func(t *testing.T) {
			before := *e.mustUser(t, "api-an")
			beforeAdmin := *e.mustUser(t, userAdmin)
			rec := tc.c.sendJSON("POST", "/api/users/"+tc.user, tc.body)
			if b := apiErr(t, rec); rec.Code != tc.code || b.Kind != tc.kind {
				t.Fatalf("got %d %+v, want %d %s", rec.Code, b, tc.code, tc.kind)
			}
			if *e.mustUser(t, "api-an") != before || *e.mustUser(t, userAdmin) != beforeAdmin {
				t.Fatal("got a user changed by a refused request")
			}
		})
	}
}

func TestTokensAPI(t *testing.T) {
	e := newTestEnv(t)
	tok, self := e.tokenClient(t, node.RoleAdmin)
	var created apiCreatedToken
	t.Run("Create", func(t *testing.T) {
		rec := tok.sendJSON("POST", "/api/tokens", apiNewToken{Name: "exporter", Role: node.RoleAnalyst, Expires: e.clock.Now().Add(48 * time.Hour)})
		decodeBody(t, rec, &created)
		if rec.Code != http.StatusCreated || !strings.HasPrefix(created.Secret, "ctfed_") || created.Token.Role != node.RoleAnalyst || created.Token.Expires.IsZero() {
			t.Fatalf("got %d %s, want 201 with a secret", rec.Code, rec.Body)
		}
	})
	t.Run("List", func(t *testing.T) {
		rec := tok.get("/api/tokens")
		var got apiTokenList
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || len(got.Tokens) != 2 || strings.Contains(rec.Body.String(), created.Secret) {
			t.Fatalf("got %d %s, want two tokens and no secret", rec.Code, rec.Body)
		}
	})
	for _, tc := range []struct{ name, body string }{
		{"PastExpiry", `{"name":"x","role":"analyst","expires":"2020-01-01T00:00:00Z"}`},
		{"BadRole", `{"name":"x","role":"root"}`},
		{"BadName", `{"name":"","role":"analyst"}`},
	} {
		t.Run("Create"+tc.name, func(t *testing.T) {
			rec := tok.sendJSON("POST", "/api/tokens", tc.body)
			if b := apiErr(t, rec); rec.Code != http.StatusBadRequest || b.Kind != "invalid" || b.Message == node.Invalid.Message() {
				t.Fatalf("got %d %+v, want 400 invalid with its cause", rec.Code, b)
			}
			if len(e.tokens(t)) != 2 {
				t.Fatal("got a token stored for invalid input")
			}
		})
	}
	t.Run("Revoke", func(t *testing.T) {
		rec := tok.sendJSON("DELETE", "/api/tokens/"+created.Token.ID, nil)
		var got apiTokenBody
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || !got.Token.Revoked || got.Token.RevokedBy != "token:tok-admin" {
			t.Fatalf("got %d %s, want 200 with the token revoked", rec.Code, rec.Body)
		}
		c := e.anonymous(t)
		c.bearer = created.Secret
		if rec := c.get("/api/openapi.yaml"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("got %d with a revoked token, want 401", rec.Code)
		}
	})
	t.Run("RevokeUnknown", func(t *testing.T) {
		for _, id := range []string{"0123456789abcdef", "x"} {
			if rec := tok.sendJSON("DELETE", "/api/tokens/"+id, nil); rec.Code != http.StatusNotFound || apiErr(t, rec).Kind != "not_found" {
				t.Fatalf("%s: got %d, want 404", id, rec.Code)
			}
		}
	})
	t.Run("RevokeSelf", func(t *testing.T) {
		if rec := tok.sendJSON("DELETE", "/api/tokens/"+self.ID, nil); rec.Code != http.StatusOK {
			t.Fatalf("got %d, want 200", rec.Code)
		}
		if rec := tok.get("/api/tokens"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("got %d after revoking the token in use, want 401", rec.Code)
		}
	})
}

func TestErrText(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"Innermost", node.E("storage.CreateUser", node.Invalid, "%w", node.E("check user name", node.Invalid, "a user name has 1 to 64 characters")), "A user name has 1 to 64 characters."},
		{"NilCause", &node.Error{Op: "x", Kind: node.Conflict, Err: &node.Error{Kind: node.Conflict}}, "Conflicts with the current state."},
		{"Internal", node.E("x", node.Internal, "disk full at /secret/path"), "Internal error."},
		{"Plain", fmt.Errorf("oops"), "Internal error."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errText(tc.err); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
