package web

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/ctfed/ctfed/node"
)

// adminRoles may use the admin pages and API: users, API tokens, import,
// export, erasing identity and the break-the-glass log.
var adminRoles = []node.Role{node.RoleAdmin}

// adminRoutes adds the admin pages and the case actions (close, reopen,
// erase identity) to mux.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin", s.page(s.adminHome, adminRoles...))
	mux.Handle("GET /admin/users", s.page(s.listUsers, adminRoles...))
	mux.Handle("POST /admin/users", s.page(s.createUser, adminRoles...))
	mux.Handle("POST /admin/users/{name}", s.page(s.updateUser, adminRoles...))
	mux.Handle("GET /admin/tokens", s.page(s.listTokens, adminRoles...))
	mux.Handle("POST /admin/tokens", s.page(s.createToken, adminRoles...))
	mux.Handle("POST /admin/tokens/{id}/revoke", s.page(s.revokeToken, adminRoles...))
	mux.Handle("GET /admin/break-glass", s.page(s.breakGlassLog, adminRoles...))
	mux.Handle("GET /import", s.page(s.importForm, adminRoles...))
	mux.Handle("POST /import", s.uploadPage(s.uploadImport, adminRoles...))
	mux.Handle("GET /import/{id}", s.page(s.viewImport, adminRoles...))
	mux.Handle("POST /import/{id}/confirm", s.page(s.confirmImport, adminRoles...))
	mux.Handle("GET /export", s.page(s.exportCases, adminRoles...))
	mux.Handle("POST /cases/{code}/close", s.page(s.closeCase, caseRoles...))
	mux.Handle("POST /cases/{code}/reopen", s.page(s.reopenCase, caseRoles...))
	mux.Handle("POST /cases/{code}/eligibility", s.page(s.decideEligibility, caseRoles...))
	mux.Handle("POST /cases/{code}/erase-identity", s.page(s.eraseIdentity, adminRoles...))
}

// adminAPIRoutes returns the admin endpoints of the JSON API.
func (s *Server) adminAPIRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/users", s.apiListUsers, adminRoles},
		{"POST /api/users", s.apiCreateUser, adminRoles},
		{"POST /api/users/{name}", s.apiUpdateUser, adminRoles},
		{"GET /api/tokens", s.apiListTokens, adminRoles},
		{"POST /api/tokens", s.apiCreateToken, adminRoles},
		{"DELETE /api/tokens/{id}", s.apiRevokeToken, adminRoles},
		{"POST /api/imports", s.apiUploadImport, adminRoles},
		{"POST /api/imports/{id}/confirm", s.apiConfirmImport, adminRoles},
		{"GET /api/export", s.apiExport, adminRoles},
	}
}

// adminNav returns the main navigation's link to the admin pages.
func adminNav(p *principal) []navLink {
	if p == nil || !allowed(p.Role, adminRoles) {
		return nil
	}
	return []navLink{{Href: "/admin", Label: "Admin"}}
}

// adminPage is the data of every admin page: the admin pages' own
// navigation and the page's data.
type adminPage struct {
	Sub  []navLink
	Data any
}

// adminSub returns the admin pages' navigation, marking current.
func adminSub(current string) []navLink {
	out := []navLink{
		{Href: "/admin/users", Label: "Users"},
		{Href: "/admin/tokens", Label: "API tokens"},
		{Href: "/import", Label: "Import"},
		{Href: "/export", Label: "Export"},
		{Href: "/admin/break-glass", Label: "Break the glass"},
	}
	for i := range out {
		out[i].Current = out[i].Href == current
	}
	return out
}

func (s *Server) adminHome(w http.ResponseWriter, r *http.Request, p *principal) {
	s.render(w, r, http.StatusOK, "admin", &pageData{Title: "Admin", User: p, Data: adminPage{Sub: adminSub(r.URL.Path)}})
}

// The break-the-glass log.

type glassRow struct {
	Seq                     uint64
	When, Who, Case, Reason string
}

type glassData struct {
	Rows        []glassRow
	Total, Page int
	Pages       int
	PrevURL     string
	NextURL     string
}

// breakGlassLog lists the audit log's break-the-glass entries, newest
// first: who saw which case's identity fields, when, and the reason they
// gave.
func (s *Server) breakGlassLog(w http.ResponseWriter, r *http.Request, p *principal) {
	var all []glassRow
	err := s.Audit.AuditEntries(r.Context(), 0, func(e *node.AuditEntry) error {
		if e.Action == ActionBreakGlass {
			all = append(all, glassRow{Seq: e.Seq, When: dateTime(e.Time), Who: e.Actor, Case: e.Subject, Reason: e.Detail})
		}
		return nil
	})
	if err != nil {
		s.pageError(w, r, p, err)
		return
	}
	slices.Reverse(all)
	d := glassData{Total: len(all), Page: 1}
	if n, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && n > 1 {
		d.Page = n
	}
	d.Pages = max(1, (len(all)+s.PageSize-1)/s.PageSize)
	d.Page = min(d.Page, d.Pages)
	from := (d.Page - 1) * s.PageSize
	d.Rows = all[from:min(from+s.PageSize, len(all))]
	if d.Page > 1 {
		d.PrevURL = "/admin/break-glass?page=" + strconv.Itoa(d.Page-1)
	}
	if d.Page < d.Pages {
		d.NextURL = "/admin/break-glass?page=" + strconv.Itoa(d.Page+1)
	}
	s.render(w, r, http.StatusOK, "admin_glass", &pageData{Title: "Break the glass", User: p, Data: adminPage{Sub: adminSub(r.URL.Path), Data: d}})
}
