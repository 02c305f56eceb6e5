package node

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxQueryLen is the longest SQL text ParseSQL reads, in bytes.
const MaxQueryLen = 64 << 10

// ParseSQL parses and validates one query written in ctfed's SQL subset:
//
//	SELECT COUNT(*) | SUM(f) | AVG(f) | QUANTILE(f, q)
//	FROM cases
//	[WHERE cond AND cond ...]
//	[GROUP BY d1[, d2[, d3]]]
//	[;]
//
// where cond is dim = 'code', dim IN ('a', 'b') or dim BETWEEN a AND b (on
// an ordered dimension). Keywords and names are case-insensitive; codes are
// quoted with single quotes, registration years may be bare integers. The
// query is bound to cb's version and returned in canonical form. Every error
// is of kind Invalid; a syntax error names the line:column and what was
// expected. ParseSQL does not apply a cell limit: Query.Check does.
func ParseSQL(cb *Codebook, sql string) (*Query, error) {
	if len(sql) > MaxQueryLen {
		return nil, E(opQuery, Invalid, "the query is too long (%d bytes, at most %d)", len(sql), MaxQueryLen)
	}
	if !utf8.ValidString(sql) {
		return nil, E(opQuery, Invalid, "the query is not valid UTF-8")
	}
	p := &parser{lx: lexer{src: sql, line: 1, col: 1}}
	raw, err := p.parse()
	if err != nil {
		return nil, &Error{Op: opQuery, Kind: Invalid, Err: err}
	}
	return build(cb, raw)
}

const opQuery = "query"

// tokKind is the kind of one lexical token.
type tokKind uint8

const (
	tokEOF tokKind = iota
	tokIdent
	tokNumber
	tokString
	tokLParen
	tokRParen
	tokComma
	tokStar
	tokSemi
	tokEq
)

// token is one lexical token with its position (1-based line and column,
// counted in characters).
type token struct {
	kind      tokKind
	text      string // identifier as written, number literal, or string value (unquoted)
	raw       string // the token as written in the source
	line, col int
}

// describe renders t for an error message: 'GROPU', 'x', '(' or end of query.
func (t token) describe() string {
	if t.kind == tokEOF {
		return "end of query"
	}
	s := t.raw
	if utf8.RuneCountInString(s) > 32 {
		r := []rune(s)
		s = string(r[:32]) + "…"
	}
	if t.kind == tokString {
		return s // already quoted
	}
	return "'" + s + "'"
}

// keyword reports whether t is the keyword kw (given in upper case).
func (t token) keyword(kw string) bool { return t.kind == tokIdent && strings.EqualFold(t.text, kw) }

type lexer struct {
	src       string
	off       int
	line, col int
}

// syntaxError is a parse error at a position.
type syntaxError struct {
	line, col int
	msg       string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("at %d:%d: %s", e.line, e.col, e.msg) }

func (lx *lexer) advance(n int) {
	for _, r := range lx.src[lx.off : lx.off+n] {
		if r == '\n' {
			lx.line++
			lx.col = 1
		} else {
			lx.col++
		}
	}
	lx.off += n
}

func (lx *lexer) next() (token, error) {
	// Skip white space and -- comments.
	for lx.off < len(lx.src) {
		c := lx.src[lx.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			lx.advance(1)
			continue
		case c == '-' && strings.HasPrefix(lx.src[lx.off:], "--"):
			n := strings.IndexByte(lx.src[lx.off:], '\n')
			if n < 0 {
				n = len(lx.src) - lx.off
			}
			lx.advance(n)
			continue
		}
		break
	}
	t := token{line: lx.line, col: lx.col}
	if lx.off >= len(lx.src) {
		return t, nil
	}
	start := lx.off
	c := lx.src[start]
	single := func(k tokKind) (token, error) {
		t.kind, t.raw, t.text = k, lx.src[start:start+1], lx.src[start:start+1]
		lx.advance(1)
		return t, nil
	}
	switch {
	case c == '(':
		return single(tokLParen)
	case c == ')':
		return single(tokRParen)
	case c == ',':
		return single(tokComma)
	case c == '*':
		return single(tokStar)
	case c == ';':
		return single(tokSemi)
	case c == '=':
		return single(tokEq)
	case isIdentStart(c):
		n := start + 1
		for n < len(lx.src) && isIdentPart(lx.src[n]) {
			n++
		}
		t.kind, t.raw, t.text = tokIdent, lx.src[start:n], lx.src[start:n]
		lx.advance(n - start)
		return t, nil
	case isDigit(c) || c == '.' && start+1 < len(lx.src) && isDigit(lx.src[start+1]):
		n := start
		for n < len(lx.src) && isDigit(lx.src[n]) {
			n++
		}
		if n < len(lx.src) && lx.src[n] == '.' {
			n++
			for n < len(lx.src) && isDigit(lx.src[n]) {
				n++
			}
		}
		if n < len(lx.src) && (lx.src[n] == 'e' || lx.src[n] == 'E') {
			m := n + 1
			if m < len(lx.src) && (lx.src[m] == '+' || lx.src[m] == '-') {
				m++
			}
			if m < len(lx.src) && isDigit(lx.src[m]) {
				for m < len(lx.src) && isDigit(lx.src[m]) {
					m++
				}
				n = m
			}
		}
		if n < len(lx.src) && isIdentPart(lx.src[n]) {
			// "9_17" or "2020a": a code written without quotes.
			for n < len(lx.src) && isIdentPart(lx.src[n]) {
				n++
			}
			t.kind, t.raw, t.text = tokIdent, lx.src[start:n], lx.src[start:n]
			lx.advance(n - start)
			return t, nil
		}
		t.kind, t.raw, t.text = tokNumber, lx.src[start:n], lx.src[start:n]
		lx.advance(n - start)
		return t, nil
	case c == '\'':
		var b strings.Builder
		n := start + 1
		for {
			if n >= len(lx.src) {
				return t, &syntaxError{t.line, t.col, "unterminated string: a code ends with '"}
			}
			if lx.src[n] == '\'' {
				if n+1 < len(lx.src) && lx.src[n+1] == '\'' {
					b.WriteByte('\'')
					n += 2
					continue
				}
				n++
				break
			}
			b.WriteByte(lx.src[n])
			n++
		}
		t.kind, t.raw, t.text = tokString, lx.src[start:n], b.String()
		lx.advance(n - start)
		return t, nil
	case c == '"':
		return t, &syntaxError{t.line, t.col, "unexpected '\"': codes are quoted with single quotes ('woman')"}
	}
	r, _ := utf8.DecodeRuneInString(lx.src[start:])
	return t, &syntaxError{t.line, t.col, fmt.Sprintf("unexpected character %q", r)}
}

func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }

// rawValue is one literal of a condition as written: a quoted code or a bare
// number.
type rawValue struct {
	text   string
	number bool
}

// Condition operators.
const (
	opIn      = "IN" // also "="
	opBetween = "BETWEEN"
)

// rawCond is one condition of a WHERE clause before validation.
type rawCond struct {
	dim    string
	op     string
	values []rawValue
}

// rawQuery is a query as written, before validation against a codebook.
type rawQuery struct {
	codebook string // empty: the codebook's own version
	measure  Measure
	groupBy  []string
	conds    []rawCond
}

type parser struct {
	lx  lexer
	tok token
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) fail(expected string) error {
	return &syntaxError{p.tok.line, p.tok.col, fmt.Sprintf("expected %s, found %s", expected, p.tok.describe())}
}

func (p *parser) expectKeyword(kw string) error {
	if !p.tok.keyword(kw) {
		return p.fail(kw)
	}
	return p.advance()
}

func (p *parser) expect(k tokKind, what string) error {
	if p.tok.kind != k {
		return p.fail(what)
	}
	return p.advance()
}

// reserved are the keywords that cannot name a dimension or a field.
var reserved = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "GROUP": true, "BY": true,
	"IN": true, "BETWEEN": true, "COUNT": true, "SUM": true, "AVG": true, "QUANTILE": true,
	"OR": true, "NOT": true, "ORDER": true, "LIMIT": true, "HAVING": true,
}

// name reads an identifier that names a dimension or field, lower-cased.
func (p *parser) name(what string) (string, error) {
	if p.tok.kind != tokIdent || reserved[strings.ToUpper(p.tok.text)] {
		return "", p.fail(what)
	}
	s := strings.ToLower(p.tok.text)
	return s, p.advance()
}

func (p *parser) parse() (*rawQuery, error) {
	q := &rawQuery{}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	if err := p.measure(&q.measure); err != nil {
		return nil, err
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	if !p.tok.keyword("cases") {
		return nil, p.fail("cases")
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.keyword("WHERE") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		for {
			c, err := p.cond()
			if err != nil {
				return nil, err
			}
			q.conds = append(q.conds, c)
			if !p.tok.keyword("AND") {
				break
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
	}
	if p.tok.keyword("GROUP") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			d, err := p.name("a dimension")
			if err != nil {
				return nil, err
			}
			q.groupBy = append(q.groupBy, d)
			if p.tok.kind != tokComma {
				break
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
	}
	if p.tok.kind == tokSemi {
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if p.tok.kind != tokEOF {
		switch {
		case len(q.groupBy) > 0:
			return nil, p.fail("',' or end of query")
		case len(q.conds) > 0:
			return nil, p.fail("AND, GROUP BY or end of query")
		default:
			return nil, p.fail("WHERE, GROUP BY or end of query")
		}
	}
	return q, nil
}

func (p *parser) measure(m *Measure) error {
	if p.tok.kind != tokIdent {
		return p.fail("COUNT, SUM, AVG or QUANTILE")
	}
	fn := strings.ToUpper(p.tok.text)
	switch fn {
	case FuncCount, FuncSum, FuncAvg, FuncQuantile:
	default:
		return p.fail("COUNT, SUM, AVG or QUANTILE")
	}
	m.Func = fn
	if err := p.advance(); err != nil {
		return err
	}
	if err := p.expect(tokLParen, "'('"); err != nil {
		return err
	}
	if fn == FuncCount {
		if err := p.expect(tokStar, "'*'"); err != nil {
			return err
		}
		return p.expect(tokRParen, "')'")
	}
	f, err := p.name("a measure field")
	if err != nil {
		return err
	}
	m.Field = f
	if fn == FuncQuantile {
		if err := p.expect(tokComma, "','"); err != nil {
			return err
		}
		if p.tok.kind != tokNumber {
			return p.fail("a number between 0 and 1")
		}
		v, err := strconv.ParseFloat(p.tok.text, 64)
		if err != nil {
			return p.fail("a number between 0 and 1")
		}
		m.Q = v
		if err := p.advance(); err != nil {
			return err
		}
	}
	return p.expect(tokRParen, "')'")
}

func (p *parser) value() (rawValue, error) {
	switch p.tok.kind {
	case tokString:
		v := rawValue{text: p.tok.text}
		return v, p.advance()
	case tokNumber:
		v := rawValue{text: p.tok.text, number: true}
		return v, p.advance()
	case tokIdent:
		if !reserved[strings.ToUpper(p.tok.text)] {
			return rawValue{}, p.fail(fmt.Sprintf("a quoted code ('%s')", p.tok.text))
		}
	}
	return rawValue{}, p.fail("a quoted code")
}

func (p *parser) cond() (rawCond, error) {
	d, err := p.name("a dimension")
	if err != nil {
		return rawCond{}, err
	}
	c := rawCond{dim: d, op: opIn}
	switch {
	case p.tok.kind == tokEq:
		if err := p.advance(); err != nil {
			return c, err
		}
		v, err := p.value()
		if err != nil {
			return c, err
		}
		c.values = []rawValue{v}
	case p.tok.keyword("IN"):
		if err := p.advance(); err != nil {
			return c, err
		}
		if err := p.expect(tokLParen, "'('"); err != nil {
			return c, err
		}
		for {
			v, err := p.value()
			if err != nil {
				return c, err
			}
			c.values = append(c.values, v)
			if p.tok.kind != tokComma {
				break
			}
			if err := p.advance(); err != nil {
				return c, err
			}
		}
		if err := p.expect(tokRParen, "',' or ')'"); err != nil {
			return c, err
		}
	case p.tok.keyword("BETWEEN"):
		c.op = opBetween
		if err := p.advance(); err != nil {
			return c, err
		}
		lo, err := p.value()
		if err != nil {
			return c, err
		}
		if err := p.expectKeyword("AND"); err != nil {
			return c, err
		}
		hi, err := p.value()
		if err != nil {
			return c, err
		}
		c.values = []rawValue{lo, hi}
	default:
		return c, p.fail("=, IN or BETWEEN")
	}
	return c, nil
}
