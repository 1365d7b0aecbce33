// Package fit fits straight lines by least squares. wsbench measures a
// per-connection cost as the slope of a quantity over several connection
// counts: a process's fixed costs (runtime, buffers, the first slab page)
// land in the intercept instead of inflating a per-connection ratio.
package fit

import "errors"

// Line is y = Slope·x + Intercept over N points; R2 is the coefficient of
// determination: 1 for a perfect fit, including a flat one where every y
// is equal (R2 is undefined there; 1 keeps the value JSON-encodable).
type Line struct {
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	R2        float64 `json:"r2"`
	N         int     `json:"n"`
}

// ErrDegenerate is returned when the xs do not span a line: fewer than two
// points or all x equal.
var ErrDegenerate = errors.New("fit: need at least two distinct x values")

// Linear fits y = a·x + b to the points (xs[i], ys[i]).
func Linear(xs, ys []float64) (Line, error) {
	if len(xs) != len(ys) {
		return Line{}, errors.New("fit: xs and ys differ in length")
	}
	n := float64(len(xs))
	if len(xs) < 2 {
		return Line{}, ErrDegenerate
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= n
	my /= n
	// Centered sums: numerically stable when x is ~10⁴ and y ~10⁸.
	var sxx, sxy, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	if sxx == 0 {
		return Line{}, ErrDegenerate
	}
	l := Line{Slope: sxy / sxx, N: len(xs)}
	l.Intercept = my - l.Slope*mx
	if syy == 0 {
		l.R2 = 1
	} else {
		l.R2 = sxy * sxy / (sxx * syy)
	}
	return l, nil
}

// At evaluates the line at x.
func (l Line) At(x float64) float64 { return l.Slope*x + l.Intercept }
