package web

import (
	"html/template"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ctfed/ctfed/node"
)

// Bar charts (the statistics page and the federated query console) are
// written on the server as inline SVG made only of svg, title, desc, g,
// path, rect and text elements with presentation attributes: no script, no
// style attribute (the Content-Security-Policy allows no inline style), no
// link, nothing loaded from elsewhere. Attributes shared by many elements
// are set once on a group and coordinates carry one decimal at most, to
// keep the page light on slow links. The page's table beside a chart holds
// the same figures.

// chartBar is one bar of a chart: a value and, when Interval is set, the
// interval [Lo, Hi] drawn around it as an error bar; or a suppressed cell
// (Suppressed holds the reason), drawn as a row that says "suppressed".
type chartBar struct {
	Label      string
	Value      float64
	Interval   bool
	Lo, Hi     float64
	Suppressed string
}

// barChart is a horizontal bar chart: one row per entry of Bars, the first
// at the top.
type barChart struct {
	// ID is the id of the chart's <title>, unique in the page.
	ID string
	// Title is the chart's accessible name (its <title>).
	Title string
	// Desc describes it further for assistive technology (its <desc>).
	Desc string
	// Axis names the values (written under the plot).
	Axis string
	// Decimals is how many decimals a value label has; the ticks never
	// have more (with none, they are whole numbers).
	Decimals int
	Bars     []chartBar
}

// Geometry of a chart, in SVG user units (CSS pixels at full size).
const (
	chartWidth    = 720
	chartLabelW   = 210 // the row labels, left of the plot
	chartRightPad = 70  // the value label of the longest bar
	chartTop      = 28  // the tick labels
	chartRowH     = 24
	chartBarH     = 14
	chartBottom   = 8
	chartAxisH    = 16 // the axis's name, under the plot
	chartBaseline = 4  // from a row's middle to the baseline of its 12px text
	chartMaxLabel = 30 // characters of a row label
	maxChartBars  = 40
	maxChartTicks = 12
)

// render draws the chart as an inline <svg> element, safe to put in a page
// as is. It refuses (Invalid) a chart with no bars, more than maxChartBars,
// or a value or interval that is not finite.
func (c *barChart) render() (template.HTML, error) {
	const op = "web.chart"
	n := len(c.Bars)
	switch {
	case n == 0:
		return "", node.E(op, node.Invalid, "a chart needs at least one bar")
	case n > maxChartBars:
		return "", node.E(op, node.Invalid, "a chart has at most %d bars, got %d", maxChartBars, n)
	}
	lo, hi := 0.0, 0.0
	for i, b := range c.Bars {
		if b.Suppressed != "" {
			continue
		}
		if !chartFinite(b.Value) || b.Interval && (!chartFinite(b.Lo) || !chartFinite(b.Hi)) {
			return "", node.E(op, node.Invalid, "bar %d has a value that is not finite", i+1)
		}
		lo, hi = min(lo, b.Value), max(hi, b.Value)
		if b.Interval {
			lo, hi = min(lo, b.Lo, b.Hi), max(hi, b.Lo, b.Hi)
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	// Round ticks, no finer than the value labels.
	decimals := min(max(c.Decimals, 0), 6)
	step := max(niceStep(hi-lo, 5), math.Pow(10, -float64(decimals)))
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	if !chartFinite(hi - lo) {
		return "", node.E(op, node.Invalid, "the values span more than a chart can draw")
	}
	ticks := int(math.Round((hi-lo)/step)) + 1
	if ticks > maxChartTicks {
		ticks = 2 // only when rounding went wrong: the two ends
		step = hi - lo
	}
	plotW := float64(chartWidth - chartLabelW - chartRightPad)
	xf := func(v float64) float64 { return chartLabelW + (v-lo)/(hi-lo)*plotW }
	x := func(v float64) string { return chartNum(xf(v)) }
	height := chartTop + n*chartRowH + chartBottom
	if c.Axis != "" {
		height += chartAxisH
	}
	gridEnd := chartTop + n*chartRowH
	row := func(i int) int { return chartTop + i*chartRowH + chartRowH/2 } // a row's middle
	esc := chartEscape
	it := strconv.Itoa

	var b strings.Builder
	b.WriteString(`<svg class="barchart" viewBox="0 0 ` + it(chartWidth) + " " + it(height) + `" width="` + it(chartWidth) +
		`" height="` + it(height) + `" role="img" aria-labelledby="` + esc(c.ID) +
		`" font-family="system-ui,sans-serif" font-size="12" fill="#1b1f24"><title id="` + esc(c.ID) + `">` + esc(c.Title) + "</title>")
	if c.Desc != "" {
		b.WriteString("<desc>" + esc(c.Desc) + "</desc>")
	}
	// Grid lines, tick labels and the axis's name.
	b.WriteString(`<path stroke="#d0d7de" d="`)
	for k := range ticks {
		b.WriteString("M" + x(lo+float64(k)*step) + " " + it(chartTop-4) + "V" + it(gridEnd))
	}
	b.WriteString(`"/><g fill="#59636e" text-anchor="middle">`)
	for k := range ticks {
		v := lo + float64(k)*step
		b.WriteString(`<text x="` + x(v) + `" y="` + it(chartTop-8) + `">` + esc(formatValue(v, tickDecimals(step))) + "</text>")
	}
	if c.Axis != "" {
		b.WriteString(`<text x="` + chartNum(chartLabelW+plotW/2) + `" y="` + it(height-chartBottom) + `">` + esc(clipLabel(c.Axis)) + "</text>")
	}
	// Row labels.
	b.WriteString(`</g><g text-anchor="end">`)
	for i, bar := range c.Bars {
		b.WriteString(`<text x="` + it(chartLabelW-8) + `" y="` + it(row(i)+chartBaseline) + `">` + esc(clipLabel(bar.Label)) + "</text>")
	}
	// Bars, error bars, value labels, suppressed rows.
	zero := xf(0)
	b.WriteString(`</g><g fill="#0b5cad">`)
	for i, bar := range c.Bars {
		if bar.Suppressed != "" {
			continue
		}
		x0, x1 := min(zero, xf(bar.Value)), max(zero, xf(bar.Value))
		b.WriteString(`<rect x="` + chartNum(x0) + `" y="` + it(row(i)-chartBarH/2) + `" width="` + chartNum(max(x1-x0, 1)) +
			`" height="` + it(chartBarH) + `"/>`)
	}
	b.WriteString(`</g><g stroke="#1b1f24" stroke-width="1.5" fill="none">`)
	for i, bar := range c.Bars {
		if bar.Suppressed != "" || !bar.Interval {
			continue
		}
		el, eh, y := x(min(bar.Lo, bar.Hi)), x(max(bar.Lo, bar.Hi)), row(i)
		b.WriteString(`<path d="M` + el + " " + it(y) + "H" + eh + "M" + el + " " + it(y-5) + "V" + it(y+5) +
			"M" + eh + " " + it(y-5) + "V" + it(y+5) + `"/>`)
	}
	b.WriteString("</g><g>")
	for i, bar := range c.Bars {
		end := max(zero, xf(bar.Value))
		if bar.Suppressed != "" {
			end = zero
		} else if bar.Interval {
			end = max(end, xf(bar.Lo), xf(bar.Hi))
		}
		b.WriteString(`<text x="` + chartNum(end+6) + `" y="` + it(row(i)+chartBaseline) + `"`)
		if bar.Suppressed != "" {
			b.WriteString(` fill="#59636e">suppressed</text>`)
			continue
		}
		b.WriteString(">" + esc(formatValue(bar.Value, decimals)) + "</text>")
	}
	b.WriteString("</g></svg>")
	return template.HTML(b.String()), nil
}

// chartEscape escapes a text for the chart, replacing what XML may not hold
// (control characters, bytes that are not UTF-8) with U+FFFD.
func chartEscape(s string) string {
	return template.HTMLEscapeString(strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xfffe || r == 0xffff {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError))))
}

func chartFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// chartNum writes a coordinate with one decimal at most: "283.3", "210".
func chartNum(v float64) string {
	s := strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
	if s == "-0" {
		return "0"
	}
	return s
}

// niceStep returns a round tick step (1, 2 or 5 times a power of ten)
// giving about n ticks over span.
func niceStep(span float64, n int) float64 {
	if !(span > 0) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// tickDecimals is how many decimals a tick step needs.
func tickDecimals(step float64) int {
	if step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step) - 1e-9))
}

// clipLabel shortens a label to chartMaxLabel characters.
func clipLabel(s string) string {
	if utf8.RuneCountInString(s) <= chartMaxLabel {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:chartMaxLabel-1])) + "…"
}
