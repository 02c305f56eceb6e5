package web

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/ctfed/ctfed/node"
)

// change is one field that differs between two versions of a case. Old and
// New are empty for an identity field, whose values a history never shows.
type change struct {
	Label, Old, New string
	Identity        bool
}

type versionView struct {
	Version   int
	UpdatedAt string
	UpdatedBy string
	Created   bool
	Changes   []change
}

type historyData struct {
	Code     string
	Identity bool
	Versions []versionView // newest first
}

// diffCase lists the fields that differ from prev to cur, in codebook
// order. Identity fields are compared only when identity is set (the
// versions were read with them) and are named without their values.
func diffCase(cb *node.Codebook, prev, cur *node.Case, identity bool) []change {
	var out []change
	for i := range cb.Fields {
		f := &cb.Fields[i]
		if f.Identity && !identity {
			continue
		}
		if f.Type == node.TypeRecords {
			a, b := recordValues(f.Name, prev), recordValues(f.Name, cur)
			if !slices.EqualFunc(a, b, slices.Equal) {
				out = append(out, change{Label: f.Label, Old: entries(len(a)), New: entries(len(b))})
			}
			continue
		}
		a, b := displayValue(f, prev), displayValue(f, cur)
		if a == b {
			continue
		}
		if f.Identity {
			out = append(out, change{Label: f.Label, Identity: true})
			continue
		}
		out = append(out, change{Label: f.Label, Old: a, New: b})
	}
	if cur.IdentityErased && !prev.IdentityErased {
		out = append(out, change{Label: "Identity erased", Identity: true})
	}
	return out
}

func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

// historyViews returns the versions of a case, newest first, each with
// what changed from the one before.
func historyViews(cb *node.Codebook, versions []*node.Case, identity bool) []versionView {
	out := make([]versionView, 0, len(versions))
	for i := len(versions) - 1; i >= 0; i-- {
		c := versions[i]
		v := versionView{Version: c.Version, UpdatedBy: c.UpdatedBy, Created: i == 0}
		if !c.UpdatedAt.IsZero() {
			v.UpdatedAt = c.UpdatedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		if i > 0 {
			v.Changes = diffCase(cb, versions[i-1], c, identity)
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) caseHistory(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	code := r.PathValue("code")
	cur, err := s.Cases.Case(ctx, code, false)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	identity := maySeeIdentity(p, cur)
	versions, err := s.Cases.CaseHistory(ctx, code, identity)
	if err != nil {
		s.casePageError(w, r, p, err)
		return
	}
	if err := s.audit(ctx, p, ActionCaseHistory, cur.Code, viewDetail(identity)); err != nil {
		s.pageError(w, r, p, err)
		return
	}
	d := historyData{Code: cur.Code, Identity: identity, Versions: historyViews(s.Codebook, versions, identity)}
	s.render(w, r, http.StatusOK, "history", &pageData{Title: "History of case " + cur.Code, User: p, Data: d})
}
