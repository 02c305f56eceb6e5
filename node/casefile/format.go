package casefile

import (
	"fmt"
	"strings"

	"github.com/ctfed/ctfed/node"
)

// Format is the shape of a case file: which columns it has and how their
// values are written.
type Format string

// The formats. The empty Format asks Read to detect the shape from the
// header.
const (
	// FormatCtfed is ctfed's own full shape: one column per codebook field,
	// named as the field (node.Field.Name).
	FormatCtfed Format = "ctfed"
	// FormatCTDC is the CTDC 2024 global synthetic dataset's 27 columns.
	FormatCTDC Format = "ctdc"
	// FormatCTDCLegacy is the legacy CTDC global dataset's 63 columns.
	FormatCTDCLegacy Format = "ctdc-legacy"
)

// Formats returns the formats Read accepts, for help texts and forms.
func Formats() []Format { return []Format{FormatCtfed, FormatCTDC, FormatCTDCLegacy} }

// ParseFormat returns the format named s ("" for automatic detection).
// Returns Invalid for any other name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "", "auto":
		return "", nil
	case FormatCtfed, FormatCTDC, FormatCTDCLegacy:
		return f, nil
	case "legacy":
		return FormatCTDCLegacy, nil
	}
	return "", node.E("parse format", node.Invalid, "unknown file format %q (want %s, %s or %s)", s, FormatCtfed, FormatCTDC, FormatCTDCLegacy)
}

// ctdcColumns are the CTDC 2024 global synthetic dataset's 27 columns, in
// file order.
var ctdcColumns = []string{
	"yearOfRegistration", "gender", "ageBroad", "citizenship", "CountryOfExploitation", "traffickMonths",
	"meansDebtBondageEarnings", "meansThreats", "meansAbusePsyPhySex", "meansFalsePromises",
	"meansDrugsAlcohol", "meansDenyBasicNeeds", "meansExcessiveWorkHours", "meansWithholdDocs",
	"isForcedLabour", "isSexualExploit", "isOtherExploit",
	"typeOfLabourAgriculture", "typeOfLabourConstruction", "typeOfLabourDomesticWork", "typeOfLabourHospitality",
	"typeOfSexProstitution", "typeOfSexPornography",
	"recruiterRelationIntimatePartner", "recruiterRelationFriend", "recruiterRelationFamily", "recruiterRelationOther",
}

// legacyColumns are the legacy CTDC global dataset's 63 columns, in file
// order.
var legacyColumns = []string{
	"yearOfRegistration", "Datasource", "gender", "ageBroad", "majorityStatus", "majorityStatusAtExploit",
	"majorityEntry", "citizenship",
	"meansOfControlDebtBondage", "meansOfControlTakesEarnings", "meansOfControlRestrictsFinancialAccess",
	"meansOfControlThreats", "meansOfControlPsychologicalAbuse", "meansOfControlPhysicalAbuse",
	"meansOfControlSexualAbuse", "meansOfControlFalsePromises", "meansOfControlPsychoactiveSubstances",
	"meansOfControlRestrictsMovement", "meansOfControlRestrictsMedicalCare", "meansOfControlExcessiveWorkingHours",
	"meansOfControlUsesChildren", "meansOfControlThreatOfLawEnforcement", "meansOfControlWithholdsNecessities",
	"meansOfControlWithholdsDocuments", "meansOfControlOther", "meansOfControlNotSpecified", "meansOfControlConcatenated",
	"isForcedLabour", "isSexualExploit", "isOtherExploit", "isSexAndLabour", "isForcedMarriage", "isForcedMilitary",
	"isOrganRemoval", "isSlaveryAndPractices", "typeOfExploitConcatenated",
	"typeOfLabourAgriculture", "typeOfLabourAquafarming", "typeOfLabourBegging", "typeOfLabourConstruction",
	"typeOfLabourDomesticWork", "typeOfLabourHospitality", "typeOfLabourIllicitActivities", "typeOfLabourManufacturing",
	"typeOfLabourMiningOrDrilling", "typeOfLabourPeddling", "typeOfLabourTransportation", "typeOfLabourOther",
	"typeOfLabourNotSpecified", "typeOfLabourConcatenated",
	"typeOfSexProstitution", "typeOfSexPornography", "typeOfSexRemoteInteractiveServices",
	"typeOfSexPrivateSexualServices", "typeOfSexConcatenated",
	"isAbduction", "RecruiterRelationship", "CountryOfExploitation",
	"recruiterRelationIntimatePartner", "recruiterRelationFriend", "recruiterRelationFamily",
	"recruiterRelationOther", "recruiterRelationUnknown",
}

// CTDCColumns returns the CTDC 2024 dataset's 27 column names, in file order.
func CTDCColumns() []string { return append([]string(nil), ctdcColumns...) }

// LegacyColumns returns the legacy CTDC dataset's 63 column names, in file
// order.
func LegacyColumns() []string { return append([]string(nil), legacyColumns...) }

// ctfedColumns returns ctfed's column names for cb, in field order.
func ctfedColumns(cb *node.Codebook, withIdentity bool) []string {
	out := make([]string, 0, len(cb.Fields))
	for _, f := range cb.Fields {
		if f.Identity && !withIdentity {
			continue
		}
		out = append(out, f.Name)
	}
	return out
}

func lowerSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

var (
	ctdcSet   = lowerSet(ctdcColumns)
	legacySet = lowerSet(legacyColumns)
)

// detectFormat returns the shape of a file from its header.
func detectFormat(header []string) (Format, error) {
	var hasCode, hasYear bool
	var ctdcOnly, legacyOnly int
	for _, h := range header {
		n := strings.ToLower(strings.TrimSpace(h))
		switch {
		case n == "case_code":
			hasCode = true
		case n == "yearofregistration":
			hasYear = true
		case ctdcSet[n] && !legacySet[n]:
			ctdcOnly++
		case legacySet[n] && !ctdcSet[n]:
			legacyOnly++
		}
	}
	switch {
	case hasCode:
		return FormatCtfed, nil
	case hasYear && legacyOnly > ctdcOnly:
		return FormatCTDCLegacy, nil
	case hasYear:
		return FormatCTDC, nil
	}
	return "", fmt.Errorf("the header is not one ctfed reads: want ctfed's columns (case_code, registration_date, ...), "+
		"the CTDC 2024 columns (%s, %s, %s, ...) or the legacy CTDC columns (%s, %s, %s, ...); got %s",
		ctdcColumns[0], ctdcColumns[1], ctdcColumns[2], legacyColumns[0], legacyColumns[1], legacyColumns[2], quoteList(header, 8))
}

// quoteList returns up to n names, quoted and truncated, for a message.
func quoteList(names []string, n int) string {
	var b strings.Builder
	for i, s := range names {
		if i == n {
			fmt.Fprintf(&b, ", ... (%d columns)", len(names))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(fmt.Sprintf("%q", truncate(s, 40)))
	}
	if len(names) == 0 {
		return "no columns"
	}
	return b.String()
}
