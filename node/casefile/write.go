package casefile

import (
	"encoding/csv"
	"io"
	"iter"
	"strconv"

	"github.com/ctfed/ctfed/node"
)

// WriteOptions says how a Writer writes cases.
type WriteOptions struct {
	// Format is FormatCtfed (the default) or FormatCTDC.
	Format Format
	// IncludeIdentity writes the identity columns (ctfed shape only).
	// Without it they are left out of the file entirely.
	IncludeIdentity bool
	// ConsentedOnly skips every case whose consent is not yes.
	ConsentedOnly bool
	// Codebook declares the fields; nil is node.DefaultCodebook().
	Codebook *node.Codebook
}

// Writer writes cases to a CSV file, one row per case, after a header row.
type Writer struct {
	cw      *csv.Writer
	header  []string
	encode  func(c *node.Case, row []string)
	row     []string
	opt     WriteOptions
	written int
}

// NewWriter returns a Writer for opt that writes to w, and writes the
// header. Returns Invalid for a format it cannot write.
func NewWriter(w io.Writer, opt WriteOptions) (*Writer, error) {
	if opt.Codebook == nil {
		opt.Codebook = node.DefaultCodebook()
	}
	wr := &Writer{cw: csv.NewWriter(w), opt: opt}
	switch opt.Format {
	case "", FormatCtfed:
		wr.opt.Format = FormatCtfed
		wr.header = ctfedColumns(opt.Codebook, opt.IncludeIdentity)
		encs := make([]func(*node.Case) string, len(wr.header))
		for i, name := range wr.header {
			f, ok := ctfedFields[name]
			if !ok {
				return nil, node.E("write cases", node.Internal, "no encoder for field %s", name)
			}
			encs[i] = f.enc
		}
		wr.encode = func(c *node.Case, row []string) {
			for i, enc := range encs {
				row[i] = enc(c)
			}
		}
	case FormatCTDC:
		if opt.IncludeIdentity {
			return nil, node.E("write cases", node.Invalid, "the CTDC shape has no identity columns")
		}
		wr.header = CTDCColumns()
		wr.encode = encodeCTDC
	default:
		return nil, node.E("write cases", node.Invalid, "cannot write the %q shape (want %s or %s)", opt.Format, FormatCtfed, FormatCTDC)
	}
	wr.row = make([]string, len(wr.header))
	if err := wr.cw.Write(wr.header); err != nil {
		return nil, node.E("write cases", node.Internal, "writing the header: %w", err)
	}
	return wr, nil
}

// Header returns the columns the Writer writes.
func (w *Writer) Header() []string { return append([]string(nil), w.header...) }

// Written returns how many cases have been written.
func (w *Writer) Written() int { return w.written }

// Write writes one case (or skips it, with ConsentedOnly and no consent).
// Its signature fits node.CaseStore.ForEachCase.
func (w *Writer) Write(c *node.Case) error {
	if w.opt.ConsentedOnly && c.Consent != "yes" {
		return nil
	}
	w.encode(c, w.row)
	if err := w.cw.Write(w.row); err != nil {
		return node.E("write cases", node.Internal, "writing a row: %w", err)
	}
	w.written++
	return nil
}

// Close flushes what is buffered. It does not close the underlying writer.
func (w *Writer) Close() error {
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		return node.E("write cases", node.Internal, "writing the file: %w", err)
	}
	return nil
}

// WriteCSV writes cases to w as one CSV file in opt's shape.
func WriteCSV(w io.Writer, cases iter.Seq[*node.Case], opt WriteOptions) error {
	wr, err := NewWriter(w, opt)
	if err != nil {
		return err
	}
	for c := range cases {
		if err := wr.Write(c); err != nil {
			return err
		}
	}
	return wr.Close()
}

// The CTDC 2024 values of ctfed's codes.
var (
	ctdcGender = map[string]string{"woman": "Woman", "man": "Man", "trans_nonconforming": "Trans/Transgender/NonConforming"}
	ctdcAge    = map[string]string{
		"0_8": "0--8", "9_17": "09--17", "18_20": "18--20", "21_23": "21--23", "24_26": "24--26",
		"27_29": "27--29", "30_38": "30--38", "39_47": "39--47", "48_plus": "48+",
	}
	ctdcMonths = map[string]string{"0_12": "0--12 (0-1 yr)", "13_24": "13--24 (1-2 yrs)", "25_plus": "25+ (2+ yrs)"}
)

// ctdcIndex maps each ctfed code of the multi-valued fields to the CTDC
// column (index into ctdcColumns) it is merged into. Codes the CTDC has no
// column for (other means, fishing, ...) are left out.
var (
	ctdcMeansCol = map[string]int{
		"debt_bondage_earnings": 6, "threats": 7, "abuse": 8, "false_promises": 9,
		"drugs_alcohol": 10, "deny_basic_needs": 11, "excessive_hours": 12, "withheld_documents": 13,
	}
	// Begging and forced criminality are forced labour in the CTDC's
	// categories (the legacy typeOfLabourBegging, typeOfLabourIllicitActivities).
	ctdcExploitCol = map[string]int{
		"forced_labour": 14, "begging": 14, "forced_criminality": 14, "sexual": 15,
		"forced_marriage": 16, "forced_military": 16, "organ_removal": 16, "slavery_like": 16, "other": 16,
	}
	ctdcLabourCol   = map[string]int{"agriculture": 17, "construction": 18, "domestic_work": 19, "hospitality": 20}
	ctdcSexCol      = map[string]int{"prostitution": 21, "pornography": 22}
	ctdcRelationCol = map[string]int{"intimate_partner": 23, "friend": 24, "family": 25, "other": 26}
)

func countryOut(code string) string {
	if code == node.CodeUnknown {
		return ""
	}
	return code
}

// encodeCTDC writes c's row in the CTDC 2024 shape: ctfed's finer codes
// merged into the CTDC's coarse columns, unknown as empty.
func encodeCTDC(c *node.Case, row []string) {
	clear(row)
	if y := c.RegistrationYear(); y > 0 {
		row[0] = strconv.Itoa(y)
	}
	row[1] = ctdcGender[c.Gender]
	row[2] = ctdcAge[c.AgeBandCode()]
	row[3] = countryOut(c.Citizenship)
	row[4] = countryOut(c.CountryOfExploitation)
	row[5] = ctdcMonths[c.MonthsBandCode()]
	flags := func(codes []string, cols map[string]int) {
		for _, code := range codes {
			if i, ok := cols[code]; ok {
				row[i] = "1"
			}
		}
	}
	flags(c.MeansOfControl, ctdcMeansCol)
	flags(c.ExploitationTypes, ctdcExploitCol)
	flags(c.LabourTypes, ctdcLabourCol)
	flags(c.SexualExploitationTypes, ctdcSexCol)
	flags(c.RecruiterRelations, ctdcRelationCol)
}
