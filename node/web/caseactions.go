package web

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/ctfed/ctfed/node"
)

// The actions of the case page beside its forms: closing and reopening a
// case (caseworkers and admins), and erasing its identity (admins).

const statusClosed = "closed"

// reopenStatus is the status a reopened case gets: assisted when it has
// assistance recorded, else eligible.
func reopenStatus(c *node.Case) string {
	if len(c.Assistance) > 0 {
		return "assisted"
	}
	return "eligible"
}

func (s *Server) closeCase(w http.ResponseWriter, r *http.Request, p *principal) {
	s.setStatus(w, r, p, statusClosed)
}

func (s *Server) reopenCase(w http.ResponseWriter, r *http.Request, p *principal) {
	s.setStatus(w, r, p, "")
}

// decideEligibility records the eligibility decision after screening: the
// case becomes eligible or not_eligible for assistance.
func (s *Server) decideEligibility(w http.ResponseWriter, r *http.Request, p *principal) {
	switch d := r.PostForm.Get("decision"); d {
	case "eligible", "not_eligible":
		s.setStatus(w, r, p, d)
	default:
		s.pageFail(w, r, p, http.StatusBadRequest, "Choose eligible or not eligible.")
	}
}

// awaitsEligibility reports whether a case is still waiting for its
// eligibility decision.
func awaitsEligibility(status string) bool {
	return status == "screened" || status == node.CodeUnknown || status == ""
}

// setStatus gives a case a new status: closed, reopened (to "" here:
// assisted or eligible, see reopenStatus), or the eligibility decision. It
// writes a new version with the status changed and every other field as
// stored, its identity included. A change to the status the case already
// has (closing a closed case, reopening an open one) changes nothing.
func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, p *principal, to string) {
	closing := to == statusClosed
	ctx := r.Context()
	stored, err := s.Cases.Case(ctx, r.PathValue("code"), true)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	back := "/cases/" + url.PathEscape(stored.Code)
	decision := to != "" && !closing
	switch {
	case decision && (!awaitsEligibility(stored.Status) || stored.Status == to):
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	case !decision && closing == (stored.Status == statusClosed):
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	c := stored.Clone()
	action := "reopened"
	switch {
	case decision:
		c.Status, action = to, "decided "+to
	case closing:
		c.Status, action = statusClosed, "closed"
	default:
		c.Status = reopenStatus(c)
	}
	c.Normalize()
	if err := c.Validate(s.Codebook); err != nil {
		s.pageFail(w, r, p, http.StatusConflict, "The case cannot be "+action+" as it is stored: open its forms and correct it first.")
		return
	}
	res, err := s.Cases.PutCases(ctx, []*node.Case{c}, node.Upsert, p.Name)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if res.Updated > 0 {
		if err := s.audit(ctx, p, ActionCaseUpdate, c.Code, fmt.Sprintf("version %d, %s, status %s", c.Version, action, c.Status)); err != nil {
			s.pageError(w, r, p, err)
			return
		}
	}
	http.Redirect(w, r, back+"?saved=1", http.StatusSeeOther)
}

type eraseData struct {
	Code string
}

// eraseIdentity destroys a case's identity fields in every stored
// version, after a confirmation step: a request without confirm=yes shows
// what it will do and asks again.
func (s *Server) eraseIdentity(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	c, err := s.Cases.Case(ctx, r.PathValue("code"), false)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		s.render(w, r, http.StatusOK, "erase", &pageData{Title: "Erase the identity of case " + c.Code, User: p, Data: eraseData{Code: c.Code}})
		return
	}
	if err := s.Cases.EraseIdentity(ctx, c.Code, p.Name); err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseEraseIdentity, c.Code, "every version"); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/cases/"+url.PathEscape(c.Code), http.StatusSeeOther)
}
