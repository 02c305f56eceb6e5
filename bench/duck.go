package bench

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/ctfed/ctfed/bench/caseload"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage/columnar"
)

// Shape is one way of laying the cases out in DuckDB and asking it the
// cross-tab.
type Shape struct {
	// Name names the shape in benchmark and report lines.
	Name string
	// Desc says what the tables and the SQL are.
	Desc string
	// PerCase reports a layout of one row per case, the exploitation types
	// beside it (a side table or a list); the others store one row per
	// (case, exploitation type) or rewrite the query.
	PerCase bool
	// SQL is the statement, prepared once.
	SQL string

	pivot bool // the result is one row per citizenship with a count per exploitation type
	stmt  *sql.Stmt
}

// Data is one synthetic caseload loaded into a ctfed columnar table and
// into an in-memory DuckDB database.
type Data struct {
	// N is the number of cases.
	N int
	// Table is ctfed's columnar projection of the cases.
	Table *columnar.Table
	// Query is the cross-tab in ctfed's form.
	Query *node.Query
	// DB is the DuckDB database, limited to the threads given to Load.
	DB *sql.DB
	// Shapes are the DuckDB layouts of the cross-tab, each with its
	// statement prepared.
	Shapes []*Shape
}

// Load generates n cases (see Cases) and loads them into a columnar table
// and into DuckDB, whose statements it prepares, limited to threads threads.
// Close the Data when done.
func Load(ctx context.Context, n int, seed uint64, threads int) (*Data, error) {
	q, err := caseload.CrossTabQuery()
	if err != nil {
		return nil, err
	}
	cases, err := caseload.Cases(n, seed)
	if err != nil {
		return nil, err
	}
	cb := node.DefaultCodebook()
	cit, _ := cb.Dimension("citizenship")
	et, _ := cb.Dimension("exploitation_type")
	connector, err := duckdb.NewConnector(fmt.Sprintf("?threads=%d", threads), nil)
	if err != nil {
		return nil, err
	}
	d := &Data{N: n, Table: columnar.New(cb), Query: q, DB: sql.OpenDB(connector)}
	// One connection: the prepared statements stay on it, warm.
	d.DB.SetMaxOpenConns(1)
	if err := d.load(ctx, cases, cit.Codes, et.Codes); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.prepare(ctx, et.Codes); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the DuckDB database.
func (d *Data) Close() error {
	var errs []error
	for _, s := range d.Shapes {
		if s.stmt != nil {
			errs = append(errs, s.stmt.Close())
		}
	}
	errs = append(errs, d.DB.Close())
	return errors.Join(errs...)
}

// Threads returns DuckDB's threads setting.
func (d *Data) Threads(ctx context.Context) (int, error) {
	var n int
	err := d.DB.QueryRowContext(ctx, "SELECT current_setting('threads')").Scan(&n)
	return n, err
}

// Version returns DuckDB's version.
func (d *Data) Version(ctx context.Context) (string, error) {
	var v string
	err := d.DB.QueryRowContext(ctx, "SELECT version()").Scan(&v)
	return v, err
}

func enumDDL(name string, l *node.CodeList) string {
	vals := make([]string, 0, len(l.Codes))
	for _, v := range l.Values() {
		vals = append(vals, "'"+strings.ReplaceAll(v, "'", "''")+"'")
	}
	return fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", name, strings.Join(vals, ", "))
}

// load creates the DuckDB tables and fills them and the columnar table from
// cases. Dictionary-encoded ENUM columns and small integers are DuckDB's
// fastest types for grouping and filtering, as ctfed's one-byte codes are.
func (d *Data) load(ctx context.Context, cases func(func(*node.Case) bool), countries, types *node.CodeList) error {
	ddl := []string{
		enumDDL("country", countries),
		enumDDL("etype", types),
		// One row per case; the exploitation types as a list (for UNNEST) and
		// as a bitset of their positions in the code list (for the pivot).
		`CREATE TABLE cases (id UINTEGER, registration_year USMALLINT, citizenship country,
			exploitation_types etype[], exploitation_mask USMALLINT)`,
		// One row per (case, exploitation type); a case with none has one
		// none_recorded row.
		`CREATE TABLE case_exploitation (case_id UINTEGER, exploitation_type etype)`,
		// The join of the two, stored: one row per (case, exploitation type)
		// with the case's year and citizenship.
		`CREATE TABLE case_exploitation_wide (registration_year USMALLINT, citizenship country, exploitation_type etype)`,
	}
	for _, s := range ddl {
		if _, err := d.DB.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("duckdb: %s: %w", s[:min(len(s), 40)], err)
		}
	}
	conn, err := d.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	none := node.CodeNoneRecorded
	d.Table.Grow(d.N, 16)
	return conn.Raw(func(dc any) error {
		names := []string{"cases", "case_exploitation", "case_exploitation_wide"}
		apps := make([]*duckdb.Appender, len(names))
		for i, name := range names {
			a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", name)
			if err != nil {
				return fmt.Errorf("duckdb appender %s: %w", name, err)
			}
			defer a.Close()
			apps[i] = a
		}
		id := uint32(0)
		var err error
		cases(func(c *node.Case) bool {
			if err = ctx.Err(); err != nil {
				return false
			}
			d.Table.Upsert(c)
			year := uint16(c.RegistrationYear())
			list := c.ExploitationTypes
			mask := uint16(0)
			for _, v := range list {
				mask |= 1 << types.Index(v)
			}
			if len(list) == 0 {
				list = []string{none}
			}
			if err = apps[0].AppendRow(id, year, c.Citizenship, list, mask); err != nil {
				return false
			}
			for _, v := range list {
				if err = apps[1].AppendRow(id, v); err != nil {
					return false
				}
				if err = apps[2].AppendRow(year, c.Citizenship, v); err != nil {
					return false
				}
			}
			id++
			return true
		})
		if err != nil {
			return fmt.Errorf("duckdb load case %d: %w", id, err)
		}
		if int(id) != d.N || d.Table.Len() != d.N {
			return fmt.Errorf("loaded %d cases into DuckDB and %d into the table, want %d", id, d.Table.Len(), d.N)
		}
		for i, a := range apps {
			if err := a.Close(); err != nil {
				return fmt.Errorf("duckdb appender %s: %w", names[i], err)
			}
		}
		return nil
	})
}

// prepare builds the shapes and prepares their statements.
func (d *Data) prepare(ctx context.Context, types *node.CodeList) error {
	where := fmt.Sprintf("registration_year BETWEEN %d AND %d", caseload.FromYear, caseload.ToYear)
	var pivot []string
	for j, v := range types.Values() {
		cond := fmt.Sprintf("exploitation_mask & %d <> 0", 1<<j)
		if v == node.CodeNoneRecorded {
			cond = "exploitation_mask = 0"
		}
		pivot = append(pivot, fmt.Sprintf("count(*) FILTER (WHERE %s)", cond))
	}
	d.Shapes = []*Shape{
		{
			Name:    "Join",
			PerCase: true,
			Desc:    "cases(id, year, citizenship) JOIN case_exploitation(case_id, type) ON id, GROUP BY citizenship, type",
			SQL: `SELECT c.citizenship, e.exploitation_type, count(*) FROM cases c
				JOIN case_exploitation e ON e.case_id = c.id
				WHERE c.` + where + ` GROUP BY c.citizenship, e.exploitation_type`,
		},
		{
			Name:    "Unnest",
			PerCase: true,
			Desc:    "cases(year, citizenship, types etype[]), UNNEST(types), GROUP BY citizenship, type",
			SQL: `SELECT citizenship, t, count(*) FROM
				(SELECT citizenship, unnest(exploitation_types) AS t FROM cases WHERE ` + where + `)
				GROUP BY citizenship, t`,
		},
		{
			Name: "Wide",
			Desc: "the join stored: one row per (case, type) with year and citizenship, GROUP BY citizenship, type",
			SQL: `SELECT citizenship, exploitation_type, count(*) FROM case_exploitation_wide
				WHERE ` + where + ` GROUP BY citizenship, exploitation_type`,
		},
		{
			Name:  "Pivot",
			Desc:  "cases(year, citizenship, types as a bitset), GROUP BY citizenship with one FILTER count per type",
			SQL:   `SELECT citizenship, ` + strings.Join(pivot, ", ") + ` FROM cases WHERE ` + where + ` GROUP BY citizenship`,
			pivot: true,
		},
	}
	for _, s := range d.Shapes {
		st, err := d.DB.PrepareContext(ctx, s.SQL)
		if err != nil {
			return fmt.Errorf("duckdb prepare %s: %w", s.Name, err)
		}
		s.stmt = st
	}
	return nil
}

// Run executes the shape's statement and reads every row of its answer.
// When into is not nil it receives the non-empty cells.
func (s *Shape) Run(ctx context.Context, into Counts) error {
	rows, err := s.stmt.QueryContext(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	types := node.ListExploitation.Values()
	var cit, typ string
	var n int64
	counts := make([]int64, len(types))
	dest := make([]any, 1+len(types))
	dest[0] = &cit
	for i := range counts {
		dest[1+i] = &counts[i]
	}
	for rows.Next() {
		if s.pivot {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			for i, v := range counts {
				if into != nil && v != 0 {
					into[Cell{cit, types[i]}] = v
				}
			}
			continue
		}
		if err := rows.Scan(&cit, &typ, &n); err != nil {
			return err
		}
		if into != nil && n != 0 {
			into[Cell{cit, typ}] = n
		}
	}
	return rows.Err()
}

// Verify runs the cross-tab in ctfed and in every DuckDB shape and returns
// an error naming the first shape whose answer differs from ctfed's in any
// cell.
func (d *Data) Verify(ctx context.Context) error {
	want, err := CtfedCounts(d.Table, d.Query)
	if err != nil {
		return err
	}
	if len(want) == 0 {
		return errors.New("ctfed's cross-tab is empty")
	}
	for _, s := range d.Shapes {
		got := Counts{}
		if err := s.Run(ctx, got); err != nil {
			return fmt.Errorf("duckdb %s: %w", s.Name, err)
		}
		if n, c := Diff(want, got); n != 0 {
			return fmt.Errorf("duckdb %s and ctfed differ in %d cells, e.g. %s × %s", s.Name, n, c.Citizenship, c.ExploitationType)
		}
	}
	return nil
}
