package web

import (
	"strconv"
	"strings"

	"github.com/ctfed/ctfed/node"
)

// access reaches one scalar field of a case by its codebook name. Exactly
// one of its functions is set, by the field's Go type.
type access struct {
	str  func(c *node.Case) *string
	date func(c *node.Case) *node.Date
	num  func(c *node.Case) **int
	list func(c *node.Case) *[]string
}

// fieldAccess maps every codebook field that is not a list of records to
// its place in node.Case. TestFieldAccessCoversCodebook keeps it complete.
var fieldAccess = map[string]access{
	"case_code":         {str: func(c *node.Case) *string { return &c.Code }},
	"registration_date": {date: func(c *node.Case) *node.Date { return &c.RegistrationDate }},
	"status":            {str: func(c *node.Case) *string { return &c.Status }},
	"referral_source":   {str: func(c *node.Case) *string { return &c.ReferralSource }},
	"data_source":       {str: func(c *node.Case) *string { return &c.DataSource }},
	"caseworker":        {str: func(c *node.Case) *string { return &c.Caseworker }},

	"full_name":     {str: func(c *node.Case) *string { return &c.Identity.FullName }},
	"aliases":       {list: func(c *node.Case) *[]string { return &c.Identity.Aliases }},
	"date_of_birth": {date: func(c *node.Case) *node.Date { return &c.Identity.DateOfBirth }},
	"phone":         {str: func(c *node.Case) *string { return &c.Identity.Phone }},
	"email":         {str: func(c *node.Case) *string { return &c.Identity.Email }},
	"address":       {str: func(c *node.Case) *string { return &c.Identity.Address }},
	"documents":     {list: func(c *node.Case) *[]string { return &c.Identity.Documents }},
	"narrative":     {str: func(c *node.Case) *string { return &c.Identity.Narrative }},

	"gender":                   {str: func(c *node.Case) *string { return &c.Gender }},
	"age":                      {num: func(c *node.Case) **int { return &c.Age }},
	"age_band":                 {str: func(c *node.Case) *string { return &c.AgeBand }},
	"majority":                 {str: func(c *node.Case) *string { return &c.Majority }},
	"age_at_exploitation":      {num: func(c *node.Case) **int { return &c.AgeAtExploitation }},
	"age_band_exploitation":    {str: func(c *node.Case) *string { return &c.AgeBandExploitation }},
	"majority_at_exploitation": {str: func(c *node.Case) *string { return &c.MajorityAtExploitation }},
	"citizenship":              {str: func(c *node.Case) *string { return &c.Citizenship }},
	"country_of_residence":     {str: func(c *node.Case) *string { return &c.CountryOfResidence }},
	"education":                {str: func(c *node.Case) *string { return &c.Education }},
	"marital_status":           {str: func(c *node.Case) *string { return &c.MaritalStatus }},
	"occupation_before":        {str: func(c *node.Case) *string { return &c.OccupationBefore }},

	"country_of_origin":         {str: func(c *node.Case) *string { return &c.CountryOfOrigin }},
	"transit_countries":         {list: func(c *node.Case) *[]string { return &c.TransitCountries }},
	"country_of_exploitation":   {str: func(c *node.Case) *string { return &c.CountryOfExploitation }},
	"recruitment_type":          {str: func(c *node.Case) *string { return &c.RecruitmentType }},
	"recruiter_relations":       {list: func(c *node.Case) *[]string { return &c.RecruiterRelations }},
	"means_of_control":          {list: func(c *node.Case) *[]string { return &c.MeansOfControl }},
	"months_in_exploitation":    {num: func(c *node.Case) **int { return &c.MonthsInExploitation }},
	"months_band":               {str: func(c *node.Case) *string { return &c.MonthsBand }},
	"exploitation_types":        {list: func(c *node.Case) *[]string { return &c.ExploitationTypes }},
	"labour_types":              {list: func(c *node.Case) *[]string { return &c.LabourTypes }},
	"sexual_exploitation_types": {list: func(c *node.Case) *[]string { return &c.SexualExploitationTypes }},

	"return_status":        {str: func(c *node.Case) *string { return &c.ReturnStatus }},
	"reintegration_status": {str: func(c *node.Case) *string { return &c.ReintegrationStatus }},

	"previously_trafficked": {str: func(c *node.Case) *string { return &c.PreviouslyTrafficked }},
	"retrafficked":          {str: func(c *node.Case) *string { return &c.Retrafficked }},

	"consent":      {str: func(c *node.Case) *string { return &c.Consent }},
	"consent_date": {date: func(c *node.Case) *node.Date { return &c.ConsentDate }},
}

// listSep joins the values of a list typed in one text box (aliases,
// identity documents, transit countries).
const listSep = "; "

// rawValue returns field f of c as a form holds it: codes as codes, lists
// of codes as codes, lists of text joined by listSep, numbers in decimal,
// unknown as "".
func rawValue(f *node.Field, c *node.Case) []string {
	a := fieldAccess[f.Name]
	switch {
	case a.str != nil:
		v := *a.str(c)
		if f.Type == node.TypeCode && v == node.CodeUnknown {
			v = ""
		}
		return []string{v}
	case a.date != nil:
		return []string{string(*a.date(c))}
	case a.num != nil:
		if p := *a.num(c); p != nil {
			return []string{strconv.Itoa(*p)}
		}
		return []string{""}
	case a.list != nil:
		l := *a.list(c)
		if f.Type == node.TypeCodes && !isCountryList(f) {
			return append([]string(nil), l...)
		}
		return []string{strings.Join(l, listSep)}
	}
	return nil
}

// displayValue returns field f of c for people: code labels, lists joined
// by commas, "" for unknown.
func displayValue(f *node.Field, c *node.Case) string {
	a := fieldAccess[f.Name]
	switch {
	case a.str != nil:
		v := *a.str(c)
		if f.Codes != nil {
			if v == "" || v == node.CodeUnknown {
				return ""
			}
			return f.Codes.Label(v)
		}
		return v
	case a.date != nil:
		return string(*a.date(c))
	case a.num != nil:
		if p := *a.num(c); p != nil {
			return strconv.Itoa(*p)
		}
		return ""
	case a.list != nil:
		l := *a.list(c)
		if f.Codes != nil {
			labels := make([]string, len(l))
			for i, v := range l {
				labels[i] = f.Codes.Label(v)
			}
			return strings.Join(labels, ", ")
		}
		return strings.Join(l, listSep)
	}
	return ""
}

func isCountryList(f *node.Field) bool {
	return f.Codes != nil && f.Codes.Name == "country"
}
