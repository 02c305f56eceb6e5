package node

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Date is a calendar date at the precision it was given: "2024",
// "2024-03" or "2024-03-17". The empty Date is unknown.
type Date string

// ParseDate checks s and returns it as a Date. It accepts YYYY, YYYY-MM and
// YYYY-MM-DD, with a real month and a real day of that month.
func ParseDate(s string) (Date, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if !validDate(s) {
		return "", errors.New("not a date (want YYYY, YYYY-MM or YYYY-MM-DD)")
	}
	return Date(s), nil
}

// validDate reports whether s is YYYY, YYYY-MM or YYYY-MM-DD naming a real
// month and day. It is on every import's path, so it reads digits itself.
func validDate(s string) bool {
	digits := func(t string) (int, bool) {
		n := 0
		for i := 0; i < len(t); i++ {
			c := t[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	switch len(s) {
	case 4, 7, 10:
	default:
		return false
	}
	y, ok := digits(s[:4])
	if !ok {
		return false
	}
	if len(s) == 4 {
		return true
	}
	m, ok := digits(s[5:7])
	if s[4] != '-' || !ok || m < 1 || m > 12 {
		return false
	}
	if len(s) == 7 {
		return true
	}
	d, ok := digits(s[8:10])
	if s[7] != '-' || !ok || d < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

// Year returns the date's year, or 0 if the date is empty or malformed.
func (d Date) Year() int {
	if len(d) < 4 {
		return 0
	}
	y, err := strconv.Atoi(string(d[:4]))
	if err != nil {
		return 0
	}
	return y
}

// Identity holds a case's identity fields: the fields that name or locate a
// person. The codebook declares them (Codebook.IdentityFields). They are
// sealed with a per-case key at rest, never queryable, never exported without
// --include-identity, and never logged.
type Identity struct {
	FullName    string   `json:"full_name,omitempty"`
	Aliases     []string `json:"aliases,omitempty"`
	DateOfBirth Date     `json:"date_of_birth,omitempty"`
	Phone       string   `json:"phone,omitempty"`
	Email       string   `json:"email,omitempty"`
	Address     string   `json:"address,omitempty"`
	Documents   []string `json:"documents,omitempty"`
	Narrative   string   `json:"narrative,omitempty"`
}

// IsZero reports whether no identity field is set.
func (id *Identity) IsZero() bool {
	return id.FullName == "" && len(id.Aliases) == 0 && id.DateOfBirth == "" && id.Phone == "" &&
		id.Email == "" && id.Address == "" && len(id.Documents) == 0 && id.Narrative == ""
}

// Trafficker is one person involved in trafficking the victim.
type Trafficker struct {
	Sex         string `json:"sex"`
	Nationality string `json:"nationality"`
	Role        string `json:"role"`
	Relation    string `json:"relation"`
}

// Service is one assistance service the victim received.
type Service struct {
	Service  string `json:"service"`
	Date     Date   `json:"date,omitempty"`
	Provider string `json:"provider,omitempty"`
}

// FollowUp is one follow-up contact after assistance.
type FollowUp struct {
	Date    Date   `json:"date,omitempty"`
	Outcome string `json:"outcome"`
}

// Case is one victim assisted by one organisation. Coded fields hold codes of
// the codebook's lists; an empty code means unknown. Exact numbers are
// pointers: nil is unknown. The most precise value given is stored (an exact
// age, or only a band, or only minor/adult) and coarser ones are derived
// (Normalize clears a coarser field that a finer one determines).
type Case struct {
	Code             string `json:"case_code"`
	RegistrationDate Date   `json:"registration_date"`
	Status           string `json:"status,omitempty"`
	ReferralSource   string `json:"referral_source,omitempty"`
	DataSource       string `json:"data_source,omitempty"`
	Caseworker       string `json:"caseworker,omitempty"`

	Identity Identity `json:"identity"`

	Gender                 string `json:"gender,omitempty"`
	Age                    *int   `json:"age,omitempty"`
	AgeBand                string `json:"age_band,omitempty"`
	Majority               string `json:"majority,omitempty"`
	AgeAtExploitation      *int   `json:"age_at_exploitation,omitempty"`
	AgeBandExploitation    string `json:"age_band_exploitation,omitempty"`
	MajorityAtExploitation string `json:"majority_at_exploitation,omitempty"`
	Citizenship            string `json:"citizenship,omitempty"`
	CountryOfResidence     string `json:"country_of_residence,omitempty"`
	Education              string `json:"education,omitempty"`
	MaritalStatus          string `json:"marital_status,omitempty"`
	OccupationBefore       string `json:"occupation_before,omitempty"`

	CountryOfOrigin         string   `json:"country_of_origin,omitempty"`
	TransitCountries        []string `json:"transit_countries,omitempty"`
	CountryOfExploitation   string   `json:"country_of_exploitation,omitempty"`
	RecruitmentType         string   `json:"recruitment_type,omitempty"`
	RecruiterRelations      []string `json:"recruiter_relations,omitempty"`
	MeansOfControl          []string `json:"means_of_control,omitempty"`
	MonthsInExploitation    *int     `json:"months_in_exploitation,omitempty"`
	MonthsBand              string   `json:"months_band,omitempty"`
	ExploitationTypes       []string `json:"exploitation_types,omitempty"`
	LabourTypes             []string `json:"labour_types,omitempty"`
	SexualExploitationTypes []string `json:"sexual_exploitation_types,omitempty"`

	Traffickers []Trafficker `json:"traffickers,omitempty"`

	Assistance          []Service  `json:"assistance,omitempty"`
	ReturnStatus        string     `json:"return_status,omitempty"`
	ReintegrationStatus string     `json:"reintegration_status,omitempty"`
	FollowUps           []FollowUp `json:"follow_ups,omitempty"`

	PreviouslyTrafficked string `json:"previously_trafficked,omitempty"`
	Retrafficked         string `json:"retrafficked,omitempty"`

	Consent     string `json:"consent,omitempty"`
	ConsentDate Date   `json:"consent_date,omitempty"`

	// Set by the store.
	Version        int       `json:"version,omitempty"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
	UpdatedBy      string    `json:"updated_by,omitempty"`
	IdentityErased bool      `json:"identity_erased,omitempty"`
}

// Clone returns a deep copy of c.
func (c *Case) Clone() *Case {
	d := *c
	d.Identity.Aliases = slices.Clone(c.Identity.Aliases)
	d.Identity.Documents = slices.Clone(c.Identity.Documents)
	d.Age = cloneInt(c.Age)
	d.AgeAtExploitation = cloneInt(c.AgeAtExploitation)
	d.MonthsInExploitation = cloneInt(c.MonthsInExploitation)
	d.TransitCountries = slices.Clone(c.TransitCountries)
	d.RecruiterRelations = slices.Clone(c.RecruiterRelations)
	d.MeansOfControl = slices.Clone(c.MeansOfControl)
	d.ExploitationTypes = slices.Clone(c.ExploitationTypes)
	d.LabourTypes = slices.Clone(c.LabourTypes)
	d.SexualExploitationTypes = slices.Clone(c.SexualExploitationTypes)
	d.Traffickers = slices.Clone(c.Traffickers)
	d.Assistance = slices.Clone(c.Assistance)
	d.FollowUps = slices.Clone(c.FollowUps)
	return &d
}

func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// IntPtr returns a pointer to v; for building cases in code and tests.
func IntPtr(v int) *int { return &v }

// RegistrationYear returns the year of the registration date.
func (c *Case) RegistrationYear() int { return c.RegistrationDate.Year() }

// Normalize puts c in its stored form: empty codes become unknown,
// multi-valued codes are sorted and de-duplicated, and a coarser field that a
// finer one determines (an age band when the exact age is known) is cleared,
// since it is derived. Call Validate after Normalize.
func (c *Case) Normalize() {
	c.Code = strings.TrimSpace(c.Code)
	for _, p := range []*string{&c.Status, &c.ReferralSource, &c.DataSource, &c.Gender, &c.AgeBand,
		&c.Majority, &c.AgeBandExploitation, &c.MajorityAtExploitation, &c.Citizenship,
		&c.CountryOfResidence, &c.Education, &c.MaritalStatus, &c.OccupationBefore,
		&c.CountryOfOrigin, &c.CountryOfExploitation, &c.RecruitmentType, &c.MonthsBand,
		&c.ReturnStatus, &c.ReintegrationStatus, &c.PreviouslyTrafficked, &c.Retrafficked, &c.Consent} {
		if *p == "" {
			*p = CodeUnknown
		}
	}
	for _, p := range []*[]string{&c.TransitCountries, &c.RecruiterRelations, &c.MeansOfControl,
		&c.ExploitationTypes, &c.LabourTypes, &c.SexualExploitationTypes} {
		s := slices.DeleteFunc(*p, func(v string) bool { return v == "" || v == CodeNoneRecorded })
		slices.Sort(s)
		s = slices.Compact(s)
		if len(s) == 0 {
			s = nil
		}
		*p = s
	}
	for i := range c.Traffickers {
		t := &c.Traffickers[i]
		for _, p := range []*string{&t.Sex, &t.Nationality, &t.Role, &t.Relation} {
			if *p == "" {
				*p = CodeUnknown
			}
		}
	}
	for i := range c.FollowUps {
		if c.FollowUps[i].Outcome == "" {
			c.FollowUps[i].Outcome = CodeUnknown
		}
	}
	// Derived values are not stored when the finer value is known and agrees;
	// a disagreement is left for Validate to report.
	if c.Age != nil && (c.AgeBand == AgeBand(*c.Age) || c.AgeBand == CodeUnknown) &&
		(c.Majority == MajorityOfBand(AgeBand(*c.Age)) || c.Majority == CodeUnknown) {
		c.AgeBand, c.Majority = CodeUnknown, CodeUnknown
	}
	if c.Age == nil && c.AgeBand != CodeUnknown && c.Majority == MajorityOfBand(c.AgeBand) {
		c.Majority = CodeUnknown
	}
	if c.AgeAtExploitation != nil && (c.AgeBandExploitation == AgeBand(*c.AgeAtExploitation) || c.AgeBandExploitation == CodeUnknown) &&
		(c.MajorityAtExploitation == MajorityOfBand(AgeBand(*c.AgeAtExploitation)) || c.MajorityAtExploitation == CodeUnknown) {
		c.AgeBandExploitation, c.MajorityAtExploitation = CodeUnknown, CodeUnknown
	}
	if c.AgeAtExploitation == nil && c.AgeBandExploitation != CodeUnknown && c.MajorityAtExploitation == MajorityOfBand(c.AgeBandExploitation) {
		c.MajorityAtExploitation = CodeUnknown
	}
	if c.MonthsInExploitation != nil && (c.MonthsBand == MonthsBand(*c.MonthsInExploitation) || c.MonthsBand == CodeUnknown) {
		c.MonthsBand = CodeUnknown
	}
}

// Validate checks c against cb and returns every problem at once, as an
// *Error of kind Invalid wrapping FieldErrors. Identity fields' values are
// never repeated in the errors.
func (c *Case) Validate(cb *Codebook) error {
	var fe FieldErrors
	bad := func(field, value, msg string) {
		if cb.IsIdentity(field) {
			value = ""
		}
		fe = append(fe, FieldError{Field: field, Value: value, Msg: msg})
	}
	text := func(field, v string) {
		f, _ := cb.Field(field)
		if !utf8.ValidString(v) {
			bad(field, "", "is not valid UTF-8")
			return
		}
		if f != nil && f.MaxLen > 0 && len(v) > f.MaxLen {
			bad(field, "", fmt.Sprintf("is too long (%d bytes, at most %d)", len(v), f.MaxLen))
			return
		}
		if strings.ContainsFunc(v, isControl) {
			bad(field, "", "contains control characters")
		}
	}
	code := func(field, v string) {
		f, _ := cb.Field(field)
		if !f.Codes.Has(v) {
			bad(field, v, "is not a code of "+f.Codes.Name)
		}
	}
	codes := func(field string, vs []string) {
		f, _ := cb.Field(field)
		for _, v := range vs {
			if !f.Codes.Has(v) || v == CodeUnknown {
				bad(field, v, "is not a code of "+f.Codes.Name)
			}
		}
	}
	num := func(field string, p *int) {
		f, _ := cb.Field(field)
		if p != nil && (*p < f.Min || *p > f.Max) {
			bad(field, strconv.Itoa(*p), fmt.Sprintf("is out of range %d–%d", f.Min, f.Max))
		}
	}
	date := func(field string, d Date) {
		if d == "" {
			return
		}
		if !validDate(string(d)) {
			bad(field, string(d), "is not a date (want YYYY, YYYY-MM or YYYY-MM-DD)")
		}
	}

	// Case.
	switch {
	case c.Code == "":
		bad("case_code", "", "is required")
	default:
		text("case_code", c.Code)
		if strings.ContainsAny(c.Code, "/\\") {
			bad("case_code", c.Code, "may not contain / or \\")
		}
	}
	switch {
	case c.RegistrationDate == "":
		bad("registration_date", "", "is required")
	default:
		if !validDate(string(c.RegistrationDate)) {
			bad("registration_date", string(c.RegistrationDate), "is not a date (want YYYY, YYYY-MM or YYYY-MM-DD)")
		} else if y := c.RegistrationYear(); y < cb.FirstYear || y > cb.LastYear {
			bad("registration_date", string(c.RegistrationDate), fmt.Sprintf("is outside the codebook's years %d–%d", cb.FirstYear, cb.LastYear))
		}
	}
	code("status", c.Status)
	code("referral_source", c.ReferralSource)
	code("data_source", c.DataSource)
	text("caseworker", c.Caseworker)

	// Identity.
	id := &c.Identity
	text("full_name", id.FullName)
	for _, a := range id.Aliases {
		text("aliases", a)
		if strings.Contains(a, ";") {
			bad("aliases", "", "may not contain ; (it separates aliases in case files)")
		}
	}
	date("date_of_birth", id.DateOfBirth)
	text("phone", id.Phone)
	text("email", id.Email)
	text("address", id.Address)
	for _, d := range id.Documents {
		text("documents", d)
		if strings.Contains(d, ";") {
			bad("documents", "", "may not contain ; (it separates documents in case files)")
		}
	}
	if !utf8.ValidString(id.Narrative) {
		bad("narrative", "", "is not valid UTF-8")
	} else if f, _ := cb.Field("narrative"); len(id.Narrative) > f.MaxLen {
		bad("narrative", "", fmt.Sprintf("is too long (%d bytes, at most %d)", len(id.Narrative), f.MaxLen))
	}

	// Victim profile.
	code("gender", c.Gender)
	num("age", c.Age)
	code("age_band", c.AgeBand)
	code("majority", c.Majority)
	num("age_at_exploitation", c.AgeAtExploitation)
	code("age_band_exploitation", c.AgeBandExploitation)
	code("majority_at_exploitation", c.MajorityAtExploitation)
	if c.Age != nil && c.AgeBand != CodeUnknown && c.AgeBand != AgeBand(*c.Age) {
		bad("age_band", c.AgeBand, fmt.Sprintf("disagrees with age %d", *c.Age))
	}
	if c.AgeAtExploitation != nil && c.AgeBandExploitation != CodeUnknown && c.AgeBandExploitation != AgeBand(*c.AgeAtExploitation) {
		bad("age_band_exploitation", c.AgeBandExploitation, fmt.Sprintf("disagrees with age at exploitation %d", *c.AgeAtExploitation))
	}
	if m := MajorityOfBand(c.AgeBandCode()); c.Majority != CodeUnknown && m != CodeUnknown && c.Majority != m {
		bad("majority", c.Majority, "disagrees with the age")
	}
	if m := MajorityOfBand(c.AgeBandExploitationCode()); c.MajorityAtExploitation != CodeUnknown && m != CodeUnknown && c.MajorityAtExploitation != m {
		bad("majority_at_exploitation", c.MajorityAtExploitation, "disagrees with the age at exploitation")
	}
	if c.Age != nil && c.AgeAtExploitation != nil && *c.AgeAtExploitation > *c.Age {
		bad("age_at_exploitation", strconv.Itoa(*c.AgeAtExploitation), "is greater than the age at registration")
	}
	code("citizenship", c.Citizenship)
	code("country_of_residence", c.CountryOfResidence)
	code("education", c.Education)
	code("marital_status", c.MaritalStatus)
	code("occupation_before", c.OccupationBefore)

	// Trafficking process.
	code("country_of_origin", c.CountryOfOrigin)
	codes("transit_countries", c.TransitCountries)
	code("country_of_exploitation", c.CountryOfExploitation)
	code("recruitment_type", c.RecruitmentType)
	codes("recruiter_relations", c.RecruiterRelations)
	codes("means_of_control", c.MeansOfControl)
	num("months_in_exploitation", c.MonthsInExploitation)
	code("months_band", c.MonthsBand)
	if c.MonthsInExploitation != nil && c.MonthsBand != CodeUnknown && c.MonthsBand != MonthsBand(*c.MonthsInExploitation) {
		bad("months_band", c.MonthsBand, fmt.Sprintf("disagrees with months in exploitation %d", *c.MonthsInExploitation))
	}
	codes("exploitation_types", c.ExploitationTypes)
	codes("labour_types", c.LabourTypes)
	codes("sexual_exploitation_types", c.SexualExploitationTypes)

	// Traffickers, assistance, follow-ups. An entry's field name
	// ("traffickers[2].sex") is only built for an error.
	if len(c.Traffickers) > 50 {
		bad("traffickers", strconv.Itoa(len(c.Traffickers)), "has more than 50 entries")
	}
	for i, t := range c.Traffickers {
		if !listTraffSexField.Has(t.Sex) {
			bad(entryPrefix("traffickers", i)+"sex", t.Sex, "is not a code of trafficker_sex")
		}
		if !cb.Countries.Has(t.Nationality) {
			bad(entryPrefix("traffickers", i)+"nationality", t.Nationality, "is not a code of country")
		}
		if !listTraffRoleField.Has(t.Role) {
			bad(entryPrefix("traffickers", i)+"role", t.Role, "is not a code of trafficker_role")
		}
		if !ListRelation.Has(t.Relation) {
			bad(entryPrefix("traffickers", i)+"relation", t.Relation, "is not a code of recruiter_relation")
		}
	}
	if len(c.Assistance) > 50 {
		bad("assistance", strconv.Itoa(len(c.Assistance)), "has more than 50 entries")
	}
	for i, s := range c.Assistance {
		if !listServiceField.Has(s.Service) {
			bad(entryPrefix("assistance", i)+"service", s.Service, "is not a code of assistance_service")
		}
		if s.Date != "" && !validDate(string(s.Date)) {
			bad(entryPrefix("assistance", i)+"date", string(s.Date), "is not a date (want YYYY, YYYY-MM or YYYY-MM-DD)")
		}
		if !utf8.ValidString(s.Provider) || len(s.Provider) > 256 || strings.ContainsAny(s.Provider, "|;") || strings.ContainsFunc(s.Provider, isControl) {
			bad(entryPrefix("assistance", i)+"provider", "", "must be valid text of at most 256 bytes without | or ;")
		}
	}
	code("return_status", c.ReturnStatus)
	code("reintegration_status", c.ReintegrationStatus)
	if len(c.FollowUps) > 100 {
		bad("follow_ups", strconv.Itoa(len(c.FollowUps)), "has more than 100 entries")
	}
	for i, f := range c.FollowUps {
		if f.Date != "" && !validDate(string(f.Date)) {
			bad(entryPrefix("follow_ups", i)+"date", string(f.Date), "is not a date (want YYYY, YYYY-MM or YYYY-MM-DD)")
		}
		if !ListFollowUp.Has(f.Outcome) {
			bad(entryPrefix("follow_ups", i)+"outcome", f.Outcome, "is not a code of follow_up_outcome")
		}
	}

	// Re-trafficking and consent.
	code("previously_trafficked", c.PreviouslyTrafficked)
	code("retrafficked", c.Retrafficked)
	code("consent", c.Consent)
	date("consent_date", c.ConsentDate)

	if len(fe) == 0 {
		return nil
	}
	return &Error{Op: "validate case", Kind: Invalid, Err: fe}
}

// entryPrefix names entry i of a list field in an error: "traffickers[2].".
// Cheap on the valid path: the common indexes are precomputed.
func entryPrefix(list string, i int) string {
	if i < len(entryIndex) {
		return list + entryIndex[i]
	}
	return list + "[" + strconv.Itoa(i+1) + "]."
}

var entryIndex = func() []string {
	out := make([]string, 16)
	for i := range out {
		out[i] = "[" + strconv.Itoa(i+1) + "]."
	}
	return out
}()

func isControl(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f }

// AgeBandCode returns the age band at registration: derived from the exact
// age when it is known, else the band given, else unknown.
func (c *Case) AgeBandCode() string {
	if c.Age != nil {
		return AgeBand(*c.Age)
	}
	return orUnknown(c.AgeBand)
}

// AgeBandExploitationCode returns the age band at exploitation.
func (c *Case) AgeBandExploitationCode() string {
	if c.AgeAtExploitation != nil {
		return AgeBand(*c.AgeAtExploitation)
	}
	return orUnknown(c.AgeBandExploitation)
}

// MajorityCode returns minor, adult or unknown at registration, derived from
// the most precise value known.
func (c *Case) MajorityCode() string {
	if m := MajorityOfBand(c.AgeBandCode()); m != CodeUnknown {
		return m
	}
	return orUnknown(c.Majority)
}

// MajorityAtExploitationCode returns minor, adult or unknown at exploitation.
func (c *Case) MajorityAtExploitationCode() string {
	if m := MajorityOfBand(c.AgeBandExploitationCode()); m != CodeUnknown {
		return m
	}
	return orUnknown(c.MajorityAtExploitation)
}

// MonthsBandCode returns the months-in-exploitation band.
func (c *Case) MonthsBandCode() string {
	if c.MonthsInExploitation != nil {
		return MonthsBand(*c.MonthsInExploitation)
	}
	return orUnknown(c.MonthsBand)
}

func orUnknown(s string) string {
	if s == "" {
		return CodeUnknown
	}
	return s
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{CodeNoneRecorded}
	}
	return s
}

// DimensionCodes returns the codes case c has in the named dimension: one
// code for a single-valued dimension; for a multi-valued one every code, or
// none_recorded (unknown for recruiter_relation) when it has none. It
// returns nil for a name that is not a dimension.
func (c *Case) DimensionCodes(dim string) []string {
	switch dim {
	case "registration_year":
		return []string{strconv.Itoa(c.RegistrationYear())}
	case "gender":
		return []string{orUnknown(c.Gender)}
	case "age_band":
		return []string{c.AgeBandCode()}
	case "age_band_exploitation":
		return []string{c.AgeBandExploitationCode()}
	case "majority":
		return []string{c.MajorityCode()}
	case "citizenship":
		return []string{orUnknown(c.Citizenship)}
	case "country_of_residence":
		return []string{orUnknown(c.CountryOfResidence)}
	case "country_of_origin":
		return []string{orUnknown(c.CountryOfOrigin)}
	case "country_of_exploitation":
		return []string{orUnknown(c.CountryOfExploitation)}
	case "transit_country":
		return orNone(c.TransitCountries)
	case "exploitation_type":
		return orNone(c.ExploitationTypes)
	case "labour_type":
		return orNone(c.LabourTypes)
	case "sexual_exploitation_type":
		return orNone(c.SexualExploitationTypes)
	case "means_of_control":
		return orNone(c.MeansOfControl)
	case "recruiter_relation":
		if len(c.RecruiterRelations) == 0 {
			return []string{CodeUnknown}
		}
		return c.RecruiterRelations
	case "recruitment_type":
		return []string{orUnknown(c.RecruitmentType)}
	case "trafficker_role":
		return traffickerCodes(c, func(t Trafficker) string { return t.Role })
	case "trafficker_sex":
		return traffickerCodes(c, func(t Trafficker) string { return t.Sex })
	case "trafficker_nationality":
		return traffickerCodes(c, func(t Trafficker) string { return t.Nationality })
	case "months_band":
		return []string{c.MonthsBandCode()}
	case "retrafficked":
		return []string{orUnknown(c.Retrafficked)}
	case "previously_trafficked":
		return []string{orUnknown(c.PreviouslyTrafficked)}
	case "assistance_service":
		var out []string
		for _, s := range c.Assistance {
			out = append(out, s.Service)
		}
		slices.Sort(out)
		return orNone(slices.Compact(out))
	case "data_source":
		return []string{orUnknown(c.DataSource)}
	}
	return nil
}

func traffickerCodes(c *Case, f func(Trafficker) string) []string {
	var out []string
	for _, t := range c.Traffickers {
		out = append(out, orUnknown(f(t)))
	}
	slices.Sort(out)
	return orNone(slices.Compact(out))
}

// MeasureValue returns the exact value of a measure field for c, and false
// when it is not known. Values are not clamped here.
func (c *Case) MeasureValue(name string) (int64, bool) {
	var p *int
	switch name {
	case "age":
		p = c.Age
	case "age_at_exploitation":
		p = c.AgeAtExploitation
	case "months_in_exploitation":
		p = c.MonthsInExploitation
	case "services_count":
		return int64(len(c.Assistance)), true
	}
	if p == nil {
		return 0, false
	}
	return int64(*p), true
}
