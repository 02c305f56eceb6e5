package web_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ctfed/ctfed/node"
)

// statsRows returns the rows of the statistics page's table, by the label
// of their first dimension: the cells after it.
func (b *browserEnv) statsRows() map[string][]string {
	b.t.Helper()
	out := map[string][]string{}
	for _, r := range b.tableRows("table.stats tbody tr") {
		if len(r) > 1 {
			out[r[0]] = r[1:]
		}
	}
	return out
}

// statsCases returns the cases the statistics page counts under label (0
// for a row not shown: an empty cell of a large table).
func (b *browserEnv) statsCases(label string) int {
	b.t.Helper()
	row, ok := b.statsRows()[label]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(row[0])
	if err != nil {
		b.fail("got cases %q for %s, want a number", row[0], label)
	}
	return n
}

// consentedCases counts, in the store, the cases of year and citizenship
// with consent to statistical use: what the statistics page counts.
func (b *browserEnv) consentedCases(year int, citizenship string) int {
	b.t.Helper()
	cases, _, err := b.db.ListCases(context.Background(), node.CaseFilter{Year: year, Citizenship: citizenship, Limit: 10000})
	if err != nil {
		b.t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if c.Consent == "yes" {
			n++
		}
	}
	return n
}

// TestBrowserStatistics: an analyst counts the cases of 2024 by
// citizenship on the statistics page; a caseworker, in another browser
// context, creates a case of a Nepali citizen registered in 2024 with
// consent; the analyst's page, loaded again, counts it.
func TestBrowserStatistics(t *testing.T) {
	b := newBrowserEnv(t, browserSeedCases, withQueryService)

	// The analyst asks for the count of 2024's cases by citizenship.
	b.login(browserAnalyst, "/stats", "")
	if got := b.path(); got != "/stats" {
		b.fail("got %s after signing in, want the statistics page asked for", got)
	}
	b.wantText("h1", "Statistics")
	b.do("fill in the statistics form",
		b.choose("#f-measure", "count"),
		b.choose("#f-group1", "citizenship"),
		b.choose("#f-year_from", "2024"),
		b.choose("#f-year_to", "2024"),
	)
	b.submit(`form[action="/stats"] button[type=submit]`, http.StatusOK)
	b.wantText("#result-h", "Cases by citizenship")
	before := b.statsCases("Nepal")
	if want := b.consentedCases(2024, "NPL"); before != want {
		b.fail("got %d Nepali cases of 2024, want %d (the store's consented cases)", before, want)
	}

	// A caseworker creates the case.
	cw := b.newTab()
	cw.login(browserCaseworker, "/", "")
	cw.createCaseInBrowser(false)

	// The analyst's page, loaded again, counts it.
	b.load("reload the statistics", chromedp.Reload())
	if got := b.statsCases("Nepal"); got != before+1 {
		b.fail("got %d Nepali cases of 2024 after the new case, want %d", got, before+1)
	}
	if got, want := b.statsCases("Nepal"), b.consentedCases(2024, "NPL"); got != want {
		b.fail("got %d, want the store's %d", got, want)
	}
	if got := b.texts("figure.chart svg"); len(got) != 1 {
		b.fail("got %d charts, want the bar chart", len(got))
	}
	b.shotAt("statistics", "statistics", "#result-h")
	t.Logf("statistics page: %d rows", len(b.statsRows()))
}
