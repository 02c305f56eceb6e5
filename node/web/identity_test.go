package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// TestIdentityNeedToKnow requests every page and API response about
// synthetic cases (fake identities, all assigned to userCW) as every user
// and token, and checks that identity fields appear only for the assigned
// caseworker and admins, and never in a log line.
func TestIdentityNeedToKnow(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 8)
	e.putCases(t, cases...)
	var all []string
	for _, c := range cases {
		all = append(all, identityValues(c)...)
	}
	if len(all) < 8 {
		t.Fatalf("got %d identity values to look for, want a few per case", len(all))
	}

	type reader struct {
		name string
		c    *client
		sees bool // may see the identity of userCW's cases
	}
	var readers []reader
	for _, u := range testUsers {
		readers = append(readers, reader{u.name, e.login(t, u.name), u.name == userCW || u.name == userAdmin})
	}
	for _, role := range []node.Role{node.RoleCaseworker, node.RoleAnalyst, node.RoleAuditor} {
		c, _ := e.tokenClient(t, role)
		readers = append(readers, reader{"token-" + string(role), c, false})
	}
	adminToken, _ := e.tokenClient(t, node.RoleAdmin)
	readers = append(readers, reader{"token-admin", adminToken, true})

	paths := []string{"/", "/cases", "/cases?page=2", "/new-case", "/api/cases", "/api/cases?limit=500"}
	for _, c := range cases {
		p := "/cases/" + url.PathEscape(c.Code)
		paths = append(paths, p, p+"/edit?form=screening", p+"/edit?form=assistance", p+"/history",
			"/api"+p, "/api"+p+"/history")
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			for _, p := range paths {
				rec := rd.c.get(p)
				body := rec.Body.String()
				v := leaked(body, all)
				isCase := strings.HasPrefix(p, "/cases/") || strings.HasPrefix(p, "/api/cases/")
				// Pages that show one case's identity to those who may see
				// it: not the HTML history (names changed fields only) nor
				// the Assistance form.
				viewsOne := isCase && !(strings.HasPrefix(p, "/cases/") && strings.HasSuffix(p, "/history")) && !strings.Contains(p, "form=assistance")
				switch {
				case v != "" && !rd.sees:
					t.Fatalf("%s: got identity value %q for %s", p, v, rd.name)
				case v != "" && !viewsOne:
					t.Fatalf("%s: got identity value %q in a page that should not show it", p, v)
				case rd.sees && viewsOne && rec.Code == http.StatusOK && v == "":
					t.Fatalf("%s: got no identity for %s, who may see it", p, rd.name)
				}
			}
		})
	}
	t.Run("Logs", func(t *testing.T) {
		for _, entry := range e.logs.All() {
			line := entry.Message
			for k, f := range entry.ContextMap() {
				line += " " + k + "=" + strings.ReplaceAll(strings.ReplaceAll(toString(f), "\n", " "), "\t", " ")
			}
			if v := leaked(line, all); v != "" {
				t.Fatalf("got identity value %q in a log line: %s", v, line)
			}
		}
	})
	t.Run("Audit", func(t *testing.T) {
		for _, a := range e.auditEntries(t) {
			if v := leaked(a.Actor+" "+a.Action+" "+a.Subject+" "+a.Detail, all); v != "" {
				t.Fatalf("got identity value %q in the audit log", v)
			}
		}
	})
}

func toString(v any) string { return fmt.Sprint(v) }

func TestBreakGlass(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 2)
	e.putCases(t, cases...)
	one := cases[0]
	vals := identityValues(one)
	path := "/cases/" + url.PathEscape(one.Code)
	const reason = "Preparing the court hearing on Monday"

	t.Run("PageOffer", func(t *testing.T) {
		body := e.login(t, userCW2).get(path).Body.String()
		if !strings.Contains(body, `action="`+path+`/break-glass"`) || leaked(body, vals) != "" {
			t.Fatal("got no break-the-glass form, or identity shown without it")
		}
		if strings.Contains(e.login(t, userCW).get(path).Body.String(), "break-glass") {
			t.Fatal("got a break-the-glass form for the assigned caseworker")
		}
	})
	for _, tc := range []struct{ name, reason, msg string }{
		{"NoReason", "", "State the reason in at least 10 characters."},
		{"ShortReason", "because", "State the reason in at least 10 characters."},
		{"LongReason", strings.Repeat("x", maxReasonLen+1), "State the reason in at most 500 characters."},
		{"ControlCharacters", "reason \x01 with control", "The reason contains control characters."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.login(t, userCW2)
			rec := c.post(path+"/break-glass", url.Values{"reason": {tc.reason}})
			body := rec.Body.String()
			if rec.Code != http.StatusBadRequest || !strings.Contains(body, `id="reason-err">`+tc.msg) {
				t.Fatalf("got %d, want 400 with %q", rec.Code, tc.msg)
			}
			if v := leaked(body, vals); v != "" {
				t.Fatalf("got identity value %q without a valid reason", v)
			}
			if e.hasAudit(t, userCW2, ActionBreakGlass, one.Code) {
				t.Fatal("got a break-the-glass entry without a valid reason")
			}
		})
	}
	t.Run("Page", func(t *testing.T) {
		c := e.login(t, userCW2)
		rec := c.post(path+"/break-glass", url.Values{"reason": {reason}})
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "You broke the glass") {
			t.Fatalf("got %d, want the case with identity", rec.Code)
		}
		if !strings.Contains(body, htmlEscape(one.Identity.FullName)) {
			t.Fatal("got no identity after breaking the glass")
		}
		entries := e.auditEntries(t)
		var glass, view *node.AuditEntry
		for _, a := range entries {
			if a.Actor == userCW2 && a.Subject == one.Code {
				switch {
				case a.Action == ActionBreakGlass:
					glass = a
				case a.Action == ActionCaseView && a.Detail == "with identity":
					view = a
				}
			}
		}
		if glass == nil || glass.Detail != reason || view == nil || view.Seq < glass.Seq {
			t.Fatalf("got break-the-glass entry %+v and view %+v, want the reason, then a view with identity", glass, view)
		}
		if leaked(c.get(path).Body.String(), vals) != "" {
			t.Fatal("got identity on the next view: breaking the glass lasts one view")
		}
	})
	t.Run("API", func(t *testing.T) {
		c := e.login(t, userCW2)
		rec := c.sendJSON(http.MethodPost, "/api"+path+"/break-glass", map[string]string{"reason": "short"})
		if rec.Code != http.StatusBadRequest || leaked(rec.Body.String(), vals) != "" {
			t.Fatalf("got %d, want 400 and no identity", rec.Code)
		}
		before := len(e.auditEntries(t))
		rec = c.sendJSON(http.MethodPost, "/api"+path+"/break-glass", map[string]string{"reason": reason})
		var got apiCase
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || !got.IdentityShown || got.Case.Identity.FullName != one.Identity.FullName {
			t.Fatalf("got %d identity_shown=%v, want the identity", rec.Code, got.IdentityShown)
		}
		after := e.auditEntries(t)[before:]
		if len(after) < 2 || after[0].Action != ActionBreakGlass || after[0].Detail != reason || after[1].Action != ActionCaseView {
			t.Fatalf("got audit entries %+v, want break_glass with the reason, then the view", after)
		}
		rec = c.get("/api" + path)
		var next apiCase
		decodeBody(t, rec, &next)
		if next.IdentityShown || !next.Case.Identity.IsZero() {
			t.Fatal("got identity on the next API read")
		}
	})
	t.Run("TokenMayNot", func(t *testing.T) {
		c, _ := e.tokenClient(t, node.RoleCaseworker)
		rec := c.sendJSON(http.MethodPost, "/api"+path+"/break-glass", map[string]string{"reason": reason})
		if rec.Code != http.StatusForbidden || leaked(rec.Body.String(), vals) != "" {
			t.Fatalf("got %d, want 403 for a token", rec.Code)
		}
	})
	t.Run("Assigned", func(t *testing.T) {
		rec := e.login(t, userCW).post(path+"/break-glass", url.Values{"reason": {reason}})
		if rec.Code != http.StatusSeeOther || e.hasAudit(t, userCW, ActionBreakGlass, "") {
			t.Fatalf("got %d, want a redirect to the case and no break-the-glass entry", rec.Code)
		}
	})
}
