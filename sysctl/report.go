package sysctl

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Item is one checked host setting.
type Item struct {
	// Name is the sysctl name (e.g. "net.core.somaxconn") or, for values
	// that are not sysctls, a descriptive one (e.g. "RLIMIT_NOFILE hard").
	Name string
	// Current is the value found on the host, as text.
	Current string
	// Recommended is the value wsgate needs for the target, as text.
	Recommended string
	// OK reports whether Current satisfies Recommended. It is false for an
	// item whose value is unknown.
	OK bool
	// Why is a one-line reason the setting matters.
	Why string
	// Err is set when the value could not be read or parsed; the item is
	// then unknown and not OK.
	Err error
}

// Unknown reports whether the item's value could not be determined.
func (it Item) Unknown() bool {
	return it.Err != nil
}

// Status is the item's state in one word: "ok", "FIX" or "UNKNOWN".
// Problems are upper case so they stand out in the table.
func (it Item) Status() string {
	switch {
	case it.Err != nil:
		return "UNKNOWN"
	case it.OK:
		return "ok"
	default:
		return "FIX"
	}
}

// Constraint is one limit on the number of connections the host can hold.
type Constraint struct {
	// Name is ConstraintNoFile, ConstraintMemory or a sysctl name.
	Name string
	// Connections is how many client connections this limit alone allows.
	Connections int64
	// Basis says how Connections follows from the host's value.
	Basis string
}

// Report is the result of Inspect.
type Report struct {
	// Root is the host tree that was inspected ("/" for the real host).
	Root string
	// Target is the number of connections the host must hold to be ready.
	Target int64
	// Processes is how many gateway processes share Target (at least 1).
	Processes int64
	// PageSize is the unit of net.ipv4.tcp_mem used for the estimate.
	PageSize int
	// Items are the checked settings, in a fixed order.
	Items []Item
	// Constraints are the limits that could be evaluated; unknown values
	// contribute none.
	Constraints []Constraint
	// Estimate is the minimum of Constraints[i].Connections: about how many
	// connections this host can hold. 0 when no constraint was evaluated.
	Estimate int64
	// Binding is the Name of the constraint that sets Estimate ("" if none).
	Binding string
}

// Ready reports whether the host can hold Target connections: the estimate
// reaches the target and every item is OK (unknown items are not). The
// caller maps it to the exit status: 0 when ready, 1 when not.
func (r Report) Ready() bool {
	return r.Binding != "" && r.Estimate >= r.Target && len(r.Failing()) == 0
}

// Failing returns the items that are not OK, unknown ones included.
func (r Report) Failing() []Item {
	var bad []Item
	for _, it := range r.Items {
		if !it.OK {
			bad = append(bad, it)
		}
	}
	return bad
}

// Summary is the one-line verdict on capacity:
// "this host can hold about N connections (limited by X)".
func (r Report) Summary() string {
	if r.Binding == "" {
		return "this host can hold an unknown number of connections (no limit could be read)"
	}
	return fmt.Sprintf("this host can hold about %d connections (limited by %s)", r.Estimate, r.Binding)
}

// Write prints the report: an aligned table of items (item, current,
// recommended, status, why), the constraints behind the estimate, the
// summary line and the verdict. It returns the writer's error, if any.
func (r Report) Write(w io.Writer) error {
	var buf bytes.Buffer
	// Format into memory first: tabwriter may write to its destination in
	// the middle of a Write, and one error check at the end is simpler.
	fmt.Fprintf(&buf, "host check for %d connections%s (root %s, page size %d)\n\n", r.Target, r.split(), r.Root, r.PageSize)
	r.writeItems(&buf)
	buf.WriteString("\n")
	r.writeConstraints(&buf)
	buf.WriteString("\n")
	buf.WriteString(r.Summary() + "\n")
	buf.WriteString(r.verdict() + "\n")
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// split says how the target is shared, when more than one process does.
func (r Report) split() string {
	if r.Processes <= 1 {
		return ""
	}
	return fmt.Sprintf(" in %d processes (up to %d each)", r.Processes, ceilDiv(r.Target, r.Processes))
}

// writeItems prints the item table.
func (r Report) writeItems(buf *bytes.Buffer) {
	tw := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ITEM\tCURRENT\tRECOMMENDED\tSTATUS\tWHY")
	for _, it := range r.Items {
		why := it.Why
		if it.Err != nil {
			why = "cannot tell: " + it.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Name, it.Current, it.Recommended, it.Status(), why)
	}
	// Flushing into a bytes.Buffer cannot fail.
	_ = tw.Flush()
}

// writeConstraints prints each constraint and the connections it allows,
// marking the binding one.
func (r Report) writeConstraints(buf *bytes.Buffer) {
	tw := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSTRAINT\tCONNECTIONS\tBASIS")
	for _, c := range r.Constraints {
		basis := c.Basis
		if c.Name == r.Binding {
			basis += "  <- binding"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Name, c.Connections, basis)
	}
	// Flushing into a bytes.Buffer cannot fail.
	_ = tw.Flush()
}

// verdict is the last line: ready or not, and why not.
func (r Report) verdict() string {
	if r.Ready() {
		return fmt.Sprintf("READY for %d connections%s", r.Target, r.split())
	}
	var why []string
	if r.Estimate < r.Target {
		why = append(why, fmt.Sprintf("estimate %d < target %d", r.Estimate, r.Target))
	}
	if bad := r.Failing(); len(bad) > 0 {
		names := make([]string, len(bad))
		for i, it := range bad {
			names[i] = it.Name
		}
		why = append(why, "fix: "+strings.Join(names, ", "))
	}
	return "NOT READY: " + strings.Join(why, "; ")
}
