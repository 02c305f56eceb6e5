package web

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// chartElem is an element of a drawn chart: its name, attributes and the
// text it holds.
type chartElem struct {
	Name string
	Attr map[string]string
	Text string
}

// chartElems parses an inline chart with encoding/xml and returns its
// elements, in order. It fails the test unless the chart is one well-formed
// svg element made only of svg, title, desc, g, path, rect and text, with
// no style, event handler (on…) or link (href) attribute.
func chartElems(tb testing.TB, svg string) []chartElem {
	tb.Helper()
	allowed := []string{"svg", "title", "desc", "g", "path", "rect", "text"}
	dec := xml.NewDecoder(strings.NewReader(svg))
	var elems []chartElem
	var open []int // indexes in elems of the open elements
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("the SVG is not well-formed: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(open) == 0 && (t.Name.Local != "svg" || len(elems) > 0) {
				tb.Fatalf("got a root element %s, want one svg", t.Name.Local)
			}
			if !slices.Contains(allowed, t.Name.Local) {
				tb.Fatalf("got element %s in the chart", t.Name.Local)
			}
			el := chartElem{Name: t.Name.Local, Attr: map[string]string{}}
			for _, a := range t.Attr {
				if a.Name.Local == "style" || strings.HasPrefix(strings.ToLower(a.Name.Local), "on") || a.Name.Local == "href" {
					tb.Fatalf("got attribute %s on %s", a.Name.Local, t.Name.Local)
				}
				el.Attr[a.Name.Local] = a.Value
			}
			open = append(open, len(elems))
			elems = append(elems, el)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				elems[open[len(open)-1]].Text += string(t)
			}
		case xml.ProcInst, xml.Directive, xml.Comment:
			tb.Fatalf("got %T in the chart", t)
		}
	}
	if len(open) != 0 || len(elems) == 0 {
		tb.Fatal("the SVG is incomplete")
	}
	return elems
}

// chartCheckSVG checks an inline chart as chartElems does and returns its
// elements' names, in order.
func chartCheckSVG(tb testing.TB, svg string) []string {
	tb.Helper()
	var names []string
	for _, el := range chartElems(tb, svg) {
		names = append(names, el.Name)
	}
	return names
}

// chartAttr reads a numeric attribute of a chart's element.
func chartAttr(tb testing.TB, el chartElem, name string) float64 {
	tb.Helper()
	v, err := strconv.ParseFloat(el.Attr[name], 64)
	if err != nil {
		tb.Fatalf("got %s=%q on %s, want a number", name, el.Attr[name], el.Name)
	}
	return v
}

// chartErrorBar reads the ends of an error bar's path: "Mx0 yHx1M…".
func chartErrorBar(tb testing.TB, d string) (x0, x1 float64) {
	tb.Helper()
	if _, err := fmt.Sscanf(d, "M%g %gH%g", &x0, new(float64), &x1); err != nil || strings.Count(d, "V") != 2 {
		tb.Fatalf("got path %q, want an error bar with two caps", d)
	}
	return x0, x1
}

func TestBarChart(t *testing.T) {
	bars := func(n int) []chartBar {
		out := make([]chartBar, n)
		for i := range out {
			out[i] = chartBar{Label: fmt.Sprintf("Bar %d", i), Value: float64(i * 3)}
		}
		return out
	}
	long := strings.Repeat("Congo ", 20)
	for _, tc := range []struct {
		name string
		c    barChart
		// What the chart shows: bars, error bars and rows that say
		// "suppressed".
		bars, errorBars, suppressed int
		want                        []string // parts of the SVG
		not                         []string // never in the SVG
		err                         bool
	}{
		{name: "OK", c: barChart{ID: "c", Title: "Cases by gender", Axis: "Cases", Bars: bars(5)}, bars: 5,
			want: []string{`>12</text>`, `>Cases</text>`, `>Bar 4</text>`}},
		{name: "Intervals", c: barChart{ID: "c", Title: "Estimates", Bars: []chartBar{
			{Label: "A", Value: 10, Interval: true, Lo: 4, Hi: 16},
			{Label: "B", Value: -2, Interval: true, Lo: -8, Hi: 3},
			{Label: "C", Value: 5}}}, bars: 3, errorBars: 2},
		{name: "Suppressed", c: barChart{ID: "c", Title: "Cases by gender", Bars: []chartBar{
			{Label: `<Woman & "girls">`, Value: 120, Interval: true, Lo: 110, Hi: 130},
			{Label: strings.Repeat("x", 50), Value: 4.5, Interval: true, Lo: -2, Hi: 11},
			{Label: "Unknown", Suppressed: privacy.ReasonBelowMinimum}}}, bars: 2, errorBars: 2, suppressed: 1,
			want: []string{"&lt;Woman &amp; &#34;girls&#34;&gt;", "xxxxxxxxx…"}, not: []string{strings.Repeat("x", 30)}},
		{name: "AllSuppressed", c: barChart{ID: "c", Title: "None", Bars: []chartBar{
			{Label: "A", Suppressed: privacy.ReasonBelowMinimum}, {Label: "B", Suppressed: privacy.ReasonBelowMinimum}}}, suppressed: 2},
		{name: "AllZero", c: barChart{ID: "c", Title: "Nothing", Bars: []chartBar{{Label: "A"}, {Label: "B"}}}, bars: 2,
			want: []string{`>0</text>`, `>1</text>`}},
		{name: "WholeTicks", c: barChart{ID: "c", Title: "Few", Bars: []chartBar{{Label: "A", Value: 1}, {Label: "B", Value: 2}}}, bars: 2,
			not: []string{".5<", ".2<"}},
		{name: "Decimals", c: barChart{ID: "c", Title: "Average age", Decimals: 2, Bars: []chartBar{{Label: "A", Value: 0.126}, {Label: "B", Value: 0.02}}}, bars: 2,
			want: []string{">0.13</text>", ">0.02</text>", ">0.05</text>", ">0.15</text>"}, not: []string{"0.126", "0.050"}},
		{name: "Escaped", c: barChart{ID: `"x`, Title: `<script>alert("x")</script>`, Desc: "a & b", Axis: "<b>", Bars: []chartBar{{Label: "<i>&", Value: 1}}}, bars: 1,
			want: []string{"&lt;script&gt;", "<desc>a &amp; b</desc>", "&lt;b&gt;", "&lt;i&gt;&amp;"}, not: []string{"<script", "<i>", "<b>"}},
		{name: "LongLabel", c: barChart{ID: "c", Title: "Long", Axis: long, Bars: []chartBar{{Label: long, Value: 1}}}, bars: 1,
			want: []string{"…"}, not: []string{strings.Repeat("Congo ", 6)}},
		{name: "ErrNoBars", c: barChart{ID: "c", Title: "Empty"}, err: true},
		{name: "ErrTooManyBars", c: barChart{ID: "c", Title: "Many", Bars: bars(maxChartBars + 1)}, err: true},
		{name: "ErrNaN", c: barChart{ID: "c", Title: "NaN", Bars: []chartBar{{Label: "A", Value: math.NaN()}}}, err: true},
		{name: "ErrInfValue", c: barChart{ID: "c", Title: "Inf", Bars: []chartBar{{Label: "A", Value: math.Inf(-1)}}}, err: true},
		{name: "ErrInfInterval", c: barChart{ID: "c", Title: "Inf", Bars: []chartBar{{Label: "A", Value: 1, Interval: true, Lo: 0, Hi: math.Inf(1)}}}, err: true},
		{name: "ErrHugeSpan", c: barChart{ID: "c", Title: "Huge", Bars: []chartBar{{Label: "A", Value: -1e308}, {Label: "B", Value: 1e308}}}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.c.render()
			if tc.err {
				if got := node.KindOf(err); err == nil || got != node.Invalid {
					t.Fatalf("got error %v (kind %v), want invalid", err, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			svg := string(out)
			elems := chartElems(t, svg)
			root := elems[0]
			if root.Attr["role"] != "img" || root.Attr["aria-labelledby"] != tc.c.ID || elems[1].Name != "title" ||
				elems[1].Attr["id"] != tc.c.ID || elems[1].Text != tc.c.Title {
				t.Fatalf("got root %v and %v, want role img labelled by its title %q", root.Attr, elems[1], tc.c.Title)
			}
			if hasDesc := slices.ContainsFunc(elems, func(el chartElem) bool { return el.Name == "desc" && el.Text == tc.c.Desc }); hasDesc != (tc.c.Desc != "") {
				t.Fatalf("got desc %v, want %q", hasDesc, tc.c.Desc)
			}
			var rects, paths []chartElem
			suppressed := 0
			for _, el := range elems {
				switch {
				case el.Name == "rect":
					rects = append(rects, el)
				case el.Name == "path" && el.Attr["d"] != "" && el.Attr["stroke"] == "":
					paths = append(paths, el)
				case el.Name == "text" && el.Text == "suppressed":
					suppressed++
				}
			}
			if len(rects) != tc.bars || len(paths) != tc.errorBars || suppressed != tc.suppressed {
				t.Fatalf("got %d bars, %d error bars, %d suppressed rows, want %d, %d, %d",
					len(rects), len(paths), suppressed, tc.bars, tc.errorBars, tc.suppressed)
			}
			for _, p := range paths {
				chartErrorBar(t, p.Attr["d"])
			}
			for _, s := range tc.want {
				if !strings.Contains(svg, s) {
					t.Fatalf("got no %q in %s", s, svg)
				}
			}
			for _, s := range append(tc.not, "NaN", "Inf", "style=") {
				if strings.Contains(svg, s) {
					t.Fatalf("got %q in %s", s, svg)
				}
			}
		})
	}
}

// TestBarChartGeometry checks where bars, error bars and value labels are
// drawn: each bar runs from zero to its value, each error bar from its low
// to its high end, and each value label starts past both.
func TestBarChartGeometry(t *testing.T) {
	c := barChart{ID: "c", Title: "Estimates", Bars: []chartBar{
		{Label: "A", Value: 10, Interval: true, Lo: 4, Hi: 16},
		{Label: "B", Value: -2, Interval: true, Lo: -8, Hi: 3},
		{Label: "C", Value: 5},
		{Label: "D", Suppressed: privacy.ReasonIndistinguishable},
	}}
	out, err := c.render()
	if err != nil {
		t.Fatal(err)
	}
	elems := chartElems(t, string(out))
	var rects, paths, values []chartElem
	for _, el := range elems {
		switch {
		case el.Name == "rect":
			rects = append(rects, el)
		case el.Name == "path" && el.Attr["stroke"] == "":
			paths = append(paths, el)
		case el.Name == "g":
			values = nil // the value labels are the texts of the last group
		case el.Name == "text":
			values = append(values, el)
		}
	}
	if len(rects) != 3 || len(paths) != 2 || len(values) != 4 {
		t.Fatalf("got %d bars, %d error bars, %d value labels, want 3, 2, 4", len(rects), len(paths), len(values))
	}
	// The scale, from the first bar: it starts at zero and ends at 10.
	zero := chartAttr(t, rects[0], "x")
	unit := chartAttr(t, rects[0], "width") / 10
	x := func(v float64) float64 { return zero + v*unit }
	near := func(got, want float64) bool { return math.Abs(got-want) < 0.2 }
	for i, tc := range []struct {
		from, to float64 // the bar
		lo, hi   float64 // its error bar
		label    string
	}{
		{0, 10, 4, 16, "10"},
		{-2, 0, -8, 3, "-2"},
		{0, 5, 0, 0, "5"},
	} {
		r := rects[i]
		if got0, got1 := chartAttr(t, r, "x"), chartAttr(t, r, "x")+chartAttr(t, r, "width"); !near(got0, x(tc.from)) || !near(got1, x(tc.to)) {
			t.Fatalf("bar %d: got %.1f to %.1f, want %.1f to %.1f", i, got0, got1, x(tc.from), x(tc.to))
		}
		end := x(max(tc.to, 0))
		if i < len(paths) {
			x0, x1 := chartErrorBar(t, paths[i].Attr["d"])
			if !near(x0, x(tc.lo)) || !near(x1, x(tc.hi)) {
				t.Fatalf("error bar %d: got %.1f to %.1f, want %.1f to %.1f", i, x0, x1, x(tc.lo), x(tc.hi))
			}
			end = max(end, x1)
		}
		if got := chartAttr(t, values[i], "x"); values[i].Text != tc.label || got <= end {
			t.Fatalf("value label %d: got %q at %.1f, want %q past %.1f", i, values[i].Text, got, tc.label, end)
		}
		if y := chartAttr(t, r, "y") + chartAttr(t, r, "height")/2; !near(chartAttr(t, values[i], "y")-chartBaseline, y) {
			t.Fatalf("value label %d: got y %s, want the bar's row (middle %.1f)", i, values[i].Attr["y"], y)
		}
	}
	if values[3].Text != "suppressed" {
		t.Fatalf("got %q on the suppressed row, want suppressed", values[3].Text)
	}
}

func FuzzBarChart(f *testing.F) {
	f.Add("Woman", 120.0, 110.0, 130.0, true, false, 0)
	f.Add(`<script>&"`, -3.5, -9.0, 2.0, true, false, 1)
	f.Add(strings.Repeat("é", 40), 0.0, 0.0, 0.0, false, true, 2)
	f.Add("x", 1e300, -1e300, 1e300, true, false, 0)
	f.Add("\xff\x01\uffff", 5e-324, 0.0, 1e-300, false, false, 9)
	f.Fuzz(func(t *testing.T, label string, v, lo, hi float64, interval, suppressed bool, decimals int) {
		bar := chartBar{Label: label, Value: v, Interval: interval, Lo: lo, Hi: hi}
		if suppressed {
			bar = chartBar{Label: label, Suppressed: privacy.ReasonBelowMinimum}
		}
		c := barChart{ID: "f", Title: label, Desc: label, Axis: label, Decimals: decimals,
			Bars: []chartBar{bar, {Label: "Other", Value: 1}}}
		out, err := c.render()
		if err != nil {
			if node.KindOf(err) != node.Invalid {
				t.Fatalf("got kind %v, want invalid", node.KindOf(err))
			}
			return
		}
		chartElems(t, string(out))
		if strings.Contains(string(out), "NaN") || strings.Contains(string(out), "Inf") || len(out) > 4096+12*len(label) {
			t.Fatalf("got %d bytes: %s", len(out), out)
		}
	})
}
