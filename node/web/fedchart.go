package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"unicode/utf8"
)

// chartBar is one bar of a chart: a released value with its 95% interval,
// or a suppressed cell (Suppressed set), drawn as a labelled empty row.
type chartBar struct {
	Label      string
	Value      float64
	Lo, Hi     float64
	Suppressed string
}

// Geometry of the bar chart, in SVG user units (CSS pixels at full size).
const (
	chartWidth    = 720
	chartLabelW   = 210
	chartRightPad = 70
	chartTop      = 28
	chartRowH     = 24
	chartBarH     = 14
	chartBottom   = 8
	chartMaxLabel = 30 // characters
	maxChartBars  = 40
)

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

// clipLabel shortens a label to chartMaxLabel characters.
func clipLabel(s string) string {
	if utf8.RuneCountInString(s) <= chartMaxLabel {
		return s
	}
	r := []rune(s)
	return string(r[:chartMaxLabel-1]) + "…"
}

// barChart draws bars as an inline SVG horizontal bar chart with error
// bars (the 95% intervals), a value axis and a label per row; suppressed
// rows say so instead of a bar. It is drawn on the server with
// presentation attributes only (no script, no style attribute), and
// titled for screen readers; the table beside it holds the same numbers.
func barChart(id, title string, bars []chartBar, decimals int) template.HTML {
	if len(bars) == 0 {
		return ""
	}
	lo, hi := 0.0, 0.0
	for _, b := range bars {
		if b.Suppressed != "" {
			continue
		}
		lo = min(lo, b.Value, b.Lo)
		hi = max(hi, b.Value, b.Hi)
	}
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep(hi-lo, 5)
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	plotW := float64(chartWidth - chartLabelW - chartRightPad)
	x := func(v float64) float64 { return chartLabelW + (v-lo)/(hi-lo)*plotW }
	height := chartTop + len(bars)*chartRowH + chartBottom
	esc := template.HTMLEscapeString

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="fedchart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s-t" font-family="system-ui,sans-serif" font-size="12">`,
		chartWidth, height, chartWidth, height, esc(id))
	fmt.Fprintf(&b, `<title id="%s-t">%s</title>`, esc(id), esc(title))
	// Axis: ticks and grid lines.
	for v := lo; v <= hi+step/2; v += step {
		px := x(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d0d7de"/>`, px, chartTop-4, px, height-chartBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#59636e">%s</text>`, px, chartTop-8, esc(formatValue(v, tickDecimals(step))))
	}
	zero := x(max(lo, 0))
	for i, bar := range bars {
		y := chartTop + i*chartRowH
		mid := float64(y) + chartRowH/2.0
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle" fill="#1b1f24">%s</text>`, chartLabelW-8, mid, esc(clipLabel(bar.Label)))
		if bar.Suppressed != "" {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="#59636e">suppressed</text>`, zero+4, mid)
			continue
		}
		x0, x1 := zero, x(bar.Value)
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="#0b5cad"/>`, x0, mid-chartBarH/2.0, max(x1-x0, 1), chartBarH)
		el, eh := x(bar.Lo), x(bar.Hi)
		fmt.Fprintf(&b, `<path d="M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f" stroke="#1b1f24" stroke-width="1.5" fill="none"/>`,
			el, mid, eh, el, mid-5, mid+5, eh, mid-5, mid+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="#1b1f24">%s</text>`, max(eh, x1)+6, mid, esc(formatValue(bar.Value, decimals)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// tickDecimals is how many decimals a tick step needs.
func tickDecimals(step float64) int {
	if step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step)))
}
