package node

import (
	"sort"
	"strconv"
	"strings"
)

// CodebookVersion is the version of the codebook this build writes and
// answers queries in. Every stored case and every query is bound to it.
const CodebookVersion = "2026.1"

// Unknown and NoneRecorded are the codes for a missing value of a
// single-valued field and for a case with no value in a multi-valued one.
const (
	CodeUnknown      = "unknown"
	CodeNoneRecorded = "none_recorded"
)

// Code is one value of a closed code list, with the label people see.
type Code struct {
	Value string
	Label string
}

// CodeList is a closed, ordered list of codes. Its order is the order of
// cells in answers and of options in forms.
type CodeList struct {
	Name  string
	Codes []Code
	index map[string]int
}

// Has reports whether v is a code of the list.
func (l *CodeList) Has(v string) bool { _, ok := l.index[v]; return ok }

// Index returns v's position in the list, or -1.
func (l *CodeList) Index(v string) int {
	if i, ok := l.index[v]; ok {
		return i
	}
	return -1
}

// Values returns the codes' values in list order.
func (l *CodeList) Values() []string {
	out := make([]string, len(l.Codes))
	for i, c := range l.Codes {
		out[i] = c.Value
	}
	return out
}

// Label returns the label of code v, or v itself.
func (l *CodeList) Label(v string) string {
	if i, ok := l.index[v]; ok {
		return l.Codes[i].Label
	}
	return v
}

func newList(name string, values ...string) *CodeList {
	l := &CodeList{Name: name, index: make(map[string]int, len(values))}
	for _, v := range values {
		l.add(v, labelOf(v))
	}
	return l
}

func (l *CodeList) add(value, label string) {
	if _, dup := l.index[value]; dup {
		panic("codebook: duplicate code " + value + " in " + l.Name)
	}
	l.index[value] = len(l.Codes)
	l.Codes = append(l.Codes, Code{Value: value, Label: label})
}

// labelOf turns a code into a readable label: "debt_bondage_earnings" →
// "Debt bondage earnings", "48_plus" → "48+", "9_17" → "9–17".
func labelOf(v string) string {
	switch v {
	case "48_plus":
		return "48+"
	case "25_plus":
		return "25+"
	case "ngo":
		return "NGO"
	}
	if a, b, ok := strings.Cut(v, "_"); ok && isDigits(a) && isDigits(b) {
		return a + "–" + b
	}
	s := strings.ReplaceAll(v, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// FieldType says how a field's value is written and validated.
type FieldType uint8

// The field types.
const (
	TypeText    FieldType = iota + 1 // free text: never a dimension, filter or measure
	TypeDate                         // YYYY, YYYY-MM or YYYY-MM-DD
	TypeInt                          // an exact whole number within [Min, Max]
	TypeCode                         // one code of Codes
	TypeCodes                        // any number of codes of Codes
	TypeRecords                      // a list of structured entries (traffickers, assistance, follow-ups)
)

// Field declares one field of the case record. Name is the field's name in
// ctfed's CSV, JSON and forms.
type Field struct {
	Name     string
	Label    string
	Group    string
	Type     FieldType
	Identity bool // an identity field: sealed at rest, never queryable, never exported without --include-identity, never logged
	Codes    *CodeList
	Min, Max int // for TypeInt
	MaxLen   int // for TypeText: the longest value accepted, in bytes
	Required bool
}

// Dimension is a public, closed grouping of cases that a query may group or
// filter by. Multi dimensions give a case any number of codes; L0 bounds how
// many of them one case contributes to one answer.
type Dimension struct {
	Name  string
	Codes *CodeList
	Multi bool
	L0    int
}

// MeasureField is a numeric field that SUM, AVG and QUANTILE may read.
// Values are clamped to the public bounds [Lo, Hi]; quantiles are read from a
// histogram of 1-unit bins over those bounds.
type MeasureField struct {
	Name   string
	Lo, Hi int64
}

// The field groups, in form order.
const (
	GroupCase       = "case"
	GroupIdentity   = "identity"
	GroupProfile    = "victim profile"
	GroupProcess    = "trafficking process"
	GroupTraffic    = "traffickers"
	GroupAssistance = "assistance"
	GroupRe         = "re-trafficking"
	GroupConsent    = "consent"
)

// Codebook is one version of ctfed's data model: every field with its code
// list, which fields are identity fields, the query dimensions and measures,
// and the registration years. It is immutable once built.
type Codebook struct {
	Version             string
	FirstYear, LastYear int
	Fields              []Field
	Dimensions          []Dimension
	Measures            []MeasureField
	Countries           *CodeList // ISO 3166-1 alpha-3 plus unknown

	fields   map[string]*Field
	dims     map[string]*Dimension
	measures map[string]*MeasureField
	alpha2   map[string]string
}

// Field returns the field named name.
func (cb *Codebook) Field(name string) (*Field, bool) { f, ok := cb.fields[name]; return f, ok }

// Dimension returns the dimension named name.
func (cb *Codebook) Dimension(name string) (*Dimension, bool) { d, ok := cb.dims[name]; return d, ok }

// Measure returns the measure field named name.
func (cb *Codebook) Measure(name string) (*MeasureField, bool) {
	m, ok := cb.measures[name]
	return m, ok
}

// IdentityFields returns the names of the identity fields, in field order.
// This is the one place that says which fields identify a person.
func (cb *Codebook) IdentityFields() []string {
	var out []string
	for _, f := range cb.Fields {
		if f.Identity {
			out = append(out, f.Name)
		}
	}
	return out
}

// IsIdentity reports whether name is an identity field.
func (cb *Codebook) IsIdentity(name string) bool {
	f, ok := cb.fields[name]
	return ok && f.Identity
}

// CountryFromAlpha2 returns the alpha-3 code of an ISO 3166-1 alpha-2 code.
func (cb *Codebook) CountryFromAlpha2(a2 string) (string, bool) {
	a3, ok := cb.alpha2[strings.ToUpper(a2)]
	return a3, ok
}

// Years returns the codebook's registration years, oldest first.
func (cb *Codebook) Years() []int {
	out := make([]int, 0, cb.LastYear-cb.FirstYear+1)
	for y := cb.FirstYear; y <= cb.LastYear; y++ {
		out = append(out, y)
	}
	return out
}

var defaultCodebook = buildCodebook()

// DefaultCodebook returns the codebook of CodebookVersion.
func DefaultCodebook() *Codebook { return defaultCodebook }

// Code lists of the current codebook. Each single-valued list has unknown.
var (
	ListStatus        = newList("status", "screened", "eligible", "not_eligible", "assisted", "closed", CodeUnknown)
	ListReferral      = newList("referral_source", "self", "family_friend", "ngo", "law_enforcement", "labour_inspection", "embassy_consulate", "international_organisation", "hotline", "health_services", "other", CodeUnknown)
	ListDataSource    = newList("data_source", "assistance_case", "hotline_report", "other", CodeUnknown)
	ListGender        = newList("gender", "woman", "man", "trans_nonconforming", CodeUnknown)
	ListAgeBand       = newList("age_band", "0_8", "9_17", "18_20", "21_23", "24_26", "27_29", "30_38", "39_47", "48_plus", CodeUnknown)
	ListMajority      = newList("majority", "minor", "adult", CodeUnknown)
	ListEducation     = newList("education", "none", "primary", "secondary", "vocational", "tertiary", CodeUnknown)
	ListMarital       = newList("marital_status", "single", "married", "partnership", "separated_divorced", "widowed", CodeUnknown)
	ListOccupation    = newList("occupation_before", "unemployed", "student", "agriculture", "construction", "domestic_work", "hospitality", "manufacturing", "fishing", "mining", "trade_services", "other", CodeUnknown)
	ListRecruitment   = newList("recruitment_type", "job_offer", "abduction", "relationship_marriage", "sold_by_family", "other", CodeUnknown)
	ListRelation      = newList("recruiter_relation", "intimate_partner", "friend", "family", "other", CodeUnknown)
	ListMeans         = newList("means_of_control", "debt_bondage_earnings", "threats", "abuse", "false_promises", "drugs_alcohol", "deny_basic_needs", "excessive_hours", "withheld_documents", "other", CodeNoneRecorded)
	ListMonthsBand    = newList("months_band", "0_12", "13_24", "25_plus", CodeUnknown)
	ListExploitation  = newList("exploitation_type", "sexual", "forced_labour", "forced_marriage", "forced_military", "organ_removal", "forced_criminality", "begging", "slavery_like", "other", CodeNoneRecorded)
	ListLabour        = newList("labour_type", "agriculture", "construction", "domestic_work", "hospitality", "manufacturing", "fishing", "mining", "other", CodeNoneRecorded)
	ListSexual        = newList("sexual_exploitation_type", "prostitution", "pornography", "other", CodeNoneRecorded)
	ListTraffRole     = newList("trafficker_role", "recruiter", "transporter", "exploiter", "other", CodeUnknown, CodeNoneRecorded)
	ListTraffSex      = newList("trafficker_sex", "female", "male", CodeUnknown, CodeNoneRecorded)
	ListYesNo         = newList("yes_no", "yes", "no", CodeUnknown)
	ListService       = newList("assistance_service", "shelter", "medical", "psychosocial", "legal", "return_travel", "reintegration", "education", "vocational_training", "financial", "other", CodeNoneRecorded)
	ListReturn        = newList("return_status", "not_applicable", "planned", "returned", "declined", CodeUnknown)
	ListReintegration = newList("reintegration_status", "not_applicable", "not_started", "in_progress", "completed", "dropped_out", CodeUnknown)
	ListFollowUp      = newList("follow_up_outcome", "reached_stable", "reached_at_risk", "not_reached", "retrafficked", CodeUnknown)
)

// The record-level field values of a trafficker, an assistance entry and a
// follow-up use these lists (without none_recorded).
var (
	listTraffRoleField = newList("trafficker_role", "recruiter", "transporter", "exploiter", "other", CodeUnknown)
	listTraffSexField  = newList("trafficker_sex", "female", "male", CodeUnknown)
	listServiceField   = newList("assistance_service", "shelter", "medical", "psychosocial", "legal", "return_travel", "reintegration", "education", "vocational_training", "financial", "other")
)

func buildCodebook() *Codebook {
	cb := &Codebook{Version: CodebookVersion, FirstYear: 2000, LastYear: 2030}

	countries := &CodeList{Name: "country", index: map[string]int{}}
	cb.alpha2 = make(map[string]string, len(countries.Codes))
	for _, c := range countries0() {
		countries.add(c.Alpha3, c.Name)
		cb.alpha2[c.Alpha2] = c.Alpha3
	}
	countries.add(CodeUnknown, "Unknown")
	cb.Countries = countries
	// Multi-valued country dimensions use none_recorded, not unknown.
	transit := &CodeList{Name: "transit_country", index: map[string]int{}}
	nationality := &CodeList{Name: "trafficker_nationality", index: map[string]int{}}
	for _, c := range countries0() {
		transit.add(c.Alpha3, c.Name)
		nationality.add(c.Alpha3, c.Name)
	}
	transit.add(CodeNoneRecorded, "None recorded")
	nationality.add(CodeUnknown, "Unknown")
	nationality.add(CodeNoneRecorded, "None recorded")

	years := &CodeList{Name: "registration_year", index: map[string]int{}}
	for y := cb.FirstYear; y <= cb.LastYear; y++ {
		s := strconv.Itoa(y)
		years.add(s, s)
	}

	text := func(name, label, group string, maxLen int) Field {
		return Field{Name: name, Label: label, Group: group, Type: TypeText, MaxLen: maxLen}
	}
	ident := func(f Field) Field { f.Identity = true; return f }
	code := func(name, label, group string, l *CodeList) Field {
		return Field{Name: name, Label: label, Group: group, Type: TypeCode, Codes: l}
	}
	codes := func(name, label, group string, l *CodeList) Field {
		return Field{Name: name, Label: label, Group: group, Type: TypeCodes, Codes: l}
	}
	num := func(name, label, group string, lo, hi int) Field {
		return Field{Name: name, Label: label, Group: group, Type: TypeInt, Min: lo, Max: hi}
	}
	date := func(name, label, group string) Field {
		return Field{Name: name, Label: label, Group: group, Type: TypeDate}
	}

	cb.Fields = []Field{
		{Name: "case_code", Label: "Case code", Group: GroupCase, Type: TypeText, MaxLen: 64, Required: true},
		{Name: "registration_date", Label: "Registration date", Group: GroupCase, Type: TypeDate, Required: true},
		code("status", "Status", GroupCase, ListStatus),
		code("referral_source", "Referral source", GroupCase, ListReferral),
		code("data_source", "Data source", GroupCase, ListDataSource),
		text("caseworker", "Caseworker", GroupCase, 128),

		ident(text("full_name", "Full name", GroupIdentity, 256)),
		ident(text("aliases", "Aliases", GroupIdentity, 1024)),
		ident(date("date_of_birth", "Date of birth", GroupIdentity)),
		ident(text("phone", "Phone", GroupIdentity, 64)),
		ident(text("email", "Email", GroupIdentity, 256)),
		ident(text("address", "Address", GroupIdentity, 1024)),
		ident(text("documents", "Identity documents", GroupIdentity, 1024)),
		ident(text("narrative", "Narrative", GroupIdentity, 20000)),

		code("gender", "Gender", GroupProfile, ListGender),
		num("age", "Age at registration", GroupProfile, 0, 120),
		code("age_band", "Age band at registration", GroupProfile, ListAgeBand),
		code("majority", "Minor or adult at registration", GroupProfile, ListMajority),
		num("age_at_exploitation", "Age at exploitation", GroupProfile, 0, 120),
		code("age_band_exploitation", "Age band at exploitation", GroupProfile, ListAgeBand),
		code("majority_at_exploitation", "Minor or adult at exploitation", GroupProfile, ListMajority),
		code("citizenship", "Citizenship", GroupProfile, countries),
		code("country_of_residence", "Country of residence", GroupProfile, countries),
		code("education", "Education", GroupProfile, ListEducation),
		code("marital_status", "Marital status", GroupProfile, ListMarital),
		code("occupation_before", "Occupation before", GroupProfile, ListOccupation),

		code("country_of_origin", "Country of origin", GroupProcess, countries),
		codes("transit_countries", "Transit countries", GroupProcess, countries),
		code("country_of_exploitation", "Country of exploitation", GroupProcess, countries),
		code("recruitment_type", "Recruitment type", GroupProcess, ListRecruitment),
		codes("recruiter_relations", "Recruiter relation", GroupProcess, ListRelation),
		codes("means_of_control", "Means of control", GroupProcess, ListMeans),
		num("months_in_exploitation", "Months in exploitation", GroupProcess, 0, 600),
		code("months_band", "Months in exploitation (band)", GroupProcess, ListMonthsBand),
		codes("exploitation_types", "Type of exploitation", GroupProcess, ListExploitation),
		codes("labour_types", "Type of labour", GroupProcess, ListLabour),
		codes("sexual_exploitation_types", "Type of sexual exploitation", GroupProcess, ListSexual),

		{Name: "traffickers", Label: "Traffickers", Group: GroupTraffic, Type: TypeRecords},

		{Name: "assistance", Label: "Assistance received", Group: GroupAssistance, Type: TypeRecords},
		code("return_status", "Return", GroupAssistance, ListReturn),
		code("reintegration_status", "Reintegration", GroupAssistance, ListReintegration),
		{Name: "follow_ups", Label: "Follow-ups", Group: GroupAssistance, Type: TypeRecords},

		code("previously_trafficked", "Previously trafficked", GroupRe, ListYesNo),
		code("retrafficked", "Re-trafficked after assistance", GroupRe, ListYesNo),

		code("consent", "Consent to statistical use", GroupConsent, ListYesNo),
		date("consent_date", "Date of consent", GroupConsent),
	}

	cb.Dimensions = []Dimension{
		{Name: "registration_year", Codes: years},
		{Name: "gender", Codes: ListGender},
		{Name: "age_band", Codes: ListAgeBand},
		{Name: "age_band_exploitation", Codes: ListAgeBand},
		{Name: "majority", Codes: ListMajority},
		{Name: "citizenship", Codes: countries},
		{Name: "country_of_residence", Codes: countries},
		{Name: "country_of_origin", Codes: countries},
		{Name: "country_of_exploitation", Codes: countries},
		{Name: "transit_country", Codes: transit, Multi: true, L0: 2},
		{Name: "exploitation_type", Codes: ListExploitation, Multi: true, L0: 2},
		{Name: "labour_type", Codes: ListLabour, Multi: true, L0: 1},
		{Name: "sexual_exploitation_type", Codes: ListSexual, Multi: true, L0: 1},
		{Name: "means_of_control", Codes: ListMeans, Multi: true, L0: 3},
		{Name: "recruiter_relation", Codes: ListRelation, Multi: true, L0: 1},
		{Name: "recruitment_type", Codes: ListRecruitment},
		{Name: "trafficker_role", Codes: ListTraffRole, Multi: true, L0: 2},
		{Name: "trafficker_sex", Codes: ListTraffSex, Multi: true, L0: 2},
		{Name: "trafficker_nationality", Codes: nationality, Multi: true, L0: 2},
		{Name: "months_band", Codes: ListMonthsBand},
		{Name: "retrafficked", Codes: ListYesNo},
		{Name: "previously_trafficked", Codes: ListYesNo},
		{Name: "assistance_service", Codes: ListService, Multi: true, L0: 3},
		{Name: "data_source", Codes: ListDataSource},
	}
	cb.Measures = []MeasureField{
		{Name: "age", Lo: 0, Hi: 100},
		{Name: "age_at_exploitation", Lo: 0, Hi: 100},
		{Name: "months_in_exploitation", Lo: 0, Hi: 600},
		{Name: "services_count", Lo: 0, Hi: 50},
	}

	cb.fields = make(map[string]*Field, len(cb.Fields))
	for i := range cb.Fields {
		cb.fields[cb.Fields[i].Name] = &cb.Fields[i]
	}
	cb.dims = make(map[string]*Dimension, len(cb.Dimensions))
	for i := range cb.Dimensions {
		cb.dims[cb.Dimensions[i].Name] = &cb.Dimensions[i]
	}
	cb.measures = make(map[string]*MeasureField, len(cb.Measures))
	for i := range cb.Measures {
		cb.measures[cb.Measures[i].Name] = &cb.Measures[i]
	}
	return cb
}

// countries0 returns the ISO list sorted by English name, so that forms list
// countries the way people look for them.
func countries0() []struct{ Alpha3, Alpha2, Name string } {
	out := append([]struct{ Alpha3, Alpha2, Name string }(nil), countries[:]...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AgeBand returns the age band of an exact age.
func AgeBand(age int) string {
	switch {
	case age < 0:
		return CodeUnknown
	case age <= 8:
		return "0_8"
	case age <= 17:
		return "9_17"
	case age <= 20:
		return "18_20"
	case age <= 23:
		return "21_23"
	case age <= 26:
		return "24_26"
	case age <= 29:
		return "27_29"
	case age <= 38:
		return "30_38"
	case age <= 47:
		return "39_47"
	default:
		return "48_plus"
	}
}

// MajorityOfBand returns minor or adult for an age band.
func MajorityOfBand(band string) string {
	switch band {
	case "0_8", "9_17":
		return "minor"
	case "", CodeUnknown:
		return CodeUnknown
	default:
		return "adult"
	}
}

// MonthsBand returns the band of an exact number of months in exploitation.
func MonthsBand(months int) string {
	switch {
	case months < 0:
		return CodeUnknown
	case months <= 12:
		return "0_12"
	case months <= 24:
		return "13_24"
	default:
		return "25_plus"
	}
}
