package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// Peers of the test federation.
const (
	peerSelf = "12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelf1"
	peerB    = "12D3KooWBbbbBbbbBbbbBbbbBbbbBbbbBbbbBbbbBbb2"
	peerC    = "12D3KooWCcccCcccCcccCcccCcccCcccCcccCcccCcc3"
	peerD    = "12D3KooWDdddDdddDdddDdddDdddDdddDdddDdddDdd4"
)

// genderSQL is the console's query in the tests: four cells, two of them
// suppressed in the fake's result.
const genderSQL = "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY gender"

// fakeFederation is a federation of five contributors: the first answers,
// the others refuse, wait for approval, cannot be reached and time out.
type fakeFederation struct {
	mu        sync.Mutex
	roster    *Roster
	rosterErr error
	err       error
	reqs      []*node.QueryRequest
	timeouts  []time.Duration
}

func (f *fakeFederation) Roster(ctx context.Context) (*Roster, error) {
	if f.rosterErr != nil {
		return nil, f.rosterErr
	}
	return f.roster, nil
}

func fptr(v float64) *float64 { return &v }

func (f *fakeFederation) Query(ctx context.Context, req *node.QueryRequest, timeout time.Duration) (*FederatedResult, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.timeouts = append(f.timeouts, timeout)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	id := req.ID
	if id == "" {
		id = "q-0001"
	}
	res := &FederatedResult{QueryID: id, Query: req.Query, SQL: req.Query.Canonical(), Epsilon: req.Epsilon,
		Mechanism: "laplace", MinCellSize: 5, Answered: 1, Elapsed: 42 * time.Millisecond,
		Coverage: []Coverage{
			{PeerID: peerSelf, Org: "Org A", Country: "NPL", Status: "answered", ChargedEpsilon: req.Epsilon},
			{PeerID: peerB, Org: "Org B", Country: "IND", Status: "refused", Reason: "budget", Detail: node.ReasonBudgetOrg, Message: node.BudgetExhausted.Message()},
			{PeerID: peerC, Org: "Org C", Country: "BGD", Status: "pending"},
			{PeerID: peerD, Org: "Org D", Country: "THA", Status: "unreachable"},
			{PeerID: "12D3KooWEeee", Org: "Org E", Country: "PHL", Status: "timed_out"},
		}}
	for _, code := range node.ListGender.Values() {
		c := node.ResultCell{Key: []string{code}, Mechanism: "laplace", Scale: 2, L0: 1, LInf: 1, Nodes: 1}
		switch code {
		case "woman":
			c.Value, c.Lo, c.Hi = fptr(120.4), fptr(114.2), fptr(126.6)
		case "man":
			c.Value, c.Lo, c.Hi = fptr(45.2), fptr(39.0), fptr(51.4)
		case "trans_nonconforming":
			c.Suppressed = privacy.ReasonBelowMinimum
		default:
			c.Suppressed = privacy.ReasonIndistinguishable
		}
		res.Cells = append(res.Cells, c)
	}
	return res, nil
}

func (f *fakeFederation) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// fedEnv is a test environment whose node is in the fake federation, with
// a query service over the real store and a policy that needs approval.
type fedEnv struct {
	*testEnv
	fed *fakeFederation
	svc *node.QueryService
}

func newFedEnv(tb testing.TB) *fedEnv {
	tb.Helper()
	e := newTestEnv(tb)
	pol := node.DefaultPolicy()
	pol.Remote = node.RemotePolicy{
		AllowPeers:      []string{peerB},
		AllowOrgs:       []string{"Org C"},
		RequireApproval: true,
		Allocations:     map[string]privacy.Amount{"Org B": {Epsilon: 2 * privacy.MicroPerUnit}},
		Dimensions:      []string{"registration_year", "gender", "citizenship"},
	}
	svc := &node.QueryService{Codebook: e.db.Codebook, Aggregator: e.db, Ledger: e.db, Approvals: e.db, Audit: e.db, Policy: pol, Org: "Org A"}
	now := e.clock.Now()
	fed := &fakeFederation{roster: &Roster{Version: 7, IssuedAt: now.Add(-24 * time.Hour), NextUpdate: now.Add(6 * 24 * time.Hour), Members: []Member{
		{PeerID: peerSelf, Org: "Org A", Country: "NPL", Roles: []string{"contributor", "querier"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0), Status: "ok", Self: true},
		{PeerID: peerB, Org: "Org B", Country: "IND", Roles: []string{"querier"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(10 * 24 * time.Hour), Status: "ok"},
		{PeerID: peerC, Org: "Org C", Country: "BGD", Roles: []string{"contributor"}, NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(0, -1, 0), Status: "expired"},
		{PeerID: peerD, Org: "Org D", Country: "THA", Roles: []string{"contributor"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0), Status: "revoked"},
	}}}
	e.srv.Query = svc
	e.srv.Approvals = e.db
	e.srv.Federation = fed
	return &fedEnv{testEnv: e, fed: fed, svc: svc}
}

// addApproval puts a pending query from Org B in the queue and returns
// its ID.
func (e *fedEnv) addApproval(tb testing.TB, queryID string) string {
	tb.Helper()
	q, err := node.ParseSQL(e.db.Codebook, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY citizenship")
	if err != nil {
		tb.Fatal(err)
	}
	a, err := e.db.CreateApproval(context.Background(), &node.Approval{ID: "Bbb2-" + queryID,
		Peer:     node.Peer{PeerID: peerB, Org: "Org B", Country: "IND", Roles: []string{"querier"}},
		Request:  node.QueryRequest{ID: queryID, Query: q, Epsilon: 0.5, Purpose: "Annual regional report on trafficking routes"},
		Received: e.clock.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	return a.ID
}

func (e *fedEnv) approval(tb testing.TB, id string) *node.Approval {
	tb.Helper()
	a, err := e.db.Approval(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// fedEndpoints lists every federation page and endpoint, for a pending
// approval's ID.
func fedEndpoints(approvalID string) []endpoint {
	ap := "/federation/approvals/" + url.PathEscape(approvalID)
	query := url.Values{"sql": {genderSQL}, "purpose": {"Regional report on assistance"}, "epsilon": {"0.5"}, "timeout": {"20"}}
	return []endpoint{
		{method: "GET", path: "/federation", roles: querierRoles},
		{method: "GET", path: "/federation/roster", roles: operatorRoles},
		{method: "GET", path: "/federation/policy", roles: operatorRoles},
		{method: "GET", path: "/federation/budget", roles: operatorRoles},
		{method: "GET", path: "/federation/incoming", roles: operatorRoles},
		{method: "GET", path: "/federation/approvals", roles: operatorRoles},
		{method: "POST", path: ap, roles: operatorRoles, form: url.Values{"decision": {"reject"}}},
		{method: "GET", path: "/federation/query", roles: querierRoles},
		{method: "POST", path: "/federation/query", roles: querierRoles, form: query},
		{method: "GET", path: "/federation/results/no-such-result", roles: querierRoles},
		{method: "GET", path: "/audit", roles: auditRoles},
		{method: "GET", path: "/api/budget", api: true, roles: operatorRoles},
		{method: "GET", path: "/api/audit", api: true, roles: auditRoles},
		{method: "GET", path: "/api/approvals", api: true, roles: operatorRoles},
		{method: "POST", path: "/api" + ap[len("/federation"):], api: true, roles: operatorRoles, body: `{"decision":"reject"}`},
		{method: "POST", path: "/api/federated-queries", api: true, roles: querierRoles,
			body: `{"sql":"` + genderSQL + `","purpose":"Regional report on assistance","epsilon":0.5}`},
	}
}

func TestFederationEndpointsCoverRoutes(t *testing.T) {
	s := NewServer(nil, nil, nil)
	var want, got []string
	for _, rt := range s.federationAPIRoutes() {
		want = append(want, rt.pattern)
	}
	for _, ep := range fedEndpoints("A1") {
		if ep.api {
			got = append(got, ep.method+" "+strings.Replace(ep.path, "/A1", "/{id}", 1))
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got API endpoints %q, want %q", got, want)
	}
	for _, rt := range s.federationAPIRoutes() {
		if !slices.ContainsFunc(s.apiRoutes(), func(o apiRoute) bool { return o.pattern == rt.pattern }) {
			t.Fatalf("got %s missing from apiRoutes", rt.pattern)
		}
	}
}

func TestOpenAPIFederationSchemas(t *testing.T) {
	file, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(file))
	if err != nil {
		t.Fatal(err)
	}
	schemas := at(t, doc, "components", "schemas")
	for name, want := range map[string][]string{
		"BudgetLine":      jsonNames(reflect.TypeFor[apiBudgetLine]()),
		"AuditPage":       jsonNames(reflect.TypeFor[apiAuditPage]()),
		"AuditEntry":      jsonNames(reflect.TypeFor[node.AuditEntry]()),
		"AuditHead":       jsonNames(reflect.TypeFor[node.AuditHead]()),
		"Decision":        jsonNames(reflect.TypeFor[apiDecision]()),
		"FederatedQuery":  jsonNames(reflect.TypeFor[apiFedQuery]()),
		"ResultCell":      jsonNames(reflect.TypeFor[node.ResultCell]()),
		"Coverage":        jsonNames(reflect.TypeFor[Coverage]()),
		"Peer":            jsonNames(reflect.TypeFor[node.Peer]()),
		"QueryRequest":    jsonNames(reflect.TypeFor[node.QueryRequest]()),
		"Query":           jsonNames(reflect.TypeFor[node.Query]()),
		"Measure":         jsonNames(reflect.TypeFor[node.Measure]()),
		"Filter":          jsonNames(reflect.TypeFor[node.Filter]()),
		"Approval":        sorted(append(jsonNames(reflect.TypeFor[node.Approval]()), "description", "sql")),
		"FederatedResult": sorted(append(jsonNames(reflect.TypeFor[FederatedResult]()), "description")),
	} {
		t.Run(name, func(t *testing.T) {
			if got := keys(at(t, schemas, name, "properties")); !slices.Equal(got, want) {
				t.Fatalf("got properties %q, want %q", got, want)
			}
		})
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestFederationRoles(t *testing.T) {
	e := newFedEnv(t)
	for _, u := range testUsers {
		for _, viaToken := range []bool{false, true} {
			if viaToken && u.name == userCW2 {
				continue
			}
			name := u.name
			if viaToken {
				name = "token-" + string(u.role)
			}
			t.Run(name, func(t *testing.T) {
				var c *client
				if viaToken {
					c, _ = e.tokenClient(t, u.role)
				} else {
					c = e.login(t, u.name)
				}
				id := e.addApproval(t, "roles-"+name)
				for _, ep := range fedEndpoints(id) {
					if viaToken && !ep.api {
						continue
					}
					calls := e.fed.calls()
					audits := len(e.auditEntries(t))
					rec := c.request(ep)
					may := allowed(u.role, ep.roles)
					switch {
					case !may && rec.Code != http.StatusForbidden:
						t.Fatalf("%s: got %d, want 403 for %s", ep, rec.Code, u.role)
					case !may && ep.api && apiErr(t, rec).Kind != "permission":
						t.Fatalf("%s: got %s, want kind permission", ep, rec.Body)
					case may && (rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized):
						t.Fatalf("%s: got %d for %s, want it allowed: %s", ep, rec.Code, u.role, rec.Body)
					}
					if may {
						continue
					}
					if n := e.fed.calls(); n != calls {
						t.Fatalf("%s: the federation was asked when refused", ep)
					}
					if ep.method == http.MethodPost && strings.Contains(ep.path, "/approvals/") {
						if a := e.approval(t, id); a.Status != node.ApprovalPending {
							t.Fatalf("%s: got the approval %s when refused, want pending", ep, a.Status)
						}
					}
					for _, a := range e.auditEntries(t)[audits:] {
						if strings.HasPrefix(a.Action, "query.") || strings.HasPrefix(a.Action, "federation.") {
							t.Fatalf("%s: got audit entry %s when refused", ep, a.Action)
						}
					}
				}
			})
		}
	}
}

func TestFederationNoSession(t *testing.T) {
	e := newFedEnv(t)
	id := e.addApproval(t, "nosession")
	for _, ep := range fedEndpoints(id) {
		t.Run(ep.String(), func(t *testing.T) {
			rec := e.anonymous(t).request(ep)
			switch {
			case ep.api && rec.Code != http.StatusUnauthorized:
				t.Fatalf("got %d, want 401", rec.Code)
			case !ep.api && (rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login")):
				t.Fatalf("got %d to %q, want 303 to the sign-in page", rec.Code, rec.Header().Get("Location"))
			}
		})
	}
	if e.fed.calls() != 0 || e.approval(t, id).Status != node.ApprovalPending {
		t.Fatal("got a query sent or a decision taken without a session")
	}
}

func TestApprovalQueue(t *testing.T) {
	e := newFedEnv(t)
	admin := e.login(t, userAdmin)
	id := e.addApproval(t, "q-approve")
	other := e.addApproval(t, "q-other")

	t.Run("ShownInWords", func(t *testing.T) {
		rec := admin.get("/federation/approvals")
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("got %d, want 200", rec.Code)
		}
		for _, want := range []string{
			"Org B (India) asks for the number of cases by citizenship, where registration year is 2020–2024",
			"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY citizenship",
			"Annual regional report on trafficking routes", "ε 0.5",
			`action="/federation/approvals/` + id + `"`, `value="approve"`, `value="reject"`,
		} {
			if !strings.Contains(body, htmlEscape(want)) && !strings.Contains(body, want) {
				t.Fatalf("got no %q on the page: %s", want, body)
			}
		}
	})
	t.Run("BadCSRF", func(t *testing.T) {
		rec := admin.postForm("/federation/approvals/"+id, url.Values{"decision": {"approve"}, "csrf": {"forged"}})
		if rec.Code != http.StatusForbidden {
			t.Fatalf("got %d, want 403", rec.Code)
		}
		if a := e.approval(t, id); a.Status != node.ApprovalPending {
			t.Fatalf("got %s, want still pending", a.Status)
		}
		if e.hasAudit(t, userAdmin, ActionQueryApprove, id) {
			t.Fatal("got an approval audited with a bad CSRF token")
		}
	})
	t.Run("OneClickApprove", func(t *testing.T) {
		rec := admin.post("/federation/approvals/"+id, url.Values{"decision": {"approve"}})
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/federation/approvals?") {
			t.Fatalf("got %d to %q, want 303 back to the queue", rec.Code, rec.Header().Get("Location"))
		}
		a := e.approval(t, id)
		if a.Status != node.ApprovalApproved || a.DecidedBy != userAdmin {
			t.Fatalf("got %s by %q, want approved by %s", a.Status, a.DecidedBy, userAdmin)
		}
		if !e.hasAudit(t, userAdmin, ActionQueryApprove, id) {
			t.Fatal("got no audit entry of the approval")
		}
		page := admin.get(rec.Header().Get("Location")).Body.String()
		if !strings.Contains(page, "Query "+id+" is approved") || !strings.Contains(page, "Recently decided") {
			t.Fatalf("got no notice of the decision: %s", page)
		}
		if e.approval(t, other).Status != node.ApprovalPending {
			t.Fatal("got the other query decided too")
		}
	})
	t.Run("DecidedAlready", func(t *testing.T) {
		rec := admin.post("/federation/approvals/"+id, url.Values{"decision": {"reject"}})
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "decided already") {
			t.Fatalf("got %d, want 409 with a message", rec.Code)
		}
		if e.approval(t, id).Status != node.ApprovalApproved {
			t.Fatal("got the decision changed")
		}
	})
	t.Run("NoDecision", func(t *testing.T) {
		rec := admin.post("/federation/approvals/"+other, url.Values{"decision": {"maybe"}})
		if rec.Code != http.StatusBadRequest || e.approval(t, other).Status != node.ApprovalPending {
			t.Fatalf("got %d, want 400 and nothing decided", rec.Code)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		if rec := admin.post("/federation/approvals/nope", url.Values{"decision": {"approve"}}); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", rec.Code)
		}
	})
	t.Run("APIReject", func(t *testing.T) {
		c, _ := e.tokenClient(t, node.RoleAdmin)
		var list struct {
			Approvals []apiApproval `json:"approvals"`
		}
		decodeBody(t, c.get("/api/approvals"), &list)
		if len(list.Approvals) != 1 || list.Approvals[0].ID != other || !strings.HasPrefix(list.Approvals[0].Description, "the number of cases by citizenship") {
			t.Fatalf("got %+v, want the one pending query in words", list.Approvals)
		}
		rec := c.sendJSON("POST", "/api/approvals/"+other, `{"decision":"reject"}`)
		var got apiApproval
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || got.Status != node.ApprovalRejected || e.approval(t, other).Status != node.ApprovalRejected {
			t.Fatalf("got %d %+v, want rejected", rec.Code, got)
		}
		if !e.hasAudit(t, node.TokenActor("tok-admin"), ActionQueryReject, other) {
			t.Fatal("got no audit entry of the rejection")
		}
		for _, tc := range []struct {
			name, id, body string
			status         int
			kind           string
		}{
			{"Again", other, `{"decision":"approve"}`, http.StatusConflict, "conflict"},
			{"Unknown", "nope", `{"decision":"approve"}`, http.StatusNotFound, "not_found"},
			{"BadDecision", other, `{"decision":"later"}`, http.StatusBadRequest, "invalid"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rec := c.sendJSON("POST", "/api/approvals/"+tc.id, tc.body)
				if b := apiErr(t, rec); rec.Code != tc.status || b.Kind != tc.kind {
					t.Fatalf("got %d %+v, want %d %s", rec.Code, b, tc.status, tc.kind)
				}
			})
		}
		decodeBody(t, c.get("/api/approvals?status=all"), &list)
		if len(list.Approvals) != 2 {
			t.Fatalf("got %d approvals, want 2", len(list.Approvals))
		}
	})
}

var resultURLRE = regexp.MustCompile(`^/federation/results/([A-Za-z0-9_-]+)$`)

func TestFederatedQueryConsole(t *testing.T) {
	e := newFedEnv(t)
	al := e.login(t, userAnalyst)

	rec := al.get("/federation/query")
	console := rec.Body.String()
	t.Logf("page weight of the query console: %d bytes (HTML, the stylesheet is cached)", len(console))
	for _, want := range []string{`name="sql"`, `name="purpose"`, `name="epsilon"`, `name="timeout"`, "exploitation_type", "months_in_exploitation", "forced_labour"} {
		if !strings.Contains(console, want) {
			t.Fatalf("got no %q in the console", want)
		}
	}

	rec = al.post("/federation/query", url.Values{"sql": {genderSQL}, "purpose": {"Regional report on assistance"}, "epsilon": {"0.5"}, "timeout": {"20"}})
	m := resultURLRE.FindStringSubmatch(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || m == nil {
		t.Fatalf("got %d to %q, want 303 to the result: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	if len(e.fed.reqs) != 1 {
		t.Fatalf("got %d queries sent, want 1", len(e.fed.reqs))
	}
	req := e.fed.reqs[0]
	if req.Query.Canonical() != genderSQL || req.Epsilon != 0.5 || req.Purpose != "Regional report on assistance" || e.fed.timeouts[0] != 20*time.Second {
		t.Fatalf("got request %+v with timeout %v, want the query asked", req, e.fed.timeouts[0])
	}
	if !e.hasAudit(t, userAnalyst, ActionFederatedQuery, "q-0001") {
		t.Fatal("got no audit entry of the federated query")
	}

	rec = al.get(rec.Header().Get("Location"))
	page := rec.Body.String()
	t.Logf("page weight of a result in the console: %d bytes", len(page))
	if rec.Code != http.StatusOK {
		t.Fatalf("got %d, want 200", rec.Code)
	}
	for _, want := range []string{
		"The number of cases by gender, where registration year is 2020–2024",
		"<td class=\"num\">120</td>", "114 to 127", "<td class=\"num\">45</td>",
		"suppressed: below the minimum cell size (5)", "suppressed: not distinguishable from zero",
		"<svg class=\"barchart\"", "<rect ", "<title id=\"chart-t\">",
		"Org A", "Answered", "Org B", "Refused", "budget at that node", "Pending approval", "Unreachable", "Timed out",
		"Of 5 contributors: 1 answered, 1 refused, 1 pending approval, 1 unreachable and 1 timed out.",
		"?format=csv", "?format=json", `name="query_id" value="q-0001"`,
	} {
		if !strings.Contains(page, want) && !strings.Contains(page, htmlEscape(want)) {
			t.Fatalf("got no %q in the result page: %s", want, page)
		}
	}
	if n := strings.Count(page, "<rect "); n != 2 {
		t.Fatalf("got %d bars, want 2 (the released cells)", n)
	}
	for _, bad := range []string{"<script", "style=", "<style", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Fatalf("got %q in the result page, want no inline script, style or outside resource", bad)
		}
	}

	t.Run("CSV", func(t *testing.T) {
		rec := al.get("/federation/results/" + m[1] + "?format=csv")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" || !strings.Contains(rec.Header().Get("Content-Disposition"), "ctfed-q-0001.csv") {
			t.Fatalf("got %d %q, want a CSV attachment", rec.Code, rec.Header())
		}
		rows, err := csv.NewReader(rec.Body).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 5 || rows[0][0] != "gender" || rows[1][0] != "woman" || rows[1][2] != "120.4" || rows[3][6] != privacy.ReasonBelowMinimum || rows[3][2] != "" {
			t.Fatalf("got %q, want a header and the four cells", rows)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		rec := al.get("/federation/results/" + m[1] + "?format=json")
		var got apiFedResult
		decodeBody(t, rec, &got)
		if got.QueryID != "q-0001" || len(got.Cells) != 4 || len(got.Coverage) != 5 || got.Description == "" || got.Cells[2].Value != nil {
			t.Fatalf("got %+v, want the result", got)
		}
		if !e.hasAudit(t, userAnalyst, ActionResultExport, "q-0001") {
			t.Fatal("got no audit entry of the download")
		}
	})
	t.Run("OtherUser", func(t *testing.T) {
		if rec := e.login(t, userAdmin).get("/federation/results/" + m[1]); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404 for a result someone else ran", rec.Code)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		e.clock.Add(DefaultResultTTL + time.Minute)
		defer e.clock.Add(-DefaultResultTTL - time.Minute)
		if rec := al.get("/federation/results/" + m[1]); rec.Code != http.StatusNotFound {
			t.Fatalf("got %d, want 404 after the result's time", rec.Code)
		}
	})
	t.Run("AskAgain", func(t *testing.T) {
		rec := al.post("/federation/query", url.Values{"sql": {genderSQL}, "purpose": {"Regional report on assistance"}, "query_id": {"q-0001"}})
		if rec.Code != http.StatusSeeOther || e.fed.reqs[len(e.fed.reqs)-1].ID != "q-0001" {
			t.Fatalf("got %d, want the query asked again with its ID", rec.Code)
		}
	})
}

func TestFederatedQueryInvalid(t *testing.T) {
	e := newFedEnv(t)
	al := e.login(t, userAnalyst)
	ok := url.Values{"sql": {genderSQL}, "purpose": {"Regional report on assistance"}, "epsilon": {"0.5"}, "timeout": {"20"}}
	for _, tc := range []struct {
		name, field, value, want string
	}{
		{"NoPurpose", "purpose", "", "State the purpose of the query"},
		{"ShortPurpose", "purpose", "report", "at least 10 characters"},
		{"NoQuery", "sql", "", "Write the query."},
		{"Syntax", "sql", "SELECT COUNT(*) FROM cases GROUP gender", "At 1:"},
		{"UnknownDimension", "sql", "SELECT COUNT(*) FROM cases GROUP BY full_name", "full_name"},
		{"Epsilon", "epsilon", "-1", "ε must be a number above 0"},
		{"EpsilonText", "epsilon", "lots", "ε must be a number above 0"},
		{"Timeout", "timeout", "1000", "between 1 and 90 seconds"},
		{"QueryID", "query_id", "../x", "A query ID is at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{}
			for k, vs := range ok {
				v[k] = slices.Clone(vs)
			}
			v.Set(tc.field, tc.value)
			rec := al.post("/federation/query", v)
			body := rec.Body.String()
			if rec.Code != http.StatusBadRequest || !strings.Contains(body, htmlEscape(tc.want)) {
				t.Fatalf("got %d, want 400 with %q: %s", rec.Code, tc.want, body)
			}
			if tc.field != "sql" && !strings.Contains(body, "GROUP BY gender</textarea>") {
				t.Fatal("got the typed query lost")
			}
			if e.fed.calls() != 0 {
				t.Fatal("got an invalid query sent")
			}
		})
	}
}

func TestFederatedQueryFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		noFed  bool
		status int
		want   string
		kind   string
	}{
		{"NotQuerier", node.E("federation.Query", node.Permission, "not a querier"), false, http.StatusForbidden, "not a current member with the querier role", "permission"},
		{"Unreachable", node.E("federation.Query", node.Unavailable, "no roster"), false, http.StatusServiceUnavailable, "cannot be reached now", "unavailable"},
		{"NoFederation", nil, true, http.StatusServiceUnavailable, "not in a federation", "unavailable"},
		{"Internal", node.E("federation.Query", node.Internal, "secret detail"), false, http.StatusInternalServerError, "Internal", "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFedEnv(t)
			e.fed.err = tc.err
			if tc.noFed {
				e.srv.Federation = nil
			}
			rec := e.login(t, userAnalyst).post("/federation/query", url.Values{"sql": {genderSQL}, "purpose": {"Regional report on assistance"}})
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) || strings.Contains(rec.Body.String(), "secret detail") {
				t.Fatalf("got %d, want %d with %q: %s", rec.Code, tc.status, tc.want, rec.Body)
			}
			c, _ := e.tokenClient(t, node.RoleAnalyst)
			rec = c.sendJSON("POST", "/api/federated-queries", map[string]any{"sql": genderSQL, "purpose": "Regional report on assistance"})
			if b := apiErr(t, rec); rec.Code != tc.status || b.Kind != tc.kind || strings.Contains(b.Message, "secret") {
				t.Fatalf("got %d %+v, want %d %s", rec.Code, b, tc.status, tc.kind)
			}
			if e.hasAudit(t, userAnalyst, ActionFederatedQuery, "") {
				t.Fatal("got a failed query audited as run")
			}
		})
	}
}

func TestFederatedQueryAPI(t *testing.T) {
	e := newFedEnv(t)
	c, _ := e.tokenClient(t, node.RoleAnalyst)
	t.Run("SQL", func(t *testing.T) {
		rec := c.sendJSON("POST", "/api/federated-queries", map[string]any{"sql": genderSQL, "purpose": "Regional report on assistance", "epsilon": 0.25, "timeout_seconds": 5})
		var got apiFedResult
		decodeBody(t, rec, &got)
		if rec.Code != http.StatusOK || got.SQL != genderSQL || got.Epsilon != 0.25 || len(got.Cells) != 4 || len(got.Coverage) != 5 ||
			got.Description != "the number of cases by gender, where registration year is 2020–2024" {
			t.Fatalf("got %d %+v, want the result", rec.Code, got)
		}
		if e.fed.timeouts[len(e.fed.timeouts)-1] != 5*time.Second {
			t.Fatalf("got timeout %v, want 5s", e.fed.timeouts[len(e.fed.timeouts)-1])
		}
		if !e.hasAudit(t, node.TokenActor("tok-analyst"), ActionFederatedQuery, "q-0001") {
			t.Fatal("got no audit entry")
		}
	})
	t.Run("JSONForm", func(t *testing.T) {
		body := `{"query":{"measure":{"func":"COUNT"},"group_by":["gender"],"filters":[{"dim":"registration_year","codes":["2020","2021","2022","2023","2024"]}]},"purpose":"Regional report on assistance"}`
		var got apiFedResult
		decodeBody(t, c.sendJSON("POST", "/api/federated-queries", body), &got)
		if got.SQL != genderSQL || got.Epsilon != privacy.DefaultQueryEpsilon {
			t.Fatalf("got %q ε %v, want the canonical query at the default ε", got.SQL, got.Epsilon)
		}
	})
	for _, tc := range []struct {
		name  string
		body  string
		field string
	}{
		{"Both", `{"sql":"` + genderSQL + `","query":{"measure":{"func":"COUNT"}},"purpose":"Regional report on assistance"}`, "query"},
		{"NoPurpose", `{"sql":"` + genderSQL + `"}`, "purpose"},
		{"BadSQL", `{"sql":"SELECT","purpose":"Regional report on assistance"}`, "sql"},
		{"BadJSONQuery", `{"query":{"measure":{"func":"MAX"}},"purpose":"Regional report on assistance"}`, "query"},
		{"Timeout", `{"sql":"` + genderSQL + `","purpose":"Regional report on assistance","timeout_seconds":600}`, "timeout_seconds"},
		{"Mechanism", `{"sql":"` + genderSQL + `","purpose":"Regional report on assistance","mechanism":"magic"}`, "mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := e.fed.calls()
			rec := c.sendJSON("POST", "/api/federated-queries", tc.body)
			b := apiErr(t, rec)
			if rec.Code != http.StatusBadRequest || b.Kind != "invalid" || len(b.Fields) == 0 || b.Fields[0].Field != tc.field {
				t.Fatalf("got %d %+v, want 400 on field %s", rec.Code, b, tc.field)
			}
			if e.fed.calls() != calls {
				t.Fatal("got an invalid query sent")
			}
		})
	}
	t.Run("UnknownField", func(t *testing.T) {
		if rec := c.sendJSON("POST", "/api/federated-queries", `{"sql":"x","purpose":"y","secret":1}`); rec.Code != http.StatusBadRequest {
			t.Fatalf("got %d, want 400", rec.Code)
		}
	})
}

func TestBudgetPage(t *testing.T) {
	e := newFedEnv(t)
	ctx := context.Background()
	caps := privacy.DefaultCaps()
	caps.OrgPerYear = privacy.Amount{Epsilon: 2 * privacy.MicroPerUnit}
	half := privacy.Amount{Epsilon: privacy.MicroPerUnit / 2}
	if err := e.db.Charge(ctx, "Org B", []int{2020, 2021, 2022, 2023, 2024}, half, caps); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Charge(ctx, "Org B", []int{2024}, half, caps); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Charge(ctx, "Org C", e.db.Codebook.Years(), privacy.Amount{Epsilon: privacy.MicroPerUnit}, privacy.DefaultCaps()); err != nil {
		t.Fatal(err)
	}
	rec := e.login(t, userAdmin).get("/federation/budget")
	body := rec.Body.String()
	for _, want := range []string{
		"<td>All queriers together (node-wide)</td><td>2000–2019</td><td>ε 1.0</td><td>ε 8.0</td>",
		"<td>All queriers together (node-wide)</td><td>2020–2023</td><td>ε 1.5</td>",
		"<td>All queriers together (node-wide)</td><td>2024</td><td>ε 2.0</td>",
		"<td>All queriers together (node-wide)</td><td>2025–2030</td><td>ε 1.0</td>",
		"<td>Org B</td><td>2020–2023</td><td>ε 0.5</td><td>ε 2.0 <span class=\"hint\">(allocation)</span></td><td>ε 1.5</td>",
		"<td>Org B</td><td>2024</td><td>ε 1.0</td>",
		"<td>Org C</td><td>2000–2030</td><td>ε 1.0</td><td>ε 4.0</td><td>ε 3.0</td>",
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("got no %q on the budget page: %s", want, body)
		}
	}
	var got struct {
		Lines []apiBudgetLine `json:"lines"`
	}
	c, _ := e.tokenClient(t, node.RoleAdmin)
	decodeBody(t, c.get("/api/budget"), &got)
	var orgB []apiBudgetLine
	for _, l := range got.Lines {
		if l.Org == "Org B" {
			orgB = append(orgB, l)
		}
	}
	if len(got.Lines) != 31+5+31 || len(orgB) != 5 || orgB[4].SpentEpsilon != 1 || orgB[4].CapEpsilon != 2 || orgB[4].RemainingEpsilon != 1 || orgB[0].Scope != "organisation" {
		t.Fatalf("got %d lines, Org B's %+v, want the ledger with Org B's allocation", len(got.Lines), orgB)
	}
}

func TestPolicyAndRosterPages(t *testing.T) {
	e := newFedEnv(t)
	admin := e.login(t, userAdmin)
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"Policy", "/federation/policy", []string{
			"These querier nodes may ask: Org B (node " + peerB + ").",
			"Every querier node of these organisations may ask: Org C.",
			"Every new query waits in the approval queue",
			"Only these dimensions may be grouped by or filtered on: registration year, gender and citizenship.",
			"Any measure may be asked",
			"One query may spend at most ε 1.0",
			"Except: Org B may spend ε 2.0 per registration year.",
			"at least 5 and the lower end of its 95% interval is above 0",
		}},
		{"Roster", "/federation/roster", []string{
			"Roster version 7", "Org A <strong>(this node)</strong>", "Nepal", "contributor, querier",
			"Current member", "ends in 10 days", "Expired", "Revoked",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := admin.get(tc.path).Body.String()
			for _, want := range tc.want {
				if !strings.Contains(body, want) && !strings.Contains(body, htmlEscape(want)) {
					t.Fatalf("got no %q: %s", want, body)
				}
			}
		})
	}
	t.Run("NoRosterYet", func(t *testing.T) {
		e.fed.rosterErr = node.E("roster", node.Unavailable, "none")
		defer func() { e.fed.rosterErr = nil }()
		if body := admin.get("/federation/roster").Body.String(); !strings.Contains(body, "no roster yet") {
			t.Fatalf("got %s, want a note that there is no roster", body)
		}
	})
	t.Run("NoFederation", func(t *testing.T) {
		e.srv.Federation, e.srv.Approvals = nil, nil
		defer func() { e.srv.Federation, e.srv.Approvals = e.fed, e.db }()
		for _, p := range []string{"/federation/roster", "/federation/approvals", "/federation/query"} {
			rec := admin.get(p)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "This node is not in a federation") {
				t.Fatalf("%s: got %d, want a page saying the node is in no federation", p, rec.Code)
			}
		}
		c, _ := e.tokenClient(t, node.RoleAdmin)
		if rec := c.get("/api/approvals"); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("got %d, want 503", rec.Code)
		}
	})
}

func TestIncomingLog(t *testing.T) {
	e := newFedEnv(t)
	ctx := context.Background()
	for _, a := range []*node.AuditEntry{
		{Actor: peerB, Action: ActionQueryAnswer, Subject: "q-1", Detail: `org="Org B" query="SELECT COUNT(*) FROM cases GROUP BY gender" codebook="2026.1" epsilon=0.5 delta=0 mechanism="" purpose="Quarterly \"regional\" report" status=answered charged_epsilon=0.5 charged_delta=0`},
		{Actor: peerB, Action: ActionQueryAnswer, Subject: "q-2", Detail: `org="Org B" query="SELECT COUNT(*) FROM cases GROUP BY education" codebook="2026.1" epsilon=0.5 delta=0 mechanism="" purpose="Education study" status=refused kind=permission reason=policy:dimension`},
		{Actor: userAdmin, Action: ActionLogin},
		{Actor: peerC, Action: ActionQueryAnswer, Subject: "q-3", Detail: `org="Org C" query="SELECT COUNT(*) FROM cases" codebook="2026.1" epsilon=1 delta=0 mechanism="" purpose="Totals for the annual report" status=pending`},
	} {
		if err := e.db.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	body := e.login(t, userAdmin).get("/federation/incoming").Body.String()
	for _, want := range []string{
		"Org B", "the number of cases by gender", "Quarterly &#34;regional&#34; report", "Answered", "ε 0.5",
		"Refused: its policy does not allow a dimension of the query", "Education study",
		"Org C", "Pending approval", "Totals for the annual report", "Queries 1–3 of 3",
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("got no %q: %s", want, body)
		}
	}
	if strings.Index(body, "Totals for the annual report") > strings.Index(body, "Education study") {
		t.Fatal("got the oldest first, want the newest")
	}
}

func TestAuditLog(t *testing.T) {
	e := newFedEnv(t)
	ctx := context.Background()
	for range 45 {
		if err := e.db.Append(ctx, &node.AuditEntry{Actor: "setup", Action: "test.entry", Subject: "S"}); err != nil {
			t.Fatal(err)
		}
	}
	au := e.login(t, userAuditor)
	head, err := e.db.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Pages", func(t *testing.T) {
		rec := au.get("/audit")
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "<td>"+itoa(head.Seq)+"</td>") || !strings.Contains(body, `href="/audit?page=2"`) {
			t.Fatalf("got %d, want the newest entries with a link to older ones: %s", rec.Code, body)
		}
		if n := strings.Count(body, "<tr><td>"); n != e.srv.PageSize {
			t.Fatalf("got %d rows, want %d", n, e.srv.PageSize)
		}
		last := au.get("/audit?page=99").Body.String()
		if !strings.Contains(last, "<td>1</td>") || strings.Contains(last, "rel=\"next\"") {
			t.Fatalf("got %s, want the last page with the first entry", last)
		}
	})
	t.Run("API", func(t *testing.T) {
		c, _ := e.tokenClient(t, node.RoleAuditor)
		var page apiAuditPage
		decodeBody(t, c.get("/api/audit?from=2&limit=10"), &page)
		if len(page.Entries) != 10 || page.Entries[0].Seq != 2 || page.Next != 12 || page.Head < head.Seq {
			t.Fatalf("got %d entries from %d, next %d, want 10 from 2, next 12", len(page.Entries), page.Entries[0].Seq, page.Next)
		}
		decodeBody(t, c.get("/api/audit?action=test.entry&limit=1000"), &page)
		if len(page.Entries) != 45 {
			t.Fatalf("got %d entries of the action, want 45", len(page.Entries))
		}
		for _, q := range []string{"from=x", "limit=0", "limit=1001"} {
			if rec := c.get("/api/audit?" + q); rec.Code != http.StatusBadRequest {
				t.Fatalf("%s: got %d, want 400", q, rec.Code)
			}
		}
	})
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestDescribeQuery(t *testing.T) {
	cb := node.DefaultCodebook()
	for _, tc := range []struct{ sql, want string }{
		{"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY citizenship",
			"the number of cases by citizenship, where registration year is 2020–2024"},
		{"SELECT COUNT(*) FROM cases", "the number of cases"},
		{"SELECT AVG(age) FROM cases WHERE gender = 'woman' AND citizenship IN ('NPL', 'IND') GROUP BY registration_year, exploitation_type",
			"the average age at registration by registration year and exploitation type, where citizenship is India or Nepal and gender is woman"},
		{"SELECT QUANTILE(months_in_exploitation, 0.5) FROM cases WHERE exploitation_type IN ('sexual', 'forced_labour')",
			"the median months in exploitation, where exploitation type includes sexual or forced labour"},
		{"SELECT QUANTILE(age, 0.9) FROM cases WHERE registration_year IN (2018, 2020, 2021, 2022)",
			"the 90th percentile of age at registration, where registration year is 2018 or 2020–2022"},
		{"SELECT SUM(services_count) FROM cases GROUP BY gender, age_band, majority",
			"the total services count by gender, age band and majority"},
		{"SELECT COUNT(*) FROM cases WHERE citizenship = 'unknown'", "the number of cases, where citizenship is unknown"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			q, err := node.ParseSQL(cb, tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if got := describeQuery(cb, q); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestYearRuns(t *testing.T) {
	for _, tc := range []struct {
		years []int
		want  string
	}{
		{nil, ""},
		{[]int{2020}, "2020"},
		{[]int{2000, 2001, 2002}, "2000–2002"},
		{[]int{2018, 2020, 2021, 2023}, "2018, 2020–2021, 2023"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := strings.Join(yearRuns(tc.years), ", "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseDetail(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"Empty", "", map[string]string{}},
		{"Bare", "status=answered charged_epsilon=0.5", map[string]string{"status": "answered", "charged_epsilon": "0.5"}},
		{"Quoted", `org="Org \"B\"" query="SELECT COUNT(*) FROM cases WHERE gender = 'woman'" status=refused`,
			map[string]string{"org": `Org "B"`, "query": "SELECT COUNT(*) FROM cases WHERE gender = 'woman'", "status": "refused"}},
		{"StopsAtGarbage", `a=1 not a pair b=2`, map[string]string{"a": "1"}},
		{"Unterminated", `a=1 b="open`, map[string]string{"a": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseDetail(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func FuzzParseDetail(f *testing.F) {
	f.Add(`org="Org B" query="SELECT COUNT(*) FROM cases" epsilon=0.5 purpose="x \"y\"" status=answered`)
	f.Add(`a= b=="c" ="d"`)
	f.Add(`k="\xff\u00e9" =`)
	f.Fuzz(func(t *testing.T, s string) {
		for k := range parseDetail(s) {
			if k == "" || strings.ContainsAny(k, " \"") {
				t.Fatalf("got key %q", k)
			}
		}
	})
}

func TestBudgetRows(t *testing.T) {
	a := func(eps float64) privacy.Amount {
		return privacy.Amount{Epsilon: privacy.Micro(eps * privacy.MicroPerUnit)}
	}
	pol := node.DefaultPolicy()
	lines := []node.BudgetLine{
		{Year: 2000, Spent: a(1), Cap: a(8)}, {Year: 2001, Spent: a(1), Cap: a(8)}, {Year: 2003, Spent: a(1), Cap: a(8)},
		{Org: "X", Year: 2003, Spent: a(4), Cap: a(4)}, {Org: "X", Year: 2004, Spent: a(4), Cap: a(4)},
		{Org: "Y", Year: 2005, Spent: a(1), Cap: a(4)},
	}
	var got []string
	for _, r := range budgetRows(lines, &pol) {
		got = append(got, r.Who+" "+r.Years+" "+r.Spent+" "+r.Remaining)
	}
	want := []string{
		"All queriers together (node-wide) 2000–2001 ε 1.0 ε 7.0",
		"All queriers together (node-wide) 2003 ε 1.0 ε 7.0",
		"X 2003–2004 ε 4.0 ε 0.0",
		"Y 2005 ε 1.0 ε 3.0",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
