package web

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// Defaults of NewServer.
const (
	DefaultAddr       = "127.0.0.1:8080"
	DefaultSessionTTL = 8 * time.Hour
	DefaultPageSize   = 50
)

// Server is the node's web application and JSON API. Create it with
// NewServer, set the exported fields, then Open it; Close it when done.
// Handler serves the same routes without a listener, for tests.
type Server struct {
	// Addr is the TCP address to listen on. Any address other than a
	// loopback one needs CertFile and KeyFile.
	Addr string
	// CertFile and KeyFile are a PEM certificate (chain) and its key. When
	// both are set the listener serves TLS only, and cookies are Secure.
	CertFile, KeyFile string
	// Logger receives the server's log lines; never a record or an
	// identity field.
	Logger *zap.Logger
	// Codebook generates the forms and validates cases.
	Codebook *node.Codebook
	// Cases, Users and Audit are the node's stores.
	Cases node.CaseStore
	Users node.UserStore
	Audit node.AuditLog
	// Query answers the node's statistics; unused by the case pages.
	Query *node.QueryService
	// SessionTTL is how long a session lasts after sign-in.
	SessionTTL time.Duration
	// PageSize is how many cases a list page shows.
	PageSize int
	// LoginLimitUser and LoginLimitAddr are how many failed sign-ins one
	// user name, and one remote address, may have in LoginWindow before
	// further attempts are refused until the window ends.
	LoginLimitUser, LoginLimitAddr int
	LoginWindow                    time.Duration
	// Now reads the clock; time.Now by default.
	Now func() time.Time

	// Federation is the node's part in a federation, for the federation
	// pages and API; nil when the node is in none (the pages say so).
	Federation Federation
	// Approvals is the queue of incoming queries waiting for a person's
	// approval; nil when the node is in no federation.
	Approvals node.ApprovalStore
	// ResultTTL is how long the query console keeps a federated result
	// for its page and downloads (DefaultResultTTL when 0).
	ResultTTL  time.Duration
	fedResults resultStore

	// ImportKey is the node's HMAC key for deriving the case codes of CTDC
	// rows on import (casefile.ReadOptions.HMACKey); without it a CTDC
	// file is refused.
	ImportKey []byte
	// MaxImportBytes bounds an uploaded case file (DefaultMaxImportBytes
	// when 0).
	MaxImportBytes int64
	imports        importStore

	once     sync.Once
	handler  http.Handler
	limiter  *loginLimiter
	ln       net.Listener
	srv      *http.Server
	wg       sync.WaitGroup
	serveErr error
}

// NewServer returns a Server with every default filled in, serving the
// given stores.
func NewServer(cases node.CaseStore, users node.UserStore, audit node.AuditLog) *Server {
	return &Server{
		Addr:           DefaultAddr,
		Logger:         zap.NewNop(),
		Codebook:       node.DefaultCodebook(),
		Cases:          cases,
		Users:          users,
		Audit:          audit,
		SessionTTL:     DefaultSessionTTL,
		PageSize:       DefaultPageSize,
		LoginLimitUser: 5,
		LoginLimitAddr: 20,
		LoginWindow:    15 * time.Minute,
		Now:            time.Now,
	}
}

// TLS reports whether the server serves TLS (CertFile and KeyFile set).
func (s *Server) TLS() bool { return s.CertFile != "" && s.KeyFile != "" }

// Handler returns the server's routes with their middleware. It fills in
// any default left unset; the stores must be set before the first request.
func (s *Server) Handler() http.Handler {
	s.once.Do(s.build)
	return s.handler
}

func (s *Server) build() {
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	if s.Codebook == nil {
		s.Codebook = node.DefaultCodebook()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.SessionTTL <= 0 {
		s.SessionTTL = DefaultSessionTTL
	}
	if s.PageSize <= 0 {
		s.PageSize = DefaultPageSize
	}
	if s.LoginWindow <= 0 {
		s.LoginWindow = 15 * time.Minute
	}
	s.limiter = newLoginLimiter(max(s.LoginLimitUser, 1), max(s.LoginLimitAddr, 1), s.LoginWindow)
	s.handler = securityHeaders(http.NewCrossOriginProtection().Handler(s.routes()))
}

// Open validates the settings and starts listening on Addr. It refuses
// (Invalid) a non-loopback address without a certificate, and returns
// Unavailable when the address cannot be bound.
func (s *Server) Open(ctx context.Context) error {
	const op = "web.Open"
	if err := ctx.Err(); err != nil {
		return node.E(op, node.Unavailable, "%w", err)
	}
	switch {
	case s.srv != nil:
		return node.E(op, node.Invalid, "already open")
	case s.Cases == nil || s.Users == nil || s.Audit == nil:
		return node.E(op, node.Invalid, "the case, user and audit stores are required")
	case (s.CertFile == "") != (s.KeyFile == ""):
		return node.E(op, node.Invalid, "a TLS certificate needs both its certificate and key files")
	}
	loopback, err := isLoopback(s.Addr)
	if err != nil {
		return node.E(op, node.Invalid, "listen address %q: %w", s.Addr, err)
	}
	if !loopback && !s.TLS() {
		return node.E(op, node.Invalid, "the web listener on %s is not a loopback address and serves TLS only: name the certificate and key files, or listen on 127.0.0.1", s.Addr)
	}
	var tlsConf *tls.Config
	if s.TLS() {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return node.E(op, node.Invalid, "load the TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	h := s.Handler()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return node.E(op, node.Unavailable, "listen on %s: %w", s.Addr, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	errLog, _ := zap.NewStdLogAt(s.Logger.Named("http"), zap.WarnLevel)
	s.ln = ln
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("web: serve", zap.Error(err))
			s.serveErr = err
		}
	}()
	s.Logger.Info("web: listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", s.TLS()))
	return nil
}

// URL returns the base URL the server listens on ("https://127.0.0.1:8443"),
// or "" before Open.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	scheme := "http://"
	if s.TLS() {
		scheme = "https://"
	}
	return scheme + s.ln.Addr().String()
}

// Close stops accepting requests, waits (until ctx ends) for the running
// ones, and stops the server.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	s.wg.Wait()
	s.srv, s.ln = nil, nil
	if err != nil {
		return node.E("web.Close", node.Unavailable, "%w", err)
	}
	if s.serveErr != nil {
		return node.E("web.Close", node.Internal, "%w", s.serveErr)
	}
	return nil
}

// isLoopback reports whether addr's host is a loopback IP address or
// "localhost". An empty host (every interface) is not.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// The security headers of every response.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}
