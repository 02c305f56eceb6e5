package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestRenderParseRoundTrip(t *testing.T) {
	c := Default("Example Shelter", "THA")
	c.Privacy.MinCellSize = 10
	c.Policy.AllowPeers = []string{"12D3KooWExample"}
	c.Policy.Allocations = map[string]float64{"Federation HQ": 2}
	b, err := Render(&c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b, "test.toml")
	if err != nil {
		t.Fatalf("Parse(Render) = %v", err)
	}
	if !reflect.DeepEqual(*got, c) {
		t.Fatalf("got %+v, want %+v", *got, c)
	}
}

func TestGolden(t *testing.T) {
	c := Default("Example Shelter", "THA")
	b, err := Render(&c)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "default.toml")
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) {
		t.Fatalf("rendered config differs from %s (run go test ./config -update)", golden)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name, file, want string
	}{
		{"Syntax", "[node\norg = 1", "to end table name"},
		{"UnknownKey", "[node]\norg=\"A\"\ncountry=\"THA\"\ncolour=\"red\"", "unknown setting node.colour"},
		{"MissingOrg", "[node]\ncountry=\"THA\"", "node.org: is required"},
		{"BadCountry", "[node]\norg=\"A\"\ncountry=\"th\"", "node.country"},
		{"BadMinCell", "[node]\norg=\"A\"\ncountry=\"THA\"\n[privacy]\nmin_cell_size=0", "privacy.min_cell_size"},
		{"DefaultAboveMax", "[node]\norg=\"A\"\ncountry=\"THA\"\n[privacy]\ndefault_epsilon=2", "privacy.default_epsilon: is larger"},
		{"BadEpoch", "[node]\norg=\"A\"\ncountry=\"THA\"\n[privacy]\nepoch=\"soon\"", "epoch"},
		{"BadMechanism", "[node]\norg=\"A\"\ncountry=\"THA\"\n[privacy]\nmechanism=\"magic\"", "privacy.mechanism"},
		{"BadListen", "[node]\norg=\"A\"\ncountry=\"THA\"\n[web]\nlisten=\"nowhere\"", "web.listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file), "x.toml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c := Default("Example Agency", "ROU")
	if err := Write(path, &c); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("got mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, c) {
		t.Fatalf("got %+v, want %+v", *got, c)
	}
}

func FuzzParse(f *testing.F) {
	c := Default("Seed Org", "KEN")
	b, _ := Render(&c)
	f.Add(b)
	f.Add([]byte("[privacy]\nepoch=\"1h\""))
	f.Add([]byte("= = ="))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, "fuzz.toml")
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted an invalid config: %v", verr)
			}
		}
	})
}
