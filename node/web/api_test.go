package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

func TestAPIListCases(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 40)
	e.putCases(t, cases...)
	c := e.login(t, userCW2)
	list := func(t *testing.T, query string) apiCaseList {
		t.Helper()
		rec := c.get("/api/cases?" + query)
		if rec.Code != http.StatusOK {
			t.Fatalf("got %d, want 200: %s", rec.Code, rec.Body)
		}
		var l apiCaseList
		decodeBody(t, rec, &l)
		return l
	}
	count := func(pred func(*node.Case) bool) int {
		n := 0
		for _, cs := range cases {
			if pred(cs) {
				n++
			}
		}
		return n
	}
	one := cases[3]
	for _, tc := range []struct {
		name, query string
		total       int
	}{
		{"All", "", len(cases)},
		{"Code", "code=" + url.QueryEscape(one.Code), 1},
		{"Status", "status=assisted", count(func(c *node.Case) bool { return c.Status == "assisted" })},
		{"Year", fmt.Sprintf("year=%d", one.RegistrationYear()), count(func(c *node.Case) bool { return c.RegistrationYear() == one.RegistrationYear() })},
		{"Citizenship", "citizenship=" + one.Citizenship, count(func(c *node.Case) bool { return c.Citizenship == one.Citizenship })},
		{"Exploitation", "exploitation_type=sexual", count(func(c *node.Case) bool { return strings.Contains(strings.Join(c.ExploitationTypes, ","), "sexual") })},
		{"None", "code=ZZZ", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := list(t, tc.query)
			if l.Total != tc.total || len(l.Cases) != min(tc.total, defaultAPILimit) || l.Cases == nil {
				t.Fatalf("got %d of %d, want %d", len(l.Cases), l.Total, tc.total)
			}
			for _, cs := range l.Cases {
				if !cs.Identity.IsZero() {
					t.Fatal("got identity fields in a list")
				}
			}
		})
	}
	t.Run("Paging", func(t *testing.T) {
		a, b := list(t, "limit=15"), list(t, "offset=15&limit=15")
		if len(a.Cases) != 15 || len(b.Cases) != 15 || a.Cases[14].Code >= b.Cases[0].Code || b.Offset != 15 || b.Limit != 15 {
			t.Fatalf("got pages of %d and %d, want consecutive pages of 15", len(a.Cases), len(b.Cases))
		}
	})
	for _, q := range []string{"status=lost", "year=1999", "year=x", "citizenship=Nepal", "exploitation_type=x", "limit=0", "limit=501", "offset=-1", "offset=x"} {
		t.Run("Invalid/"+q, func(t *testing.T) {
			rec := c.get("/api/cases?" + q)
			if b := apiErr(t, rec); rec.Code != http.StatusBadRequest || b.Kind != "invalid" || b.Message == "" {
				t.Fatalf("got %d %+v, want 400 invalid with a message", rec.Code, b)
			}
		})
	}
}

func TestAPICreateCase(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cw := e.login(t, userCW)
	newCase := func(code string) *node.Case {
		c := synthCases(t, 1)[0]
		c.Code, c.Caseworker = code, ""
		return c
	}

	t.Run("OK", func(t *testing.T) {
		in := newCase("API-1")
		rec := cw.sendJSON(http.MethodPost, "/api/cases", in)
		var got apiCase
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusCreated || got.Result != "created" || !got.IdentityShown || got.Case.Caseworker != userCW ||
			got.Case.Version != 1 || got.Case.UpdatedBy != userCW || got.Case.Identity.FullName != in.Identity.FullName {
			t.Fatalf("got %d %+v, want 201, created, assigned to the creator, with identity", rec.Code, got)
		}
		if !e.hasAudit(t, userCW, ActionCaseCreate, "API-1") {
			t.Fatal("got no case.create audit entry")
		}
	})
	t.Run("Repeated", func(t *testing.T) {
		before := len(e.auditEntries(t))
		rec := cw.sendJSON(http.MethodPost, "/api/cases", newCase("API-1"))
		var got apiCase
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || got.Result != "unchanged" || got.Case.Version != 1 {
			t.Fatalf("got %d %q, want 200 unchanged for the same case sent again", rec.Code, got.Result)
		}
		for _, a := range e.auditEntries(t)[before:] {
			if a.Action == ActionCaseCreate {
				t.Fatal("got a second case.create entry")
			}
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		in := newCase("API-1")
		in.Status = "closed"
		rec := cw.sendJSON(http.MethodPost, "/api/cases", in)
		b := apiErr(t, rec)
		if rec.Code != http.StatusConflict || b.Kind != "conflict" || b.Message != "a case with this code exists" {
			t.Fatalf("got %d %+v, want 409 conflict", rec.Code, b)
		}
	})
	t.Run("StoreFieldsIgnored", func(t *testing.T) {
		in := newCase("API-2")
		in.Version, in.UpdatedBy, in.IdentityErased = 7, "someone", true
		rec := cw.sendJSON(http.MethodPost, "/api/cases", in)
		var got apiCase
		decodeBody(t, rec, &got)
		if got.Case.Version != 1 || got.Case.UpdatedBy != userCW || got.Case.IdentityErased {
			t.Fatalf("got %+v, want the store's own fields", got.Case)
		}
	})
	t.Run("CaseworkerMayNotAssign", func(t *testing.T) {
		in := newCase("API-3")
		in.Caseworker = userCW2
		rec := cw.sendJSON(http.MethodPost, "/api/cases", in)
		if rec.Code != http.StatusForbidden || apiErr(t, rec).Kind != "permission" {
			t.Fatalf("got %d, want 403", rec.Code)
		}
	})
	t.Run("AdminAssigns", func(t *testing.T) {
		in := newCase("API-4")
		in.Caseworker = userCW2
		rec := e.login(t, userAdmin).sendJSON(http.MethodPost, "/api/cases", in)
		var got apiCase
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusCreated || got.Case.Caseworker != userCW2 {
			t.Fatalf("got %d %+v, want assigned to %s", rec.Code, got.Case, userCW2)
		}
	})
	t.Run("TokenUnassigned", func(t *testing.T) {
		tc, _ := e.tokenClient(t, node.RoleCaseworker)
		rec := tc.sendJSON(http.MethodPost, "/api/cases", newCase("API-5"))
		var got apiCase
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusCreated || got.Case.Caseworker != "" || got.IdentityShown || got.Case.UpdatedBy != node.TokenActor("tok-caseworker") {
			t.Fatalf("got %d %+v, want an unassigned case written by the token, without identity", rec.Code, got)
		}
	})
	for _, tc := range []struct {
		name   string
		body   string
		fields []string
	}{
		{"Validation", `{"case_code":"BAD-1","registration_date":"2024-13","gender":"x","age":200,"identity":{"full_name":"Fakename Secret","date_of_birth":"1990-02-31"}}`,
			[]string{"registration_date", "date_of_birth", "gender", "age"}},
		{"NoCode", `{"registration_date":"2024"}`, []string{"case_code"}},
		{"UnknownField", `{"case_code":"BAD-2","registration_date":"2024","colour":"red"}`, nil},
		{"WrongType", `{"case_code":"BAD-3","registration_date":"2024","age":"ten"}`, nil},
		{"Malformed", `{"case_code":`, nil},
		{"Empty", ``, nil},
		{"TwoValues", `{"case_code":"BAD-4","registration_date":"2024"}{}`, nil},
		{"TooLarge", `{"case_code":"BAD-5","registration_date":"2024","identity":{"narrative":"` + strings.Repeat("x", maxAPIBody) + `"}}`, nil},
	} {
		t.Run("Invalid"+tc.name, func(t *testing.T) {
			before := e.caseCount(t)
			rec := cw.sendJSON(http.MethodPost, "/api/cases", tc.body)
			b := apiErr(t, rec)
			if rec.Code != http.StatusBadRequest || b.Kind != "invalid" || b.Message == "" {
				t.Fatalf("got %d %+v, want 400 invalid", rec.Code, b)
			}
			var got []string
			for _, f := range b.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("got fields %q, want %q", got, tc.fields)
			}
			if strings.Contains(rec.Body.String(), "Fakename Secret") || strings.Contains(rec.Body.String(), "1990-02-31") {
				t.Fatal("got an identity value repeated in the error")
			}
			if e.caseCount(t) != before {
				t.Fatal("got an invalid case stored")
			}
		})
	}
	if _, err := e.db.Case(ctx, "API-1", false); err != nil {
		t.Fatal(err)
	}
}

func TestAPIUpdateCase(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cases := synthCases(t, 2)
	e.putCases(t, cases...)
	one := cases[0]
	path := "/api/cases/" + url.PathEscape(one.Code)
	stored := func(t *testing.T) *node.Case {
		t.Helper()
		c, err := e.db.Case(ctx, one.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// body returns the stored case as a PUT body, without identity.
	body := func(t *testing.T) *node.Case {
		c := stored(t).Clone()
		c.Identity = node.Identity{}
		return c
	}
	cw, cw2, admin := e.login(t, userCW), e.login(t, userCW2), e.login(t, userAdmin)

	t.Run("Get", func(t *testing.T) {
		for _, tc := range []struct {
			c        *client
			identity bool
		}{{cw, true}, {cw2, false}, {admin, true}} {
			var got apiCase
			rec := tc.c.get(path)
			decodeBody(t, rec, &got)
			if rec.Code != http.StatusOK || got.IdentityShown != tc.identity || got.Case.Identity.IsZero() == tc.identity {
				t.Fatalf("got %d identity_shown=%v, want %v", rec.Code, got.IdentityShown, tc.identity)
			}
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		for _, rec := range []*responseRecorder{cw.get("/api/cases/NOPE"), cw.get("/api/cases/NOPE/history"),
			cw.sendJSON(http.MethodPut, "/api/cases/NOPE", `{"registration_date":"2024"}`)} {
			if b := apiErr(t, rec); rec.Code != http.StatusNotFound || b.Kind != "not_found" || b.Message != "there is no case with this code" {
				t.Fatalf("got %d %+v, want 404 not_found", rec.Code, b)
			}
		}
	})
	t.Run("OtherCaseworkerUpdates", func(t *testing.T) {
		in := body(t)
		in.Status = "closed"
		rec := cw2.sendJSON(http.MethodPut, path, in)
		var got apiCase
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || got.Result != "updated" || got.Case.Status != "closed" || got.IdentityShown {
			t.Fatalf("got %d %+v, want updated without identity", rec.Code, got)
		}
		if s := stored(t); s.Identity.FullName != one.Identity.FullName || s.Version != 2 || s.UpdatedBy != userCW2 {
			t.Fatalf("got version %d by %s, identity kept %v, want version 2 by %s with the identity kept", s.Version, s.UpdatedBy, s.Identity.FullName == one.Identity.FullName, userCW2)
		}
		if !e.hasAudit(t, userCW2, ActionCaseUpdate, one.Code) {
			t.Fatal("got no case.update audit entry")
		}
	})
	t.Run("Unchanged", func(t *testing.T) {
		rec := cw.sendJSON(http.MethodPut, path, body(t))
		var got apiCase
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || got.Result != "unchanged" || stored(t).Version != 2 {
			t.Fatalf("got %d %q, want unchanged", rec.Code, got.Result)
		}
	})
	t.Run("AssignedChangesIdentity", func(t *testing.T) {
		in := stored(t).Clone()
		in.Identity.Phone = "+000 555 0000"
		rec := cw.sendJSON(http.MethodPut, path, in)
		if rec.Code != http.StatusOK || stored(t).Identity.Phone != "+000 555 0000" {
			t.Fatalf("got %d, want the phone changed", rec.Code)
		}
	})
	for _, tc := range []struct {
		name   string
		c      *client
		change func(c *node.Case)
		status int
		kind   string
	}{
		{"IdentityNotAssigned", cw2, func(c *node.Case) { c.Identity.FullName = "Fakename Other" }, http.StatusForbidden, "permission"},
		{"ReassignNotAdmin", cw, func(c *node.Case) { c.Caseworker = userCW2 }, http.StatusForbidden, "permission"},
		{"StaleVersion", cw, func(c *node.Case) { c.Version = 1; c.Status = "screened" }, http.StatusConflict, "conflict"},
		{"OtherCode", cw, func(c *node.Case) { c.Code = cases[1].Code }, http.StatusBadRequest, "invalid"},
		{"Invalid", cw, func(c *node.Case) { c.Age = node.IntPtr(300) }, http.StatusBadRequest, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stored(t)
			in := body(t)
			tc.change(in)
			rec := tc.c.sendJSON(http.MethodPut, path, in)
			if b := apiErr(t, rec); rec.Code != tc.status || b.Kind != tc.kind {
				t.Fatalf("got %d %+v, want %d %s", rec.Code, b, tc.status, tc.kind)
			}
			if after := stored(t); after.Version != before.Version {
				t.Fatal("got a refused change stored")
			}
		})
	}
	t.Run("AdminReassigns", func(t *testing.T) {
		in := body(t)
		in.Caseworker = userCW2
		if rec := admin.sendJSON(http.MethodPut, path, in); rec.Code != http.StatusOK || stored(t).Caseworker != userCW2 {
			t.Fatalf("got %d, want reassigned", rec.Code)
		}
	})
	t.Run("History", func(t *testing.T) {
		for _, tc := range []struct {
			c        *client
			identity bool
		}{{cw2, true}, {cw, false}, {admin, true}} {
			var h apiHistory
			rec := tc.c.get(path + "/history")
			decodeBody(t, rec, &h)
			if rec.Code != http.StatusOK || len(h.Versions) != 4 || h.IdentityShown != tc.identity {
				t.Fatalf("got %d, %d versions, identity %v, want 4 versions, identity %v", rec.Code, len(h.Versions), h.IdentityShown, tc.identity)
			}
			for i, v := range h.Versions {
				if v.Version != i+1 || v.Identity.IsZero() == tc.identity {
					t.Fatalf("got version %d at %d with identity %v, want oldest first, identity %v", v.Version, i, !v.Identity.IsZero(), tc.identity)
				}
			}
		}
	})
	t.Run("UnknownEndpoint", func(t *testing.T) {
		for _, rec := range []*responseRecorder{cw.sendJSON(http.MethodDelete, path, nil), cw.get("/api/nothing")} {
			if b := apiErr(t, rec); rec.Code != http.StatusNotFound || b.Kind != "not_found" {
				t.Fatalf("got %d %+v, want 404 not_found", rec.Code, b)
			}
		}
	})
}

// failingStore is a case store whose every read fails with an internal
// error carrying text that must never reach a client.
type failingStore struct{ node.CaseStore }

const secretErrText = "Fakename Leaky at block 0x42"

// The error's text is a planted identity value on purpose: it must never
// reach a response.
var errFailing = &node.Error{Op: "storage.Case", Kind: node.Internal, Err: errors.New(secretErrText)} //lint:ignore ST1005 the text imitates a leaked identity value

func (failingStore) Case(context.Context, string, bool) (*node.Case, error) { return nil, errFailing }
func (failingStore) ListCases(context.Context, node.CaseFilter) ([]*node.Case, int, error) {
	return nil, 0, errFailing
}
func (failingStore) CaseHistory(context.Context, string, bool) ([]*node.Case, error) {
	return nil, errFailing
}

func TestInternalErrors(t *testing.T) {
	e := newTestEnv(t)
	e.srv = NewServer(failingStore{e.db}, e.db, e.db)
	e.srv.Now = e.clock.Now
	e.h = e.srv.Handler()
	c := e.login(t, userCW)
	for _, p := range []string{"/cases", "/cases/X", "/cases/X/history", "/cases/X/edit", "/api/cases", "/api/cases/X", "/api/cases/X/history"} {
		t.Run(p, func(t *testing.T) {
			rec := c.get(p)
			if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), secretErrText) || strings.Contains(rec.Body.String(), "0x42") {
				t.Fatalf("got %d %s, want 500 without the error's text", rec.Code, rec.Body)
			}
			if strings.HasPrefix(p, "/api/") {
				if b := apiErr(t, rec); b.Kind != "internal" || b.Message != node.Internal.Message() {
					t.Fatalf("got %+v, want kind internal with its fixed message", b)
				}
			} else if !strings.Contains(rec.Body.String(), "Internal error.") {
				t.Fatal("got no fixed message on the page")
			}
		})
	}
}
