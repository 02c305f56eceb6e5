package casefile

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// testKey is the HMAC key tests derive CTDC case codes with.
var testKey = bytes.Repeat([]byte{0x42}, 32)

// sampleCases returns synthetic cases that together set every field, at
// every precision (exact age, band only, minor/adult only, nothing), with
// clearly fake identity fields and text that needs CSV quoting.
func sampleCases() []*node.Case {
	full := &node.Case{
		Code: "T-0001", RegistrationDate: "2024-03-17", Status: "assisted", ReferralSource: "ngo",
		DataSource: "assistance_case", Caseworker: "cw-01",
		Identity: node.Identity{
			FullName: "Fakename Ovalu-Tesk, Jr.", Aliases: []string{"Fakealias Mira", "Fakealias Tesko"},
			DateOfBirth: "1999-02", Phone: "+000 555 0101", Email: "fake.ovalu@example.invalid",
			Address: "FAKE 1 \"Quoted\" Street\nSecond line", Documents: []string{"FAKE-P1234567", "FAKE-I7654321"},
			Narrative: "FAKE narrative, with commas; semicolons | pipes and \"quotes\"\nand a second line.",
		},
		Gender: "woman", Age: node.IntPtr(24), AgeAtExploitation: node.IntPtr(22),
		Citizenship: "UKR", CountryOfResidence: "UKR", Education: "secondary", MaritalStatus: "single",
		OccupationBefore: "hospitality", CountryOfOrigin: "UKR", TransitCountries: []string{"POL", "DEU"},
		CountryOfExploitation: "NLD", RecruitmentType: "job_offer", RecruiterRelations: []string{"friend"},
		MeansOfControl:       []string{"threats", "debt_bondage_earnings", "withheld_documents"},
		MonthsInExploitation: node.IntPtr(7), ExploitationTypes: []string{"sexual"},
		SexualExploitationTypes: []string{"prostitution"},
		Traffickers: []node.Trafficker{
			{Sex: "male", Nationality: "UKR", Role: "recruiter", Relation: "friend"},
			{Sex: "female", Nationality: "NLD", Role: "exploiter", Relation: "other"},
		},
		Assistance: []node.Service{
			{Service: "shelter", Date: "2024-03-18", Provider: "Partner shelter"},
			{Service: "medical", Date: "2024-03"},
		},
		ReturnStatus: "returned", ReintegrationStatus: "in_progress",
		FollowUps:            []node.FollowUp{{Date: "2024-09-01", Outcome: "reached_stable"}},
		PreviouslyTrafficked: "no", Retrafficked: "no", Consent: "yes", ConsentDate: "2024-03-17",
	}
	band := &node.Case{
		Code: "T-0002", RegistrationDate: "2021-11", Gender: "man", AgeBand: "9_17", AgeBandExploitation: "9_17",
		Citizenship: "MMR", CountryOfOrigin: "MMR", CountryOfExploitation: "THA", MonthsBand: "13_24",
		ExploitationTypes: []string{"forced_labour"}, LabourTypes: []string{"fishing", "other"},
		MeansOfControl: []string{"excessive_hours", "deny_basic_needs"}, RecruiterRelations: []string{"other", "family"},
		Assistance: []node.Service{{Service: "return_travel"}}, Consent: "no",
	}
	majority := &node.Case{
		Code: "T-0003", RegistrationDate: "2019", Gender: "trans_nonconforming", Majority: "adult",
		MajorityAtExploitation: "minor", Citizenship: "ETH", CountryOfExploitation: "SAU",
		ExploitationTypes: []string{"forced_labour", "begging", "forced_marriage"},
		Traffickers:       []node.Trafficker{{Sex: "unknown", Nationality: "unknown", Role: "other", Relation: "unknown"}},
		FollowUps:         []node.FollowUp{{Outcome: "not_reached"}},
	}
	bare := &node.Case{Code: "T-0004", RegistrationDate: "2020-01-01"}
	cases := []*node.Case{full, band, majority, bare}
	for _, c := range cases {
		c.Normalize()
	}
	return cases
}

func mustRead(t *testing.T, data, name string, opt ReadOptions) *Result {
	t.Helper()
	if opt.HMACKey == nil {
		opt.HMACKey = testKey
	}
	res, err := Read(strings.NewReader(data), name, opt)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return res
}

func writeCSV(t *testing.T, cases []*node.Case, opt WriteOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteCSV(&b, slices.Values(cases), opt); err != nil {
		t.Fatalf("WriteCSV: %v", err)
	}
	return b.String()
}

// memStore is an in-memory node.CaseStore for import tests: each PutCases
// call is atomic, and failAt makes the n-th call fail.
type memStore struct {
	mu     sync.Mutex
	cases  map[string]*node.Case
	calls  int
	sizes  []int
	failAt int
}

var _ node.CaseStore = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{cases: map[string]*node.Case{}} }

func (s *memStore) PutCases(ctx context.Context, cases []*node.Case, mode node.PutMode, by string) (node.PutResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.sizes = append(s.sizes, len(cases))
	var r node.PutResult
	if s.calls == s.failAt {
		return r, node.E("memStore.PutCases", node.Unavailable, "disk full")
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if err := c.Validate(node.DefaultCodebook()); err != nil {
			return node.PutResult{}, err
		}
		if seen[c.Code] {
			return node.PutResult{}, node.E("memStore.PutCases", node.Invalid, "case code given twice")
		}
		seen[c.Code] = true
		old, ok := s.cases[c.Code]
		switch {
		case !ok:
			r.Created++
		case reflect.DeepEqual(old, c):
			r.Unchanged++
		case mode == node.CreateOnly:
			return node.PutResult{}, node.E("memStore.PutCases", node.Conflict, "case exists")
		default:
			r.Updated++
		}
	}
	for _, c := range cases {
		s.cases[c.Code] = c.Clone()
	}
	return r, nil
}

func (s *memStore) Case(ctx context.Context, code string, withIdentity bool) (*node.Case, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cases[code]
	if !ok {
		return nil, node.E("memStore.Case", node.NotFound, "no such case")
	}
	return c.Clone(), nil
}

func (s *memStore) CaseHistory(ctx context.Context, code string, withIdentity bool) ([]*node.Case, error) {
	c, err := s.Case(ctx, code, withIdentity)
	if err != nil {
		return nil, err
	}
	return []*node.Case{c}, nil
}

func (s *memStore) EraseIdentity(ctx context.Context, code string, by string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cases[code]
	if !ok {
		return node.E("memStore.EraseIdentity", node.NotFound, "no such case")
	}
	c.Identity = node.Identity{}
	return nil
}

func (s *memStore) ListCases(ctx context.Context, f node.CaseFilter) ([]*node.Case, int, error) {
	return nil, s.count(), nil
}

func (s *memStore) ForEachCase(ctx context.Context, withIdentity bool, fn func(*node.Case) error) error {
	s.mu.Lock()
	codes := make([]string, 0, len(s.cases))
	for code := range s.cases {
		codes = append(codes, code)
	}
	s.mu.Unlock()
	slices.Sort(codes)
	for _, code := range codes {
		c, err := s.Case(ctx, code, withIdentity)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) CaseCount(ctx context.Context) (int, error) { return s.count(), nil }

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cases)
}
