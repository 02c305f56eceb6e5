package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

var rowRE = regexp.MustCompile(`<tr><td><a href="/cases/([^"]+)">`)

// listedCodes returns the case codes of a list page, in order.
func listedCodes(body string) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		code, _ := url.PathUnescape(m[1])
		out = append(out, code)
	}
	return out
}

func TestCaseList(t *testing.T) {
	e := newTestEnv(t)
	cases := synthCases(t, 120)
	e.putCases(t, cases...)
	c := e.login(t, userCW)
	want := func(pred func(*node.Case) bool) []string {
		var out []string
		for _, cs := range cases {
			if pred(cs) {
				out = append(out, cs.Code)
			}
		}
		return out
	}
	one := cases[17]
	for _, tc := range []struct {
		name  string
		query string
		want  []string
	}{
		{"All", "", want(func(*node.Case) bool { return true })},
		{"CodePrefix", "q=" + url.QueryEscape(one.Code[:len(one.Code)-1]), want(func(c *node.Case) bool { return strings.HasPrefix(c.Code, one.Code[:len(one.Code)-1]) })},
		{"ExactCode", "q=" + url.QueryEscape(one.Code), []string{one.Code}},
		{"Status", "status=closed", want(func(c *node.Case) bool { return c.Status == "closed" })},
		{"Year", fmt.Sprintf("year=%d", one.RegistrationYear()), want(func(c *node.Case) bool { return c.RegistrationYear() == one.RegistrationYear() })},
		{"CitizenshipName", "citizenship=" + url.QueryEscape(countryName(one.Citizenship)), want(func(c *node.Case) bool { return c.Citizenship == one.Citizenship })},
		{"CitizenshipCode", "citizenship=" + one.Citizenship, want(func(c *node.Case) bool { return c.Citizenship == one.Citizenship })},
		{"Exploitation", "exploitation_type=forced_labour", want(func(c *node.Case) bool {
			return strings.Contains(strings.Join(c.ExploitationTypes, ","), "forced_labour")
		})},
		{"Combined", "status=assisted&exploitation_type=sexual", want(func(c *node.Case) bool {
			return c.Status == "assisted" && strings.Contains(strings.Join(c.ExploitationTypes, ","), "sexual")
		})},
		{"NoMatch", "q=nothing-like-this", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			next := "/cases?" + tc.query
			for page := 1; next != ""; page++ {
				rec := c.get(next)
				if rec.Code != http.StatusOK {
					t.Fatalf("got %d, want 200", rec.Code)
				}
				body := rec.Body.String()
				codes := listedCodes(body)
				if len(codes) > e.srv.PageSize {
					t.Fatalf("got %d rows on a page, want at most %d", len(codes), e.srv.PageSize)
				}
				got = append(got, codes...)
				next = ""
				if m := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(body); m != nil {
					next = strings.ReplaceAll(m[1], "&amp;", "&")
				}
				if page > 20 {
					t.Fatal("got too many pages")
				}
			}
			slices.Sort(tc.want) // the list is in code order
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %d cases %v, want %d %v", len(got), got, len(tc.want), tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, query, msg string }{
		{"BadStatus", "status=lost", "Unknown status."},
		{"BadYear", "year=1999", "The registration year must be between"},
		{"BadCountry", "citizenship=Atlantis", "The citizenship is not a country"},
		{"BadExploitation", "exploitation_type=x", "Unknown type of exploitation."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := c.get("/cases?" + tc.query)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.msg) {
				t.Fatalf("got %d, want the list with %q", rec.Code, tc.msg)
			}
		})
	}
	t.Run("PageBeyondEnd", func(t *testing.T) {
		rec := c.get("/cases?page=99")
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "No cases match.") || !strings.Contains(rec.Body.String(), `rel="prev"`) {
			t.Fatalf("got %d, want an empty page with a link back", rec.Code)
		}
	})
	t.Run("Audited", func(t *testing.T) {
		if !e.hasAudit(t, userCW, ActionCaseList, "") {
			t.Fatal("got no case.list audit entry")
		}
	})
}

// TestCaseListWeight measures the case list page at the default page
// size: it must stay light for slow links.
func TestCaseListWeight(t *testing.T) {
	e := newTestEnv(t)
	e.srv = NewServer(e.db, e.db, e.db)
	e.srv.Now = e.clock.Now
	e.h = e.srv.Handler()
	e.putCases(t, synthCases(t, DefaultPageSize+5)...)
	c := e.login(t, userCW)
	rec := c.get("/cases")
	if got := len(listedCodes(rec.Body.String())); got != DefaultPageSize {
		t.Fatalf("got %d rows, want %d", got, DefaultPageSize)
	}
	css := c.get("/static/style.css")
	t.Logf("case list page: %d bytes of HTML for %d cases, plus %d bytes of CSS (cached)", rec.Body.Len(), DefaultPageSize, css.Body.Len())
	if rec.Body.Len() > 24<<10 {
		t.Fatalf("got a %d-byte case list, want at most 24 KiB", rec.Body.Len())
	}
	form := c.get("/new-case")
	t.Logf("new case form: %d bytes", form.Body.Len())
}

// screeningForm returns a valid Screening form for a new case.
func screeningForm(code string) url.Values {
	return url.Values{
		"form":                      {"screening"},
		"case_code":                 {code},
		"registration_date":         {"2024-02-03"},
		"status":                    {"eligible"},
		"full_name":                 {"Fakename Formtest"},
		"phone":                     {"+000 555 0101"},
		"gender":                    {"woman"},
		"age":                       {"24"},
		"citizenship":               {"Nepal"},
		"country_of_exploitation":   {"IND"},
		"transit_countries":         {"India"},
		"means_of_control":          {"threats", "withheld_documents"},
		"exploitation_types":        {"forced_labour"},
		"traffickers.1.sex":         {"male"},
		"traffickers.1.nationality": {"India"},
		"traffickers.1.role":        {"recruiter"},
		"traffickers.2.sex":         {""},
		"consent":                   {"yes"},
		"consent_date":              {"2024-02-03"},
	}
}

func TestCreateCase(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cw := e.login(t, userCW)

	t.Run("Form", func(t *testing.T) {
		rec := cw.get("/new-case")
		body := rec.Body.String()
		for _, want := range []string{
			`<legend>Victim profile</legend>`, `<legend>Trafficking process</legend>`, `<legend>Traffickers</legend>`, `<legend>Consent</legend>`, `<legend>Identity</legend>`,
			`<label for="f-age">Age at registration</label>`, `name="traffickers.1.sex"`, `<datalist id="countries">`,
			`value="cw-a" readonly`, `value="debt_bondage_earnings"> Debt bondage earnings`,
		} {
			if !strings.Contains(body, want) {
				t.Fatalf("got a form without %q", want)
			}
		}
		if strings.Contains(body, `name="assistance.1.service"`) {
			t.Fatal("got assistance inputs in the Screening form")
		}
	})
	t.Run("OK", func(t *testing.T) {
		rec := cw.post("/cases", screeningForm("NEW-1"))
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases/NEW-1?saved=1" {
			t.Fatalf("got %d to %q, want 303 to the case: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
		}
		c, err := e.db.Case(ctx, "NEW-1", true)
		if err != nil {
			t.Fatal(err)
		}
		if c.Caseworker != userCW || c.UpdatedBy != userCW || c.Citizenship != "NPL" || *c.Age != 24 || len(c.Traffickers) != 1 ||
			c.Identity.FullName != "Fakename Formtest" || strings.Join(c.MeansOfControl, ",") != "threats,withheld_documents" {
			t.Fatalf("got %+v, want the form's case assigned to its creator", c)
		}
		if !e.hasAudit(t, userCW, ActionCaseCreate, "NEW-1") {
			t.Fatal("got no case.create audit entry")
		}
		page := cw.get("/cases/NEW-1?saved=1").Body.String()
		if !strings.Contains(page, "The case was saved.") || !strings.Contains(page, "Fakename Formtest") {
			t.Fatal("got no saved notice or identity for the creator")
		}
	})
	t.Run("CaseworkerCannotAssign", func(t *testing.T) {
		v := screeningForm("NEW-2")
		v.Set("caseworker", userCW2)
		if rec := cw.post("/cases", v); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303", rec.Code)
		}
		if c, _ := e.db.Case(ctx, "NEW-2", false); c.Caseworker != userCW {
			t.Fatalf("got caseworker %q, want the creator %q", c.Caseworker, userCW)
		}
	})
	t.Run("AdminAssigns", func(t *testing.T) {
		v := screeningForm("NEW-3")
		v.Set("caseworker", userCW2)
		if rec := e.login(t, userAdmin).post("/cases", v); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303", rec.Code)
		}
		if c, _ := e.db.Case(ctx, "NEW-3", false); c.Caseworker != userCW2 {
			t.Fatalf("got caseworker %q, want %q", c.Caseworker, userCW2)
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		v := screeningForm("NEW-1")
		v.Set("gender", "man")
		rec := cw.post("/cases", v)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "a case with this code exists") {
			t.Fatalf("got %d, want 409 with the message: %s", rec.Code, rec.Body)
		}
		if c, _ := e.db.Case(ctx, "NEW-1", false); c.Gender != "woman" || c.Version != 1 {
			t.Fatal("got the stored case changed by a duplicate create")
		}
	})
	for _, tc := range []struct {
		name    string
		set     map[string]string
		id, msg string
	}{
		{"NoCode", map[string]string{"case_code": ""}, "f-case_code", "Is required."},
		{"CodeWithSlash", map[string]string{"case_code": "A/B"}, "f-case_code", "May not contain / or \\."},
		{"NoDate", map[string]string{"registration_date": ""}, "f-registration_date", "Is required."},
		{"BadDate", map[string]string{"registration_date": "03/02/2024"}, "f-registration_date", "Is not a date"},
		{"AgeText", map[string]string{"age": "twenty"}, "f-age", "Is not a whole number."},
		{"AgeRange", map[string]string{"age": "130"}, "f-age", "Is out of range 0–120."},
		{"AgeBandDisagrees", map[string]string{"age_band": "48_plus"}, "f-age_band", "Disagrees with age 24."},
		{"Country", map[string]string{"citizenship": "Atlantis"}, "f-citizenship", "Is not a country"},
		{"Status", map[string]string{"status": "lost"}, "f-status", "Is not a code of status."},
		{"TraffickerRow", map[string]string{"traffickers.2.nationality": "Narnia"}, "f-traffickers-2-nationality", "Is not a country"},
		{"ConsentDate", map[string]string{"consent_date": "2024-02-31"}, "f-consent_date", "Is not a date"},
	} {
		t.Run("Invalid"+tc.name, func(t *testing.T) {
			before := e.caseCount(t)
			v := screeningForm("BAD-" + tc.name)
			v.Set("full_name", "Fakename Typed Kept")
			for k, val := range tc.set {
				v.Set(k, val)
			}
			rec := cw.post("/cases", v)
			body := rec.Body.String()
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("got %d, want 400", rec.Code)
			}
			if !strings.Contains(body, `id="`+tc.id+`-err">`+tc.msg) {
				t.Fatalf("got no message %q beside %s:\n%s", tc.msg, tc.id, body)
			}
			if !strings.Contains(body, `class="error-summary"`) || !strings.Contains(body, `href="#`+tc.id+`"`) {
				t.Fatal("got no error summary linking to the field")
			}
			if !strings.Contains(body, `aria-invalid="true"`) {
				t.Fatal("got no aria-invalid on the field")
			}
			for k, val := range tc.set {
				if k == "status" {
					continue // a select shows only its options
				}
				if val != "" && !strings.Contains(body, htmlEscape(val)) && !strings.Contains(body, `value="`+val+`" selected`) {
					t.Fatalf("got the typed %s %q lost", k, val)
				}
			}
			if !strings.Contains(body, "Fakename Typed Kept") || !strings.Contains(body, `value="threats" checked`) {
				t.Fatal("got the other typed values lost")
			}
			if n := e.caseCount(t); n != before {
				t.Fatalf("got %d cases, want %d: nothing stored", n, before)
			}
		})
	}
	t.Run("MoreRows", func(t *testing.T) {
		before := e.caseCount(t)
		v := screeningForm("MORE-1")
		v.Set("more", "traffickers")
		rec := cw.post("/cases", v)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, `name="traffickers.6.sex"`) || strings.Contains(body, `name="traffickers.7.sex"`) {
			t.Fatalf("got %d, want the form again with rows up to 6", rec.Code)
		}
		if !strings.Contains(body, `value="Nepal"`) || e.caseCount(t) != before {
			t.Fatal("got typed values lost or a case stored by adding rows")
		}
	})
}

func TestEditCase(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cases := synthCases(t, 3)
	e.putCases(t, cases...)
	one := cases[0]
	path := "/cases/" + url.PathEscape(one.Code)
	stored := func(t *testing.T) *node.Case {
		t.Helper()
		c, err := e.db.Case(ctx, one.Code, true)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// formOf fetches an edit form and returns its values as the browser
	// would post them.
	formOf := func(t *testing.T, c *client, section string) url.Values {
		t.Helper()
		rec := c.get(path + "/edit?form=" + section)
		if rec.Code != http.StatusOK {
			t.Fatalf("got %d, want the %s form", rec.Code, section)
		}
		return scrapeForm(t, rec.Body.String())
	}

	t.Run("UnchangedSave", func(t *testing.T) {
		cw := e.login(t, userCW)
		for _, section := range []string{formScreening, formAssistance} {
			v := formOf(t, cw, section)
			if rec := cw.post(path, v); rec.Code != http.StatusSeeOther {
				t.Fatalf("%s: got %d, want 303: %s", section, rec.Code, rec.Body)
			}
		}
		if got := stored(t); got.Version != 1 {
			t.Fatalf("got version %d, want 1: saving an unchanged form stores nothing", got.Version)
		}
	})
	t.Run("Assistance", func(t *testing.T) {
		cw := e.login(t, userCW)
		v := formOf(t, cw, formAssistance)
		n := len(stored(t).Assistance)
		v.Set(fmt.Sprintf("assistance.%d.service", n+1), "legal")
		v.Set(fmt.Sprintf("assistance.%d.date", n+1), "2025-01")
		v.Set(fmt.Sprintf("assistance.%d.provider", n+1), "Legal aid clinic")
		v.Set("reintegration_status", "completed")
		if rec := cw.post(path, v); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303: %s", rec.Code, rec.Body)
		}
		got := stored(t)
		if len(got.Assistance) != n+1 || got.Assistance[n].Provider != "Legal aid clinic" || got.ReintegrationStatus != "completed" || got.UpdatedBy != userCW {
			t.Fatalf("got %+v, want the service added", got.Assistance)
		}
		if got.Identity.FullName != one.Identity.FullName || got.Gender != one.Gender {
			t.Fatal("got screening fields or identity changed by the Assistance form")
		}
		if !e.hasAudit(t, userCW, ActionCaseUpdate, one.Code) {
			t.Fatal("got no case.update audit entry")
		}
	})
	t.Run("OtherCaseworkerKeepsIdentity", func(t *testing.T) {
		cw2 := e.login(t, userCW2)
		v := formOf(t, cw2, formScreening)
		for k := range v {
			if cb := node.DefaultCodebook(); cb.IsIdentity(k) {
				t.Fatalf("got identity input %s in the form of a caseworker not assigned", k)
			}
		}
		v.Set("full_name", "Fakename Injected")
		v.Set("gender", "man")
		if rec := cw2.post(path, v); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303: %s", rec.Code, rec.Body)
		}
		got := stored(t)
		if got.Gender != "man" || got.Identity.FullName != one.Identity.FullName || got.Identity.IsZero() {
			t.Fatalf("got gender %s and name kept %v, want the edit saved and the identity untouched", got.Gender, got.Identity.FullName == one.Identity.FullName)
		}
		if got.Caseworker != userCW {
			t.Fatalf("got caseworker %q, want it kept", got.Caseworker)
		}
	})
	t.Run("CaseworkerNotReassigned", func(t *testing.T) {
		cw2 := e.login(t, userCW2)
		v := formOf(t, cw2, formScreening)
		v.Set("caseworker", userCW2)
		v.Set("status", "closed")
		cw2.post(path, v)
		if got := stored(t); got.Caseworker != userCW || got.Status != "closed" {
			t.Fatalf("got caseworker %q status %q, want %q kept and the status saved", got.Caseworker, got.Status, userCW)
		}
	})
	t.Run("AdminReassigns", func(t *testing.T) {
		admin := e.login(t, userAdmin)
		v := formOf(t, admin, formScreening)
		v.Set("caseworker", userCW2)
		if rec := admin.post(path, v); rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d, want 303", rec.Code)
		}
		if got := stored(t); got.Caseworker != userCW2 || got.Identity.FullName != one.Identity.FullName {
			t.Fatalf("got caseworker %q, want %q and the identity kept", got.Caseworker, userCW2)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		admin := e.login(t, userAdmin)
		v := formOf(t, admin, formScreening)
		version := stored(t).Version
		v.Set("age", "200")
		v.Set("full_name", "Fakename Typed")
		rec := admin.post(path, v)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `id="f-age-err">Is out of range 0–120.`) || !strings.Contains(rec.Body.String(), "Fakename Typed") {
			t.Fatalf("got %d, want 400 with the message and the typed values", rec.Code)
		}
		if got := stored(t); got.Version != version {
			t.Fatal("got an invalid form stored")
		}
	})
	t.Run("VersionConflict", func(t *testing.T) {
		admin := e.login(t, userAdmin)
		v := formOf(t, admin, formScreening)
		version := stored(t).Version
		v.Set("version", fmt.Sprint(version-1))
		v.Set("status", "screened")
		rec := admin.post(path, v)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "after you opened this form") {
			t.Fatalf("got %d, want 409 with the message", rec.Code)
		}
		if got := stored(t); got.Version != version {
			t.Fatal("got a stale form stored")
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		cw := e.login(t, userCW)
		for _, p := range []string{"/cases/NO-SUCH", "/cases/NO-SUCH/edit", "/cases/NO-SUCH/history"} {
			if rec := cw.get(p); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "There is no case with this code.") {
				t.Fatalf("%s: got %d, want 404", p, rec.Code)
			}
		}
		if rec := cw.post("/cases/NO-SUCH", url.Values{"form": {"screening"}}); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", rec.Code)
		}
		if rec := cw.get(path + "/edit?form=other"); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404 for an unknown form", rec.Code)
		}
	})
	t.Run("ViewsAudited", func(t *testing.T) {
		for _, u := range []string{userCW, userCW2, userAdmin} {
			if !e.hasAudit(t, u, ActionCaseView, one.Code) {
				t.Fatalf("got no case.view entry for %s", u)
			}
		}
	})
}

var (
	inputRE    = regexp.MustCompile(`<input [^>]*>`)
	selectRE   = regexp.MustCompile(`(?s)<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>`)
	textareaRE = regexp.MustCompile(`(?s)<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>`)
	attrRE     = regexp.MustCompile(`(\w+)="([^"]*)"`)
	selectedRE = regexp.MustCompile(`<option value="([^"]*)" selected>`)
)

// scrapeForm returns the values a browser would send for the first case
// form of page (text inputs, checked boxes, selected options, textareas;
// not the submit buttons).
func scrapeForm(tb testing.TB, page string) url.Values {
	tb.Helper()
	start := strings.Index(page, `class="case-form"`)
	end := strings.Index(page[max(start, 0):], "</form>")
	if start < 0 || end < 0 {
		tb.Fatalf("no case form in the page:\n%s", page)
	}
	form := page[start : start+end]
	v := url.Values{}
	unescape := strings.NewReplacer("&amp;", "&", "&#39;", "'", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#43;", "+")
	for _, in := range inputRE.FindAllString(form, -1) {
		attrs := map[string]string{}
		for _, m := range attrRE.FindAllStringSubmatch(in, -1) {
			attrs[m[1]] = unescape.Replace(m[2])
		}
		if attrs["name"] == "" || attrs["type"] == "checkbox" && !strings.Contains(in, " checked") {
			continue
		}
		v.Add(attrs["name"], attrs["value"])
	}
	for _, m := range selectRE.FindAllStringSubmatch(form, -1) {
		val := ""
		if s := selectedRE.FindStringSubmatch(m[2]); s != nil {
			val = s[1]
		} else if s := regexp.MustCompile(`<option value="([^"]*)"`).FindStringSubmatch(m[2]); s != nil {
			val = s[1]
		}
		v.Set(m[1], unescape.Replace(val))
	}
	for _, m := range textareaRE.FindAllStringSubmatch(form, -1) {
		v.Set(m[1], unescape.Replace(m[2]))
	}
	return v
}

func TestCaseHistory(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cases := synthCases(t, 1)
	e.putCases(t, cases...)
	one := cases[0].Clone()
	one.Status = "closed"
	one.Identity.Phone = "+000 555 9999"
	if _, err := e.db.PutCases(ctx, []*node.Case{one}, node.Upsert, userCW); err != nil {
		t.Fatal(err)
	}
	path := "/cases/" + url.PathEscape(one.Code) + "/history"
	for _, tc := range []struct {
		user     string
		identity bool
	}{
		{userCW, true},
		{userAdmin, true},
		{userCW2, false},
	} {
		t.Run(tc.user, func(t *testing.T) {
			rec := e.login(t, tc.user).get(path)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, "<h2>Version 2</h2>") || !strings.Contains(body, "<h2>Version 1</h2>") {
				t.Fatalf("got %d, want both versions", rec.Code)
			}
			if !strings.Contains(body, "<td>Status</td><td>Assisted</td><td>Closed</td>") || !strings.Contains(body, ", by cw-a") {
				t.Fatalf("got no status change by cw-a:\n%s", body)
			}
			if got := strings.Contains(body, "<td>Phone</td>"); got != tc.identity {
				t.Fatalf("got the phone change listed %v, want %v", got, tc.identity)
			}
			if strings.Contains(body, "9999") {
				t.Fatal("got an identity value in the history")
			}
			if !e.hasAudit(t, tc.user, ActionCaseHistory, one.Code) {
				t.Fatal("got no case.history audit entry")
			}
		})
	}
}
