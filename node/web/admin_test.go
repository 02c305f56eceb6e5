package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

// adminState is what the admin pages may change: users, tokens, cases,
// waiting imports and the audit log's entries of those changes.
func (e *testEnv) adminState(tb testing.TB, code string) string {
	tb.Helper()
	var b strings.Builder
	us, err := e.db.Users(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	for _, u := range us {
		fmt.Fprintf(&b, "user %s %s %v %v;", u.Name, u.Role, u.Disabled, u.Updated)
	}
	for _, t := range e.tokens(tb) {
		fmt.Fprintf(&b, "token %s %v;", t.ID, t.Revoked)
	}
	c := e.mustCase(tb, code)
	fmt.Fprintf(&b, "cases %d, %s v%d %s erased %v; imports %d;", e.caseCount(tb), c.Code, c.Version, c.Status, c.IdentityErased, e.pendingImports())
	for _, a := range e.auditEntries(tb) {
		if strings.HasPrefix(a.Action, "user.") || strings.HasPrefix(a.Action, "token.") || strings.HasPrefix(a.Action, "case.") && a.Action != ActionCaseView && a.Action != ActionCaseList {
			fmt.Fprintf(&b, "audit %d %s;", a.Seq, a.Action)
		}
	}
	return b.String()
}

// TestAdminCSRF sends every admin change, as an admin, with a missing, a
// forged and another session's CSRF token: each is refused and changes
// nothing.
func TestAdminCSRF(t *testing.T) {
	e := newTestEnv(t)
	cs := synthCases(t, 1)
	e.putCases(t, cs...)
	code := cs[0].Code
	admin := e.login(t, userAdmin)
	other := e.login(t, userAdmin).csrf
	// A waiting import to confirm and a token to revoke.
	id := uploadOK(t, admin, "cases.csv", caseCSV(t, synthCases(t, 3)[1:], nil))
	_, tok := e.tokenClient(t, node.RoleAnalyst)
	p := "/cases/" + url.PathEscape(code)
	var eps []endpoint
	for _, ep := range endpoints(code) {
		if ep.method != http.MethodGet && (slices.Equal(ep.roles, adminRoles) || strings.HasSuffix(ep.path, "/close") || strings.HasSuffix(ep.path, "/reopen")) {
			eps = append(eps, ep)
		}
	}
	eps = append(eps,
		endpoint{method: "POST", path: "/admin/users/" + userCW, form: url.Values{"action": {"disable"}}},
		endpoint{method: "POST", path: "/admin/tokens/" + tok.ID + "/revoke"},
		endpoint{method: "POST", path: "/import/" + id + "/confirm"},
		endpoint{method: "POST", path: "/api/users/" + userCW, api: true, body: `{"disabled":true}`},
		endpoint{method: "DELETE", path: "/api/tokens/" + tok.ID, api: true},
		endpoint{method: "POST", path: "/api/imports/" + id + "/confirm", api: true},
		endpoint{method: "POST", path: p + "/erase-identity", form: url.Values{"confirm": {"yes"}}},
	)
	for _, ep := range eps {
		for _, tc := range []struct{ name, token string }{{"Missing", "-"}, {"Forged", "forged-token"}, {"OtherSession", other}} {
			t.Run(ep.String()+"/"+tc.name, func(t *testing.T) {
				before := e.adminState(t, code)
				var rec *httptest.ResponseRecorder
				switch {
				case ep.api:
					c := *admin
					c.csrf = ""
					if tc.token != "-" {
						c.csrf = tc.token
					}
					rec = c.request(ep)
				case ep.path == "/import":
					rec = admin.upload("/import", tc.token, "unknown", "cases.csv", caseCSV(t, synthCases(t, 2), nil))
				default:
					v := url.Values{}
					for k, vs := range ep.form {
						v[k] = vs
					}
					if tc.token != "-" {
						v.Set("csrf", tc.token)
					}
					rec = admin.postForm(ep.path, v)
				}
				if rec.Code != http.StatusForbidden {
					t.Fatalf("got %d, want 403", rec.Code)
				}
				if after := e.adminState(t, code); after != before {
					t.Fatalf("got a change with a bad CSRF token:\n%s\nwant\n%s", after, before)
				}
			})
		}
	}
}

func TestAdminPages(t *testing.T) {
	e := newTestEnv(t)
	admin := e.login(t, userAdmin)
	t.Run("Nav", func(t *testing.T) {
		if body := admin.get("/cases").Body.String(); !strings.Contains(body, `<a href="/admin"`) {
			t.Fatal("got no Admin link for an admin")
		}
		for _, u := range []string{userCW, userAnalyst, userAuditor} {
			if body := e.login(t, u).get("/no-such-page").Body.String(); strings.Contains(body, `href="/admin"`) {
				t.Fatalf("%s: got an Admin link", u)
			}
		}
	})
	for _, path := range []string{"/admin", "/admin/users", "/admin/tokens", "/admin/break-glass", "/import", "/export"} {
		t.Run("Page"+path, func(t *testing.T) {
			rec := admin.get(path)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, `aria-label="Admin"`) {
				t.Fatalf("got %d, want the page with the admin navigation: %s", rec.Code, body)
			}
			for _, bad := range []string{"<script", "style=", "<style", "onclick", "javascript:", "http://", "https://"} {
				if strings.Contains(body, bad) {
					t.Fatalf("got %q in the page, want no inline script, style or outside resource", bad)
				}
			}
			if path != "/admin" && !strings.Contains(body, `aria-current="page"`) {
				t.Fatal("got no current page in the admin navigation")
			}
		})
	}
	t.Run("Forms", func(t *testing.T) {
		// Every input has a label: each id is named by a label's for.
		for _, path := range []string{"/admin/users", "/admin/tokens", "/import"} {
			body := admin.get(path).Body.String()
			for _, m := range inputIDRE.FindAllStringSubmatch(body, -1) {
				if m[1] == "secret" {
					continue
				}
				if !strings.Contains(body, `for="`+m[1]+`"`) {
					t.Fatalf("%s: got no label for %s", path, m[1])
				}
			}
		}
	})
}

var inputIDRE = regexp.MustCompile(`<(?:input|select|textarea) id="([^"]+)"`)

// TestAdminOpenAPISchemas keeps the schemas of the admin endpoints in
// step with the types they describe.
func TestAdminOpenAPISchemas(t *testing.T) {
	file, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(file))
	if err != nil {
		t.Fatal(err)
	}
	schemas := at(t, doc, "components", "schemas")
	for name, typ := range map[string]reflect.Type{
		"User":          reflect.TypeFor[apiUser](),
		"UserList":      reflect.TypeFor[apiUserList](),
		"UserResponse":  reflect.TypeFor[apiUserBody](),
		"NewUser":       reflect.TypeFor[apiNewUser](),
		"UserChange":    reflect.TypeFor[apiUserChange](),
		"Token":         reflect.TypeFor[node.Token](),
		"TokenList":     reflect.TypeFor[apiTokenList](),
		"TokenResponse": reflect.TypeFor[apiTokenBody](),
		"NewToken":      reflect.TypeFor[apiNewToken](),
		"CreatedToken":  reflect.TypeFor[apiCreatedToken](),
		"Import":        reflect.TypeFor[apiImport](),
		"RowError":      reflect.TypeFor[apiRowError](),
		"ImportResult":  reflect.TypeFor[apiImportResult](),
	} {
		t.Run(name, func(t *testing.T) {
			if got, want := keys(at(t, schemas, name, "properties")), jsonNames(typ); !slices.Equal(got, want) {
				t.Fatalf("got properties %q, want %q", got, want)
			}
		})
	}
	t.Run("Roles", func(t *testing.T) {
		var want []string
		for _, r := range node.Roles() {
			want = append(want, string(r))
		}
		if got := strs(at(t, schemas, "Role", "enum")); !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

func TestImportStore(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var st importStore
	ids := map[string]string{}
	for i := range maxPendingImports + 2 {
		owner := fmt.Sprintf("owner-%d", i)
		ids[owner] = st.put(t0.Add(time.Duration(i)*time.Second), &pendingImport{owner: owner})
	}
	for _, tc := range []struct {
		name, owner string
		id          string
		after       int
		ok          bool
	}{
		{"Newest", "owner-9", ids["owner-9"], 0, true},
		{"OldestDropped", "owner-0", ids["owner-0"], 0, false},
		{"SecondDropped", "owner-1", ids["owner-1"], 0, false},
		{"Kept", "owner-2", ids["owner-2"], 0, true},
		{"OtherOwner", "owner-3", ids["owner-2"], 0, false},
		{"Expired", "owner-9", ids["owner-9"], int(importTTL.Seconds()) + 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := st.get(t0.Add(time.Duration(tc.after)*time.Second), tc.owner, tc.id, false); ok != tc.ok {
				t.Fatalf("got %v, want %v", ok, tc.ok)
			}
		})
	}
	t.Run("Take", func(t *testing.T) {
		if _, ok := st.get(t0, "owner-5", ids["owner-5"], true); !ok {
			t.Fatal("got nothing to take")
		}
		if _, ok := st.get(t0, "owner-5", ids["owner-5"], true); ok {
			t.Fatal("got it taken twice")
		}
	})
}

func TestUploadName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"cases.csv", "cases.csv"},
		{`C:\Users\x\cases 2024.xlsx`, "cases 2024.xlsx"},
		{"../../etc/passwd", "passwd"},
		{"", "upload"},
		{"a\x01b.csv", "upload"},
		{strings.Repeat("x", 101), "upload"},
		{"\xff.csv", "upload"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := uploadName(tc.in); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
