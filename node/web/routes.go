package web

import (
	"net/http"

	"github.com/ctfed/ctfed/node"
)

// routes declares every page and endpoint with the roles that may use it.
// TestRoutesMatchOpenAPI keeps the /api/ routes and openapi.yaml in step.
func (s *Server) routes() *http.ServeMux {
	all := node.Roles()
	mux := http.NewServeMux()

	// Public: the sign-in page and the stylesheet.
	mux.Handle("GET /static/", serveStatic())
	// Browsers ask for /favicon.ico on their own; the pages name their icon,
	// so answer with nothing rather than a sign-in page or a 404 page.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /login", s.getLogin)
	mux.HandleFunc("POST /login", s.postLogin)

	// Pages.
	mux.Handle("POST /logout", s.page(s.postLogout, all...))
	mux.Handle("GET /{$}", s.page(s.home, all...))
	mux.Handle("GET /cases", s.page(s.listCases, caseRoles...))
	mux.Handle("GET /new-case", s.page(s.newCase, caseRoles...))
	mux.Handle("POST /cases", s.page(s.createCase, caseRoles...))
	mux.Handle("GET /cases/{code}", s.page(s.viewCase, caseRoles...))
	mux.Handle("POST /cases/{code}", s.page(s.updateCase, caseRoles...))
	mux.Handle("GET /cases/{code}/edit", s.page(s.editCase, caseRoles...))
	mux.Handle("GET /cases/{code}/history", s.page(s.caseHistory, caseRoles...))
	mux.Handle("POST /cases/{code}/break-glass", s.page(s.breakGlass, caseRoles...))
	s.statsRoutes(mux)
	s.federationRoutes(mux)
	s.adminRoutes(mux)
	mux.Handle("/", s.page(s.notFound, all...))

	// The JSON API.
	for _, rt := range s.apiRoutes() {
		mux.Handle(rt.pattern, s.api(rt.h, rt.roles...))
	}
	mux.Handle("/api/", s.api(s.apiNotFound, all...))
	return mux
}

// apiRoute is one endpoint of the JSON API.
type apiRoute struct {
	pattern string
	h       handler
	roles   []node.Role
}

func (s *Server) apiRoutes() []apiRoute {
	routes := []apiRoute{
		{"GET /api/openapi.yaml", s.serveOpenAPI, node.Roles()},
		{"GET /api/cases", s.apiListCases, caseRoles},
		{"POST /api/cases", s.apiCreateCase, caseRoles},
		{"GET /api/cases/{code}", s.apiGetCase, caseRoles},
		{"PUT /api/cases/{code}", s.apiPutCase, caseRoles},
		{"GET /api/cases/{code}/history", s.apiCaseHistory, caseRoles},
		{"POST /api/cases/{code}/break-glass", s.apiBreakGlass, caseRoles},
	}
	routes = append(routes, s.statsAPIRoutes()...)
	routes = append(routes, s.federationAPIRoutes()...)
	routes = append(routes, s.adminAPIRoutes()...)
	return routes
}

type homeData struct {
	Role node.Role
}

// home sends caseworkers and admins to the case list and shows the others
// who they are signed in as.
func (s *Server) home(w http.ResponseWriter, r *http.Request, p *principal) {
	if allowed(p.Role, caseRoles) {
		http.Redirect(w, r, "/cases", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "home", &pageData{Title: "Home", User: p, Data: homeData{Role: p.Role}})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, p *principal) {
	s.pageFail(w, r, p, http.StatusNotFound, "There is no such page.")
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request, p *principal) {
	s.apiFail(w, http.StatusNotFound, node.NotFound, "there is no such endpoint, or it does not take this method")
}
