package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ctfed/ctfed/node"
)

type formData struct {
	Title          string
	Action         string
	Section        string
	Create         bool
	Code           string
	Version        int
	Groups         []groupView
	Errors         []formError
	Notice         string
	IdentityHidden bool
	Countries      []node.Code
	OtherURL       string
	OtherLabel     string
}

func sectionTitle(section string) string {
	if section == formAssistance {
		return "Assistance"
	}
	return "Screening"
}

// renderForm shows a case form filled with v, with errs.
func (s *Server) renderForm(w http.ResponseWriter, r *http.Request, p *principal, status int, cf *caseForm, v url.Values, rd formReading, errs node.FieldErrors, notice string) {
	d := formData{Section: cf.section, Create: cf.create, Notice: notice, IdentityHidden: cf.section == formScreening && !cf.identity}
	d.Groups, d.Errors = cf.view(v, errs, rd.rows, v.Get("more"))
	if hasCountry(d.Groups) {
		for _, c := range s.Codebook.Countries.Codes {
			if c.Value != node.CodeUnknown {
				d.Countries = append(d.Countries, c)
			}
		}
	}
	if cf.create {
		d.Title, d.Action = "New case: screening", "/cases"
	} else {
		d.Code = v.Get("case_code")
		d.Version, _ = strconv.Atoi(v.Get("version"))
		d.Title = fmt.Sprintf("Case %s: %s", d.Code, sectionTitle(cf.section))
		d.Action = "/cases/" + url.PathEscape(d.Code)
		other := formAssistance
		if cf.section == formAssistance {
			other = formScreening
		}
		d.OtherURL = "/cases/" + url.PathEscape(d.Code) + "/edit?form=" + other
		d.OtherLabel = "Edit the " + sectionTitle(other) + " form instead"
	}
	s.render(w, r, status, "caseform", &pageData{Title: d.Title, User: p, Data: d})
}

// newCase shows the Screening form of a new case. Its creator is its
// caseworker unless an admin assigns it.
func (s *Server) newCase(w http.ResponseWriter, r *http.Request, p *principal) {
	cf := &caseForm{cb: s.Codebook, section: formScreening, identity: true, admin: p.Role == node.RoleAdmin, create: true}
	c := &node.Case{Caseworker: p.Name}
	s.renderForm(w, r, p, http.StatusOK, cf, cf.formValues(c), formReading{}, nil, "")
}

func (s *Server) createCase(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	admin := p.Role == node.RoleAdmin
	cf := &caseForm{cb: s.Codebook, section: formScreening, identity: true, admin: admin, create: true}
	v := r.PostForm
	if !admin {
		v.Set("caseworker", p.Name)
	}
	if v.Get("more") != "" {
		s.renderForm(w, r, p, http.StatusOK, cf, v, formReading{}, nil, "")
		return
	}
	c := &node.Case{}
	rd := cf.apply(c, v)
	if !admin {
		c.Caseworker = p.Name
	}
	c.Normalize()
	errs := append(rd.errs, node.FieldErrorsOf(c.Validate(s.Codebook))...)
	if len(errs) > 0 {
		s.renderForm(w, r, p, http.StatusBadRequest, cf, v, rd, errs, "")
		return
	}
	res, err := s.Cases.PutCases(ctx, []*node.Case{c}, node.CreateOnly, p.Name)
	switch node.KindOf(err) {
	case node.Unknown:
	case node.Conflict:
		errs = node.FieldErrors{{Field: "case_code", Msg: "is taken: a case with this code exists"}}
		s.renderForm(w, r, p, http.StatusConflict, cf, v, rd, errs, "")
		return
	case node.Invalid:
		s.renderForm(w, r, p, http.StatusBadRequest, cf, v, rd, node.FieldErrorsOf(err), "The case could not be saved.")
		return
	default:
		s.pageError(w, r, p, err)
		return
	}
	if res.Created > 0 { // else the same form was sent twice
		if err := s.audit(ctx, p, ActionCaseCreate, c.Code, fmt.Sprintf("version %d", c.Version)); err != nil {
			s.pageError(w, r, p, err)
			return
		}
	}
	http.Redirect(w, r, "/cases/"+url.PathEscape(c.Code)+"?saved=1", http.StatusSeeOther)
}

func formSection(v string) (string, bool) {
	switch v {
	case "", formScreening:
		return formScreening, true
	case formAssistance:
		return formAssistance, true
	}
	return "", false
}

func (s *Server) editCase(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	section, ok := formSection(r.URL.Query().Get("form"))
	if !ok {
		s.pageFail(w, r, p, http.StatusNotFound, "There is no such form.")
		return
	}
	c, identity, err := s.loadCase(ctx, p, r.PathValue("code"), false)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseView, c.Code, viewDetail(identity)+", "+section+" form"); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	cf := &caseForm{cb: s.Codebook, section: section, identity: identity, admin: p.Role == node.RoleAdmin}
	v := cf.formValues(c)
	v.Set("case_code", c.Code)
	v.Set("caseworker", c.Caseworker)
	v.Set("version", strconv.Itoa(c.Version))
	s.renderForm(w, r, p, http.StatusOK, cf, v, formReading{}, nil, "")
}

// updateCase saves one form of a stored case. Fields of the other form,
// and identity fields the user may not see, keep their stored values; the
// caseworker changes only when an admin changes it.
func (s *Server) updateCase(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	v := r.PostForm
	section, ok := formSection(v.Get("form"))
	if !ok {
		s.pageFail(w, r, p, http.StatusBadRequest, "There is no such form.")
		return
	}
	// The stored case, with its identity whoever edits it: a version
	// without it would erase it.
	stored, err := s.Cases.Case(ctx, r.PathValue("code"), true)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	identity := maySeeIdentity(p, stored)
	admin := p.Role == node.RoleAdmin
	cf := &caseForm{cb: s.Codebook, section: section, identity: identity, admin: admin}
	v.Set("case_code", stored.Code)
	if !admin {
		v.Set("caseworker", stored.Caseworker)
	}
	if v.Get("more") != "" {
		s.renderForm(w, r, p, http.StatusOK, cf, v, formReading{}, nil, "")
		return
	}
	if version, err := strconv.Atoi(v.Get("version")); err != nil || version != stored.Version {
		s.renderForm(w, r, p, http.StatusConflict, cf, v, formReading{}, nil,
			fmt.Sprintf("Someone saved this case (version %d) after you opened this form. Your changes are below but not saved: open the case again to see the current version.", stored.Version))
		return
	}
	c := stored.Clone()
	rd := cf.apply(c, v)
	c.Normalize()
	errs := append(rd.errs, node.FieldErrorsOf(c.Validate(s.Codebook))...)
	if len(errs) > 0 {
		s.renderForm(w, r, p, http.StatusBadRequest, cf, v, rd, errs, "")
		return
	}
	res, err := s.Cases.PutCases(ctx, []*node.Case{c}, node.Upsert, p.Name)
	switch node.KindOf(err) {
	case node.Unknown:
	case node.Invalid:
		s.renderForm(w, r, p, http.StatusBadRequest, cf, v, rd, node.FieldErrorsOf(err), "The case could not be saved.")
		return
	default:
		s.pageError(w, r, p, err)
		return
	}
	if res.Updated > 0 {
		if err := s.audit(ctx, p, ActionCaseUpdate, c.Code, fmt.Sprintf("version %d, %s form", c.Version, section)); err != nil {
			s.pageError(w, r, p, err)
			return
		}
	}
	http.Redirect(w, r, "/cases/"+url.PathEscape(c.Code)+"?saved=1", http.StatusSeeOther)
}
