package web

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// parseYAML reads the subset of YAML openapi.yaml is written in: block
// maps and sequences indented by spaces, flow sequences of scalars, plain
// and double-quoted scalars. It is enough to check the document's shape
// without a YAML library.
func parseYAML(src string) (any, error) {
	type line struct {
		indent int
		text   string
	}
	var lines []line
	for _, l := range strings.Split(src, "\n") {
		t := strings.TrimRight(l, " \r")
		s := strings.TrimSpace(t)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		lines = append(lines, line{len(t) - len(strings.TrimLeft(t, " ")), s})
	}
	scalar := func(s string) (any, error) {
		switch {
		case strings.HasPrefix(s, "["):
			if !strings.HasSuffix(s, "]") {
				return nil, fmt.Errorf("unterminated flow sequence %q", s)
			}
			var out []any
			for _, item := range strings.Split(s[1:len(s)-1], ",") {
				item = strings.TrimSpace(item)
				if strings.HasPrefix(item, `"`) {
					u, err := strconv.Unquote(item)
					if err != nil {
						return nil, fmt.Errorf("item %s: %v", item, err)
					}
					item = u
				}
				out = append(out, item)
			}
			return out, nil
		case strings.HasPrefix(s, `"`):
			return strconv.Unquote(s)
		}
		return s, nil
	}
	var block func(i, indent int) (any, int, error)
	block = func(i, indent int) (any, int, error) {
		if strings.HasPrefix(lines[i].text, "- ") {
			var seq []any
			for i < len(lines) && lines[i].indent == indent && strings.HasPrefix(lines[i].text, "- ") {
				item := lines[i].text[2:]
				if k, _, ok := strings.Cut(item, ":"); ok && !strings.HasPrefix(item, `"`) && !strings.Contains(k, " ") {
					lines[i] = line{indent + 2, item}
					v, next, err := block(i, indent+2)
					if err != nil {
						return nil, 0, err
					}
					seq, i = append(seq, v), next
					continue
				}
				v, err := scalar(item)
				if err != nil {
					return nil, 0, err
				}
				seq, i = append(seq, v), i+1
			}
			return seq, i, nil
		}
		m := map[string]any{}
		for i < len(lines) && lines[i].indent == indent {
			text := lines[i].text
			var key, rest string
			if strings.HasPrefix(text, `"`) {
				end := strings.Index(text[1:], `"`) + 1
				if end == 0 || len(text) < end+2 || text[end+1] != ':' {
					return nil, 0, fmt.Errorf("line %q: bad quoted key", text)
				}
				key, rest = text[1:end], strings.TrimSpace(text[end+2:])
			} else {
				k, r, ok := strings.Cut(text, ":")
				if !ok {
					return nil, 0, fmt.Errorf("line %q: not a key", text)
				}
				key, rest = k, strings.TrimSpace(r)
			}
			if _, dup := m[key]; dup {
				return nil, 0, fmt.Errorf("key %q twice", key)
			}
			i++
			switch {
			case rest != "":
				v, err := scalar(rest)
				if err != nil {
					return nil, 0, err
				}
				m[key] = v
			case i < len(lines) && lines[i].indent > indent:
				v, next, err := block(i, lines[i].indent)
				if err != nil {
					return nil, 0, err
				}
				m[key], i = v, next
			default:
				m[key] = nil
			}
		}
		if i < len(lines) && lines[i].indent > indent {
			return nil, 0, fmt.Errorf("line %q: unexpected indent", lines[i].text)
		}
		return m, i, nil
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	v, i, err := block(0, 0)
	if err == nil && i != len(lines) {
		err = fmt.Errorf("line %q: not read", lines[i].text)
	}
	return v, err
}

// at walks a parsed document by map keys.
func at(tb testing.TB, v any, keys ...string) any {
	tb.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			tb.Fatalf("at %q: not a map", k)
		}
		if v, ok = m[k]; !ok {
			tb.Fatalf("no key %q", k)
		}
	}
	return v
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// jsonNames returns the JSON names of a struct type's fields.
func jsonNames(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPI(t *testing.T) {
	e := newTestEnv(t)
	file, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Served", func(t *testing.T) {
		if rec := e.anonymous(t).get("/api/openapi.yaml"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("got %d without a session, want 401", rec.Code)
		}
		for _, u := range testUsers {
			rec := e.login(t, u.name).get("/api/openapi.yaml")
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), file) || rec.Header().Get("Content-Type") != "application/yaml" {
				t.Fatalf("%s: got %d, want the embedded document", u.name, rec.Code)
			}
		}
	})
	doc, err := parseYAML(string(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Paths", func(t *testing.T) {
		var got []string
		for _, p := range keys(at(t, doc, "paths")) {
			for _, m := range keys(at(t, doc, "paths", p)) {
				if m != "parameters" {
					got = append(got, strings.ToUpper(m)+" "+p)
				}
			}
		}
		var want []string
		for _, rt := range (&Server{}).apiRoutes() {
			want = append(want, rt.pattern)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("got documented operations %q, want the routes %q", got, want)
		}
	})
	schemas := at(t, doc, "components", "schemas")
	t.Run("Schemas", func(t *testing.T) {
		for name, typ := range map[string]reflect.Type{
			"Case":         reflect.TypeFor[node.Case](),
			"Identity":     reflect.TypeFor[node.Identity](),
			"Trafficker":   reflect.TypeFor[node.Trafficker](),
			"Service":      reflect.TypeFor[node.Service](),
			"FollowUp":     reflect.TypeFor[node.FollowUp](),
			"CaseResponse": reflect.TypeFor[apiCase](),
			"CaseList":     reflect.TypeFor[apiCaseList](),
			"History":      reflect.TypeFor[apiHistory](),
			"BreakGlass":   reflect.TypeFor[apiReason](),
			"Error":        reflect.TypeFor[apiErrorBody](),
			"FieldError":   reflect.TypeFor[apiFieldError](),
		} {
			if got, want := keys(at(t, schemas, name, "properties")), jsonNames(typ); !slices.Equal(got, want) {
				t.Fatalf("%s: got properties %q, want %q", name, got, want)
			}
		}
	})
	t.Run("ErrorKinds", func(t *testing.T) {
		var want []string
		for k := node.Invalid; k.String() != "unknown"; k++ {
			want = append(want, k.String())
		}
		if got := strs(at(t, schemas, "Error", "properties", "kind", "enum")); !slices.Equal(got, want) {
			t.Fatalf("got kinds %q, want %q", got, want)
		}
	})
	t.Run("CodeLists", func(t *testing.T) {
		cb := node.DefaultCodebook()
		props := at(t, schemas, "Case", "properties")
		for _, f := range cb.Fields {
			if f.Type == node.TypeRecords {
				continue
			}
			var p any
			if f.Identity { // in the Identity schema
				p = at(t, schemas, "Identity", "properties", f.Name)
			} else {
				p = at(t, props, f.Name)
			}
			switch {
			case f.Type == node.TypeCode && isCountryList(&f), f.Type == node.TypeCodes && isCountryList(&f):
				if !strings.Contains(fmt.Sprint(p), "#/components/schemas/Country") {
					t.Fatalf("%s: got %v, want a Country", f.Name, p)
				}
			case f.Type == node.TypeCode:
				if got, want := strs(at(t, p, "enum")), f.Codes.Values(); !slices.Equal(got, want) {
					t.Fatalf("%s: got %q, want %q", f.Name, got, want)
				}
			case f.Type == node.TypeCodes:
				want := slices.DeleteFunc(f.Codes.Values(), func(v string) bool { return v == node.CodeUnknown || v == node.CodeNoneRecorded })
				if got := strs(at(t, p, "items", "enum")); !slices.Equal(got, want) {
					t.Fatalf("%s: got %q, want %q", f.Name, got, want)
				}
			}
		}
		for schema, fields := range map[string]string{"Trafficker": "traffickers", "Service": "assistance", "FollowUp": "follow_ups"} {
			for _, col := range recordFields[fields] {
				if col.Options == nil {
					continue
				}
				var want []string
				for _, o := range col.Options {
					want = append(want, o.Value)
				}
				if got := strs(at(t, schemas, schema, "properties", col.Name, "enum")); !slices.Equal(got, want) {
					t.Fatalf("%s.%s: got %q, want %q", schema, col.Name, got, want)
				}
			}
		}
		for name, l := range map[string]*node.CodeList{"Status": node.ListStatus, "ExploitationType": node.ListExploitation} {
			if got := strs(at(t, schemas, name, "enum")); !slices.Equal(got, l.Values()) {
				t.Fatalf("%s: got %q, want %q", name, got, l.Values())
			}
		}
	})
}

func TestParseYAML(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      any
		ok        bool
	}{
		{"Map", "a: 1\nb:\n  c: \"x: y\"\n", map[string]any{"a": "1", "b": map[string]any{"c": "x: y"}}, true},
		{"Seq", "a:\n  - x\n  - k: v\n    l: w\n", map[string]any{"a": []any{"x", map[string]any{"k": "v", "l": "w"}}}, true},
		{"Flow", "e: [\"yes\", no]\n", map[string]any{"e": []any{"yes", "no"}}, true},
		{"QuotedKey", "\"200\":\n  d: ok\n", map[string]any{"200": map[string]any{"d": "ok"}}, true},
		{"DuplicateKey", "a: 1\na: 2\n", nil, false},
		{"BadIndent", "a:\n    b: 1\n  c: 2\n", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseYAML(tc.src)
			if (err == nil) != tc.ok {
				t.Fatalf("got error %v, want ok %v", err, tc.ok)
			}
			if tc.ok && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}
