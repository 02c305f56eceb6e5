package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ctfed/ctfed/node"
)

// This file holds the pages read from the audit log: the incoming-query
// log and the audit log itself.

// The incoming-query log, read from the audit log.

// parseDetail reads an audit entry's detail written as key=value pairs,
// values bare or Go-quoted: `org="A" epsilon=0.5 status=answered`. It
// stops at the first part it cannot read.
func parseDetail(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		out[k] = v
		s = rest
	}
	return out
}

type incomingRow struct {
	When, Org, Peer, ShortPeer, QueryID string
	Words, SQL, Purpose, Epsilon        string
	Status, Why, Charged                string
	Refused                             bool
}

type incomingData struct {
	fedBase
	Rows        []incomingRow
	Total       int
	Page, Pages int
	From, To    int
	Capped      bool
	Max         int
	PrevURL     string
	NextURL     string
}

// incomingRow reads one incoming-query entry of the audit log: who asked
// what, when, with what purpose, what it charged and how it ended; never
// a figure of the answer (the entry holds none).
func (s *Server) incomingRow(e *node.AuditEntry) incomingRow {
	kv := parseDetail(e.Detail)
	row := incomingRow{When: utcTime(e.Time), Org: kv["org"], Peer: e.Actor, ShortPeer: shortPeer(e.Actor), QueryID: e.Subject,
		SQL: kv["query"], Purpose: kv["purpose"], Epsilon: kv["epsilon"]}
	if row.SQL != "" {
		if q, err := node.ParseSQL(s.Codebook, row.SQL); err == nil {
			row.Words = describeQuery(s.Codebook, q)
		}
	}
	switch st := kv["status"]; st {
	case node.StatusAnswered:
		row.Status = "Answered"
	case node.StatusPending:
		row.Status = "Pending approval"
	case "refused":
		row.Status, row.Refused = "Refused", true
		row.Why = reasonWords("", kv["reason"])
		if row.Why == "" {
			row.Why = strings.ReplaceAll(kv["kind"], "_", " ")
		}
	case "malformed":
		row.Status, row.Refused = "Malformed request", true
	default:
		row.Status = st
	}
	if ce := kv["charged_epsilon"]; ce != "" && ce != "0" {
		row.Charged = "ε " + ce
		if cd := kv["charged_delta"]; cd != "" && cd != "0" {
			row.Charged += ", δ " + cd
		}
	}
	return row
}

func (s *Server) fedIncoming(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	// The newest maxIncoming entries, in a ring.
	ring := make([]*node.AuditEntry, 0, 64)
	total := 0
	err := s.Audit.AuditEntries(ctx, 0, func(e *node.AuditEntry) error {
		if e.Action != ActionQueryAnswer {
			return nil
		}
		if len(ring) < maxIncoming {
			ring = append(ring, e)
		} else {
			ring[total%maxIncoming] = e
		}
		total++
		return nil
	})
	if err != nil {
		s.pageError(w, r, p, err)
		return
	}
	// Newest first.
	newest := make([]*node.AuditEntry, 0, len(ring))
	for i := range ring {
		newest = append(newest, ring[(total-1-i)%len(ring)])
	}
	d := incomingData{fedBase: s.fedBase(p, r), Total: total, Capped: total > maxIncoming, Max: maxIncoming}
	d.Page = pageParam(r.URL.Query())
	d.Pages = max(1, (len(newest)+s.PageSize-1)/s.PageSize)
	d.Page = min(d.Page, d.Pages)
	lo := (d.Page - 1) * s.PageSize
	hi := min(lo+s.PageSize, len(newest))
	for _, e := range newest[lo:hi] {
		d.Rows = append(d.Rows, s.incomingRow(e))
	}
	if len(d.Rows) > 0 {
		d.From, d.To = lo+1, hi
	}
	d.PrevURL, d.NextURL = pagerURLs("/federation/incoming", d.Page, d.Pages)
	s.render(w, r, http.StatusOK, "fed_incoming", &pageData{Title: "Incoming queries", User: p, Data: d})
}

// pageParam reads a page number (1 by default).
func pageParam(q url.Values) int {
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n >= 1 && n <= 1_000_000 {
		return n
	}
	return 1
}

// pagerURLs returns the links to the pages before and after page.
func pagerURLs(base string, page, pages int) (prev, next string) {
	if page > 1 {
		prev = base
		if page > 2 {
			prev += "?page=" + strconv.Itoa(page-1)
		}
	}
	if page < pages {
		next = base + "?page=" + strconv.Itoa(page+1)
	}
	return prev, next
}

// The audit log.

type auditRow struct {
	Seq                                  uint64
	Time, Actor, Action, Subject, Detail string
}

type auditData struct {
	fedBase
	Rows        []auditRow
	Head        uint64
	Page, Pages int
	PrevURL     string
	NextURL     string
}

// errStopScan ends an audit scan early.
var errStopScan = errors.New("stop")

// auditRange returns the entries with from ≤ Seq ≤ to, oldest first.
func (s *Server) auditRange(ctx context.Context, from, to uint64) ([]*node.AuditEntry, error) {
	var out []*node.AuditEntry
	err := s.Audit.AuditEntries(ctx, from, func(e *node.AuditEntry) error {
		if e.Seq > to {
			return errStopScan
		}
		out = append(out, e)
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, err
	}
	return out, nil
}

// auditLog shows the audit log newest first, a page at a time.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	head, err := s.Audit.AuditHead(ctx)
	if err != nil {
		s.pageError(w, r, p, err)
		return
	}
	size := uint64(s.PageSize)
	d := auditData{fedBase: s.fedBase(p, r), Head: head.Seq, Page: pageParam(r.URL.Query())}
	d.Pages = max(1, int((head.Seq+size-1)/size))
	d.Page = min(d.Page, d.Pages)
	skip := uint64(d.Page-1) * size
	if head.Seq > skip {
		top := head.Seq - skip
		bottom := uint64(1)
		if top > size {
			bottom = top - size + 1
		}
		entries, err := s.auditRange(ctx, bottom, top)
		if err != nil {
			s.pageError(w, r, p, err)
			return
		}
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			d.Rows = append(d.Rows, auditRow{Seq: e.Seq, Time: e.Time.UTC().Format("2006-01-02 15:04:05"), Actor: e.Actor,
				Action: e.Action, Subject: e.Subject, Detail: e.Detail})
		}
	}
	d.PrevURL, d.NextURL = pagerURLs("/audit", d.Page, d.Pages)
	s.render(w, r, http.StatusOK, "fed_audit", &pageData{Title: "Audit log", User: p, Data: d})
}
