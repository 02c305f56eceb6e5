package web

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/ctfed/ctfed/node"
)

// Bar charts are drawn on the server with gonum/plot and its SVG canvas,
// then rewritten for the page: the canvas writes every colour and font as a
// style attribute, which the Content-Security-Policy (no inline styles)
// would make the browser ignore, so each style property becomes the SVG
// presentation attribute of the same name. The rewrite keeps only the
// elements and attributes a chart uses, so what reaches the page is an
// inline <svg> of paths and text and nothing else.

// Limits and sizes of a bar chart, in points (1/72 inch); the SVG scales to
// the width of the page.
const (
	plotMaxBars     = 40
	plotMaxLabel    = 40 // characters of a bar's label
	plotWidth       = 640
	plotBarPitch    = 18 // height per bar
	plotFixedHeight = 56 // axis, its label and margins
)

// plotFont is the font of every text of a chart. Liberation Sans has the
// metrics of Arial, so the fallbacks written into the SVG lay out alike.
var plotFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

const plotFontFamily = "Liberation Sans, Arial, Helvetica, sans-serif"

// Colours of a chart: the stylesheet's accent and ink.
var (
	plotBarColor  = color.RGBA{R: 0x0b, G: 0x5c, B: 0xad, A: 0xff}
	plotInkColor  = color.RGBA{R: 0x1b, G: 0x1f, B: 0x24, A: 0xff}
	plotGridColor = color.RGBA{R: 0xd0, G: 0xd7, B: 0xde, A: 0xff}
)

// plotBar is one bar: its label and value and, when Interval is set, the
// interval [Lo, Hi] drawn around the value as an error bar.
type plotBar struct {
	Label    string
	Value    float64
	Interval bool
	Lo, Hi   float64
}

// plotChart is a horizontal bar chart: one bar per entry of Bars, the first
// at the top.
type plotChart struct {
	// ID is the id of the chart's <title>, unique in the page;
	// "chart-title" by default.
	ID string
	// Title is the chart's accessible name (its <title>).
	Title string
	// Desc describes it further for assistive technology (its <desc>).
	Desc string
	// Axis labels the value axis.
	Axis string
	// Integer asks for whole-number ticks (counts, sums).
	Integer bool
	// ValueLabels writes each bar's value at its end.
	ValueLabels bool
	// Format writes a value label; strconv's shortest form by default.
	Format func(float64) string
	Bars   []plotBar
}

// render draws the chart as an inline SVG element, safe to put in a page as
// is. It refuses (Invalid) a chart with no bars, more than plotMaxBars, or
// a value that is not finite.
func (c *plotChart) render() (template.HTML, error) {
	const op = "web.chart"
	n := len(c.Bars)
	switch {
	case n == 0:
		return "", node.E(op, node.Invalid, "a chart needs at least one bar")
	case n > plotMaxBars:
		return "", node.E(op, node.Invalid, "a chart has at most %d bars, got %d", plotMaxBars, n)
	}
	format := c.Format
	if format == nil {
		format = func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	}
	p := plot.New()
	for _, st := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.X.Tick.Label.Font,
		&p.Y.Label.TextStyle.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font} {
		size := st.Size
		*st = plotFont
		st.Size = size
	}
	p.X.Label.Text = c.Axis
	p.X.Tick.Label.Font.Size = vg.Points(9)
	p.Y.Tick.Label.Font.Size = vg.Points(10)
	p.X.Label.TextStyle.Font.Size = vg.Points(10)
	p.X.Label.TextStyle.Color = plotInkColor
	p.X.Padding, p.Y.Padding = 0, vg.Points(4)
	p.Y.Tick.Length = 0
	p.Y.LineStyle.Width = 0
	if c.Integer {
		p.X.Tick.Marker = plotIntTicks{}
	}

	// gonum draws horizontal bars upwards from y = 0: the last bar is put
	// first so that the chart reads top-down in the table's order.
	vals := make(plotter.Values, n)
	labels := make([]string, n)
	lo, hi := 0.0, 0.0
	for i, b := range c.Bars {
		j := n - 1 - i
		if !plotFinite(b.Value) || b.Interval && (!plotFinite(b.Lo) || !plotFinite(b.Hi)) {
			return "", node.E(op, node.Invalid, "bar %d has a value that is not finite", i+1)
		}
		vals[j] = b.Value
		labels[j] = plotLabel(b.Label)
		lo, hi = math.Min(lo, b.Value), math.Max(hi, b.Value)
		if b.Interval {
			lo, hi = math.Min(lo, b.Lo), math.Max(hi, b.Hi)
		}
	}
	grid := plotter.NewGrid()
	grid.Horizontal.Width = 0
	grid.Vertical.Color = plotGridColor
	grid.Vertical.Dashes = nil
	p.Add(grid)

	bars, err := plotter.NewBarChart(vals, vg.Points(plotBarPitch*0.7))
	if err != nil {
		return "", node.E(op, node.Internal, "%w", err)
	}
	bars.Horizontal = true
	bars.Color = plotBarColor
	bars.LineStyle.Width = 0
	p.Add(bars)

	var ivs plotter.XErrors
	var ixy plotter.XYs
	for i, b := range c.Bars {
		if b.Interval {
			j := n - 1 - i
			ixy = append(ixy, plotter.XY{X: b.Value, Y: float64(j)})
			ivs = append(ivs, struct{ Low, High float64 }{b.Value - b.Lo, b.Hi - b.Value})
		}
	}
	if len(ixy) > 0 {
		eb, err := plotter.NewXErrorBars(struct {
			plotter.XYs
			plotter.XErrors
		}{ixy, ivs})
		if err != nil {
			return "", node.E(op, node.Internal, "%w", err)
		}
		eb.Color = plotInkColor
		eb.Width = vg.Points(1)
		eb.CapWidth = vg.Points(plotBarPitch * 0.4)
		p.Add(eb)
	}

	if c.ValueLabels {
		xy := make(plotter.XYs, n)
		txt := make([]string, n)
		for j, v := range vals {
			xy[j] = plotter.XY{X: v, Y: float64(j)}
			if v < 0 {
				xy[j].X = 0
			}
			txt[j] = format(v)
		}
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: txt})
		if err != nil {
			return "", node.E(op, node.Internal, "%w", err)
		}
		for i := range l.TextStyle {
			l.TextStyle[i].Font = plotFont
			l.TextStyle[i].Font.Size = vg.Points(9)
			l.TextStyle[i].Color = plotInkColor
			l.TextStyle[i].YAlign = draw.YCenter
		}
		l.Offset = vg.Point{X: vg.Points(3)}
		p.Add(l)
		// Room for the label past the longest bar.
		if hi > 0 {
			hi *= 1.12
		}
	}
	p.X.Min, p.X.Max = lo, hi
	if hi == lo {
		p.X.Max = lo + 1
	}
	p.NominalY(labels...)

	height := vg.Points(float64(plotFixedHeight + plotBarPitch*n))
	canvas := vgsvg.New(vg.Points(plotWidth), height)
	p.Draw(draw.New(canvas))
	var raw bytes.Buffer
	if _, err := canvas.WriteTo(&raw); err != nil {
		return "", node.E(op, node.Internal, "%w", err)
	}
	id := c.ID
	if id == "" {
		id = "chart-title"
	}
	out, err := plotCleanSVG(raw.Bytes(), id, c.Title, c.Desc)
	if err != nil {
		return "", node.E(op, node.Internal, "%w", err)
	}
	return template.HTML(out), nil
}

func plotFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// plotLabel shortens a bar's label to plotMaxLabel characters.
func plotLabel(s string) string {
	if utf8.RuneCountInString(s) <= plotMaxLabel {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:plotMaxLabel-1])) + "…"
}

// plotIntTicks are gonum's default ticks without the fractional ones.
type plotIntTicks struct{}

// Ticks returns the default ticks of [min, max] that are whole numbers,
// labelled without decimals.
func (plotIntTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(min, max) {
		if t.Value != math.Trunc(t.Value) {
			continue
		}
		if t.Label != "" {
			t.Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
		out = append(out, t)
	}
	return out
}

// The elements and attributes a chart may hold after plotCleanSVG.
var (
	plotSVGElements = map[string]bool{"svg": true, "g": true, "path": true, "text": true}
	plotSVGAttrs    = map[string]bool{"viewBox": true, "transform": true, "d": true, "x": true, "y": true}
	// plotSVGStyle are the style properties turned into presentation
	// attributes.
	plotSVGStyle = map[string]bool{
		"fill": true, "fill-opacity": true, "stroke": true, "stroke-opacity": true, "stroke-width": true,
		"stroke-dasharray": true, "stroke-dashoffset": true, "stroke-linecap": true, "stroke-linejoin": true,
		"font-family": true, "font-size": true, "font-style": true, "font-weight": true, "font-variant": true,
		"text-anchor": true, "opacity": true,
	}
)

// plotCleanSVG rewrites the SVG document raw (as gonum's SVG canvas writes it)
// as an inline <svg> element for an HTML page under a CSP without inline
// styles: no XML declaration or comments; style attributes become
// presentation attributes (the font family is set once, on the root);
// only plotSVGElements and plotSVGAttrs are kept (any other element is an error);
// the root gets role="img", a <title> with id and a <desc>, and scales to the width
// of its container. Every text is escaped; empty elements are self-closed,
// as HTML allows in inline SVG.
func plotCleanSVG(raw []byte, id, title, desc string) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var out bytes.Buffer
	var stack []string
	inText, roots := 0, 0
	open := false // a start tag is written up to its ">", which waits for the next token
	closeTag := func() {
		if open {
			out.WriteString(">")
			open = false
		}
	}
	for {
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the SVG: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			closeTag()
			name := t.Name.Local
			if t.Name.Space != "" || !plotSVGElements[name] {
				return nil, fmt.Errorf("unexpected element %s:%s", t.Name.Space, name)
			}
			if (len(stack) == 0) != (name == "svg") || roots > 0 && len(stack) == 0 {
				return nil, fmt.Errorf("unexpected element %s", name)
			}
			out.WriteString("<" + name)
			if name == "svg" {
				// Text inherits the font from the root.
				out.WriteString(` role="img" aria-labelledby="`)
				xml.EscapeText(&out, []byte(id))
				out.WriteString(`" width="100%" font-family="` + plotFontFamily + `"`)
			}
			plotWriteAttrs(&out, t.Attr)
			open = true
			if name == "svg" {
				roots++
				closeTag()
				out.WriteString(`<title id="`)
				xml.EscapeText(&out, []byte(id))
				out.WriteString(`">`)
				xml.EscapeText(&out, []byte(title))
				out.WriteString("</title>")
				if desc != "" {
					out.WriteString("<desc>")
					xml.EscapeText(&out, []byte(desc))
					out.WriteString("</desc>")
				}
			}
			if name == "text" {
				inText++
			}
			stack = append(stack, name)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1] != t.Name.Local || t.Name.Space != "" {
				return nil, fmt.Errorf("unbalanced element %s", t.Name.Local)
			}
			stack = stack[:len(stack)-1]
			if t.Name.Local == "text" {
				inText--
			}
			if open {
				out.WriteString("/>")
				open = false
			} else {
				out.WriteString("</" + t.Name.Local + ">")
			}
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			if inText == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("text outside a text element")
				}
				continue
			}
			closeTag()
			if err := xml.EscapeText(&out, t); err != nil {
				return nil, err
			}
		case xml.ProcInst, xml.Comment, xml.Directive:
			// The XML declaration and the generator's comment.
		}
	}
	if len(stack) != 0 || out.Len() == 0 {
		return nil, fmt.Errorf("the SVG is incomplete")
	}
	return out.Bytes(), nil
}

// plotWriteAttrs writes the attributes of attrs that a chart keeps, and the
// properties of a style attribute as presentation attributes.
func plotWriteAttrs(out *bytes.Buffer, attrs []xml.Attr) {
	write := func(k, v string) {
		out.WriteString(" " + k + `="`)
		xml.EscapeText(out, []byte(v))
		out.WriteString(`"`)
	}
	for _, a := range attrs {
		if a.Name.Space != "" {
			continue // xmlns:xlink
		}
		switch k := a.Name.Local; {
		case k == "style":
			for _, decl := range strings.Split(a.Value, ";") {
				prop, val, ok := strings.Cut(decl, ":")
				prop, val = strings.TrimSpace(prop), strings.TrimSpace(val)
				if !ok || !plotSVGStyle[prop] || val == "" {
					continue
				}
				if prop == "font-family" || val == "normal" && strings.HasPrefix(prop, "font-") {
					continue // inherited from the root, or the default
				}
				write(prop, val)
			}
		case plotSVGAttrs[k]:
			write(k, a.Value)
		}
	}
}
