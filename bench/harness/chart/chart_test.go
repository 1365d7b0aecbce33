package chart

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// wellFormed parses s as XML.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, s)
		}
	}
}

func TestSVG(t *testing.T) {
	c := Chart{
		Title: "RSS vs connections <idle>", XLabel: "connections", YLabel: "MiB",
		Series: []Series{
			{Name: "wsgate", Color: "#1f77b4", Markers: true, Points: []XY{{1000, 10}, {19000, 30}}},
			{Name: "naive & fit", Color: "#d62728", Dashed: true, Points: []XY{{1000, 30}, {19000, 400}}},
		},
	}
	s := c.SVG()
	wellFormed(t, s)
	for _, want := range []string{"wsgate", "naive &amp; fit", "RSS vs connections &lt;idle&gt;", "stroke-dasharray", "<circle", ">20k<"} {
		if !strings.Contains(s, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
}

func TestLogAndStep(t *testing.T) {
	c := Chart{LogX: true, YMin: 0, YMax: 1, Series: []Series{
		{Name: "cdf", Color: "black", Step: true, Points: []XY{{0, 0}, {0.5, 0.1}, {3, 0.9}, {40, 1}, {math.NaN(), 1}}},
	}}
	s := c.SVG()
	wellFormed(t, s)
	for _, want := range []string{">0.1<", ">100<"} {
		if !strings.Contains(s, want) {
			t.Errorf("log axis lacks tick %s", want)
		}
	}
	// Empty charts still render.
	wellFormed(t, Chart{LogX: true}.SVG())
	wellFormed(t, Chart{Series: []Series{{Name: "flat", Points: []XY{{1, 5}, {1, 5}}}}}.SVG())
}

func TestNiceTicks(t *testing.T) {
	lo, hi, ticks := niceTicks(3, 97, 5)
	if lo != 0 || hi != 100 || len(ticks) != 6 || ticks[1] != 20 {
		t.Fatalf("%v %v %v", lo, hi, ticks)
	}
	lo, hi, ticks = niceTicks(0, 0.0042, 5)
	if lo != 0 || hi < 0.0042 || ticks[1] != 0.001 {
		t.Fatalf("%v %v %v", lo, hi, ticks)
	}
	lo, hi, ticks = logTicks(0.3, 250)
	if lo != 0.1 || hi != 1000 || len(ticks) != 5 {
		t.Fatalf("%v %v %v", lo, hi, ticks)
	}
}

func TestCompact(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.25: "0.25", 1500: "1.5k", 2e6: "2M", 19000: "19k", 3e9: "3G", -2000: "-2k"} {
		if got := Compact(v); got != want {
			t.Errorf("Compact(%v) = %q, want %q", v, got, want)
		}
	}
}
