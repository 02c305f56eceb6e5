package synth

import (
	"hash/fnv"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/casefile"
)

// The registration years Generate spreads cases over; later years hold more
// cases, as caseloads grow.
const (
	FirstYear = 2015
	LastYear  = 2025
)

// Generate returns n synthetic cases of the named profile ("" is the
// default), normalised and valid. The same n, seed and profile give the same
// cases, in the same order, on every run and platform; the first k cases do
// not depend on n. Returns Invalid for an unknown profile or a negative n.
func Generate(n int, seed uint64, profile string) (iter.Seq[*node.Case], error) {
	p, err := Lookup(profile)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, node.E("synth", node.Invalid, "the number of cases is negative (%d)", n)
	}
	return func(yield func(*node.Case) bool) {
		g := newGen(seed, &p)
		for i := 1; i <= n; i++ {
			if !yield(g.next(i)) {
				return
			}
		}
	}, nil
}

// WriteCSV writes n synthetic cases of the named profile to w in ctfed's CSV
// shape, with their fake identity fields.
func WriteCSV(w io.Writer, n int, seed uint64, profile string) error {
	cases, err := Generate(n, seed, profile)
	if err != nil {
		return err
	}
	return casefile.WriteCSV(w, cases, casefile.WriteOptions{Format: casefile.FormatCtfed, IncludeIdentity: true})
}

var (
	yearDist = func() dist {
		var ws []w
		for y := FirstYear; y <= LastYear; y++ {
			ws = append(ws, w{strconv.Itoa(y), 1 + float64(0.15*float64(y-FirstYear))}) // no fused multiply-add: the same weights on every platform
		}
		return mkDist(ws...)
	}()
	meansCount      = mkDist(w{"0", 4}, w{"1", 14}, w{"2", 30}, w{"3", 30}, w{"4", 16}, w{"5", 6})
	traffCount      = mkDist(w{"0", 30}, w{"1", 35}, w{"2", 25}, w{"3", 10})
	serviceCount    = mkDist(w{"1", 20}, w{"2", 30}, w{"3", 25}, w{"4", 15}, w{"5", 10})
	followUpCount   = mkDist(w{"0", 50}, w{"1", 30}, w{"2", 20})
	docCount        = mkDist(w{"0", 40}, w{"1", 45}, w{"2", 15})
	statusDist      = mkDist(w{"assisted", 45}, w{"closed", 25}, w{"eligible", 10}, w{"screened", 12}, w{"not_eligible", 8})
	referralDist    = mkDist(w{"ngo", 20}, w{"law_enforcement", 20}, w{"self", 10}, w{"family_friend", 9}, w{"hotline", 9}, w{"labour_inspection", 5}, w{"embassy_consulate", 8}, w{"international_organisation", 7}, w{"health_services", 3}, w{"other", 5}, w{"unknown", 4})
	sourceDist      = mkDist(w{"assistance_case", 90}, w{"hotline_report", 8}, w{"other", 2})
	educationDist   = mkDist(w{"none", 12}, w{"primary", 30}, w{"secondary", 33}, w{"vocational", 7}, w{"tertiary", 5}, w{"unknown", 13})
	childEducation  = mkDist(w{"none", 25}, w{"primary", 55}, w{"secondary", 10}, w{"unknown", 10})
	maritalDist     = mkDist(w{"single", 45}, w{"married", 22}, w{"partnership", 8}, w{"separated_divorced", 10}, w{"widowed", 2}, w{"unknown", 13})
	occupationDist  = mkDist(w{"unemployed", 30}, w{"agriculture", 12}, w{"domestic_work", 8}, w{"hospitality", 8}, w{"construction", 6}, w{"fishing", 3}, w{"manufacturing", 5}, w{"trade_services", 8}, w{"student", 5}, w{"other", 5}, w{"unknown", 10})
	childOccupation = mkDist(w{"student", 50}, w{"unemployed", 30}, w{"unknown", 20})
	traffSex        = mkDist(w{"male", 65}, w{"female", 30}, w{"unknown", 5})
	traffRole       = mkDist(w{"recruiter", 40}, w{"exploiter", 35}, w{"transporter", 15}, w{"other", 5}, w{"unknown", 5})
	traffRelation   = mkDist(w{"other", 50}, w{"friend", 15}, w{"family", 10}, w{"intimate_partner", 10}, w{"unknown", 15})
	returnAbroad    = mkDist(w{"returned", 45}, w{"planned", 12}, w{"declined", 8}, w{"not_applicable", 15}, w{"unknown", 20})
	returnHome      = mkDist(w{"not_applicable", 70}, w{"unknown", 30})
	reintegration   = mkDist(w{"not_started", 15}, w{"in_progress", 30}, w{"completed", 25}, w{"dropped_out", 5}, w{"not_applicable", 10}, w{"unknown", 15})
	followUpDist    = mkDist(w{"reached_stable", 55}, w{"reached_at_risk", 15}, w{"not_reached", 22}, w{"retrafficked", 3}, w{"unknown", 5})
	retraffDist     = mkDist(w{"no", 80}, w{"yes", 3}, w{"unknown", 17})
	previousDist    = mkDist(w{"no", 72}, w{"yes", 8}, w{"unknown", 20})
	consentDist     = mkDist(w{"yes", 85}, w{"no", 10}, w{"unknown", 5})

	relationsSexual = []w{{"intimate_partner", 30}, {"friend", 30}, {"family", 12}, {"other", 28}}
	relationsLabour = []w{{"friend", 25}, {"family", 15}, {"other", 60}}
	relationsChild  = []w{{"family", 45}, {"friend", 15}, {"other", 40}}

	services = []w{{"shelter", 70}, {"medical", 60}, {"psychosocial", 55}, {"legal", 30}, {"return_travel", 25},
		{"reintegration", 25}, {"financial", 20}, {"vocational_training", 15}, {"education", 10}, {"other", 5}}
)

// gen draws cases of one profile from one random stream.
type gen struct {
	r        *rand.Rand
	p        *Profile
	patterns []float64 // cumulative pattern weights
	scratch  []w
	b        []byte
}

func newGen(seed uint64, p *Profile) *gen {
	h := fnv.New64a()
	h.Write([]byte(p.Name))
	g := &gen{r: rand.New(rand.NewPCG(seed, h.Sum64())), p: p}
	var sum float64
	for _, c := range p.patterns {
		sum += c.weight
		g.patterns = append(g.patterns, sum)
	}
	return g
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func pickCum(r *rand.Rand, cum []float64) int {
	u := r.Float64() * cum[len(cum)-1]
	for i, c := range cum {
		if u < c {
			return i
		}
	}
	return len(cum) - 1
}

func (g *gen) pick(d dist) string { return d.codes[pickCum(g.r, d.cum)] }

func (g *gen) count(d dist) int { n, _ := strconv.Atoi(g.pick(d)); return n }

// pickN draws k distinct codes, each with chance proportional to its weight.
func (g *gen) pickN(ws []w, k int) []string {
	g.scratch = append(g.scratch[:0], ws...)
	var out []string
	for ; k > 0; k-- {
		var total float64
		for _, x := range g.scratch {
			total += x.weight
		}
		if total <= 0 {
			break
		}
		u := g.r.Float64() * total
		for i := range g.scratch {
			u -= g.scratch[i].weight
			if u < 0 || i == len(g.scratch)-1 && g.scratch[i].weight > 0 {
				out = append(out, g.scratch[i].code)
				g.scratch[i].weight = 0
				break
			}
		}
	}
	return out
}

func date(t time.Time) node.Date { return node.Date(t.Format("2006-01-02")) }

func (g *gen) next(i int) *node.Case {
	r := g.r
	p := &g.p.patterns[pickCum(r, g.patterns)]
	c := &node.Case{}

	// Case.
	year, _ := strconv.Atoi(g.pick(yearDist))
	reg := time.Date(year, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	switch u := r.Float64(); {
	case u < 0.85:
		c.RegistrationDate = date(reg)
	case u < 0.95:
		c.RegistrationDate = node.Date(reg.Format("2006-01"))
	default:
		c.RegistrationDate = node.Date(strconv.Itoa(year))
	}
	g.b = append(g.b[:0], g.p.Prefix...)
	g.b = append(g.b, '-')
	g.b = strconv.AppendInt(g.b, int64(year), 10)
	g.b = append(g.b, '-')
	if idx := strconv.Itoa(i); len(idx) < 6 {
		g.b = append(g.b, "000000"[len(idx):]...)
		g.b = append(g.b, idx...)
	} else {
		g.b = append(g.b, idx...)
	}
	c.Code = string(g.b)
	c.Status = g.pick(statusDist)
	c.ReferralSource = g.pick(referralDist)
	c.DataSource = g.pick(sourceDist)
	c.Caseworker = "cw-" + strconv.Itoa(10+r.IntN(12))

	// Victim profile: the true values first, then what the record keeps.
	switch u := r.Float64(); {
	case u < 0.006:
		c.Gender = "trans_nonconforming"
	case u < 0.021:
		c.Gender = node.CodeUnknown
	case g.chance(p.women):
		c.Gender = "woman"
	default:
		c.Gender = "man"
	}
	minor := g.chance(p.minors)
	var age int
	switch {
	case minor && g.chance(0.1):
		age = 2 + r.IntN(7)
	case minor:
		age = 9 + int(9*math.Sqrt(r.Float64()))
	default:
		age = min(18+int(r.ExpFloat64()*9), 75)
	}
	months := min(int(r.ExpFloat64()*9), 240)
	ageExp := age - months/12
	if g.chance(0.3) {
		ageExp--
	}
	ageExp = max(ageExp, 0)
	switch u := r.Float64(); {
	case u < 0.68:
		c.Age = node.IntPtr(age)
		switch v := r.Float64(); {
		case v < 0.6:
			c.AgeAtExploitation = node.IntPtr(ageExp)
		case v < 0.8:
			c.AgeBandExploitation = node.AgeBand(ageExp)
		}
	case u < 0.88:
		c.AgeBand = node.AgeBand(age)
		if g.chance(0.3) {
			c.AgeBandExploitation = node.AgeBand(ageExp)
		}
	case u < 0.95:
		c.Majority = node.MajorityOfBand(node.AgeBand(age))
		if g.chance(0.4) {
			c.MajorityAtExploitation = node.MajorityOfBand(node.AgeBand(ageExp))
		}
	}
	switch u := r.Float64(); {
	case u < 0.55:
		c.MonthsInExploitation = node.IntPtr(months)
	case u < 0.85:
		c.MonthsBand = node.MonthsBand(months)
	}
	if g.chance(0.94) {
		c.Citizenship = p.origin
	}
	switch u := r.Float64(); {
	case u < 0.85:
		c.CountryOfResidence = p.origin
	case u < 0.90:
		c.CountryOfResidence = p.dest
	}
	if minor {
		c.Education = g.pick(childEducation)
		c.MaritalStatus = "single"
		c.OccupationBefore = g.pick(childOccupation)
	} else {
		c.Education = g.pick(educationDist)
		c.MaritalStatus = g.pick(maritalDist)
		c.OccupationBefore = g.pick(occupationDist)
	}

	// Trafficking process.
	if g.chance(0.97) {
		c.CountryOfOrigin = p.origin
	}
	if g.chance(0.96) {
		c.CountryOfExploitation = p.dest
	}
	for _, t := range p.transit {
		if g.chance(0.6) {
			c.TransitCountries = append(c.TransitCountries, t)
		}
	}
	c.RecruitmentType = g.pick(p.recruit)
	primary := ""
	if !g.chance(0.03) {
		primary = g.pick(p.exploit)
		c.ExploitationTypes = []string{primary}
		if g.chance(0.06) {
			switch {
			case primary == "sexual":
				c.ExploitationTypes = append(c.ExploitationTypes, "forced_labour")
			case primary == "forced_labour" && c.Gender == "woman":
				c.ExploitationTypes = append(c.ExploitationTypes, "sexual")
			default:
				c.ExploitationTypes = append(c.ExploitationTypes, "forced_criminality")
			}
		}
		if c.Gender == "woman" && !minor && g.chance(0.01) {
			c.ExploitationTypes = append(c.ExploitationTypes, "forced_marriage")
		}
	}
	for _, t := range c.ExploitationTypes {
		switch t {
		case "forced_labour":
			c.LabourTypes = append(c.LabourTypes, g.pick(p.labour))
			if g.chance(0.12) {
				c.LabourTypes = append(c.LabourTypes, g.pick(p.labour))
			}
		case "sexual":
			c.SexualExploitationTypes = append(c.SexualExploitationTypes, g.pick(p.sexual))
			if g.chance(0.08) {
				c.SexualExploitationTypes = append(c.SexualExploitationTypes, "pornography")
			}
		}
	}
	c.MeansOfControl = g.pickN(p.means, g.count(meansCount))
	if !g.chance(0.22) {
		rel := relationsLabour
		switch {
		case minor:
			rel = relationsChild
		case primary == "sexual":
			rel = relationsSexual
		}
		k := 1
		if g.chance(0.15) {
			k = 2
		}
		c.RecruiterRelations = g.pickN(rel, k)
	}

	// Traffickers.
	for range g.count(traffCount) {
		t := node.Trafficker{Sex: g.pick(traffSex), Role: g.pick(traffRole)}
		switch u := r.Float64(); {
		case u < 0.60:
			t.Nationality = p.origin
		case u < 0.85:
			t.Nationality = p.dest
		default:
			t.Nationality = node.CodeUnknown
		}
		if len(c.RecruiterRelations) > 0 && g.chance(0.6) {
			t.Relation = c.RecruiterRelations[0]
		} else {
			t.Relation = g.pick(traffRelation)
		}
		c.Traffickers = append(c.Traffickers, t)
	}

	// Assistance, return, reintegration, follow-ups.
	nServices := 0
	switch c.Status {
	case "screened", "not_eligible":
		nServices = r.IntN(2)
	default:
		nServices = g.count(serviceCount)
	}
	day := reg.AddDate(0, 0, r.IntN(15))
	for _, s := range g.pickN(services, nServices) {
		sv := node.Service{Service: s}
		if g.chance(0.9) {
			sv.Date = date(day)
		}
		if g.chance(0.85) {
			sv.Provider = g.p.providers[r.IntN(len(g.p.providers))]
		}
		c.Assistance = append(c.Assistance, sv)
		day = day.AddDate(0, 0, r.IntN(45))
	}
	if p.origin != p.dest {
		c.ReturnStatus = g.pick(returnAbroad)
	} else {
		c.ReturnStatus = g.pick(returnHome)
	}
	c.ReintegrationStatus = g.pick(reintegration)
	c.Retrafficked = g.pick(retraffDist)
	if c.Status == "assisted" || c.Status == "closed" {
		for range g.count(followUpCount) {
			day = day.AddDate(0, 0, 60+r.IntN(180))
			f := node.FollowUp{Date: date(day), Outcome: g.pick(followUpDist)}
			if f.Outcome == "retrafficked" {
				c.Retrafficked = "yes"
			}
			c.FollowUps = append(c.FollowUps, f)
		}
	}
	c.PreviouslyTrafficked = g.pick(previousDist)
	c.Consent = g.pick(consentDist)
	if c.Consent != node.CodeUnknown && g.chance(0.9) {
		c.ConsentDate = date(reg)
	}

	g.identity(c, i, year-age)
	c.Normalize()
	return c
}

var syllables = []string{"ka", "lo", "mi", "ne", "su", "ta", "vo", "ri", "de", "pa", "ul", "es", "or", "an", "ti", "bo", "ze", "ha", "qu", "ly"}

// word returns a made-up capitalised word of n syllables.
func (g *gen) word(n int) string {
	var b strings.Builder
	for k := range n {
		s := syllables[g.r.IntN(len(syllables))]
		if k == 0 {
			s = strings.ToUpper(s[:1]) + s[1:]
		}
		b.WriteString(s)
	}
	return b.String()
}

func (g *gen) digits(n int) string {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

var narratives = []string{
	"FAKE narrative: synthetic record, no real person. Recruited with a job offer, moved by road, documents taken on arrival.",
	"FAKE narrative: synthetic record, no real person. Met the recruiter through a friend; \"debts\" grew every month.",
	"FAKE narrative: synthetic record, no real person. Referred by a hotline call; now in shelter, follow-up planned.",
	"FAKE narrative: synthetic record, no real person. Worked long hours without pay;\nescaped and asked for help.",
}

// identity fills c's identity fields with clearly fake values.
func (g *gen) identity(c *node.Case, i, birthYear int) {
	id := &c.Identity
	if g.chance(0.95) {
		id.FullName = "Fakename " + g.word(2+g.r.IntN(2)) + "-" + g.word(2)
	}
	if g.chance(0.2) {
		for range 1 + g.r.IntN(2) {
			id.Aliases = append(id.Aliases, "Fakealias "+g.word(2))
		}
	}
	if g.chance(0.7) && birthYear >= 1900 {
		if g.chance(0.8) {
			id.DateOfBirth = date(time.Date(birthYear, time.Month(1+g.r.IntN(12)), 1+g.r.IntN(28), 0, 0, 0, 0, time.UTC))
		} else {
			id.DateOfBirth = node.Date(strconv.Itoa(birthYear))
		}
	}
	if g.chance(0.6) {
		id.Phone = "+000 " + g.digits(3) + " " + g.digits(7)
	}
	if g.chance(0.3) {
		id.Email = "fake." + strings.ToLower(g.word(3)) + "." + strconv.Itoa(i) + "@example.invalid"
	}
	if g.chance(0.5) {
		id.Address = "FAKE " + strconv.Itoa(1+g.r.IntN(200)) + " " + g.word(2) + " Street, " + g.word(2) + "ville"
	}
	for range g.count(docCount) {
		if g.chance(0.6) {
			id.Documents = append(id.Documents, "FAKE-P"+g.digits(7))
		} else {
			id.Documents = append(id.Documents, "FAKE-I"+g.digits(8))
		}
	}
	if g.chance(0.35) {
		id.Narrative = narratives[g.r.IntN(len(narratives))]
	}
}
