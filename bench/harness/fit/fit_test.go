package fit

import (
	"errors"
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestLinearExact(t *testing.T) {
	xs := []float64{1000, 5000, 10000, 19000}
	ys := make([]float64, len(xs))
	for i, x := range xs {
		ys[i] = 812.5*x + 9e6
	}
	l, err := Linear(xs, ys)
	if err != nil {
		t.Fatal(err)
	}
	if !near(l.Slope, 812.5, 1e-9) || !near(l.Intercept, 9e6, 1e-3) || !near(l.R2, 1, 1e-12) || l.N != 4 {
		t.Fatalf("got %+v", l)
	}
	if !near(l.At(1e6), 812.5e6+9e6, 1) {
		t.Fatalf("At(1e6) = %v", l.At(1e6))
	}
}

func TestLinearNoisy(t *testing.T) {
	// y = 2x + 1 with residuals +1, -1, -1, +1: slope and intercept are
	// known in closed form: slope stays 2 (residuals are symmetric in x).
	xs := []float64{0, 1, 2, 3}
	ys := []float64{2, 2, 4, 8}
	l, err := Linear(xs, ys)
	if err != nil {
		t.Fatal(err)
	}
	// Hand computation: mx=1.5, my=4, sxy=(−1.5·−2)+(−.5·−2)+(.5·0)+(1.5·4)=10, sxx=5.
	if !near(l.Slope, 2, 1e-12) || !near(l.Intercept, 1, 1e-12) {
		t.Fatalf("got %+v", l)
	}
	// syy = 4+4+0+16 = 24; r² = 100/(5·24).
	if !near(l.R2, 100.0/120, 1e-12) {
		t.Fatalf("r2 %v", l.R2)
	}
}

func TestLinearFlatAndDegenerate(t *testing.T) {
	l, err := Linear([]float64{1, 2, 3}, []float64{7, 7, 7})
	if err != nil || l.Slope != 0 || l.Intercept != 7 || l.R2 != 1 {
		t.Fatalf("flat: %+v %v", l, err)
	}
	for _, c := range [][2][]float64{
		{{1}, {1}},
		{{2, 2}, {1, 3}},
		{nil, nil},
	} {
		if _, err := Linear(c[0], c[1]); !errors.Is(err, ErrDegenerate) {
			t.Errorf("%v: err %v", c, err)
		}
	}
	if _, err := Linear([]float64{1, 2}, []float64{1}); err == nil {
		t.Error("length mismatch accepted")
	}
}
