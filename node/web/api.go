package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ctfed/ctfed/node"
)

// maxAPIBody bounds a JSON request body.
const maxAPIBody = 1 << 20

// Bounds of the list endpoint's limit.
const (
	defaultAPILimit = 50
	maxAPILimit     = 500
)

// apiCase is the body of a response holding one case.
type apiCase struct {
	Case *node.Case `json:"case"`
	// IdentityShown says whether the case's identity fields are included
	// (the caller may see them) or left out.
	IdentityShown bool `json:"identity_shown"`
	// Result is what a write did: created, updated or unchanged.
	Result string `json:"result,omitempty"`
}

type apiCaseList struct {
	Cases  []*node.Case `json:"cases"`
	Total  int          `json:"total"`
	Offset int          `json:"offset"`
	Limit  int          `json:"limit"`
}

type apiHistory struct {
	Versions      []*node.Case `json:"versions"`
	IdentityShown bool         `json:"identity_shown"`
}

type apiReason struct {
	Reason string `json:"reason"`
}

// decodeJSON reads r's body, at most maxAPIBody bytes, into v, refusing
// unknown fields and trailing data. The error is Invalid with a message fit
// for the caller.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &mb):
			return node.E("web.decode", node.Invalid, "the body is larger than %d bytes", maxAPIBody)
		case errors.Is(err, io.EOF):
			return node.E("web.decode", node.Invalid, "the body is empty")
		}
		return node.E("web.decode", node.Invalid, "the body is not a valid JSON object of this endpoint: %v", jsonProblem(err))
	}
	if dec.More() {
		return node.E("web.decode", node.Invalid, "the body holds more than one JSON value")
	}
	return nil
}

// jsonProblem describes a decoding error without repeating the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	}
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") && len(s) < 100 {
		return strings.TrimPrefix(s, "json: ") // names a field, not a value
	}
	return "malformed"
}

func (s *Server) apiInvalid(w http.ResponseWriter, r *http.Request, err error) {
	var ne *node.Error
	msg := ""
	if errors.As(err, &ne) && ne.Err != nil && node.FieldErrorsOf(err) == nil {
		msg = ne.Err.Error()
	}
	if node.FieldErrorsOf(err) != nil {
		msg = "the case is invalid: see fields"
	}
	s.apiError(w, r, err, msg)
}

func (s *Server) apiListCases(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	q := r.URL.Query()
	var f node.CaseFilter
	f.CodePrefix = q.Get("code")
	if v := q.Get("status"); v != "" {
		if !node.ListStatus.Has(v) {
			s.apiFail(w, http.StatusBadRequest, node.Invalid, "status is not a code of status")
			return
		}
		f.Status = v
	}
	if v := q.Get("year"); v != "" {
		y, err := strconv.Atoi(v)
		if err != nil || y < s.Codebook.FirstYear || y > s.Codebook.LastYear {
			s.apiFail(w, http.StatusBadRequest, node.Invalid, fmt.Sprintf("year must be between %d and %d", s.Codebook.FirstYear, s.Codebook.LastYear))
			return
		}
		f.Year = y
	}
	if v := q.Get("citizenship"); v != "" {
		if !s.Codebook.Countries.Has(v) {
			s.apiFail(w, http.StatusBadRequest, node.Invalid, "citizenship is not an ISO 3166-1 alpha-3 code")
			return
		}
		f.Citizenship = v
	}
	if v := q.Get("exploitation_type"); v != "" {
		if !node.ListExploitation.Has(v) {
			s.apiFail(w, http.StatusBadRequest, node.Invalid, "exploitation_type is not a code of exploitation_type")
			return
		}
		f.ExploitationType = v
	}
	f.Limit = defaultAPILimit
	for name, dst := range map[string]*int{"offset": &f.Offset, "limit": &f.Limit} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || name == "limit" && (n < 1 || n > maxAPILimit) {
			s.apiFail(w, http.StatusBadRequest, node.Invalid, fmt.Sprintf("%s must be a whole number (limit 1 to %d)", name, maxAPILimit))
			return
		}
		*dst = n
	}
	cases, total, err := s.Cases.ListCases(ctx, f)
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	if err := s.audit(ctx, p, ActionCaseList, "", fmt.Sprintf("api, offset %d, %d of %d cases", f.Offset, len(cases), total)); err != nil {
		s.apiError(w, r, err, "")
		return
	}
	if cases == nil {
		cases = []*node.Case{}
	}
	writeJSON(w, http.StatusOK, apiCaseList{Cases: cases, Total: total, Offset: f.Offset, Limit: f.Limit})
}

// clearStoreFields zeroes the fields the store sets, which a body may not.
func clearStoreFields(c *node.Case) {
	c.Version, c.UpdatedBy, c.IdentityErased, c.UpdatedAt = 0, "", false, time.Time{}
}

func (s *Server) apiCreateCase(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	var c node.Case
	if err := decodeJSON(w, r, &c); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	clearStoreFields(&c)
	if p.Role != node.RoleAdmin {
		self := p.Name
		if p.Token {
			self = ""
		}
		if c.Caseworker != "" && c.Caseworker != self {
			s.apiFail(w, http.StatusForbidden, node.Permission, "only an admin assigns a case to another caseworker")
			return
		}
		c.Caseworker = self
	}
	c.Normalize()
	if err := c.Validate(s.Codebook); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	res, err := s.Cases.PutCases(ctx, []*node.Case{&c}, node.CreateOnly, p.Name)
	switch node.KindOf(err) {
	case node.Unknown:
	case node.Conflict:
		s.apiError(w, r, err, "a case with this code exists")
		return
	case node.Invalid:
		s.apiInvalid(w, r, err)
		return
	default:
		s.apiError(w, r, err, "")
		return
	}
	if res.Created == 0 {
		// The same case was stored already: a repeated request.
		s.respondCase(w, r, p, c.Code, http.StatusOK, "unchanged", false)
		return
	}
	if err := s.audit(ctx, p, ActionCaseCreate, c.Code, fmt.Sprintf("version %d, api", c.Version)); err != nil {
		s.apiError(w, r, err, "")
		return
	}
	s.respondCase(w, r, p, c.Code, http.StatusCreated, "created", false)
}

// respondCase answers with the stored case, with its identity fields when
// p may see them (or force), after auditing the view.
func (s *Server) respondCase(w http.ResponseWriter, r *http.Request, p *principal, code string, status int, result string, force bool) {
	ctx := r.Context()
	c, identity, err := s.loadCase(ctx, p, code, force)
	if err != nil {
		s.apiCaseError(w, r, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseView, c.Code, viewDetail(identity)+", api"); err != nil {
		s.apiError(w, r, err, "")
		return
	}
	writeJSON(w, status, apiCase{Case: c, IdentityShown: identity, Result: result})
}

func (s *Server) apiCaseError(w http.ResponseWriter, r *http.Request, err error) {
	msg := ""
	if node.KindOf(err) == node.NotFound {
		msg = "there is no case with this code"
	}
	s.apiError(w, r, err, msg)
}

func (s *Server) apiGetCase(w http.ResponseWriter, r *http.Request, p *principal) {
	s.respondCase(w, r, p, r.PathValue("code"), http.StatusOK, "", false)
}

// apiPutCase replaces a stored case. Identity fields are replaced only
// when the body has some (and the caller may see them); a body without
// any keeps the stored ones. A non-admin may not change the caseworker. A
// version other than 0 must be the stored one.
func (s *Server) apiPutCase(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	code := r.PathValue("code")
	var c node.Case
	if err := decodeJSON(w, r, &c); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	if c.Code != "" && c.Code != code {
		s.apiFail(w, http.StatusBadRequest, node.Invalid, "case_code differs from the code in the path")
		return
	}
	stored, err := s.Cases.Case(ctx, code, true)
	if err != nil {
		s.apiCaseError(w, r, err)
		return
	}
	switch {
	case c.Version != 0 && c.Version != stored.Version:
		s.apiFail(w, http.StatusConflict, node.Conflict, fmt.Sprintf("the case is at version %d, not %d", stored.Version, c.Version))
		return
	case p.Role != node.RoleAdmin && c.Caseworker != "" && c.Caseworker != stored.Caseworker:
		s.apiFail(w, http.StatusForbidden, node.Permission, "only an admin assigns a case to another caseworker")
		return
	case !c.Identity.IsZero() && !maySeeIdentity(p, stored):
		s.apiFail(w, http.StatusForbidden, node.Permission, "only the case's caseworker and admins may change its identity fields")
		return
	}
	c.Code = stored.Code
	clearStoreFields(&c)
	if p.Role != node.RoleAdmin || c.Caseworker == "" {
		c.Caseworker = stored.Caseworker
	}
	if c.Identity.IsZero() {
		c.Identity = stored.Identity
	}
	c.Normalize()
	if err := c.Validate(s.Codebook); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	res, err := s.Cases.PutCases(ctx, []*node.Case{&c}, node.Upsert, p.Name)
	if err != nil {
		if node.KindOf(err) == node.Invalid {
			s.apiInvalid(w, r, err)
			return
		}
		s.apiError(w, r, err, "")
		return
	}
	result := "unchanged"
	if res.Updated > 0 {
		result = "updated"
		if err := s.audit(ctx, p, ActionCaseUpdate, c.Code, fmt.Sprintf("version %d, api", c.Version)); err != nil {
			s.apiError(w, r, err, "")
			return
		}
	}
	s.respondCase(w, r, p, c.Code, http.StatusOK, result, false)
}

func (s *Server) apiBreakGlass(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	code := r.PathValue("code")
	var body apiReason
	if err := decodeJSON(w, r, &body); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	c, err := s.Cases.Case(ctx, code, false)
	if err != nil {
		s.apiCaseError(w, r, err)
		return
	}
	if maySeeIdentity(p, c) {
		s.respondCase(w, r, p, code, http.StatusOK, "", false)
		return
	}
	if p.Token {
		s.apiFail(w, http.StatusForbidden, node.Permission, "an API token may not break the glass")
		return
	}
	if msg := checkReason(body.Reason); msg != "" {
		s.apiFail(w, http.StatusBadRequest, node.Invalid, msg)
		return
	}
	if err := s.audit(ctx, p, ActionBreakGlass, c.Code, body.Reason); err != nil {
		s.apiError(w, r, err, "")
		return
	}
	s.respondCase(w, r, p, code, http.StatusOK, "", true)
}

func (s *Server) apiCaseHistory(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	code := r.PathValue("code")
	cur, err := s.Cases.Case(ctx, code, false)
	if err != nil {
		s.apiCaseError(w, r, err)
		return
	}
	identity := maySeeIdentity(p, cur)
	versions, err := s.Cases.CaseHistory(ctx, code, identity)
	if err != nil {
		s.apiCaseError(w, r, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseHistory, cur.Code, viewDetail(identity)+", api"); err != nil {
		s.apiError(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, apiHistory{Versions: versions, IdentityShown: identity})
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request, p *principal) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPI)))
	w.Write(openAPI)
}
