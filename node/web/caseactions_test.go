package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

func (e *testEnv) mustCase(tb testing.TB, code string) *node.Case {
	tb.Helper()
	c, err := e.db.Case(context.Background(), code, true)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestCloseReopen(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 2)
	cases[0].Assistance = []node.Service{{Service: "shelter", Date: "2024-03"}}
	cases[0].Status = "assisted"
	cases[1].Assistance = nil
	cases[1].Status = "screened"
	e.putCases(t, cases...)
	cw2 := e.login(t, userCW2) // not assigned: closes without seeing identity
	for _, tc := range []struct {
		name, code, reopened string
	}{
		{"WithAssistance", cases[0].Code, "assisted"},
		{"WithoutAssistance", cases[1].Code, "eligible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/cases/" + url.PathEscape(tc.code)
			before := e.mustCase(t, tc.code)
			if body := cw2.get(path).Body.String(); !strings.Contains(body, `action="`+path+`/close"`) || strings.Contains(body, "erase-identity") {
				t.Fatal("got no close button, or an erase button for a caseworker")
			}
			rec := cw2.post(path+"/close", nil)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != path+"?saved=1" {
				t.Fatalf("got %d to %q, want 303 to the case", rec.Code, rec.Header().Get("Location"))
			}
			closed := e.mustCase(t, tc.code)
			if closed.Status != "closed" || closed.Version != before.Version+1 || closed.UpdatedBy != userCW2 {
				t.Fatalf("got status %s version %d by %s, want closed, version %d by %s", closed.Status, closed.Version, closed.UpdatedBy, before.Version+1, userCW2)
			}
			if fmt.Sprint(closed.Identity) != fmt.Sprint(before.Identity) || closed.Caseworker != before.Caseworker || fmt.Sprint(closed.Assistance) != fmt.Sprint(before.Assistance) {
				t.Fatal("got other fields changed by closing")
			}
			if !e.hasAudit(t, userCW2, ActionCaseUpdate, tc.code) {
				t.Fatal("got no audit entry")
			}
			if rec := cw2.post(path+"/close", nil); rec.Code != http.StatusSeeOther || e.mustCase(t, tc.code).Version != closed.Version {
				t.Fatalf("got %d or a new version closing a closed case, want nothing changed", rec.Code)
			}
			if body := cw2.get(path).Body.String(); !strings.Contains(body, `action="`+path+`/reopen"`) {
				t.Fatal("got no reopen button on a closed case")
			}
			if rec := cw2.post(path+"/reopen", nil); rec.Code != http.StatusSeeOther {
				t.Fatalf("got %d, want 303", rec.Code)
			}
			if got := e.mustCase(t, tc.code); got.Status != tc.reopened || got.Version != closed.Version+1 {
				t.Fatalf("got status %s version %d, want %s, version %d", got.Status, got.Version, tc.reopened, closed.Version+1)
			}
			if rec := cw2.post(path+"/reopen", nil); rec.Code != http.StatusSeeOther || e.mustCase(t, tc.code).Version != closed.Version+1 {
				t.Fatal("got a new version reopening an open case")
			}
		})
	}
	t.Run("UnknownCase", func(t *testing.T) {
		if rec := cw2.post("/cases/NO-SUCH/close", nil); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", rec.Code)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		path := "/cases/" + url.PathEscape(cases[1].Code)
		before := e.mustCase(t, cases[1].Code).Version
		for _, u := range []string{userAnalyst, userAuditor} {
			if rec := e.login(t, u).post(path+"/close", nil); rec.Code != http.StatusForbidden {
				t.Fatalf("%s: got %d, want 403", u, rec.Code)
			}
		}
		if rec := cw2.post(path+"/close", url.Values{"csrf": {"forged"}}); rec.Code != http.StatusForbidden {
			t.Fatalf("got %d with a forged token, want 403", rec.Code)
		}
		if e.mustCase(t, cases[1].Code).Version != before {
			t.Fatal("got the case changed by a refused request")
		}
	})
}

func TestEraseIdentity(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 2)
	e.putCases(t, cases...)
	one := cases[0]
	// A second version, so that erasing reaches every one.
	cw := e.login(t, userCW)
	path := "/cases/" + url.PathEscape(one.Code)
	if rec := cw.post(path+"/close", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("got %d closing, want 303", rec.Code)
	}
	vals := identityValues(one)
	admin := e.login(t, userAdmin)
	identityIntact := func(t *testing.T) {
		t.Helper()
		if got := e.mustCase(t, one.Code); got.IdentityErased || fmt.Sprint(got.Identity) != fmt.Sprint(one.Identity) {
			t.Fatal("got the identity changed")
		}
	}

	t.Run("Button", func(t *testing.T) {
		if body := admin.get(path).Body.String(); !strings.Contains(body, `formaction="`+path+`/erase-identity"`) {
			t.Fatal("got no erase button for an admin")
		}
		if body := cw.get(path).Body.String(); strings.Contains(body, "erase-identity") {
			t.Fatal("got an erase button for a caseworker")
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, c := range []*client{cw, e.login(t, userCW2), e.login(t, userAnalyst)} {
			if rec := c.post(path+"/erase-identity", url.Values{"confirm": {"yes"}}); rec.Code != http.StatusForbidden {
				t.Fatalf("got %d, want 403", rec.Code)
			}
		}
		for _, token := range []string{"forged", e.login(t, userAdmin).csrf} {
			if rec := admin.postForm(path+"/erase-identity", url.Values{"confirm": {"yes"}, "csrf": {token}}); rec.Code != http.StatusForbidden {
				t.Fatalf("got %d with a bad token, want 403", rec.Code)
			}
		}
		identityIntact(t)
	})
	t.Run("AsksFirst", func(t *testing.T) {
		rec := admin.post(path+"/erase-identity", nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, `name="confirm" value="yes"`) || !strings.Contains(body, "cannot be undone") {
			t.Fatalf("got %d, want the confirmation page: %s", rec.Code, body)
		}
		if leaked(body, vals) != "" {
			t.Fatal("got identity values on the confirmation page")
		}
		identityIntact(t)
		if e.hasAudit(t, userAdmin, ActionCaseEraseIdentity, one.Code) {
			t.Fatal("got an audit entry before confirmation")
		}
	})
	t.Run("UnknownCase", func(t *testing.T) {
		if rec := admin.post("/cases/NO-SUCH/erase-identity", url.Values{"confirm": {"yes"}}); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", rec.Code)
		}
	})
	t.Run("Erase", func(t *testing.T) {
		rec := admin.post(path+"/erase-identity", url.Values{"confirm": {"yes"}})
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != path {
			t.Fatalf("got %d to %q, want 303 to the case", rec.Code, rec.Header().Get("Location"))
		}
		versions, err := e.db.CaseHistory(context.Background(), one.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) < 2 {
			t.Fatalf("got %d versions, want 2", len(versions))
		}
		for _, v := range versions {
			if !v.Identity.IsZero() {
				t.Fatalf("version %d: got identity fields kept", v.Version)
			}
		}
		if got := e.mustCase(t, one.Code); !got.IdentityErased || got.Gender != one.Gender {
			t.Fatal("got the case not marked erased, or the rest of the record changed")
		}
		if !e.hasAudit(t, userAdmin, ActionCaseEraseIdentity, one.Code) {
			t.Fatal("got no audit entry")
		}
		body := admin.get(path).Body.String()
		if !strings.Contains(body, "identity fields were erased") || strings.Contains(body, "erase-identity") || leaked(body, vals) != "" {
			t.Fatal("got an erase button or identity values after erasing")
		}
		if other := e.mustCase(t, cases[1].Code); fmt.Sprint(other.Identity) != fmt.Sprint(cases[1].Identity) {
			t.Fatal("got another case's identity erased")
		}
	})
}

func TestBreakGlassLog(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 1)
	e.putCases(t, cases...)
	path := "/cases/" + url.PathEscape(cases[0].Code)
	cw2 := e.login(t, userCW2)
	admin := e.login(t, userAdmin)
	t.Run("Empty", func(t *testing.T) {
		if body := admin.get("/admin/break-glass").Body.String(); !strings.Contains(body, "Nobody has broken the glass.") {
			t.Fatalf("got %s, want the empty log", body)
		}
	})
	for i := range e.srv.PageSize + 3 {
		if rec := cw2.post(path+"/break-glass", url.Values{"reason": {fmt.Sprintf("Hearing preparation number %02d", i)}}); rec.Code != http.StatusOK {
			t.Fatalf("got %d breaking the glass, want 200", rec.Code)
		}
	}
	t.Run("List", func(t *testing.T) {
		rec := admin.get("/admin/break-glass")
		body := rec.Body.String()
		last := fmt.Sprintf("Hearing preparation number %02d", e.srv.PageSize+2)
		for _, want := range []string{"<td>" + userCW2 + "</td>", `href="` + path + `"`, last, "2026-03-02 09:00 UTC", "23 in all", "/admin/break-glass?page=2"} {
			if !strings.Contains(body, want) {
				t.Fatalf("got no %q: %s", want, body)
			}
		}
		if strings.Contains(body, "number 00") {
			t.Fatal("got the oldest entry on the first page, want newest first")
		}
		if v := leaked(body, identityValues(cases[0])); v != "" {
			t.Fatalf("got identity value %q", v)
		}
		if page2 := admin.get("/admin/break-glass?page=2").Body.String(); !strings.Contains(page2, "number 00") || strings.Contains(page2, last) {
			t.Fatal("got the wrong entries on page 2")
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, u := range []string{userCW, userCW2, userAnalyst, userAuditor} {
			if rec := e.login(t, u).get("/admin/break-glass"); rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "Hearing preparation") {
				t.Fatalf("%s: got %d, want 403", u, rec.Code)
			}
		}
	})
}

func TestEligibilityDecision(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 3)
	for _, c := range cases {
		c.Status = "screened"
	}
	e.putCases(t, cases...)
	cw := e.login(t, userCW2)
	for i, want := range []string{"eligible", "not_eligible"} {
		code := cases[i].Code
		path := "/cases/" + url.PathEscape(code)
		if body := cw.get(path).Body.String(); !strings.Contains(body, `action="`+path+`/eligibility"`) {
			t.Fatal("got no eligibility decision on a screened case")
		}
		before := e.mustCase(t, code)
		rec := cw.post(path+"/eligibility", url.Values{"decision": {want}})
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303", rec.Code)
		}
		got := e.mustCase(t, code)
		if got.Status != want || got.Version != before.Version+1 || fmt.Sprint(got.Identity) != fmt.Sprint(before.Identity) {
			t.Fatalf("got status %s version %d, want %s version %d with identity kept", got.Status, got.Version, want, before.Version+1)
		}
		if !e.hasAudit(t, userCW2, ActionCaseUpdate, code) {
			t.Fatal("got no audit entry")
		}
		if body := cw.get(path).Body.String(); strings.Contains(body, `/eligibility"`) {
			t.Fatal("the decision is still offered after it was made")
		}
	}
	code := cases[2].Code
	if rec := cw.post("/cases/"+url.PathEscape(code)+"/eligibility", url.Values{"decision": {"maybe"}}); rec.Code != http.StatusBadRequest {
		t.Fatalf("got %d for a bad decision, want 400", rec.Code)
	}
	if got := e.mustCase(t, code); got.Status != "screened" {
		t.Fatalf("a bad decision changed the status to %s", got.Status)
	}
}
