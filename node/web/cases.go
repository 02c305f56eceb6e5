package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ctfed/ctfed/node"
)

// caseRoles may use the case pages and the case API.
var caseRoles = []node.Role{node.RoleCaseworker, node.RoleAdmin}

// Audit actions of the case pages and API.
const (
	ActionCaseList    = "case.list"
	ActionCaseView    = "case.view"
	ActionCaseHistory = "case.history"
	ActionCaseCreate  = "case.create"
	ActionCaseUpdate  = "case.update"
	ActionBreakGlass  = "case.break_glass"
)

// Limits on a break-the-glass reason, in characters.
const (
	minReasonLen = 10
	maxReasonLen = 500
)

// maySeeIdentity reports whether p may see c's identity fields without
// breaking the glass: admins, and the person assigned to the case. An API
// token never counts as the assigned caseworker.
func maySeeIdentity(p *principal, c *node.Case) bool {
	switch p.Role {
	case node.RoleAdmin:
		return true
	case node.RoleCaseworker:
		return !p.Token && c.Caseworker != "" && c.Caseworker == p.Name
	}
	return false
}

// audit appends an entry for p's action on subject.
func (s *Server) audit(ctx context.Context, p *principal, action, subject, detail string) error {
	return s.Audit.Append(ctx, &node.AuditEntry{Actor: p.Name, Action: action, Subject: subject, Detail: detail})
}

func viewDetail(identity bool) string {
	if identity {
		return "with identity"
	}
	return "without identity"
}

// checkReason returns the problem with a break-the-glass reason, or "".
func checkReason(reason string) string {
	n := utf8.RuneCountInString(reason)
	switch {
	case !utf8.ValidString(reason):
		return "The reason must be valid text."
	case n < minReasonLen:
		return fmt.Sprintf("State the reason in at least %d characters.", minReasonLen)
	case n > maxReasonLen:
		return fmt.Sprintf("State the reason in at most %d characters.", maxReasonLen)
	case strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' || r == 0x7f }):
		return "The reason contains control characters."
	}
	return ""
}

// loadCase reads the case with the given code for p: with its identity
// fields when p may see them (or withIdentity forces it), and reports
// whether they were read.
func (s *Server) loadCase(ctx context.Context, p *principal, code string, force bool) (*node.Case, bool, error) {
	c, err := s.Cases.Case(ctx, code, false)
	if err != nil {
		return nil, false, err
	}
	if !force && !maySeeIdentity(p, c) {
		return c, false, nil
	}
	c, err = s.Cases.Case(ctx, code, true)
	return c, err == nil, err
}

// The case list.

type listFilter struct {
	Q, Status, Year, Citizenship, Exploitation string
	Page                                       int
}

type listRow struct {
	Code, Registered, Status, Citizenship, Exploitation, Caseworker, Updated string
}

type listData struct {
	F             listFilter
	Statuses      []node.Code
	Exploitations []node.Code
	Years         []int
	Rows          []listRow
	Total, Pages  int
	From, To      int
	PrevURL       string
	NextURL       string
	Errors        []string
}

// parseListFilter reads the list's query into a node.CaseFilter; problems
// drop the filter they concern and are reported.
func (s *Server) parseListFilter(q url.Values, f *listFilter) (node.CaseFilter, []string) {
	var cf node.CaseFilter
	var errs []string
	f.Q = strings.TrimSpace(q.Get("q"))
	cf.CodePrefix = f.Q
	if f.Status = q.Get("status"); f.Status != "" {
		if node.ListStatus.Has(f.Status) {
			cf.Status = f.Status
		} else {
			errs = append(errs, "Unknown status.")
		}
	}
	if f.Year = strings.TrimSpace(q.Get("year")); f.Year != "" {
		y, err := strconv.Atoi(f.Year)
		if err != nil || y < s.Codebook.FirstYear || y > s.Codebook.LastYear {
			errs = append(errs, fmt.Sprintf("The registration year must be between %d and %d.", s.Codebook.FirstYear, s.Codebook.LastYear))
		} else {
			cf.Year = y
		}
	}
	if f.Citizenship = strings.TrimSpace(q.Get("citizenship")); f.Citizenship != "" {
		if code, ok := parseCountry(f.Citizenship); ok {
			cf.Citizenship = code
		} else {
			errs = append(errs, "The citizenship is not a country: type its name or its ISO code.")
		}
	}
	if f.Exploitation = q.Get("exploitation_type"); f.Exploitation != "" {
		if node.ListExploitation.Has(f.Exploitation) {
			cf.ExploitationType = f.Exploitation
		} else {
			errs = append(errs, "Unknown type of exploitation.")
		}
	}
	f.Page = 1
	if v := q.Get("page"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 1_000_000 {
			f.Page = n
		}
	}
	cf.Limit = s.PageSize
	cf.Offset = (f.Page - 1) * s.PageSize
	return cf, errs
}

func (f listFilter) url(page int) string {
	q := url.Values{}
	for k, v := range map[string]string{"q": f.Q, "status": f.Status, "year": f.Year, "citizenship": f.Citizenship, "exploitation_type": f.Exploitation} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if len(q) == 0 {
		return "/cases"
	}
	return "/cases?" + q.Encode()
}

func (s *Server) listCases(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	d := listData{Years: s.Codebook.Years()}
	for _, c := range node.ListStatus.Codes {
		if c.Value != node.CodeUnknown {
			d.Statuses = append(d.Statuses, c)
		}
	}
	for _, c := range node.ListExploitation.Codes {
		if c.Value != node.CodeNoneRecorded {
			d.Exploitations = append(d.Exploitations, c)
		}
	}
	cf, errs := s.parseListFilter(r.URL.Query(), &d.F)
	d.Errors = errs
	cases, total, err := s.Cases.ListCases(ctx, cf)
	if err != nil {
		s.pageError(w, r, p, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseList, "", fmt.Sprintf("page %d, %d of %d cases", d.F.Page, len(cases), total)); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	d.Total = total
	d.Pages = max(1, (total+s.PageSize-1)/s.PageSize)
	if len(cases) > 0 {
		d.From, d.To = cf.Offset+1, cf.Offset+len(cases)
	}
	if d.F.Page > 1 {
		d.PrevURL = d.F.url(min(d.F.Page-1, d.Pages))
	}
	if d.F.Page < d.Pages {
		d.NextURL = d.F.url(d.F.Page + 1)
	}
	cit, _ := s.Codebook.Field("citizenship")
	exp, _ := s.Codebook.Field("exploitation_types")
	for _, c := range cases {
		row := listRow{Code: c.Code, Registered: string(c.RegistrationDate), Status: node.ListStatus.Label(c.Status),
			Citizenship: displayValue(cit, c), Exploitation: displayValue(exp, c), Caseworker: c.Caseworker}
		if c.Status == node.CodeUnknown {
			row.Status = ""
		}
		if !c.UpdatedAt.IsZero() {
			row.Updated = c.UpdatedAt.UTC().Format("2006-01-02")
		}
		d.Rows = append(d.Rows, row)
	}
	s.render(w, r, http.StatusOK, "cases", &pageData{Title: "Cases", User: p, Data: d})
}

// The case page.

type viewItem struct {
	Label, Value string
	// Records: column labels and one row of values per entry.
	Columns []string
	Rows    [][]string
}

type viewGroup struct {
	Legend string
	Items  []viewItem
}

type caseData struct {
	Code           string
	Status         string // the status code, for the close and reopen buttons
	Version        int
	UpdatedAt      string
	UpdatedBy      string
	Groups         []viewGroup
	Identity       bool // identity fields are shown
	IdentityErased bool
	BrokeGlass     bool
	Saved          bool
	Reason         string
	ReasonError    string
	MinReason      int
	MaxReason      int
}

// caseGroups lays c out by codebook group for reading; identity fields
// only when identity is set.
func (s *Server) caseGroups(c *node.Case, identity bool) []viewGroup {
	var groups []viewGroup
	for i := range s.Codebook.Fields {
		f := &s.Codebook.Fields[i]
		if f.Identity && !identity {
			continue
		}
		if len(groups) == 0 || groups[len(groups)-1].Legend != groupLegend(f.Group) {
			groups = append(groups, viewGroup{Legend: groupLegend(f.Group)})
		}
		g := &groups[len(groups)-1]
		item := viewItem{Label: f.Label}
		if f.Type == node.TypeRecords {
			for _, col := range recordFields[f.Name] {
				item.Columns = append(item.Columns, col.Label)
			}
			for _, row := range recordValues(f.Name, c) {
				out := make([]string, len(row))
				for j, col := range recordFields[f.Name] {
					out[j] = row[j]
					for _, o := range col.Options {
						if o.Value == row[j] {
							out[j] = o.Label
						}
					}
				}
				item.Rows = append(item.Rows, out)
			}
		} else {
			item.Value = displayValue(f, c)
			if code, ok := derivedCode(f.Name, c); ok && item.Value == "" {
				item.Value = f.Codes.Label(code)
			}
		}
		g.Items = append(g.Items, item)
	}
	return groups
}

// derivedCode returns the code of a coarse field that the store clears
// when a finer one determines it (an age band when the age is known), for
// showing; false for other fields or when it is unknown.
func derivedCode(name string, c *node.Case) (string, bool) {
	var code string
	switch name {
	case "age_band":
		code = c.AgeBandCode()
	case "majority":
		code = c.MajorityCode()
	case "age_band_exploitation":
		code = c.AgeBandExploitationCode()
	case "majority_at_exploitation":
		code = c.MajorityAtExploitationCode()
	case "months_band":
		code = c.MonthsBandCode()
	default:
		return "", false
	}
	return code, code != node.CodeUnknown
}

func (s *Server) caseData(c *node.Case, identity bool) caseData {
	d := caseData{Code: c.Code, Status: c.Status, Version: c.Version, UpdatedBy: c.UpdatedBy, Groups: s.caseGroups(c, identity),
		Identity: identity, IdentityErased: c.IdentityErased, MinReason: minReasonLen, MaxReason: maxReasonLen}
	if !c.UpdatedAt.IsZero() {
		d.UpdatedAt = c.UpdatedAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	return d
}

func (s *Server) viewCase(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	code := r.PathValue("code")
	c, identity, err := s.loadCase(ctx, p, code, false)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseView, c.Code, viewDetail(identity)); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	d := s.caseData(c, identity)
	d.Saved = r.URL.Query().Get("saved") == "1"
	s.render(w, r, http.StatusOK, "case", &pageData{Title: "Case " + c.Code, User: p, Data: d})
}

// casePageError renders a store error of a case page, NotFound as "no
// such case".
func (s *Server) casePageError(w http.ResponseWriter, r *http.Request, p *principal, err error) {
	if node.KindOf(err) == node.NotFound {
		s.pageFail(w, r, p, http.StatusNotFound, "There is no case with this code.")
		return
	}
	s.pageError(w, r, p, err)
}

// breakGlass shows a case's identity fields to a caseworker who is not
// assigned to it, after writing the stated reason to the audit log.
func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	code := r.PathValue("code")
	c, err := s.Cases.Case(ctx, code, false)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if maySeeIdentity(p, c) {
		http.Redirect(w, r, "/cases/"+url.PathEscape(code), http.StatusSeeOther)
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if msg := checkReason(reason); msg != "" {
		if err := s.audit(ctx, p, ActionCaseView, c.Code, viewDetail(false)); err != nil {
			s.pageError(w, r, p, err)
			return
		}
		d := s.caseData(c, false)
		d.Reason, d.ReasonError = reason, msg
		s.render(w, r, http.StatusBadRequest, "case", &pageData{Title: "Case " + c.Code, User: p, Data: d})
		return
	}
	if err := s.audit(ctx, p, ActionBreakGlass, c.Code, reason); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	c, _, err = s.loadCase(ctx, p, code, true)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseView, c.Code, viewDetail(true)); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	d := s.caseData(c, true)
	d.BrokeGlass = true
	s.render(w, r, http.StatusOK, "case", &pageData{Title: "Case " + c.Code, User: p, Data: d})
}
