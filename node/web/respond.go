package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

//go:embed openapi.yaml
var openAPI []byte

// assetVersion is a short hash of every static file, appended to asset URLs
// so that browsers may cache them for a year and still see a new release.
var assetVersion = func() string {
	h := sha256.New()
	fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

var funcs = template.FuncMap{
	"asset":      func(name string) string { return "/static/" + name + "?v=" + assetVersion },
	"pathEscape": url.PathEscape,
	"caseURL":    func(code string) string { return "/cases/" + url.PathEscape(code) },
	"add":        func(a, b int) int { return a + b },
}

// pages holds one template set per page: the layout, the shared partials
// and the page's own file.
var pages = func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/_*.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return out
}()

// pageData is what every page's template gets.
type pageData struct {
	Title string
	User  *principal
	CSRF  string
	Nav   []navLink
	Data  any
}

type navLink struct {
	Href, Label string
	Current     bool
}

// nav returns the links of the pages the role may use.
func nav(p *principal, current string) []navLink {
	if p == nil {
		return nil
	}
	var out []navLink
	if p.Role == node.RoleCaseworker || p.Role == node.RoleAdmin {
		out = append(out, navLink{Href: "/cases", Label: "Cases"}, navLink{Href: "/new-case", Label: "New case"})
	}
	if allowed(p.Role, statsRoles) {
		out = append(out, navLink{Href: "/stats", Label: "Statistics"})
	}
	out = append(out, federationNav(p)...)
	out = append(out, adminNav(p)...)
	for i := range out {
		out[i].Current = out[i].Href == current
	}
	return out
}

// render executes page name into a buffer and writes it with status, so a
// template error never sends half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	t, ok := pages[name]
	if !ok {
		panic("web: no page template " + name)
	}
	if d.User != nil {
		d.CSRF = d.User.CSRF
		d.Nav = nav(d.User, r.URL.Path)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		s.Logger.Error("web: render", zap.String("page", name), zap.Error(err))
		http.Error(w, node.Internal.Message(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

// pageFail renders the error page with status and a message written for
// people.
func (s *Server) pageFail(w http.ResponseWriter, r *http.Request, p *principal, status int, msg string) {
	s.render(w, r, status, "error", &pageData{Title: http.StatusText(status), User: p,
		Data: errorData{Status: status, Heading: http.StatusText(status), Message: msg}})
}

// pageError renders err as an error page: its kind's status and fixed
// message. Internal and unexpected errors are logged, never shown.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, p *principal, err error) {
	k := node.KindOf(err)
	s.logError(r, k, err)
	s.pageFail(w, r, p, statusOf(k), sentence(k.Message()))
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func (s *Server) logError(r *http.Request, k node.Kind, err error) {
	switch k {
	case node.Internal, node.Unknown:
		s.Logger.Error("web: request failed", zap.String("method", r.Method), zap.String("route", r.Pattern), zap.Error(err))
	case node.Unavailable:
		s.Logger.Warn("web: request failed", zap.String("method", r.Method), zap.String("route", r.Pattern), zap.Error(err))
	}
}

// statusOf returns the HTTP status of an error kind.
func statusOf(k node.Kind) int {
	switch k {
	case node.Invalid:
		return http.StatusBadRequest
	case node.NotFound:
		return http.StatusNotFound
	case node.Permission:
		return http.StatusForbidden
	case node.Conflict:
		return http.StatusConflict
	case node.BudgetExhausted:
		return http.StatusTooManyRequests
	case node.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// apiErrorBody is the body of every API error.
type apiErrorBody struct {
	Kind    string          `json:"kind"`
	Message string          `json:"message"`
	Fields  []apiFieldError `json:"fields,omitempty"`
}

// apiFieldError is one problem with one field of a case sent to the API.
type apiFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (s *Server) apiFail(w http.ResponseWriter, status int, k node.Kind, msg string) {
	writeJSON(w, status, apiErrorBody{Kind: k.String(), Message: msg})
}

// apiError answers err with its kind's status. The message is msg when
// given and the kind is one a caller may be told about; otherwise the
// kind's fixed message. Invalid errors with field errors list them.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error, msg string) {
	k := node.KindOf(err)
	if k == node.Unknown {
		k = node.Internal
	}
	s.logError(r, k, err)
	body := apiErrorBody{Kind: k.String(), Message: k.Message()}
	if k != node.Internal && k != node.Unavailable {
		if msg != "" {
			body.Message = msg
		}
		for _, fe := range node.FieldErrorsOf(err) {
			body.Fields = append(body.Fields, apiFieldError{Field: fe.Field, Message: fe.Msg})
		}
	}
	writeJSON(w, statusOf(k), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, node.Internal.Message(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

// serveStatic serves the embedded stylesheet; a request naming the current
// asset version may be cached for a year.
func serveStatic() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == assetVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}
