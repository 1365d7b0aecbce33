// Package report renders a results.Run: aligned tables for the terminal,
// and a Markdown section with SVG charts for bench/README.md. The same
// tables feed both, so the terminal and the report never disagree.
package report

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// table is a titled grid of cells with notes underneath.
type table struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
	// chart names the SVG (see Charts) shown under the table in Markdown.
	chart, chartAlt string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// text renders t with columns padded to their widest cell; the first
// column is left-aligned, the others right-aligned (they are numbers).
func (t *table) text() string {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	var b strings.Builder
	b.WriteString(t.title + "\n")
	line := func(r []string) {
		for i, w := range widths {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			pad := strings.Repeat(" ", w-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString("  " + c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	for _, r := range t.rows {
		line(r)
	}
	for _, n := range t.notes {
		b.WriteString("  " + n + "\n")
	}
	return b.String()
}

// markdown renders t as a GitHub table under a bold title.
func (t *table) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**\n\n", t.title)
	b.WriteString("| " + strings.Join(t.header, " | ") + " |\n|")
	for i := range t.header {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		cells := make([]string, len(t.header))
		copy(cells, r)
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	if len(t.notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.notes {
			b.WriteString(n + "\n")
		}
	}
	return b.String()
}

// Number formats.

const dash = "–" // a value that was not measured

// num renders v with d decimals, thousands separated by commas.
// Num renders v with d decimals and thousands separators (– for NaN/Inf).
func Num(v float64, d int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dash
	}
	s := fmt.Sprintf("%.*f", d, math.Abs(v))
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// bytesIEC renders a byte count with a binary unit: 812 B, 1.5 KiB, 3.2 GiB.
func bytesIEC(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dash
	}
	a := math.Abs(v)
	switch {
	case a >= 1<<30:
		return Num(v/(1<<30), 2) + " GiB"
	case a >= 1<<20:
		return Num(v/(1<<20), 1) + " MiB"
	case a >= 10<<10:
		return Num(v/(1<<10), 1) + " KiB"
	}
	return Num(v, 0) + " B"
}

// ratio renders a/b as "0.04×", or a dash when b is 0.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return dash
	}
	r := a / b
	d := 2
	if math.Abs(r) >= 10 {
		d = 1
	}
	return Num(r, d) + "×"
}

// msPair renders two latencies in ms as "p50 / p99".
func msPair(a, b float64) string { return Ms(a) + " / " + Ms(b) }

// Ms renders a latency in ms with a precision fitting its size.
func Ms(v float64) string {
	switch {
	case v >= 100:
		return Num(v, 0)
	case v >= 10:
		return Num(v, 1)
	}
	return Num(v, 2)
}

// Table is a Markdown table of a scenario whose result is not part of a
// results.Run (resume, abuse): it prints through the same writer as the
// report's tables, so every table of the harness looks the same.
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
	Note   string // under the table; "" for none
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Markdown renders t under its bold title, the note below, and a blank
// line after it.
func (t *Table) Markdown() string {
	in := table{title: t.Title, header: t.Header, rows: t.Rows}
	if t.Note != "" {
		in.notes = []string{t.Note}
	}
	return in.markdown() + "\n"
}
