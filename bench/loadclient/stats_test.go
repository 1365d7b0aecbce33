package loadclient

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // reversed: must sort
	}
	tests := []struct {
		name    string
		samples []time.Duration
		ps      []float64
		want    []time.Duration
	}{
		{"empty", nil, []float64{50, 99}, ms(0, 0)},
		{"one", ms(7), []float64{0, 50, 100}, ms(7, 7, 7)},
		{"hundred", hundred, []float64{1, 7, 50, 90, 99, 100}, ms(1, 7, 50, 90, 99, 100)},
		{"nearest rank", ms(15, 20, 35, 40, 50), []float64{5, 30, 40, 50, 100}, ms(15, 20, 20, 35, 50)},
		{"clamped", ms(1, 2, 3), []float64{-5, 150, math.NaN()}, ms(1, 3, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.samples)
			got := Percentiles(tt.samples, tt.ps...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Percentiles(%v) = %v, want %v", tt.ps, got, tt.want)
			}
			if !slices.Equal(before, tt.samples) {
				t.Errorf("samples were modified")
			}
		})
	}
}

func TestSummaryUnits(t *testing.T) {
	s := Stats{Connected: 10, HandshakeP99: 1500 * time.Microsecond, DialDuration: 2 * time.Second, ConnectRate: 5.4}
	sum := s.Summary()
	if sum.HandshakeP99Ms != 1.5 || sum.DialSeconds != 2 || sum.ConnectRate != 5 {
		t.Fatalf("summary = %+v", sum)
	}
}
