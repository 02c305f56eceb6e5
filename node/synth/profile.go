package synth

import (
	"slices"
	"strings"

	"github.com/ctfed/ctfed/node"
)

// Profile is one kind of organisation in one region whose caseload Generate
// imitates.
type Profile struct {
	Name        string
	Description string
	// Country is where the organisation works (ISO 3166-1 alpha-3), empty
	// for the mixed default profile.
	Country string
	// Prefix starts every case code ("SEA-2019-000123").
	Prefix string

	patterns  []pattern
	providers []string
}

// w is one weighted choice.
type w struct {
	code   string
	weight float64
}

// dist is a discrete distribution over codes.
type dist struct {
	codes []string
	cum   []float64 // cumulative weights
}

func mkDist(ws ...w) dist {
	d := dist{codes: make([]string, len(ws)), cum: make([]float64, len(ws))}
	var sum float64
	for i, x := range ws {
		sum += x.weight
		d.codes[i], d.cum[i] = x.code, sum
	}
	return d
}

// pattern is one corridor of a caseload: where victims come from, where
// they are exploited, who they are and how.
type pattern struct {
	weight  float64
	origin  string
	dest    string
	transit []string
	women   float64 // share of women
	minors  float64 // share of minors at registration
	exploit dist    // the main type of exploitation
	labour  dist    // for forced labour
	sexual  dist    // for sexual exploitation
	means   []w     // each means of control's weight: chosen without replacement
	recruit dist
}

var (
	sexualOnly   = mkDist(w{"sexual", 1})
	labourOnly   = mkDist(w{"forced_labour", 1})
	sexualTypes  = mkDist(w{"prostitution", 85}, w{"pornography", 10}, w{"other", 5})
	onlineSexual = mkDist(w{"prostitution", 60}, w{"pornography", 35}, w{"other", 5})
	noLabour     = mkDist(w{"other", 1})

	recruitSexual = mkDist(w{"job_offer", 40}, w{"relationship_marriage", 25}, w{"abduction", 5}, w{"sold_by_family", 4}, w{"other", 6}, w{"unknown", 20})
	recruitLabour = mkDist(w{"job_offer", 65}, w{"abduction", 3}, w{"sold_by_family", 4}, w{"other", 8}, w{"unknown", 20})
	recruitChild  = mkDist(w{"job_offer", 20}, w{"sold_by_family", 30}, w{"abduction", 10}, w{"other", 15}, w{"unknown", 25})
)

// corridor builds a pattern; the profile's means weights are filled in by
// newProfile.
func corridor(weight float64, origin, dest string, transit []string, women, minors float64, exploit, labour, sexual, recruit dist) pattern {
	return pattern{weight: weight, origin: origin, dest: dest, transit: transit, women: women, minors: minors,
		exploit: exploit, labour: labour, sexual: sexual, recruit: recruit}
}

func newProfile(name, desc, country, prefix string, means []w, providers []string, ps ...pattern) Profile {
	for i := range ps {
		ps[i].means = means
	}
	return Profile{Name: name, Description: desc, Country: country, Prefix: prefix, patterns: ps, providers: providers}
}

var profiles = buildProfiles()

func buildProfiles() []Profile {
	sea := newProfile("sea-ngo",
		"South-East Asia NGO in Thailand: victims from Myanmar, Cambodia, Laos and Viet Nam; fishing and other forced labour, sexual exploitation, child begging",
		"THA", "SEA",
		[]w{{"debt_bondage_earnings", 80}, {"excessive_hours", 55}, {"withheld_documents", 50}, {"threats", 50},
			{"false_promises", 45}, {"abuse", 40}, {"deny_basic_needs", 35}, {"drugs_alcohol", 8}, {"other", 5}},
		[]string{"Partner shelter 1", "Partner shelter 2", "Provincial hospital", "Legal aid desk", "Migrant support centre"},
		corridor(22, "MMR", "THA", nil, 0.08, 0.06, labourOnly, mkDist(w{"fishing", 1}), sexualTypes, recruitLabour),
		corridor(12, "MMR", "THA", nil, 0.45, 0.08, labourOnly, mkDist(w{"manufacturing", 4}, w{"construction", 3}, w{"agriculture", 3}), sexualTypes, recruitLabour),
		corridor(14, "KHM", "THA", nil, 0.35, 0.10, labourOnly, mkDist(w{"agriculture", 5}, w{"construction", 5}, w{"fishing", 2}), sexualTypes, recruitLabour),
		corridor(14, "LAO", "THA", nil, 0.96, 0.25, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(7, "LAO", "THA", nil, 0.90, 0.15, labourOnly, mkDist(w{"domestic_work", 4}, w{"hospitality", 1}), sexualTypes, recruitLabour),
		corridor(6, "VNM", "THA", []string{"LAO"}, 0.60, 0.10, mkDist(w{"sexual", 5}, w{"forced_labour", 5}), mkDist(w{"hospitality", 1}, w{"manufacturing", 1}), sexualTypes, recruitSexual),
		corridor(10, "THA", "THA", nil, 0.90, 0.35, sexualOnly, noLabour, onlineSexual, recruitSexual),
		corridor(5, "THA", "MYS", nil, 0.05, 0.05, labourOnly, mkDist(w{"fishing", 1}), sexualTypes, recruitLabour),
		corridor(4, "MMR", "MYS", []string{"THA"}, 0.20, 0.05, labourOnly, mkDist(w{"construction", 1}, w{"agriculture", 1}), sexualTypes, recruitLabour),
		corridor(6, "KHM", "THA", nil, 0.50, 0.80, mkDist(w{"begging", 1}), noLabour, sexualTypes, recruitChild),
	)
	ee := newProfile("ee-gov",
		"Eastern Europe government agency in Romania: Romanian, Moldovan, Ukrainian and Bulgarian victims exploited at home and in Germany, Italy, Spain, the United Kingdom and France; sexual exploitation dominant",
		"ROU", "EE",
		[]w{{"threats", 60}, {"abuse", 55}, {"debt_bondage_earnings", 55}, {"false_promises", 50}, {"withheld_documents", 30},
			{"excessive_hours", 30}, {"deny_basic_needs", 15}, {"drugs_alcohol", 12}, {"other", 4}},
		[]string{"County directorate", "NGO shelter", "Psychological counselling", "Legal clinic", "Employment agency"},
		corridor(16, "ROU", "DEU", nil, 0.95, 0.12, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(10, "ROU", "ITA", nil, 0.95, 0.10, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(7, "ROU", "ESP", nil, 0.94, 0.10, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(6, "ROU", "GBR", nil, 0.92, 0.08, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(6, "ROU", "GBR", nil, 0.30, 0.05, labourOnly, mkDist(w{"agriculture", 4}, w{"construction", 3}, w{"hospitality", 2}), sexualTypes, recruitLabour),
		corridor(12, "ROU", "ROU", nil, 0.93, 0.35, sexualOnly, noLabour, onlineSexual, recruitSexual),
		corridor(5, "ROU", "FRA", nil, 0.50, 0.50, mkDist(w{"begging", 3}, w{"forced_criminality", 2}), noLabour, sexualTypes, recruitChild),
		corridor(6, "MDA", "ITA", []string{"ROU"}, 0.95, 0.08, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(3, "MDA", "ROU", nil, 0.20, 0.05, labourOnly, mkDist(w{"construction", 1}), sexualTypes, recruitLabour),
		corridor(5, "UKR", "DEU", []string{"POL"}, 0.30, 0.05, labourOnly, mkDist(w{"agriculture", 2}, w{"construction", 2}, w{"manufacturing", 1}), sexualTypes, recruitLabour),
		corridor(3, "UKR", "ESP", nil, 0.40, 0.05, labourOnly, mkDist(w{"agriculture", 1}), sexualTypes, recruitLabour),
		corridor(4, "BGR", "FRA", nil, 0.45, 0.45, mkDist(w{"begging", 1}, w{"forced_criminality", 1}), noLabour, sexualTypes, recruitChild),
		corridor(5, "BGR", "DEU", nil, 0.95, 0.10, sexualOnly, noLabour, sexualTypes, recruitSexual),
	)
	gulf := newProfile("gulf-mission",
		"Gulf-destination mission of an international organisation in Ethiopia: returnees from Saudi Arabia, the United Arab Emirates, Kuwait, Qatar and Oman; domestic work, withheld documents, debt bondage",
		"ETH", "GULF",
		[]w{{"withheld_documents", 85}, {"excessive_hours", 75}, {"deny_basic_needs", 55}, {"false_promises", 55},
			{"debt_bondage_earnings", 50}, {"abuse", 45}, {"threats", 35}, {"drugs_alcohol", 3}, {"other", 5}},
		[]string{"Transit centre Addis Ababa", "Mission medical unit", "Psychosocial team", "Reintegration partner", "Microbusiness grant"},
		corridor(30, "ETH", "SAU", nil, 0.92, 0.08, labourOnly, mkDist(w{"domestic_work", 1}), sexualTypes, recruitLabour),
		corridor(12, "ETH", "ARE", nil, 0.93, 0.05, labourOnly, mkDist(w{"domestic_work", 9}, w{"hospitality", 1}), sexualTypes, recruitLabour),
		corridor(9, "ETH", "KWT", nil, 0.94, 0.05, labourOnly, mkDist(w{"domestic_work", 1}), sexualTypes, recruitLabour),
		corridor(8, "ETH", "QAT", nil, 0.25, 0.03, labourOnly, mkDist(w{"construction", 3}, w{"hospitality", 2}), sexualTypes, recruitLabour),
		corridor(14, "ETH", "SAU", []string{"DJI", "YEM"}, 0.10, 0.15, labourOnly, mkDist(w{"agriculture", 2}, w{"construction", 1}), sexualTypes, recruitLabour),
		corridor(4, "ETH", "OMN", nil, 0.94, 0.05, labourOnly, mkDist(w{"domestic_work", 1}), sexualTypes, recruitLabour),
		corridor(2, "ETH", "BHR", nil, 0.90, 0.05, labourOnly, mkDist(w{"domestic_work", 1}), sexualTypes, recruitLabour),
		corridor(5, "ETH", "ARE", nil, 0.97, 0.08, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(3, "ERI", "SAU", []string{"SDN"}, 0.50, 0.12, labourOnly, mkDist(w{"domestic_work", 1}, w{"agriculture", 1}), sexualTypes, recruitLabour),
		corridor(3, "SOM", "SAU", []string{"YEM"}, 0.40, 0.12, labourOnly, mkDist(w{"domestic_work", 1}, w{"construction", 1}), sexualTypes, recruitLabour),
	)
	wa := newProfile("wa-ngo",
		"West Africa NGO in Nigeria: Nigerian victims exploited in Italy, Libya, Mali, Ghana and at home; sexual exploitation, domestic servitude and begging, many minors",
		"NGA", "WA",
		[]w{{"threats", 75}, {"debt_bondage_earnings", 70}, {"abuse", 50}, {"false_promises", 50}, {"withheld_documents", 35},
			{"deny_basic_needs", 30}, {"excessive_hours", 30}, {"drugs_alcohol", 8}, {"other", 6}},
		[]string{"Shelter Benin City", "Shelter Lagos", "State clinic", "Counselling unit", "Skills centre", "Legal aid"},
		corridor(22, "NGA", "ITA", []string{"NER", "LBY"}, 0.96, 0.22, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(10, "NGA", "LBY", []string{"NER"}, 0.70, 0.15, mkDist(w{"sexual", 6}, w{"forced_labour", 4}), mkDist(w{"construction", 1}, w{"agriculture", 1}, w{"domestic_work", 1}), sexualTypes, recruitSexual),
		corridor(9, "NGA", "MLI", nil, 0.97, 0.30, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(7, "NGA", "GHA", nil, 0.60, 0.50, mkDist(w{"forced_labour", 5}, w{"begging", 3}), mkDist(w{"domestic_work", 3}, w{"other", 1}), sexualTypes, recruitChild),
		corridor(22, "NGA", "NGA", nil, 0.65, 0.55, mkDist(w{"forced_labour", 5}, w{"begging", 3}, w{"sexual", 3}), mkDist(w{"domestic_work", 4}, w{"agriculture", 2}, w{"mining", 1}), sexualTypes, recruitChild),
		corridor(5, "NGA", "ESP", []string{"NER", "DZA", "MAR"}, 0.95, 0.12, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(3, "NGA", "FRA", []string{"ITA"}, 0.95, 0.10, sexualOnly, noLabour, sexualTypes, recruitSexual),
		corridor(6, "BEN", "NGA", nil, 0.60, 0.70, mkDist(w{"forced_labour", 3}, w{"begging", 2}), mkDist(w{"domestic_work", 2}, w{"agriculture", 1}, w{"mining", 1}), sexualTypes, recruitChild),
	)

	// The default profile mixes the four, each weighing the same.
	var mixed []pattern
	for _, p := range []Profile{sea, ee, gulf, wa} {
		var total float64
		for _, c := range p.patterns {
			total += c.weight
		}
		for _, c := range p.patterns {
			c.weight = 100 * c.weight / total
			mixed = append(mixed, c)
		}
	}
	def := Profile{Name: "default",
		Description: "a mix of the four regional profiles, as a federation of several organisations would hold",
		Prefix:      "CASE", patterns: mixed,
		providers: []string{"Partner shelter", "Health centre", "Counselling unit", "Legal aid", "Reintegration partner"}}
	return []Profile{def, sea, ee, gulf, wa}
}

// Profiles returns the profiles Generate knows, the default first.
func Profiles() []Profile { return slices.Clone(profiles) }

// DefaultProfile is the profile Generate uses for an empty name.
const DefaultProfile = "default"

// Lookup returns the profile named name ("" is the default). Returns
// Invalid, naming the profiles, for any other name.
func Lookup(name string) (Profile, error) {
	if name == "" {
		name = DefaultProfile
	}
	names := make([]string, len(profiles))
	for i, p := range profiles {
		if p.Name == name {
			return p, nil
		}
		names[i] = p.Name
	}
	return Profile{}, node.E("synth", node.Invalid, "unknown profile %q (want one of %s)", name, strings.Join(names, ", "))
}
