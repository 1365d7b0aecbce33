// Package chart draws simple line charts as standalone SVG: axes with
// round-number ticks (linear or log10), one polyline per series, optional
// point markers and dashed lines, and a legend. Hand-written so the report
// needs no plotting dependency; the output renders in any browser and on
// code-hosting sites that show SVG inline.
package chart

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// XY is one point.
type XY struct{ X, Y float64 }

// Series is one line.
type Series struct {
	Name    string
	Color   string // any SVG color
	Points  []XY
	Markers bool // draw a dot at each point
	Dashed  bool
	Step    bool // draw as a step function (a CDF)
}

// Chart is a line chart.
type Chart struct {
	Title          string
	XLabel, YLabel string
	LogX           bool // log10 x axis (points with x ≤ 0 are dropped)
	// YMin, YMax fix the y range when YMax > YMin (else: 0 … data max,
	// or the data range when data goes negative).
	YMin, YMax float64
	// XFormat and YFormat render tick values (default: compact numbers).
	XFormat, YFormat func(float64) string
	Series           []Series
}

// Geometry of every chart, in SVG user units.
const (
	width   = 760
	height  = 420
	marginL = 80
	marginR = 190 // legend
	marginT = 40
	marginB = 56
	plotW   = width - marginL - marginR
	plotH   = height - marginT - marginB
)

// axis maps data values to pixels.
type axis struct {
	lo, hi float64
	log    bool
}

func (a axis) frac(v float64) float64 {
	if a.log {
		return (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	}
	return (v - a.lo) / (a.hi - a.lo)
}

// SVG renders the chart.
func (c Chart) SVG() string {
	xs, ys := c.dataRanges()
	xa := axis{lo: xs[0], hi: xs[1], log: c.LogX}
	ya := axis{lo: ys[0], hi: ys[1]}
	var xt []float64
	if c.LogX {
		xa.lo, xa.hi, xt = logTicks(xa.lo, xa.hi)
	} else {
		xa.lo, xa.hi, xt = niceTicks(xa.lo, xa.hi, 6)
	}
	var yt []float64
	if c.YMax > c.YMin {
		ya.lo, ya.hi = c.YMin, c.YMax
		_, _, yt = niceTicks(c.YMin, c.YMax, 5)
	} else {
		ya.lo, ya.hi, yt = niceTicks(ya.lo, ya.hi, 5)
	}
	px := func(v float64) float64 { return marginL + xa.frac(v)*plotW }
	py := func(v float64) float64 { return marginT + plotH - ya.frac(v)*plotH }
	xf, yf := orDefault(c.XFormat), orDefault(c.YFormat)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, esc(c.Title))
	// Grid and ticks.
	for _, v := range yt {
		if v < ya.lo || v > ya.hi {
			continue
		}
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e0e0e0"/>`+"\n", marginL, y, marginL+plotW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y+4, esc(yf(v)))
	}
	for _, v := range xt {
		x := px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e0e0e0"/>`+"\n", x, marginT, x, marginT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, marginT+plotH+18, esc(xf(v)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", marginL, marginT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+plotW/2, height-12, esc(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+plotH/2, esc(c.YLabel))
	// Series, clipped to the plot area.
	fmt.Fprintf(&b, `<clipPath id="plot"><rect x="%d" y="%d" width="%d" height="%d"/></clipPath>`+"\n", marginL, marginT, plotW, plotH)
	b.WriteString(`<g clip-path="url(#plot)">` + "\n")
	for _, s := range c.Series {
		pts := c.usable(s.Points)
		if len(pts) == 0 {
			continue
		}
		var path []string
		for i, p := range pts {
			if s.Step && i > 0 {
				path = append(path, fmt.Sprintf("%.1f,%.1f", px(p.X), py(pts[i-1].Y)))
			}
			path = append(path, fmt.Sprintf("%.1f,%.1f", px(p.X), py(p.Y)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", esc(s.Color), s.dashAttr(), strings.Join(path, " "))
		if s.Markers {
			for _, p := range pts {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px(p.X), py(p.Y), esc(s.Color))
			}
		}
	}
	b.WriteString("</g>\n")
	c.writeLegend(&b)
	b.WriteString("</svg>\n")
	return b.String()
}

// dashAttr is the SVG attribute that draws a dashed series dashed.
func (s Series) dashAttr() string {
	if s.Dashed {
		return ` stroke-dasharray="6 4"`
	}
	return ""
}

// writeLegend names each series beside the plot, drawn as its line is.
func (c Chart) writeLegend(b *strings.Builder) {
	for i, s := range c.Series {
		y := marginT + 10 + i*20
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", marginL+plotW+12, y, marginL+plotW+36, y, esc(s.Color), s.dashAttr())
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", marginL+plotW+42, y+4, esc(s.Name))
	}
}

// usable drops points a log axis cannot show and NaNs.
func (c Chart) usable(pts []XY) []XY {
	out := make([]XY, 0, len(pts))
	for _, p := range pts {
		if math.IsNaN(p.X) || math.IsNaN(p.Y) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) || (c.LogX && p.X <= 0) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// dataRanges returns the x and y extents of every usable point (y from 0
// unless data is negative); defaults when there is none.
func (c Chart) dataRanges() (x, y [2]float64) {
	x = [2]float64{math.Inf(1), math.Inf(-1)}
	y = [2]float64{0, math.Inf(-1)}
	for _, s := range c.Series {
		for _, p := range c.usable(s.Points) {
			x[0], x[1] = min(x[0], p.X), max(x[1], p.X)
			y[0], y[1] = min(y[0], p.Y), max(y[1], p.Y)
		}
	}
	if math.IsInf(x[0], 1) {
		x = [2]float64{0, 1}
		if c.LogX {
			x = [2]float64{1, 10}
		}
	}
	if math.IsInf(y[1], -1) {
		y[1] = 1
	}
	if x[0] == x[1] {
		x[1] = x[0] + 1
		if c.LogX {
			x[1] = x[0] * 10
		}
	}
	if y[0] == y[1] {
		y[1] = y[0] + 1
	}
	return x, y
}

// niceTicks widens [lo, hi] to multiples of a 1-2-5 step giving about n
// intervals and returns the ticks.
func niceTicks(lo, hi float64, n int) (nlo, nhi float64, ticks []float64) {
	span := hi - lo
	if span <= 0 {
		span = math.Abs(hi) + 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	nlo = math.Floor(lo/step) * step
	nhi = math.Ceil(hi/step) * step
	for v := nlo; v <= nhi+step/2; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	return nlo, nhi, ticks
}

// logTicks widens [lo, hi] (> 0) to whole decades and returns one tick per
// decade.
func logTicks(lo, hi float64) (nlo, nhi float64, ticks []float64) {
	a, z := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if z <= a {
		z = a + 1
	}
	for e := a; e <= z; e++ {
		ticks = append(ticks, math.Pow(10, e))
	}
	return math.Pow(10, a), math.Pow(10, z), ticks
}

func orDefault(f func(float64) string) func(float64) string {
	if f != nil {
		return f
	}
	return Compact
}

// Compact renders a tick value: 1500 → "1.5k", 2e6 → "2M", 0.25 → "0.25".
func Compact(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string { return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64) }

func esc(s string) string { return html.EscapeString(s) }
