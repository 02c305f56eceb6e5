package node_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

func mustParse(tb testing.TB, sql string) *node.Query {
	tb.Helper()
	q, err := node.ParseSQL(node.DefaultCodebook(), sql)
	if err != nil {
		tb.Fatalf("ParseSQL(%q): %v", sql, err)
	}
	return q
}

func TestParseSQL(t *testing.T) {
	cb := node.DefaultCodebook()
	tests := []struct {
		name string
		sql  string
		want node.Query
	}{
		{"Count", "SELECT COUNT(*) FROM cases", node.Query{Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"}}},
		{"DesignExample", `SELECT COUNT(*) FROM cases
WHERE registration_year BETWEEN 2020 AND 2024 AND gender = 'woman'
GROUP BY citizenship, exploitation_type`, node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"},
			GroupBy: []string{"citizenship", "exploitation_type"},
			Filters: []node.Filter{
				{Dim: "gender", Codes: []string{"woman"}},
				{Dim: "registration_year", Codes: []string{"2020", "2021", "2022", "2023", "2024"}},
			},
		}},
		{"LowerCaseAndSemicolon", "select sum(Age) from CASES where Gender in ('man','woman') group by majority;", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "SUM", Field: "age"},
			GroupBy: []string{"majority"},
			Filters: []node.Filter{{Dim: "gender", Codes: []string{"woman", "man"}}},
		}},
		{"Quantile", "SELECT QUANTILE(months_in_exploitation, 0.9) FROM cases GROUP BY months_band", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "QUANTILE", Field: "months_in_exploitation", Q: 0.9},
			GroupBy: []string{"months_band"},
		}},
		{"AvgQuotedYears", "SELECT AVG(services_count) FROM cases WHERE registration_year IN ('2021', 2020)", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "AVG", Field: "services_count"},
			Filters: []node.Filter{{Dim: "registration_year", Codes: []string{"2020", "2021"}}},
		}},
		{"AgeBandBetween", "SELECT COUNT(*) FROM cases WHERE age_band BETWEEN '18_20' AND '24_26'", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"},
			Filters: []node.Filter{{Dim: "age_band", Codes: []string{"18_20", "21_23", "24_26"}}},
		}},
		{"YearRangeClipped", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 1990 AND 2001", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"},
			Filters: []node.Filter{{Dim: "registration_year", Codes: []string{"2000", "2001"}}},
		}},
		{"SingleValuedIntersection", "SELECT COUNT(*) FROM cases WHERE gender IN ('woman','man') AND gender IN ('man','unknown')", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"},
			Filters: []node.Filter{{Dim: "gender", Codes: []string{"man"}}},
		}},
		{"MultiValuedSubset", "SELECT COUNT(*) FROM cases WHERE exploitation_type IN ('sexual','begging') AND exploitation_type = 'sexual'", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"},
			Filters: []node.Filter{{Dim: "exploitation_type", Codes: []string{"sexual"}}},
		}},
		{"FullDomainDropped", "SELECT COUNT(*) FROM cases WHERE majority IN ('minor','adult','unknown') AND registration_year BETWEEN 1900 AND 2100", node.Query{
			Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"},
		}},
		{"Comment", "SELECT COUNT(*) -- all of them\nFROM cases", node.Query{Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := node.ParseSQL(cb, tt.sql)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestParseSQLErrors(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string // fragments of the message
	}{
		// Syntax.
		{"Empty", "", []string{"at 1:1", "expected SELECT, found end of query"}},
		{"Misspelt", "SELECT COUNT(*) FROM cases GROPU BY gender", []string{"at 1:28", "expected WHERE, GROUP BY or end of query, found 'GROPU'"}},
		{"SecondLine", "SELECT COUNT(*)\nFROM cases\nWHERE gender = 'woman' OR gender = 'man'", []string{"at 3:24", "expected AND, GROUP BY or end of query, found 'OR'"}},
		{"NoFrom", "SELECT COUNT(*) cases", []string{"at 1:17", "expected FROM"}},
		{"OtherTable", "SELECT COUNT(*) FROM victims", []string{"expected cases, found 'victims'"}},
		{"CountField", "SELECT COUNT(age) FROM cases", []string{"expected '*', found 'age'"}},
		{"NoMeasure", "SELECT gender FROM cases", []string{"expected COUNT, SUM, AVG or QUANTILE, found 'gender'"}},
		{"QuantileNoQ", "SELECT QUANTILE(age) FROM cases", []string{"expected ','"}},
		{"Unterminated", "SELECT COUNT(*) FROM cases WHERE gender = 'woman", []string{"at 1:43", "unterminated string"}},
		{"DoubleQuotes", `SELECT COUNT(*) FROM cases WHERE gender = "woman"`, []string{"single quotes"}},
		{"BadCharacter", "SELECT COUNT(*) FROM cases WHERE gender <> 'man'", []string{"at 1:41", "unexpected character '<'"}},
		{"UnquotedCode", "SELECT COUNT(*) FROM cases WHERE gender = woman", []string{"expected a quoted code ('woman'), found 'woman'"}},
		{"UnquotedBand", "SELECT COUNT(*) FROM cases WHERE age_band = 9_17", []string{"a quoted code ('9_17')"}},
		{"EmptyIn", "SELECT COUNT(*) FROM cases WHERE gender IN ()", []string{"expected a quoted code, found ')'"}},
		{"TrailingComma", "SELECT COUNT(*) FROM cases GROUP BY gender,", []string{"expected a dimension, found end of query"}},
		{"Trailing", "SELECT COUNT(*) FROM cases; SELECT", []string{"found 'SELECT'"}},
		{"NoOperator", "SELECT COUNT(*) FROM cases WHERE gender LIKE 'w%'", []string{"expected =, IN or BETWEEN, found 'LIKE'"}},
		{"InvalidUTF8", "SELECT COUNT(*) FROM cases WHERE gender = '\xff'", []string{"not valid UTF-8"}},
		{"TooLong", "SELECT COUNT(*) FROM cases" + strings.Repeat(" ", node.MaxQueryLen), []string{"too long"}},

		// Fields that can never be queried.
		{"IdentityGroup", "SELECT COUNT(*) FROM cases GROUP BY full_name", []string{"full_name is an identity field: it can never be queried"}},
		{"IdentityFilter", "SELECT COUNT(*) FROM cases WHERE phone = '1'", []string{"phone is an identity field"}},
		{"IdentityDate", "SELECT COUNT(*) FROM cases WHERE date_of_birth = '2001'", []string{"date_of_birth is an identity field"}},
		{"IdentityMeasure", "SELECT AVG(narrative) FROM cases", []string{"narrative is an identity field"}},
		{"FreeText", "SELECT COUNT(*) FROM cases GROUP BY caseworker", []string{"caseworker is free text: it can never be queried"}},
		{"CaseCode", "SELECT COUNT(*) FROM cases WHERE case_code = 'C-1'", []string{"case_code is free text"}},
		{"ExactDate", "SELECT COUNT(*) FROM cases GROUP BY registration_date", []string{"registration_date is an exact date", "registration_year"}},
		{"ConsentDate", "SELECT SUM(consent_date) FROM cases", []string{"consent_date is an exact date"}},

		// Unknown names.
		{"UnknownDimension", "SELECT COUNT(*) FROM cases GROUP BY foo", []string{`unknown dimension "foo"`}},
		{"Suggestion", "SELECT COUNT(*) FROM cases GROUP BY citizenshp", []string{`unknown dimension "citizenshp" (did you mean "citizenship"?)`}},
		{"FieldNotDimension", "SELECT COUNT(*) FROM cases GROUP BY transit_countries", []string{`transit_countries is not a query dimension (did you mean "transit_country"?)`}},
		{"NotQueryDimension", "SELECT COUNT(*) FROM cases WHERE status = 'closed'", []string{"status is not a query dimension"}},
		{"MeasureAsDimension", "SELECT COUNT(*) FROM cases GROUP BY age", []string{"age is a measure, not a dimension (group by age_band)"}},
		{"DimensionAsMeasure", "SELECT SUM(gender) FROM cases", []string{"gender is a dimension, not a measure"}},
		{"UnknownMeasure", "SELECT AVG(ages) FROM cases", []string{`unknown measure field "ages" (did you mean "age"?)`}},

		// Codes.
		{"UnknownCode", "SELECT COUNT(*) FROM cases WHERE gender = 'female'", []string{"unknown code 'female' for gender", "codes: woman, man"}},
		{"CodeCase", "SELECT COUNT(*) FROM cases WHERE gender = 'Woman'", []string{"did you mean 'woman'?"}},
		{"Alpha2", "SELECT COUNT(*) FROM cases WHERE citizenship = 'FR'", []string{"unknown code 'FR' for citizenship (did you mean 'FRA'?)"}},
		{"CountryName", "SELECT COUNT(*) FROM cases WHERE country_of_exploitation IN ('france')", []string{"did you mean 'FRA'?"}},
		{"CountryUnknown", "SELECT COUNT(*) FROM cases WHERE transit_country = 'XXXX'", []string{"unknown code 'XXXX' for transit_country", "alpha-3"}},
		{"NoneRecordedSingle", "SELECT COUNT(*) FROM cases WHERE gender = 'none_recorded'", []string{"unknown code 'none_recorded' for gender"}},
		{"NumberCode", "SELECT COUNT(*) FROM cases WHERE gender = 1", []string{"gender takes quoted codes", "found the number 1"}},
		{"YearOutside", "SELECT COUNT(*) FROM cases WHERE registration_year = 1999", []string{"unknown code '1999' for registration_year (years 2000–2030)"}},
		{"YearRangeOutside", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 1980 AND 1990", []string{"no registration year of codebook"}},
		{"YearRangeNotYear", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 'x' AND 2020", []string{"BETWEEN takes years, found 'x'"}},
		{"BetweenUnordered", "SELECT COUNT(*) FROM cases WHERE gender BETWEEN 'man' AND 'woman'", []string{"BETWEEN needs an ordered dimension", "gender is not ordered"}},
		{"BetweenReversed", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2024 AND 2020", []string{"empty range: 2024 is after 2020"}},
		{"BetweenBandsReversed", "SELECT COUNT(*) FROM cases WHERE months_band BETWEEN '25_plus' AND '0_12'", []string{"empty range"}},
		{"BetweenUnknown", "SELECT COUNT(*) FROM cases WHERE age_band BETWEEN '48_plus' AND 'unknown'", []string{"unknown has no place in the order of age_band"}},

		// Shape.
		{"TooManyGroups", "SELECT COUNT(*) FROM cases GROUP BY gender, majority, age_band, months_band", []string{"GROUP BY takes at most 3 dimensions, found 4"}},
		{"DuplicateGroup", "SELECT COUNT(*) FROM cases GROUP BY gender, GENDER", []string{"GROUP BY names gender twice"}},
		{"QuantileZero", "SELECT QUANTILE(age, 0) FROM cases", []string{"q must be between 0 and 1 (exclusive), found 0"}},
		{"QuantileOne", "SELECT QUANTILE(age, 1) FROM cases", []string{"found 1"}},
		{"QuantileBig", "SELECT QUANTILE(age, 1.5) FROM cases", []string{"found 1.5"}},
		{"ConflictSingle", "SELECT COUNT(*) FROM cases WHERE gender = 'woman' AND gender = 'man'", []string{"the conditions on gender exclude every code"}},
		{"ConflictMulti", "SELECT COUNT(*) FROM cases WHERE exploitation_type = 'sexual' AND exploitation_type = 'begging'", []string{"exploitation_type has two conditions that cannot be combined"}},
		{"HistogramTooLarge", "SELECT QUANTILE(months_in_exploitation, 0.5) FROM cases GROUP BY citizenship, gender, majority", []string{"histogram bins", "the limit is 1000000 bins"}},
	}
	cb := node.DefaultCodebook()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := node.ParseSQL(cb, tt.sql)
			if err == nil {
				t.Fatalf("got %v, want an error", q.Canonical())
			}
			if got := node.KindOf(err); got != node.Invalid {
				t.Errorf("got kind %v, want %v (%v)", got, node.Invalid, err)
			}
			for _, frag := range tt.want {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("got %q, want it to contain %q", err.Error(), frag)
				}
			}
		})
	}
}

func TestCheckMaxCells(t *testing.T) {
	cb := node.DefaultCodebook()
	tests := []struct {
		name     string
		sql      string
		maxCells int
		want     string // "" for no error
	}{
		{"Default", "SELECT COUNT(*) FROM cases GROUP BY citizenship, country_of_exploitation", 0, "the query asks for 62500 cells; the limit is 20000"},
		{"WithinDefault", "SELECT COUNT(*) FROM cases GROUP BY citizenship, exploitation_type", 0, ""},
		{"Policy", "SELECT COUNT(*) FROM cases GROUP BY citizenship, exploitation_type", 100, "the query asks for 2500 cells; the limit is 100"},
		{"FilterRestricts", "SELECT COUNT(*) FROM cases WHERE citizenship IN ('FRA','DEU') GROUP BY citizenship, country_of_exploitation", 0, ""},
		{"ThreeDims", "SELECT COUNT(*) FROM cases GROUP BY registration_year, gender, transit_country", 0, "the query asks for 31000 cells; the limit is 20000"},
		{"Exact", "SELECT COUNT(*) FROM cases GROUP BY gender, majority", 12, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.sql)
			err := q.Check(cb, tt.maxCells)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if node.KindOf(err) != node.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v (%v), want Invalid %q", err, node.KindOf(err), tt.want)
			}
		})
	}
}

func TestCheckCanonical(t *testing.T) {
	cb := node.DefaultCodebook()
	tests := []struct {
		name string
		q    node.Query
	}{
		{"UnsortedFilters", node.Query{Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"}, Filters: []node.Filter{
			{Dim: "registration_year", Codes: []string{"2020"}}, {Dim: "gender", Codes: []string{"man"}}}}},
		{"UnsortedCodes", node.Query{Codebook: cb.Version, Measure: node.Measure{Func: "COUNT"}, Filters: []node.Filter{
			{Dim: "gender", Codes: []string{"man", "woman"}}}}},
		{"LowerFunc", node.Query{Codebook: cb.Version, Measure: node.Measure{Func: "count"}}},
		{"NoCodebook", node.Query{Measure: node.Measure{Func: "COUNT"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Check(cb, 0)
			if node.KindOf(err) != node.Invalid || !strings.Contains(err.Error(), "canonical form") {
				t.Errorf("got %v, want Invalid about the canonical form", err)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		q := mustParse(t, "SELECT COUNT(*) FROM cases WHERE gender IN ('man','woman') GROUP BY exploitation_type")
		if err := q.Check(cb, 0); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("WrongCodebook", func(t *testing.T) {
		q := node.Query{Codebook: "1999.1", Measure: node.Measure{Func: "COUNT"}}
		if err := q.Check(cb, 0); node.KindOf(err) != node.Invalid || !strings.Contains(err.Error(), `codebook "1999.1"`) {
			t.Errorf("got %v, want Invalid naming the codebook", err)
		}
	})
}

// roundTripSQL are queries in every shape the language has.
var roundTripSQL = []string{
	"SELECT COUNT(*) FROM cases",
	"SELECT COUNT(*) FROM cases WHERE gender = 'woman' AND registration_year BETWEEN 2020 AND 2024 GROUP BY citizenship, exploitation_type",
	"SELECT SUM(age) FROM cases WHERE age_band IN ('0_8', '18_20', 'unknown') GROUP BY gender",
	"SELECT AVG(months_in_exploitation) FROM cases WHERE months_band BETWEEN '0_12' AND '13_24' GROUP BY months_band",
	"SELECT QUANTILE(age_at_exploitation, 0.25) FROM cases GROUP BY age_band_exploitation",
	"SELECT QUANTILE(age, 0.000001) FROM cases",
	"SELECT COUNT(*) FROM cases WHERE registration_year IN (2000, 2002, 2003) AND transit_country IN ('AFG', 'none_recorded')",
	"SELECT COUNT(*) FROM cases WHERE recruiter_relation IN ('friend', 'unknown') GROUP BY registration_year, recruiter_relation, trafficker_sex",
	"SELECT COUNT(*) FROM cases WHERE trafficker_nationality = 'unknown' AND trafficker_role IN ('recruiter', 'none_recorded')",
	"SELECT AVG(services_count) FROM cases WHERE assistance_service IN ('shelter', 'legal') AND data_source = 'hotline_report' GROUP BY assistance_service",
	"SELECT COUNT(*) FROM cases WHERE age_band BETWEEN '0_8' AND '48_plus'",
	"SELECT COUNT(*) FROM cases WHERE majority = 'minor' AND previously_trafficked = 'yes' AND recruitment_type = 'abduction' AND retrafficked IN ('no', 'unknown') GROUP BY country_of_origin, country_of_residence",
	"SELECT COUNT(*) FROM cases WHERE labour_type = 'fishing' AND means_of_control IN ('threats', 'abuse') AND sexual_exploitation_type = 'none_recorded'",
}

func TestRoundTrip(t *testing.T) {
	cb := node.DefaultCodebook()
	for _, sql := range roundTripSQL {
		t.Run(sql, func(t *testing.T) {
			q := mustParse(t, sql)
			c := q.Canonical()
			if c != sql {
				t.Errorf("got canonical %q, want %q", c, sql)
			}
			q2, err := node.ParseSQL(cb, c)
			if err != nil {
				t.Fatalf("reparse %q: %v", c, err)
			}
			if !reflect.DeepEqual(q, q2) {
				t.Errorf("got %+v, want %+v", q2, q)
			}
			if err := q2.Check(cb, 1_000_000); err != nil {
				t.Errorf("Check: got %v, want nil", err)
			}
		})
	}
}

func TestCanonicalEquivalence(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"CaseAndSpace", "select count(*) from cases where GENDER='woman'", "SELECT  COUNT( * )\n\tFROM cases WHERE gender = 'woman' ;"},
		{"InOrder", "SELECT COUNT(*) FROM cases WHERE citizenship IN ('FRA','DEU')", "SELECT COUNT(*) FROM cases WHERE citizenship IN ('DEU','FRA','DEU')"},
		{"BetweenIsIn", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2022", "SELECT COUNT(*) FROM cases WHERE registration_year IN ('2022', 2021, 2020)"},
		{"EqualsIsIn", "SELECT COUNT(*) FROM cases WHERE gender = 'man'", "SELECT COUNT(*) FROM cases WHERE gender IN ('man')"},
		{"FilterOrder", "SELECT COUNT(*) FROM cases WHERE gender = 'man' AND majority = 'adult'", "SELECT COUNT(*) FROM cases WHERE majority = 'adult' AND gender = 'man'"},
		{"FullDomain", "SELECT COUNT(*) FROM cases", "SELECT COUNT(*) FROM cases WHERE retrafficked IN ('yes','no','unknown')"},
		{"FullMulti", "SELECT COUNT(*) FROM cases", "SELECT COUNT(*) FROM cases WHERE sexual_exploitation_type IN ('prostitution','pornography','other','none_recorded')"},
		{"YearsClipped", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2025 AND 2030", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2025 AND 2040"},
		{"Intersection", "SELECT COUNT(*) FROM cases WHERE age_band BETWEEN '9_17' AND '21_23'", "SELECT COUNT(*) FROM cases WHERE age_band BETWEEN '0_8' AND '21_23' AND age_band BETWEEN '9_17' AND '48_plus'"},
		{"BandsAsIn", "SELECT COUNT(*) FROM cases WHERE months_band BETWEEN '13_24' AND '25_plus'", "SELECT COUNT(*) FROM cases WHERE months_band IN ('25_plus', '13_24')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := mustParse(t, tt.a).Canonical(), mustParse(t, tt.b).Canonical()
			if a != b {
				t.Errorf("got %q and %q, want equal texts", a, b)
			}
		})
	}
}

func TestJSONEquivalence(t *testing.T) {
	cb := node.DefaultCodebook()
	tests := []struct {
		name string
		sql  string
		json string
	}{
		{"Count", "SELECT COUNT(*) FROM cases", `{"measure":{"func":"COUNT"}}`},
		{"Full", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2021 AND gender = 'woman' GROUP BY citizenship, exploitation_type",
			`{"codebook":"` + cb.Version + `","measure":{"func":"count"},"group_by":["citizenship","exploitation_type"],
			  "filters":[{"dim":"registration_year","codes":["2021","2020"]},{"dim":"gender","codes":["woman"]}]}`},
		{"Quantile", "SELECT QUANTILE(age, 0.5) FROM cases WHERE exploitation_type IN ('sexual','begging')",
			`{"measure":{"func":"QUANTILE","field":"age","q":0.5},"filters":[{"dim":"exploitation_type","codes":["begging","sexual"]}]}`},
		{"StarField", "SELECT COUNT(*) FROM cases", `{"measure":{"func":"COUNT","field":"*"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustParse(t, tt.sql)
			b, err := node.ParseJSON(cb, []byte(tt.json))
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("got %+v, want %+v", b, a)
			}
			// The JSON of a parsed query is its wire form and parses back.
			data, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			c, err := node.ParseJSON(cb, data)
			if err != nil {
				t.Fatalf("ParseJSON(%s): %v", data, err)
			}
			if !reflect.DeepEqual(a, c) {
				t.Errorf("got %+v, want %+v", c, a)
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	cb := node.DefaultCodebook()
	tests := []struct {
		name string
		json string
		sql  string // the same question in SQL, which must fail the same way; "" if none
		want string
	}{
		{"Identity", `{"measure":{"func":"COUNT"},"group_by":["full_name"]}`, "SELECT COUNT(*) FROM cases GROUP BY full_name", "full_name is an identity field"},
		{"UnknownDimension", `{"measure":{"func":"COUNT"},"filters":[{"dim":"gendr","codes":["man"]}]}`, "SELECT COUNT(*) FROM cases WHERE gendr = 'man'", `(did you mean "gender"?)`},
		{"UnknownCode", `{"measure":{"func":"COUNT"},"filters":[{"dim":"gender","codes":["female"]}]}`, "SELECT COUNT(*) FROM cases WHERE gender = 'female'", "unknown code 'female' for gender"},
		{"Quantile", `{"measure":{"func":"QUANTILE","field":"age","q":2}}`, "SELECT QUANTILE(age, 2) FROM cases", "q must be between 0 and 1"},
		{"TooManyGroups", `{"measure":{"func":"COUNT"},"group_by":["gender","majority","age_band","months_band"]}`, "SELECT COUNT(*) FROM cases GROUP BY gender, majority, age_band, months_band", "at most 3"},
		{"Conflict", `{"measure":{"func":"COUNT"},"filters":[{"dim":"gender","codes":["man"]},{"dim":"gender","codes":["woman"]}]}`, "SELECT COUNT(*) FROM cases WHERE gender = 'man' AND gender = 'woman'", "exclude every code"},
		{"FreeText", `{"measure":{"func":"SUM","field":"caseworker"}}`, "SELECT SUM(caseworker) FROM cases", "caseworker is free text"},
		{"NoCodes", `{"measure":{"func":"COUNT"},"filters":[{"dim":"gender","codes":[]}]}`, "", "the filter on gender has no codes"},
		{"NoMeasure", `{"group_by":["gender"]}`, "", "no measure"},
		{"UnknownFunc", `{"measure":{"func":"MEDIAN","field":"age"}}`, "", `unknown measure function "MEDIAN"`},
		{"QOnCount", `{"measure":{"func":"COUNT","q":0.5}}`, "", "q is only for QUANTILE"},
		{"Codebook", `{"codebook":"1.0","measure":{"func":"COUNT"}}`, "", `the query is for codebook "1.0"`},
		{"Syntax", `{"measure":`, "", "not valid JSON"},
		{"UnknownKey", `{"measure":{"func":"COUNT"},"limit":3}`, "", "not valid JSON"},
		{"Type", `{"measure":{"func":"COUNT"},"group_by":"gender"}`, "", "not valid JSON"},
		{"Trailing", `{"measure":{"func":"COUNT"}} {}`, "", "data after the query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := node.ParseJSON(cb, []byte(tt.json))
			if node.KindOf(err) != node.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want Invalid containing %q", err, tt.want)
			}
			if tt.sql == "" {
				return
			}
			_, serr := node.ParseSQL(cb, tt.sql)
			if serr == nil || serr.Error() != err.Error() {
				t.Errorf("got SQL error %v, want the JSON error %v", serr, err)
			}
		})
	}
}

func TestQueryYears(t *testing.T) {
	cb := node.DefaultCodebook()
	tests := []struct {
		name string
		sql  string
		want []int
	}{
		{"NoFilter", "SELECT COUNT(*) FROM cases GROUP BY registration_year", cb.Years()},
		{"Between", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2022", []int{2020, 2021, 2022}},
		{"Clipped", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2028 AND 2099", []int{2028, 2029, 2030}},
		{"In", "SELECT COUNT(*) FROM cases WHERE registration_year IN (2030, 2001)", []int{2001, 2030}},
		{"OtherFilter", "SELECT COUNT(*) FROM cases WHERE gender = 'man'", cb.Years()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.sql).Years(cb); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQueryCellCountAndDomains(t *testing.T) {
	cb := node.DefaultCodebook()
	tests := []struct {
		name    string
		sql     string
		cells   int
		domains [][]string
	}{
		{"None", "SELECT COUNT(*) FROM cases", 1, [][]string{}},
		{"One", "SELECT COUNT(*) FROM cases GROUP BY gender", 4, [][]string{{"woman", "man", "trans_nonconforming", "unknown"}}},
		{"Filtered", "SELECT COUNT(*) FROM cases WHERE gender IN ('man','woman') AND majority = 'adult' GROUP BY gender, exploitation_type",
			20, [][]string{{"woman", "man"}, cb.Dimensions[10].Codes.Values()}},
		{"Countries", "SELECT COUNT(*) FROM cases GROUP BY trafficker_nationality", 251, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.sql)
			if got := q.CellCount(cb); got != tt.cells {
				t.Errorf("got %d cells, want %d", got, tt.cells)
			}
			if tt.domains != nil && !reflect.DeepEqual(q.Domains(cb), tt.domains) {
				t.Errorf("got %v, want %v", q.Domains(cb), tt.domains)
			}
		})
	}
}

// fuzzSeeds is the seed corpus of FuzzParseSQL, alongside testdata/fuzz.
var fuzzSeeds = []string{
	"",
	"SELECT",
	"SELECT COUNT(*) FROM cases GROPU BY gender",
	"SELECT COUNT(*) FROM cases WHERE gender = 'wo''man'",
	"SELECT QUANTILE(age, .5e-3) FROM cases;",
	"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2000 AND 99999999999999999999",
	"SELECT COUNT(*) FROM cases WHERE age_band BETWEEN '9_17' AND '9_17' GROUP BY age_band",
	"SELECT COUNT(*) FROM cases -- comment",
	"SELECT COUNT(*) FROM cases WHERE full_name = 'x'",
	"SELECT QUANTILE(months_in_exploitation, 0.99999999999999999) FROM cases GROUP BY months_band",
}

func FuzzParseSQL(f *testing.F) {
	for _, s := range roundTripSQL {
		f.Add(s)
	}
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	cb := node.DefaultCodebook()
	f.Fuzz(func(t *testing.T, sql string) {
		q, err := node.ParseSQL(cb, sql)
		if err != nil {
			if k := node.KindOf(err); k != node.Invalid {
				t.Fatalf("got kind %v (%v), want Invalid", k, err)
			}
			return
		}
		c := q.Canonical()
		q2, err := node.ParseSQL(cb, c)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, sql, err)
		}
		if !reflect.DeepEqual(q, q2) {
			t.Fatalf("canonical %q of %q: got %+v, want %+v", c, sql, q2, q)
		}
		if c2 := q2.Canonical(); c2 != c {
			t.Fatalf("got canonical %q, want %q", c2, c)
		}
		if err := q.Check(cb, 1<<30); err != nil {
			t.Fatalf("Check of a parsed query: %v", err)
		}
	})
}
