package casefile

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strings"

	"github.com/ctfed/ctfed/node"
)

// CTDC rows carry no case code. Each row's code is "CTDC-" and the first
// codeLen characters of the base32 HMAC-SHA256, under the node's key, of the
// row's canonical bytes and the row's occurrence index among identical rows
// of the file: identical rows (different victims with the same coarse
// values) get distinct codes, importing the same file again gives the same
// codes, and a code reveals nothing of the row without the key.
const (
	CTDCCodePrefix = "CTDC-"
	codeLen        = 20
	codeDomain     = "ctfed/ctdc-row/v1\x00"
	minKeyLen      = 16
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// isMissing reports whether a CTDC value says "unknown".
func isMissing(v string) bool {
	switch v {
	case "", "NULL", "null", "Null", "-99", "NA", "N/A", "NaN", "nan":
		return true
	}
	return false
}

// ctdcCol is how one CTDC column decodes: the node field it fills (for
// error messages) and its decoder.
type ctdcCol struct {
	field string
	dec   colFunc
}

// binary columns hold 1 for yes; empty, NULL, 0 or -99 for no or unknown.
func binCol(field string, set func(c *node.Case)) ctdcCol {
	return ctdcCol{field: field, dec: func(st *rowState, v string) string {
		switch strings.TrimSpace(v) {
		case "1", "1.0", "true", "TRUE", "True":
			if set != nil {
				set(st.c)
			}
			return ""
		case "0", "0.0", "false", "FALSE", "False":
			return ""
		}
		if isMissing(strings.TrimSpace(v)) {
			return ""
		}
		return "is not 1, 0 or empty"
	}}
}

func addMeans(code string) func(c *node.Case) {
	return func(c *node.Case) { c.MeansOfControl = append(c.MeansOfControl, code) }
}

func addExploit(codes ...string) func(c *node.Case) {
	return func(c *node.Case) { c.ExploitationTypes = append(c.ExploitationTypes, codes...) }
}

func addLabour(code string) func(c *node.Case) {
	return func(c *node.Case) { c.LabourTypes = append(c.LabourTypes, code) }
}

func addSex(code string) func(c *node.Case) {
	return func(c *node.Case) { c.SexualExploitationTypes = append(c.SexualExploitationTypes, code) }
}

func addRelation(code string) func(c *node.Case) {
	return func(c *node.Case) { c.RecruiterRelations = append(c.RecruiterRelations, code) }
}

func yearCol() ctdcCol {
	return ctdcCol{field: "registration_date", dec: func(st *rowState, v string) string {
		v = strings.TrimSuffix(strings.TrimSpace(v), ".0")
		if isMissing(v) {
			return "" // Validate reports the missing registration date
		}
		if len(v) != 4 || strings.Trim(v, "0123456789") != "" {
			return "is not a year"
		}
		st.c.RegistrationDate = node.Date(v)
		return ""
	}}
}

// isMissingLegacy reports whether a legacy CTDC value says "unknown": the
// legacy dataset also writes 0 or 00.
func isMissingLegacy(v string) bool { return isMissing(v) || v == "0" || v == "00" }

// lookupCol decodes a single-valued column through a table of the CTDC's
// values (compared case-insensitively, without spaces).
func lookupCol(field string, table map[string]string, want string, missing func(string) bool, set func(c *node.Case, code string)) ctdcCol {
	return ctdcCol{field: field, dec: func(st *rowState, v string) string {
		v = strings.TrimSpace(v)
		if missing(v) {
			return ""
		}
		code, ok := table[squash(v)]
		if !ok {
			return "is not " + want
		}
		set(st.c, code)
		return ""
	}}
}

// squash lower-cases v and drops everything but letters, digits and '+',
// so that "Family/Relative", "family relative" and "FamilyRelative" match.
func squash(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '+':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		}
	}
	return b.String()
}

var genderTable = map[string]string{
	"woman": "woman", "female": "woman", "man": "man", "male": "man",
	"transtransgendernonconforming": "trans_nonconforming", "transgender": "trans_nonconforming",
	"trans": "trans_nonconforming", "nonconforming": "trans_nonconforming",
	"transgendernonconforming": "trans_nonconforming",
}

var ageTable = map[string]string{
	"08": "0_8", "008": "0_8", "917": "9_17", "0917": "9_17", "1820": "18_20", "2123": "21_23",
	"2426": "24_26", "2729": "27_29", "3038": "30_38", "3947": "39_47", "48+": "48_plus",
}

var monthsTable = map[string]string{
	"012": "0_12", "01201yr": "0_12", "1324": "13_24", "132412yrs": "13_24", "25+": "25_plus", "25+2+yrs": "25_plus",
}

var majorityTable = map[string]string{"adult": "adult", "minor": "minor"}

func countryCol(field string, legacy bool, cb *node.Codebook, set func(c *node.Case, code string)) ctdcCol {
	want := "is not an ISO 3166-1 alpha-3 country code"
	if legacy {
		want = "is not an ISO 3166-1 alpha-2 country code"
	}
	return ctdcCol{field: field, dec: func(st *rowState, v string) string {
		v = strings.ToUpper(strings.TrimSpace(v))
		switch {
		case legacy && (v == "" || v == "NULL" || v == "-99" || v == "0" || v == "00"):
			return "" // unknown ("NA" is Namibia here)
		case !legacy && isMissing(v):
			return ""
		case len(v) == 3 && cb.Countries.Has(v):
			set(st.c, v)
			return ""
		case legacy && len(v) == 2:
			if a3, ok := cb.CountryFromAlpha2(v); ok {
				set(st.c, a3)
				return ""
			}
		}
		return want
	}}
}

// The CTDC 2024 columns' decoders.
func ctdcCols(cb *node.Codebook) map[string]ctdcCol {
	m := map[string]ctdcCol{
		"yearofregistration": yearCol(),
		"gender": lookupCol("gender", genderTable, "Man, Woman or Trans/Transgender/NonConforming", isMissing,
			func(c *node.Case, code string) { c.Gender = code }),
		"agebroad": lookupCol("age_band", ageTable, "an age band of the CTDC (0--8, 09--17, 18--20, ..., 48+)", isMissing,
			func(c *node.Case, code string) { c.AgeBand = code }),
		"citizenship":           countryCol("citizenship", false, cb, func(c *node.Case, code string) { c.Citizenship = code }),
		"countryofexploitation": countryCol("country_of_exploitation", false, cb, func(c *node.Case, code string) { c.CountryOfExploitation = code }),
		"traffickmonths": lookupCol("months_band", monthsTable, "a months band of the CTDC (0--12 (0-1 yr), 13--24 (1-2 yrs), 25+ (2+ yrs))", isMissing,
			func(c *node.Case, code string) { c.MonthsBand = code }),

		"meansdebtbondageearnings": binCol("means_of_control", addMeans("debt_bondage_earnings")),
		"meansthreats":             binCol("means_of_control", addMeans("threats")),
		"meansabusepsyphysex":      binCol("means_of_control", addMeans("abuse")),
		"meansfalsepromises":       binCol("means_of_control", addMeans("false_promises")),
		"meansdrugsalcohol":        binCol("means_of_control", addMeans("drugs_alcohol")),
		"meansdenybasicneeds":      binCol("means_of_control", addMeans("deny_basic_needs")),
		"meansexcessiveworkhours":  binCol("means_of_control", addMeans("excessive_hours")),
		"meanswithholddocs":        binCol("means_of_control", addMeans("withheld_documents")),
	}
	for k, v := range sharedCols() {
		m[k] = v
	}
	return m
}

// sharedCols are the binary columns the 2024 and legacy shapes share.
func sharedCols() map[string]ctdcCol {
	return map[string]ctdcCol{
		"isforcedlabour":                   binCol("exploitation_types", addExploit("forced_labour")),
		"issexualexploit":                  binCol("exploitation_types", addExploit("sexual")),
		"isotherexploit":                   binCol("exploitation_types", addExploit("other")),
		"typeoflabouragriculture":          binCol("labour_types", addLabour("agriculture")),
		"typeoflabourconstruction":         binCol("labour_types", addLabour("construction")),
		"typeoflabourdomesticwork":         binCol("labour_types", addLabour("domestic_work")),
		"typeoflabourhospitality":          binCol("labour_types", addLabour("hospitality")),
		"typeofsexprostitution":            binCol("sexual_exploitation_types", addSex("prostitution")),
		"typeofsexpornography":             binCol("sexual_exploitation_types", addSex("pornography")),
		"recruiterrelationintimatepartner": binCol("recruiter_relations", addRelation("intimate_partner")),
		"recruiterrelationfriend":          binCol("recruiter_relations", addRelation("friend")),
		"recruiterrelationfamily":          binCol("recruiter_relations", addRelation("family")),
		"recruiterrelationother":           binCol("recruiter_relations", addRelation("other")),
	}
}

// The legacy categories, keyed by their squashed names (a binary column's
// name after its prefix, or a label of a ...Concatenated column). A nil
// function is a category with no ctfed code (not specified, unknown).
var (
	legacyMeans = map[string]func(c *node.Case){
		"debtbondage":              addMeans("debt_bondage_earnings"),
		"takesearnings":            addMeans("debt_bondage_earnings"),
		"restrictsfinancialaccess": addMeans("debt_bondage_earnings"),
		"threats":                  addMeans("threats"),
		"useschildren":             addMeans("threats"),
		"threatoflawenforcement":   addMeans("threats"),
		"psychologicalabuse":       addMeans("abuse"),
		"physicalabuse":            addMeans("abuse"),
		"sexualabuse":              addMeans("abuse"),
		"falsepromises":            addMeans("false_promises"),
		"psychoactivesubstances":   addMeans("drugs_alcohol"),
		"restrictsmovement":        addMeans("other"),
		"restrictsmedicalcare":     addMeans("deny_basic_needs"),
		"withholdsnecessities":     addMeans("deny_basic_needs"),
		"excessiveworkinghours":    addMeans("excessive_hours"),
		"withholdsdocuments":       addMeans("withheld_documents"),
		"other":                    addMeans("other"),
		"notspecified":             nil,
	}
	legacyExploit = map[string]func(c *node.Case){
		"forcedlabour":               addExploit("forced_labour"),
		"sexualexploit":              addExploit("sexual"),
		"sexualexploitation":         addExploit("sexual"),
		"otherexploit":               addExploit("other"),
		"other":                      addExploit("other"),
		"sexandlabour":               addExploit("sexual", "forced_labour"),
		"forcedmarriage":             addExploit("forced_marriage"),
		"forcedmilitary":             addExploit("forced_military"),
		"organremoval":               addExploit("organ_removal"),
		"slaveryandpractices":        addExploit("slavery_like"),
		"slaveryandsimilarpractices": addExploit("slavery_like"),
		"notspecified":               nil,
	}
	legacyLabour = map[string]func(c *node.Case){
		"agriculture":       addLabour("agriculture"),
		"aquafarming":       addLabour("fishing"),
		"begging":           addExploit("begging"),
		"construction":      addLabour("construction"),
		"domesticwork":      addLabour("domestic_work"),
		"hospitality":       addLabour("hospitality"),
		"illicitactivities": addExploit("forced_criminality"),
		"manufacturing":     addLabour("manufacturing"),
		"miningordrilling":  addLabour("mining"),
		"peddling":          addLabour("other"),
		"transportation":    addLabour("other"),
		"other":             addLabour("other"),
		"notspecified":      nil,
	}
	legacySex = map[string]func(c *node.Case){
		"prostitution":                addSex("prostitution"),
		"pornography":                 addSex("pornography"),
		"remoteinteractiveservices":   addSex("other"),
		"privatesexualservices":       addSex("other"),
		"other":                       addSex("other"),
		"notspecified":                nil,
		"unknown":                     nil,
		"remoteinteractivesexservice": addSex("other"),
	}
	legacyRelation = map[string]func(c *node.Case){
		"intimatepartner": addRelation("intimate_partner"),
		"friend":          addRelation("friend"),
		"family":          addRelation("family"),
		"familyrelative":  addRelation("family"),
		"relative":        addRelation("family"),
		"other":           addRelation("other"),
		"unknown":         nil,
		"notspecified":    nil,
	}
)

var dataSourceTable = map[string]string{
	"casemanagement": "assistance_case", "case": "assistance_case", "hotline": "hotline_report",
}

// legacyCols returns the legacy shape's decoders.
func legacyCols(cb *node.Codebook) map[string]ctdcCol {
	m := map[string]ctdcCol{
		"yearofregistration": yearCol(),
		"datasource": {field: "data_source", dec: func(st *rowState, v string) string {
			v = strings.TrimSpace(v)
			if isMissingLegacy(v) {
				return ""
			}
			if code, ok := dataSourceTable[squash(v)]; ok {
				st.c.DataSource = code
			} else {
				st.c.DataSource = "other"
			}
			return ""
		}},
		"gender": lookupCol("gender", genderTable, "Female or Male", isMissingLegacy,
			func(c *node.Case, code string) { c.Gender = code }),
		"agebroad": lookupCol("age_band", ageTable, "an age band of the CTDC (0--8, 9--17, 18--20, ..., 48+)", isMissingLegacy,
			func(c *node.Case, code string) { c.AgeBand = code }),
		"majoritystatus": lookupCol("majority", majorityTable, "Adult or Minor", isMissingLegacy,
			func(c *node.Case, code string) { c.Majority = code }),
		"majoritystatusatexploit": lookupCol("majority_at_exploitation", majorityTable, "Adult or Minor", isMissingLegacy,
			func(c *node.Case, code string) { c.MajorityAtExploitation = code }),
		"citizenship":              countryCol("citizenship", true, cb, func(c *node.Case, code string) { c.Citizenship = code }),
		"countryofexploitation":    countryCol("country_of_exploitation", true, cb, func(c *node.Case, code string) { c.CountryOfExploitation = code }),
		"isabduction":              binCol("recruitment_type", func(c *node.Case) { c.RecruitmentType = "abduction" }),
		"issexandlabour":           binCol("exploitation_types", addExploit("sexual", "forced_labour")),
		"isforcedmarriage":         binCol("exploitation_types", addExploit("forced_marriage")),
		"isforcedmilitary":         binCol("exploitation_types", addExploit("forced_military")),
		"isorganremoval":           binCol("exploitation_types", addExploit("organ_removal")),
		"isslaveryandpractices":    binCol("exploitation_types", addExploit("slavery_like")),
		"recruiterrelationunknown": binCol("recruiter_relations", nil),
	}
	for k, v := range sharedCols() {
		m[k] = v
	}
	groups := []struct {
		prefix, field string
		table         map[string]func(c *node.Case)
	}{
		{"meansofcontrol", "means_of_control", legacyMeans},
		{"typeoflabour", "labour_types", legacyLabour},
		{"typeofsex", "sexual_exploitation_types", legacySex},
	}
	for _, g := range groups {
		for k, set := range g.table {
			if _, done := m[g.prefix+k]; !done {
				m[g.prefix+k] = binCol(g.field, set)
			}
		}
		m[g.prefix+"concatenated"] = labelsCol(g.field, g.prefix+"Concatenated", g.table)
	}
	m["typeofexploitconcatenated"] = labelsCol("exploitation_types", "typeOfExploitConcatenated", legacyExploit)
	m["recruiterrelationship"] = labelsCol("recruiter_relations", "RecruiterRelationship", legacyRelation)
	return m
}

// labelsCol decodes a ';'-separated list of the CTDC's category labels.
// Labels ctfed does not know are noted (rowState.labels), not refused.
func labelsCol(field, col string, table map[string]func(c *node.Case)) ctdcCol {
	return ctdcCol{field: field, dec: func(st *rowState, v string) string {
		if isMissing(strings.TrimSpace(v)) {
			return ""
		}
		for _, l := range strings.Split(v, ";") {
			l = strings.TrimSpace(l)
			if isMissing(l) {
				continue
			}
			set, ok := table[squash(l)]
			if !ok {
				st.labels = append(st.labels, label{col: col, label: l})
				continue
			}
			if set != nil {
				set(st.c)
			}
		}
		return ""
	}}
}

// ignoredLegacy are legacy columns ctfed reads but has no field for.
var ignoredLegacy = map[string]string{
	"majorityentry": "majorityEntry (minor or adult at entry into trafficking) has no ctfed field and was not imported",
}

func newCTDCShape(f Format, header []string, opt *ReadOptions) (*shape, error) {
	if len(opt.HMACKey) < minKeyLen {
		return nil, fmt.Errorf("CTDC rows carry no case code: deriving one needs the node's HMAC key (at least %d bytes)", minKeyLen)
	}
	cb := opt.Codebook
	sh := &shape{
		header:   header,
		cols:     make([]colFunc, len(header)),
		fieldOf:  make([]string, len(header)),
		identity: make([]bool, len(header)),
		fieldCol: map[string]string{"case_code": "(derived case code)", "consent": "(default consent)"},
	}
	unknownLabels := map[string][]string{}
	unknownCount := map[string]int{}
	var labelCols []string
	noteLabel := func(col, label string) {
		if unknownCount[col] == 0 {
			labelCols = append(labelCols, col)
		}
		unknownCount[col]++
		if len(unknownLabels[col]) < 5 && !slices.Contains(unknownLabels[col], label) {
			unknownLabels[col] = append(unknownLabels[col], truncate(label, 40))
		}
	}
	var cols map[string]ctdcCol
	if f == FormatCTDCLegacy {
		cols = legacyCols(cb)
		sh.note = noteLabel
	} else {
		cols = ctdcCols(cb)
	}
	var ignored, unused []string
	hasYear := false
	for i, h := range header {
		n := strings.ToLower(h)
		if n == "yearofregistration" {
			hasYear = true
		}
		c, ok := cols[n]
		switch {
		case ok:
			sh.cols[i] = c.dec
			sh.fieldOf[i] = c.field
			if _, set := sh.fieldCol[c.field]; !set {
				sh.fieldCol[c.field] = h
			}
		case f == FormatCTDCLegacy && ignoredLegacy[n] != "":
			unused = append(unused, ignoredLegacy[n])
		case h == "":
			ignored = append(ignored, fmt.Sprintf("(column %d has no name)", i+1))
		default:
			ignored = append(ignored, truncate(h, 40))
		}
	}
	if !hasYear {
		return nil, fmt.Errorf("the header has no yearOfRegistration column, which the %s shape requires", f)
	}

	// The canonical bytes of a row: the digest of the lower-cased column
	// names in sorted order, then each column's trimmed value in that order
	// ("NULL" as empty), each prefixed by its length. Neither the order of the
	// columns nor the spelling of NULL changes a code.
	order := make([]int, len(header))
	lower := make([]string, len(header))
	for i := range order {
		order[i] = i
		lower[i] = strings.ToLower(header[i])
	}
	sort.SliceStable(order, func(a, b int) bool { return lower[order[a]] < lower[order[b]] })
	hh := sha256.New()
	for _, i := range order {
		hh.Write([]byte(lower[i]))
		hh.Write([]byte{0x1f})
	}
	prefix := hh.Sum(nil)
	canonical := func(buf []byte, fields []string) []byte {
		buf = append(buf[:0], prefix...)
		for _, i := range order {
			v := strings.TrimSpace(fields[i])
			if strings.EqualFold(v, "NULL") {
				v = ""
			}
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		}
		return buf
	}
	// Occurrences are counted in file order, as rows are read; the codes
	// are derived as rows are decoded, on several rows at once.
	occurrences := make(map[[16]byte]uint32)
	var orderBuf []byte
	sh.order = func(fields []string) uint32 {
		orderBuf = canonical(orderBuf, fields)
		sum := sha256.Sum256(orderBuf)
		var key [16]byte
		copy(key[:], sum[:])
		occ := occurrences[key]
		occurrences[key] = occ + 1
		return occ
	}
	key := opt.HMACKey
	consent := opt.DefaultConsent
	sh.finish = func(st *rowState, fields []string) {
		if st.mac == nil {
			st.mac = hmac.New(sha256.New, key)
		}
		st.buf = canonical(st.buf, fields)
		st.c.Code = deriveCode(st.mac, st.buf, st.occ)
		st.c.Consent = consent
	}
	sh.notes = func() []string {
		var notes []string
		if len(ignored) > 0 {
			notes = append(notes, fmt.Sprintf("ignored %d column(s) the %s shape does not use: %s", len(ignored), f, strings.Join(ignored, ", ")))
		}
		notes = append(notes, unused...)
		for _, col := range labelCols {
			notes = append(notes, fmt.Sprintf("%s: %d label(s) ctfed does not know were ignored (%s)", col, unknownCount[col],
				strings.Join(unknownLabels[col], ", ")))
		}
		return notes
	}
	return sh, nil
}

// deriveCode returns the case code of a CTDC row from its canonical bytes
// and its occurrence index among identical rows.
func deriveCode(mac hash.Hash, canonical []byte, occ uint32) string {
	mac.Reset()
	mac.Write([]byte(codeDomain))
	mac.Write(canonical)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(occ))
	mac.Write(n[:])
	return CTDCCodePrefix + b32.EncodeToString(mac.Sum(nil))[:codeLen]
}
