package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.2:80", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"192.0.2.10:443", false},
		{"node.example:443", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := isLoopback(tc.addr)
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v, want %v", got, err, tc.want)
			}
		})
	}
	if _, err := isLoopback("no-port"); err == nil {
		t.Fatal("got no error for an address without a port")
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its
// key into dir.
func writeTestCert(tb testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ctfed test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServerOpen(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	certFile, keyFile, pool := writeTestCert(t, t.TempDir())

	for _, tc := range []struct {
		name       string
		addr       string
		cert, key  string
		nilStores  bool
		kind       node.Kind
		wantScheme string
	}{
		{"Loopback", "127.0.0.1:0", "", "", false, node.Unknown, "http://"},
		{"LoopbackTLS", "127.0.0.1:0", certFile, keyFile, false, node.Unknown, "https://"},
		{"AnyAddressTLS", "0.0.0.0:0", certFile, keyFile, false, node.Unknown, "https://"},
		{"AnyAddressWithoutTLS", "0.0.0.0:0", "", "", false, node.Invalid, ""},
		{"EmptyHostWithoutTLS", ":0", "", "", false, node.Invalid, ""},
		{"CertWithoutKey", "127.0.0.1:0", certFile, "", false, node.Invalid, ""},
		{"BadCert", "127.0.0.1:0", keyFile, keyFile, false, node.Invalid, ""},
		{"NoStores", "127.0.0.1:0", "", "", true, node.Invalid, ""},
		{"BadAddress", "nowhere", "", "", false, node.Invalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(e.db, e.db, e.db)
			if tc.nilStores {
				s.Cases = nil
			}
			s.Addr, s.CertFile, s.KeyFile = tc.addr, tc.cert, tc.key
			err := s.Open(ctx)
			if got := node.KindOf(err); got != tc.kind {
				t.Fatalf("got %v (%v), want %v", got, err, tc.kind)
			}
			if err != nil {
				return
			}
			defer func() {
				if err := s.Close(ctx); err != nil {
					t.Error(err)
				}
			}()
			if !strings.HasPrefix(s.URL(), tc.wantScheme) {
				t.Fatalf("got URL %q, want %s", s.URL(), tc.wantScheme)
			}
			base := s.URL()
			if host, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")); !net.ParseIP(host).IsLoopback() {
				base = "https://127.0.0.1:" + port // listening on every address
			}
			jar, _ := cookiejar.New(nil)
			hc := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			resp, err := hc.Get(base + "/login")
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("got %d, want the sign-in page with the security headers", resp.StatusCode)
			}
			if tc.cert != "" && resp.Header.Get("Strict-Transport-Security") == "" {
				t.Fatal("got no Strict-Transport-Security under TLS")
			}
			m := csrfRE.FindStringSubmatch(body)
			hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err = hc.PostForm(base+"/login", url.Values{"user": {userCW}, "password": {testPassword}, "csrf": {m[1]}})
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			var session *http.Cookie
			for _, c := range resp.Cookies() {
				if strings.HasSuffix(c.Name, sessionCookie) {
					session = c
				}
			}
			switch {
			case resp.StatusCode != http.StatusSeeOther || session == nil:
				t.Fatalf("got %d and cookie %v, want 303 and a session", resp.StatusCode, session)
			case tc.cert != "" && (session.Name != tlsSessionCookie || !session.Secure):
				t.Fatalf("got cookie %s Secure=%v, want %s, Secure, under TLS", session.Name, session.Secure, tlsSessionCookie)
			case tc.cert == "" && session.Secure:
				t.Fatal("got a Secure cookie without TLS")
			}
		})
	}
	t.Run("CloseUnopened", func(t *testing.T) {
		if err := NewServer(e.db, e.db, e.db).Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func readAll(tb testing.TB, resp *http.Response) string {
	tb.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func TestFavicon(t *testing.T) {
	s := NewServer(nil, nil, nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/favicon.ico", nil))
	if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Fatalf("got %d with %d bytes, want 204 and nothing", rec.Code, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/static/favicon.svg", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<svg") {
		t.Fatalf("got %d, want the icon", rec.Code)
	}
}
