package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// principal is who makes a request: a signed-in person (with their
// session) or an API token.
type principal struct {
	Name  string // user name, or node.TokenActor of the token's name
	Role  node.Role
	Token bool   // an API token, not a person
	SID   string // the session's secret ID (people only)
	CSRF  string // the session's CSRF token (people only)
}

// handler is a route's handler, called with the authenticated principal.
type handler func(w http.ResponseWriter, r *http.Request, p *principal)

// Cookie names. Under TLS the session cookie takes the __Host- prefix,
// which browsers accept only with Secure, Path=/ and no Domain.
const (
	sessionCookie    = "ctfed_session"
	tlsSessionCookie = "__Host-ctfed_session"
	loginCookie      = "ctfed_login"
	csrfField        = "csrf"
	csrfHeader       = "X-CSRF-Token"
	maxFormBytes     = 2 << 20
)

// Audit actions written by the web application.
const (
	ActionLogin       = "login"
	ActionLoginFailed = "login.failed"
	ActionLogout      = "logout"
)

func (s *Server) sessionCookieName() string {
	if s.TLS() {
		return tlsSessionCookie
	}
	return sessionCookie
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// isLoginKey reports whether s has the shape of a randomToken.
func isLoginKey(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

func sameSecret(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sessionPrincipal returns the person whose session cookie r carries, nil
// when there is no valid session (none, expired, ended, or its user is
// disabled or gone), or an error when the store fails.
func (s *Server) sessionPrincipal(r *http.Request) (*principal, error) {
	c, err := r.Cookie(s.sessionCookieName())
	if err != nil || c.Value == "" {
		return nil, nil
	}
	sess, err := s.Users.Session(r.Context(), c.Value)
	switch node.KindOf(err) {
	case node.Unknown:
	case node.NotFound:
		return nil, nil
	default:
		return nil, err
	}
	u, err := s.Users.User(r.Context(), sess.User)
	switch node.KindOf(err) {
	case node.Unknown:
	case node.NotFound:
		return nil, nil
	default:
		return nil, err
	}
	if u.Disabled {
		return nil, nil
	}
	return &principal{Name: u.Name, Role: u.Role, SID: c.Value, CSRF: sess.CSRF}, nil
}

// tokenPrincipal returns the API token r's Authorization header carries:
// nil without a Bearer header, Permission for a bad token.
func (s *Server) tokenPrincipal(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, node.E("web.token", node.Permission, "the Authorization header must be \"Bearer <token>\"")
	}
	t, err := s.Users.TokenBySecret(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return nil, err
	}
	return &principal{Name: node.TokenActor(t.Name), Role: t.Role, Token: true}, nil
}

func allowed(role node.Role, roles []node.Role) bool { return slices.Contains(roles, role) }

// page wraps an HTML route: it needs a session (else a redirect to the
// sign-in page), one of roles (else 403), and on POST the session's CSRF
// token in the form (else 403).
func (s *Server) page(h handler, roles ...node.Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, err := s.sessionPrincipal(r)
		if err != nil {
			s.pageError(w, r, nil, err)
			return
		}
		if p == nil {
			next := "/"
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				s.pageFail(w, r, p, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !sameSecret(r.PostForm.Get(csrfField), p.CSRF) {
				s.pageFail(w, r, p, http.StatusForbidden, "The form has expired or did not come from this site. Go back, reload the page and try again.")
				return
			}
		}
		if !allowed(p.Role, roles) {
			s.pageFail(w, r, p, http.StatusForbidden, fmt.Sprintf("The %s role may not use this page.", p.Role))
			return
		}
		h(w, r, p)
	})
}

// api wraps a JSON route: it needs an API token or a session (else 401),
// one of roles (else 403), and, for a session's request that changes
// something, the session's CSRF token in the X-CSRF-Token header (else 403).
func (s *Server) api(h handler, roles ...node.Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, err := s.tokenPrincipal(r)
		switch {
		case node.KindOf(err) == node.Permission:
			s.apiFail(w, http.StatusUnauthorized, node.Permission, "the API token is not valid")
			return
		case err != nil:
			s.apiError(w, r, err, "")
			return
		case p == nil:
			if p, err = s.sessionPrincipal(r); err != nil {
				s.apiError(w, r, err, "")
				return
			}
		}
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ctfed"`)
			s.apiFail(w, http.StatusUnauthorized, node.Permission, "sign in or send an API token")
			return
		}
		if !p.Token && r.Method != http.MethodGet && r.Method != http.MethodHead && !sameSecret(r.Header.Get(csrfHeader), p.CSRF) {
			s.apiFail(w, http.StatusForbidden, node.Permission, "a request from a session needs the session's CSRF token in the X-CSRF-Token header")
			return
		}
		if !allowed(p.Role, roles) {
			s.apiFail(w, http.StatusForbidden, node.Permission, fmt.Sprintf("the %s role may not do this", p.Role))
			return
		}
		h(w, r, p)
	})
}

// localPath returns next when it is a path on this site, else "/".
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type loginData struct {
	Next     string
	User     string
	Error    string
	LoginKey string
}

// getLogin shows the sign-in form, with a fresh sign-in CSRF token in a
// cookie and in the form (double submit: there is no session yet).
func (s *Server) getLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	next := localPath(r.URL.Query().Get("next"))
	if p, err := s.sessionPrincipal(r); err == nil && p != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, loginData{Next: next})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	// One sign-in key per browser: a second sign-in page (another tab, or
	// a request the browser makes by itself, such as /favicon.ico, sent to
	// the sign-in page) keeps the key that the form already shown carries.
	if c, err := r.Cookie(loginCookie); err == nil && isLoginKey(c.Value) {
		d.LoginKey = c.Value
	} else {
		d.LoginKey = randomToken()
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: d.LoginKey, Path: "/login", MaxAge: 3600,
		HttpOnly: true, Secure: s.TLS(), SameSite: http.SameSiteStrictMode})
	s.render(w, r, status, "login", &pageData{Title: "Sign in", Data: d})
}

func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, http.StatusBadRequest, loginData{Next: "/", Error: "The form could not be read."})
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("user"))
	password := r.PostForm.Get("password")
	d := loginData{Next: localPath(r.PostForm.Get("next")), User: name}
	if node.CheckUserName(name) != nil {
		d.User = ""
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameSecret(c.Value, r.PostForm.Get(csrfField)) {
		d.Error = "The sign-in form has expired. Please try again."
		s.renderLogin(w, r, http.StatusForbidden, d)
		return
	}
	now := s.Now()
	ukey, akey := userKey(name), addrKey(remoteHost(r))
	if blocked, until := s.limiter.blocked(now, ukey, akey); blocked {
		mins := int(until.Sub(now).Minutes()) + 1
		w.Header().Set("Retry-After", fmt.Sprint(int(until.Sub(now).Seconds())+1))
		s.Logger.Warn("web: sign-in refused: too many failures", zap.String("remote", remoteHost(r)))
		d.Error = fmt.Sprintf("Too many failed sign-ins. Try again in %d minutes.", mins)
		s.renderLogin(w, r, http.StatusTooManyRequests, d)
		return
	}
	u, err := s.Users.Authenticate(ctx, name, password)
	if err != nil {
		if node.KindOf(err) != node.Permission {
			s.pageError(w, r, nil, err)
			return
		}
		s.limiter.fail(now, ukey, akey)
		subject := ""
		if node.CheckUserName(name) == nil {
			subject = name
		}
		if err := s.Audit.Append(ctx, &node.AuditEntry{Actor: "anonymous", Action: ActionLoginFailed, Subject: subject, Detail: "from " + remoteHost(r)}); err != nil {
			s.Logger.Error("web: audit a failed sign-in", zap.Error(err))
		}
		d.Error = "Wrong user name or password."
		s.renderLogin(w, r, http.StatusUnauthorized, d)
		return
	}
	s.limiter.forget(ukey)
	sid, _, err := s.Users.CreateSession(ctx, u.Name, s.SessionTTL)
	if err != nil {
		s.pageError(w, r, nil, err)
		return
	}
	if err := s.Audit.Append(ctx, &node.AuditEntry{Actor: u.Name, Action: ActionLogin, Detail: "from " + remoteHost(r)}); err != nil {
		s.Users.DeleteSession(ctx, sid)
		s.pageError(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: sid, Path: "/", MaxAge: int(s.SessionTTL / time.Second),
		HttpOnly: true, Secure: s.TLS(), SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true, Secure: s.TLS(), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Server) postLogout(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	if err := s.Users.DeleteSession(ctx, p.SID); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	if err := s.Audit.Append(ctx, &node.AuditEntry{Actor: p.Name, Action: ActionLogout}); err != nil {
		s.Logger.Error("web: audit a sign-out", zap.Error(err))
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.TLS(), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
