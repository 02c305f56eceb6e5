package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/casefile"
)

// DefaultMaxImportBytes bounds an uploaded case file when
// Server.MaxImportBytes is 0.
const DefaultMaxImportBytes = 64 << 20

// Audit actions of import, export and erasing identity.
const (
	ActionCaseImport        = "case.import"
	ActionCaseExport        = "case.export"
	ActionCaseEraseIdentity = "case.erase_identity"
)

// An uploaded file waits for confirmation importTTL at most; at most
// maxPendingImports wait at once (the oldest go first), one per session
// or token.
const (
	importTTL         = 30 * time.Minute
	maxPendingImports = 8
	maxUploadParts    = 8
	maxUploadField    = 4 << 10
)

func (s *Server) maxImportBytes() int64 {
	if s.MaxImportBytes > 0 {
		return s.MaxImportBytes
	}
	return DefaultMaxImportBytes
}

// importStore keeps uploaded, checked case files until they are confirmed
// or expire. Nothing of a file is written to the case store before its
// confirmation.
type importStore struct {
	mu sync.Mutex
	m  map[string]*pendingImport
}

// pendingImport is a checked case file waiting for confirmation by its
// owner (the session or API token that uploaded it).
type pendingImport struct {
	id, owner string
	created   time.Time
	name      string
	consent   string
	res       *casefile.Result
}

// owner returns who a pending import belongs to: the session (by a hash
// of its secret ID) or the API token.
func importOwner(p *principal) string {
	if p.Token {
		return "token " + p.Name
	}
	h := sha256.Sum256([]byte(p.SID))
	return "session " + hex.EncodeToString(h[:16])
}

// put keeps pi, dropping expired imports, the owner's earlier one and,
// beyond maxPendingImports, the oldest, and returns its new ID.
func (st *importStore) put(now time.Time, pi *pendingImport) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m == nil {
		st.m = map[string]*pendingImport{}
	}
	for id, x := range st.m {
		if now.Sub(x.created) > importTTL || x.owner == pi.owner {
			delete(st.m, id)
		}
	}
	for len(st.m) >= maxPendingImports {
		oldest := ""
		for id, x := range st.m {
			if oldest == "" || x.created.Before(st.m[oldest].created) {
				oldest = id
			}
		}
		delete(st.m, oldest)
	}
	pi.id, pi.created = randomToken()[:22], now
	st.m[pi.id] = pi
	return pi.id
}

// get returns the owner's import with the ID if it has not expired; take
// also removes it, so that it is imported once.
func (st *importStore) get(now time.Time, owner, id string, take bool) (*pendingImport, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	pi, ok := st.m[id]
	if !ok || pi.owner != owner || now.Sub(pi.created) > importTTL {
		return nil, false
	}
	if take {
		delete(st.m, id)
	}
	return pi, true
}

// upload is a multipart form with one file, read into memory.
type upload struct {
	fields   url.Values
	name     string // the file's base name, fit for showing
	data     []byte
	hasFile  bool
	tooLarge bool
}

// errNotMultipart is readUpload's error for a body that is not
// multipart/form-data.
var errNotMultipart = errors.New("not multipart/form-data")

// readUpload reads r's multipart body: its small fields, and its "file"
// part, at most max bytes (tooLarge when longer; the rest is not kept).
// Nothing is written to disk. A body that is not multipart/form-data is
// read as a urlencoded form without a file, and errNotMultipart returned
// with it.
func readUpload(w http.ResponseWriter, r *http.Request, max int64) (*upload, error) {
	up := &upload{fields: url.Values{}}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		up.fields = r.PostForm
		return up, errNotMultipart
	}
	r.Body = http.MaxBytesReader(w, r.Body, max+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	seenFile := false
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if parts >= maxUploadParts {
			part.Close()
			return nil, fmt.Errorf("too many parts")
		}
		name := part.FormName()
		if name == "file" {
			if seenFile {
				part.Close()
				return nil, fmt.Errorf("more than one file")
			}
			var buf bytes.Buffer
			n, err := io.Copy(&buf, io.LimitReader(part, max+1))
			if err != nil {
				part.Close()
				return nil, err
			}
			seenFile, up.hasFile = true, n > 0 || part.FileName() != ""
			if n > max {
				up.tooLarge = true
				io.Copy(io.Discard, part)
				buf = bytes.Buffer{}
			}
			up.name, up.data = uploadName(part.FileName()), buf.Bytes()
		} else if name != "" {
			b, err := io.ReadAll(io.LimitReader(part, maxUploadField+1))
			if err != nil {
				part.Close()
				return nil, err
			}
			if len(b) > maxUploadField {
				part.Close()
				return nil, fmt.Errorf("field %s too long", name)
			}
			up.fields.Add(name, string(b))
		}
		part.Close()
	}
	return up, nil
}

// uploadName returns a file name fit for showing: its base name, at most
// 100 bytes of printable text, "upload" otherwise.
func uploadName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == "" || len(name) > 100 || !utf8.ValidString(name) ||
		strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "upload"
	}
	return name
}

// uploadPage wraps the import page's upload like page wraps other forms:
// it needs a session (else a redirect to sign in) and one of roles (else
// 403, before the body is read), reads the multipart body in memory, and
// needs the session's CSRF token among its fields (else 403).
func (s *Server) uploadPage(h func(http.ResponseWriter, *http.Request, *principal, *upload), roles ...node.Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, err := s.sessionPrincipal(r)
		if err != nil {
			s.pageError(w, r, nil, err)
			return
		}
		if p == nil {
			http.Redirect(w, r, "/login?next=%2F", http.StatusSeeOther)
			return
		}
		if !allowed(p.Role, roles) {
			s.pageFail(w, r, p, http.StatusForbidden, fmt.Sprintf("The %s role may not use this page.", p.Role))
			return
		}
		up, err := readUpload(w, r, s.maxImportBytes())
		if err != nil && !errors.Is(err, errNotMultipart) {
			s.pageFail(w, r, p, http.StatusBadRequest, "The form could not be read.")
			return
		}
		if !sameSecret(up.fields.Get(csrfField), p.CSRF) {
			s.pageFail(w, r, p, http.StatusForbidden, "The form has expired or did not come from this site. Go back, reload the page and try again.")
			return
		}
		h(w, r, p, up)
	})
}

// consentOptions are the default consent codes an import offers, for
// rows that carry none.
var consentOptions = []node.Code{
	{Value: node.CodeUnknown, Label: "Unknown: not counted in statistics unless the policy says so"},
	{Value: "yes", Label: "Yes: every such victim consented to statistical use"},
	{Value: "no", Label: "No"},
}

func validConsent(v string) bool {
	return v == node.CodeUnknown || v == "yes" || v == "no"
}

// readCases checks an uploaded file with casefile. A problem with the
// whole file is returned as a message for people; a store failure as an
// error.
func (s *Server) readCases(up *upload, consent string) (*casefile.Result, string) {
	res, err := casefile.Read(bytes.NewReader(up.data), up.name, casefile.ReadOptions{
		Codebook: s.Codebook, HMACKey: s.ImportKey, DefaultConsent: consent,
		Limits: casefile.Limits{MaxBytes: s.maxImportBytes()},
	})
	if err != nil {
		if node.KindOf(err) == node.Invalid {
			// casefile's messages name lines and columns, never an
			// identity field's value.
			return nil, sentence(err.Error())
		}
		return nil, sentence(node.KindOf(err).Message())
	}
	return res, ""
}

// checkUpload returns what is wrong with an upload's file and consent, or
// "" and the consent code.
func (s *Server) checkUpload(up *upload) (consent, problem string) {
	consent = up.fields.Get("consent")
	if consent == "" {
		consent = node.CodeUnknown
	}
	switch {
	case up.tooLarge:
		return "", fmt.Sprintf("The file is larger than %s: split it into smaller files.", byteSize(s.maxImportBytes()))
	case !up.hasFile:
		return "", "Choose a CSV or XLSX file to import."
	case len(up.data) == 0:
		return "", "The file is empty."
	case !validConsent(consent):
		return "", "Choose the consent of rows that do not say."
	}
	return consent, ""
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// The import pages.

type importFormData struct {
	Consent  string
	Options  []node.Code
	Problem  string
	MaxBytes string
	Formats  []casefile.Format
}

type rowErrorView struct {
	Line               int
	Column, Value, Msg string
}

type importData struct {
	ID, Name, Format      string
	Rows, Valid, Rejected int
	Errors                []rowErrorView
	MoreErrors            int
	Notes                 []string
	Consent               string
	Expires               string
}

type importDoneData struct {
	Name                        string
	Created, Updated, Unchanged int
	Rejected                    int
	Problem                     string
}

func (s *Server) renderImportForm(w http.ResponseWriter, r *http.Request, p *principal, status int, d importFormData) {
	d.Options, d.MaxBytes, d.Formats = consentOptions, byteSize(s.maxImportBytes()), casefile.Formats()
	if d.Consent == "" {
		d.Consent = node.CodeUnknown
	}
	s.render(w, r, status, "import", &pageData{Title: "Import cases", User: p, Data: adminPage{Sub: adminSub("/import"), Data: d}})
}

func (s *Server) importForm(w http.ResponseWriter, r *http.Request, p *principal) {
	var d importFormData
	if r.URL.Query().Get("expired") == "1" {
		d.Problem = "That file is no longer waiting for confirmation: it was imported or it expired. Upload it again."
	}
	s.renderImportForm(w, r, p, http.StatusOK, d)
}

// uploadImport checks an uploaded file and keeps it, unwritten, for the
// admin to confirm.
func (s *Server) uploadImport(w http.ResponseWriter, r *http.Request, p *principal, up *upload) {
	consent, problem := s.checkUpload(up)
	if problem == "" {
		var res *casefile.Result
		if res, problem = s.readCases(up, consent); problem == "" {
			id := s.imports.put(s.Now(), &pendingImport{owner: importOwner(p), name: up.name, consent: consent, res: res})
			http.Redirect(w, r, "/import/"+id, http.StatusSeeOther)
			return
		}
	}
	d := importFormData{Consent: up.fields.Get("consent"), Problem: problem}
	status := http.StatusBadRequest
	if up.tooLarge {
		status = http.StatusRequestEntityTooLarge
	}
	s.renderImportForm(w, r, p, status, d)
}

func importView(pi *pendingImport) importData {
	res := pi.res
	d := importData{ID: pi.id, Name: pi.name, Format: string(res.Format), Rows: res.RowCount, Valid: res.Valid,
		Rejected: len(res.Rejected), MoreErrors: res.MoreErrors, Notes: res.Notes, Consent: pi.consent,
		Expires: dateTime(pi.created.Add(importTTL))}
	for _, e := range res.Errors {
		d.Errors = append(d.Errors, rowErrorView{Line: e.Line, Column: e.Column, Value: e.Value, Msg: e.Msg})
	}
	return d
}

func (s *Server) viewImport(w http.ResponseWriter, r *http.Request, p *principal) {
	pi, ok := s.imports.get(s.Now(), importOwner(p), r.PathValue("id"), false)
	if !ok {
		s.pageFail(w, r, p, http.StatusNotFound, "This file is not waiting for confirmation: it was imported, it expired, or it was uploaded in another session.")
		return
	}
	s.render(w, r, http.StatusOK, "import_check", &pageData{Title: "Check the import", User: p, Data: adminPage{Sub: adminSub("/import"), Data: importView(pi)}})
}

// runImport writes a confirmed import's valid cases, as p, and audits it
// with its counts. It goes on when the request ends: a half-written import
// would need a second one to complete it.
func (s *Server) runImport(ctx context.Context, p *principal, pi *pendingImport, api bool) (node.PutResult, error) {
	ctx = context.WithoutCancel(ctx)
	put, err := casefile.Import(ctx, s.Cases, pi.res, casefile.ImportOptions{Mode: node.CreateOnly, By: p.Name})
	detail := fmt.Sprintf("%s shape, %d rows, %d valid, %d rejected; %d created, %d updated, %d unchanged",
		pi.res.Format, pi.res.RowCount, pi.res.Valid, len(pi.res.Rejected), put.Created, put.Updated, put.Unchanged)
	if err != nil {
		detail += "; stopped: " + node.KindOf(err).String()
	}
	if api {
		detail += ", api"
	}
	if aerr := s.audit(ctx, p, ActionCaseImport, "", detail); aerr != nil {
		return put, errors.Join(err, aerr)
	}
	return put, err
}

// importProblem says why an import stopped, for people.
func importProblem(err error, put node.PutResult) string {
	written := put.Created + put.Updated + put.Unchanged
	switch node.KindOf(err) {
	case node.Conflict:
		return fmt.Sprintf("The import stopped at a case whose code is already stored with different content. The %d cases before its batch were written; the rest were not. Change the case codes that are taken, or edit those cases, and import the rest again: cases already written are left unchanged.", written)
	case node.Invalid:
		return fmt.Sprintf("The import stopped at a batch the store refused. The %d cases before it were written; the rest were not.", written)
	}
	return fmt.Sprintf("The import stopped: %s. The %d cases before the failing batch were written; the rest were not.", node.KindOf(err).Message(), written)
}

func (s *Server) confirmImport(w http.ResponseWriter, r *http.Request, p *principal) {
	pi, ok := s.imports.get(s.Now(), importOwner(p), r.PathValue("id"), true)
	if !ok {
		s.pageFail(w, r, p, http.StatusNotFound, "This file is not waiting for confirmation: it was imported, it expired, or it was uploaded in another session.")
		return
	}
	if pi.res.Valid == 0 {
		s.pageFail(w, r, p, http.StatusBadRequest, "The file has no valid row: there is nothing to import.")
		return
	}
	put, err := s.runImport(r.Context(), p, pi, false)
	d := importDoneData{Name: pi.name, Created: put.Created, Updated: put.Updated, Unchanged: put.Unchanged, Rejected: len(pi.res.Rejected)}
	status := http.StatusOK
	if err != nil {
		switch node.KindOf(err) {
		case node.Conflict, node.Invalid:
		default:
			s.logError(r, node.KindOf(err), err)
		}
		d.Problem, status = importProblem(err, put), statusOf(node.KindOf(err))
	}
	s.render(w, r, status, "import_done", &pageData{Title: "Import", User: p, Data: adminPage{Sub: adminSub("/import"), Data: d}})
}

// The import API.

// apiRowError is one problem of one row of an uploaded file.
type apiRowError struct {
	Line    int    `json:"line"`
	Column  string `json:"column,omitempty"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
}

// apiImport is a checked file waiting for confirmation (ID set when it
// has valid rows to import).
type apiImport struct {
	ID         string        `json:"id,omitempty"`
	Expires    time.Time     `json:"expires,omitzero"`
	Name       string        `json:"name"`
	Format     string        `json:"format"`
	Rows       int           `json:"rows"`
	Valid      int           `json:"valid"`
	Rejected   int           `json:"rejected"`
	Errors     []apiRowError `json:"errors"`
	MoreErrors int           `json:"more_errors"`
	Notes      []string      `json:"notes,omitempty"`
}

// apiImportResult is what a confirmed import wrote.
type apiImportResult struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Rejected  int `json:"rejected"`
}

func (s *Server) apiUploadImport(w http.ResponseWriter, r *http.Request, p *principal) {
	up, err := readUpload(w, r, s.maxImportBytes())
	switch {
	case errors.Is(err, errNotMultipart):
		s.apiFail(w, http.StatusBadRequest, node.Invalid, "send the file as multipart/form-data, in a part named file")
		return
	case err != nil:
		s.apiFail(w, http.StatusBadRequest, node.Invalid, "the multipart body could not be read")
		return
	}
	consent, problem := s.checkUpload(up)
	if problem != "" {
		status := http.StatusBadRequest
		if up.tooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		s.apiFail(w, status, node.Invalid, strings.TrimSuffix(lowerInitial(problem), "."))
		return
	}
	res, problem := s.readCases(up, consent)
	if problem != "" {
		s.apiFail(w, http.StatusBadRequest, node.Invalid, strings.TrimSuffix(lowerInitial(problem), "."))
		return
	}
	out := apiImport{Name: up.name, Format: string(res.Format), Rows: res.RowCount, Valid: res.Valid,
		Rejected: len(res.Rejected), Errors: []apiRowError{}, MoreErrors: res.MoreErrors, Notes: res.Notes}
	for _, e := range res.Errors {
		out.Errors = append(out.Errors, apiRowError{Line: e.Line, Column: e.Column, Value: e.Value, Message: e.Msg})
	}
	status := http.StatusOK
	if res.Valid > 0 {
		now := s.Now()
		out.ID = s.imports.put(now, &pendingImport{owner: importOwner(p), name: up.name, consent: consent, res: res})
		out.Expires = now.Add(importTTL).UTC()
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

func (s *Server) apiConfirmImport(w http.ResponseWriter, r *http.Request, p *principal) {
	pi, ok := s.imports.get(s.Now(), importOwner(p), r.PathValue("id"), true)
	if !ok {
		s.apiFail(w, http.StatusNotFound, node.NotFound, "no import with this ID is waiting for confirmation by this caller")
		return
	}
	put, err := s.runImport(r.Context(), p, pi, true)
	if err != nil {
		k := node.KindOf(err)
		if k == node.Conflict || k == node.Invalid {
			s.apiFail(w, statusOf(k), k, strings.TrimSuffix(lowerInitial(importProblem(err, put)), "."))
			return
		}
		s.apiError(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, apiImportResult{Created: put.Created, Updated: put.Updated, Unchanged: put.Unchanged, Rejected: len(pi.res.Rejected)})
}

// Export.

type exportData struct {
	Format   string
	Identity bool
	Problem  string
	Count    int
}

// exportRequest reads an export's format and identity choice. Returns a
// problem for people, or "".
func exportRequest(q url.Values) (casefile.Format, bool, string) {
	var f casefile.Format
	switch q.Get("format") {
	case "ctfed":
		f = casefile.FormatCtfed
	case "ctdc":
		f = casefile.FormatCTDC
	default:
		return "", false, "Choose the format: ctfed or ctdc."
	}
	var identity bool
	switch q.Get("identity") {
	case "", "0":
	case "1":
		identity = true
	default:
		return "", false, "identity is 0 or 1."
	}
	if identity && f != casefile.FormatCtfed {
		return "", false, "The CTDC shape has no identity columns: choose the ctfed format to export identity fields."
	}
	return f, identity, ""
}

// exportCases shows the export form, or, given a format, sends every case
// as a CSV file.
func (s *Server) exportCases(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	if len(q) == 0 {
		n, err := s.Cases.CaseCount(r.Context())
		if err != nil {
			s.pageError(w, r, p, err)
			return
		}
		s.render(w, r, http.StatusOK, "export", &pageData{Title: "Export cases", User: p, Data: adminPage{Sub: adminSub("/export"), Data: exportData{Format: "ctfed", Count: n}}})
		return
	}
	f, identity, problem := exportRequest(q)
	if problem != "" {
		d := exportData{Format: q.Get("format"), Identity: q.Get("identity") == "1", Problem: problem}
		s.render(w, r, http.StatusBadRequest, "export", &pageData{Title: "Export cases", User: p, Data: adminPage{Sub: adminSub("/export"), Data: d}})
		return
	}
	if err := s.writeExport(w, r, p, f, identity, false); err != nil {
		s.pageError(w, r, p, err)
	}
}

func (s *Server) apiExport(w http.ResponseWriter, r *http.Request, p *principal) {
	f, identity, problem := exportRequest(r.URL.Query())
	if problem != "" {
		s.apiFail(w, http.StatusBadRequest, node.Invalid, strings.TrimSuffix(lowerInitial(problem), "."))
		return
	}
	if err := s.writeExport(w, r, p, f, identity, true); err != nil {
		s.apiError(w, r, err, "")
	}
}

// writeExport audits an export and sends every case as CSV. An error
// returned comes before anything was sent; one while sending is logged
// and the response is cut short, so that a partial file is not taken for
// a whole one.
func (s *Server) writeExport(w http.ResponseWriter, r *http.Request, p *principal, f casefile.Format, identity, api bool) error {
	ctx := r.Context()
	n, err := s.Cases.CaseCount(ctx)
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("%s shape, %s, %d cases", f, viewDetail(identity), n)
	if api {
		detail += ", api"
	}
	if err := s.audit(ctx, p, ActionCaseExport, "", detail); err != nil {
		return err
	}
	name := fmt.Sprintf("%s-cases-%s.csv", f, s.Now().UTC().Format("20060102"))
	if identity {
		name = fmt.Sprintf("%s-cases-with-identity-%s.csv", f, s.Now().UTC().Format("20060102"))
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	wr, err := casefile.NewWriter(w, casefile.WriteOptions{Format: f, IncludeIdentity: identity, Codebook: s.Codebook})
	if err != nil {
		h.Del("Content-Disposition")
		h.Del("Content-Type")
		return err
	}
	err = s.Cases.ForEachCase(ctx, identity, wr.Write)
	if err == nil {
		err = wr.Close()
	}
	if err != nil {
		s.Logger.Error("web: export cut short", zap.String("route", r.Pattern), zap.Error(err))
		panic(http.ErrAbortHandler)
	}
	return nil
}
