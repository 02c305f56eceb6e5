// Package casefile reads and writes files of case records: ctfed's own CSV
// shape (one column per codebook field), the CTDC 2024 global dataset's 27
// columns and the legacy CTDC 63-column names, as CSV or XLSX. Reading
// reports every bad row with its line, column and value (never an identity
// field's value), normalises and validates every case, and derives case codes
// for CTDC rows with a keyed HMAC. Rows are decoded and validated on every
// core and handed on in file order. Import writes the cases of a file to a
// node.CaseStore in atomic batches; ImportFile checks every row of a file
// before it writes any.
//
// casefile imports node and libraries (encoding/csv, excelize) only.
package casefile
