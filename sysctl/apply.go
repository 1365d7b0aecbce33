package sysctl

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Setting is one "key = value" line of a sysctl.d file.
type Setting struct {
	// Key is the dotted sysctl name, e.g. "net.core.somaxconn".
	Key string
	// Value is the value with its fields separated by single spaces.
	Value string
	// Optional is set by a leading "-": the key may not exist (a module
	// that is not loaded), which is not an error.
	Optional bool
}

// ParseConf parses a sysctl.d file: "key = value" lines, comments starting
// with "#" or ";", blank lines. Keys may use "/" instead of "." as in
// sysctl.d(5).
func ParseConf(data []byte) ([]Setting, error) {
	var out []Setting
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not key = value", i+1, line)
		}
		s := Setting{Key: strings.TrimSpace(key), Value: strings.Join(strings.Fields(value), " ")}
		if rest, opt := strings.CutPrefix(s.Key, "-"); opt {
			s.Key, s.Optional = rest, true
		}
		s.Key = strings.ReplaceAll(s.Key, "/", ".")
		if s.Key == "" || strings.ContainsAny(s.Key, " \t") || strings.Contains(s.Key, "..") {
			return nil, fmt.Errorf("line %d: bad key %q", i+1, s.Key)
		}
		out = append(out, s)
	}
	return out, nil
}

// policy is how a setting combines with the value already in place.
type policy int

const (
	// set writes the profile's value.
	set policy = iota
	// raise keeps each field at the larger of the current and the profile's
	// value: a limit that someone already raised further is not lowered.
	raise
	// widen keeps the wider of the two ranges (low = min, high = max).
	widen
)

// policies names the keys that are limits (raise) or ranges (widen); every
// other key is set as the profile says.
var policies = map[string]policy{
	"fs.file-max":                    raise,
	"fs.nr_open":                     raise,
	"fs.epoll.max_user_watches":      raise,
	"net.core.somaxconn":             raise,
	"net.core.netdev_max_backlog":    raise,
	"net.ipv4.tcp_max_syn_backlog":   raise,
	"net.ipv4.tcp_max_tw_buckets":    raise,
	"net.ipv4.tcp_max_orphans":       raise,
	"net.ipv4.tcp_mem":               raise,
	"net.netfilter.nf_conntrack_max": raise,
	"net.ipv4.ip_local_port_range":   widen,
}

// Change is one sysctl an Apply wrote.
type Change struct {
	Key string
	Old string // the value before, fields separated by single spaces
	New string
}

// Skip is one setting an Apply left alone, and why.
type Skip struct {
	Key    string
	Reason string
}

// Applied is what Apply did; Restore undoes it.
type Applied struct {
	root    string
	Changes []Change
	Skipped []Skip
}

// Apply writes settings under root ("/" for the real host; a temporary tree
// in tests), in order, and returns what it changed so it can be restored.
// Limits are only ever raised and the port range only widened (see
// policies). An optional key that does not exist is skipped; any other
// failure undoes the changes made so far and returns the error. Later
// settings of the same key win, as with sysctl --system.
func Apply(root string, settings []Setting) (*Applied, error) {
	a := &Applied{root: root}
	for _, s := range dedupe(settings) {
		if err := a.apply(s); err != nil {
			return nil, errors.Join(err, a.Restore())
		}
	}
	return a, nil
}

// dedupe keeps the last setting of each key, in the position of its first.
func dedupe(settings []Setting) []Setting {
	last := map[string]Setting{}
	var order []string
	for _, s := range settings {
		if _, seen := last[s.Key]; !seen {
			order = append(order, s.Key)
		}
		last[s.Key] = s
	}
	out := make([]Setting, len(order))
	for i, k := range order {
		out[i] = last[k]
	}
	return out
}

func (a *Applied) apply(s Setting) error {
	old, err := ReadSysctl(a.root, s.Key)
	if errors.Is(err, fs.ErrNotExist) && s.Optional {
		a.Skipped = append(a.Skipped, Skip{Key: s.Key, Reason: "not present (module not loaded)"})
		return nil
	}
	if err != nil {
		return err
	}
	want, err := combine(policies[s.Key], old, s.Value)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", s.Key, err)
	}
	if want == old {
		reason := "already " + old
		if want != s.Value {
			reason += " (not lowered to " + s.Value + ")"
		}
		a.Skipped = append(a.Skipped, Skip{Key: s.Key, Reason: reason})
		return nil
	}
	if err := WriteSysctl(a.root, s.Key, want); err != nil {
		return err
	}
	a.Changes = append(a.Changes, Change{Key: s.Key, Old: old, New: want})
	return nil
}

// combine returns the value to write for a key with policy p.
func combine(p policy, current, profile string) (string, error) {
	if p == set {
		return profile, nil
	}
	cur, err1 := fieldsInt(current)
	want, err2 := fieldsInt(profile)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	if len(cur) != len(want) {
		return "", fmt.Errorf("%w: current %q and wanted %q differ in fields", ErrMalformed, current, profile)
	}
	out := make([]int64, len(cur))
	for i := range cur {
		out[i] = max(cur[i], want[i])
	}
	if p == widen && len(out) == 2 {
		out[0] = min(cur[0], want[0])
	}
	s := make([]string, len(out))
	for i, v := range out {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, " "), nil
}

func fieldsInt(v string) ([]int64, error) {
	f := strings.Fields(v)
	out := make([]int64, len(f))
	for i, x := range f {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a list of integers", ErrMalformed, v)
		}
		out[i] = n
	}
	return out, nil
}

// Restore writes back the values Apply replaced, last change first. It
// tries every one and returns the errors of those it could not restore;
// restored changes are dropped, so a second call retries only the rest.
func (a *Applied) Restore() error {
	var errs []error
	var left []Change
	for _, c := range slices.Backward(a.Changes) {
		if err := WriteSysctl(a.root, c.Key, c.Old); err != nil {
			errs = append(errs, err)
			left = append(left, c)
		}
	}
	slices.Reverse(left)
	a.Changes = left
	return errors.Join(errs...)
}

// UndoConf renders the values Apply replaced as a sysctl.d file: written
// to disk before a long run, it lets a later run (or RestoreConf) put the
// host back even if this process is killed.
func (a *Applied) UndoConf() []byte {
	var b bytes.Buffer
	b.WriteString("# values replaced by a wsbench run; restore with: wsbench million --restore\n")
	for _, c := range a.Changes {
		fmt.Fprintf(&b, "%s = %s\n", c.Key, c.Old)
	}
	return b.Bytes()
}

// RestoreConf writes every setting of an undo file (see UndoConf) under
// root as it is, whatever the policy, and returns what it changed.
func RestoreConf(root string, undo []byte) ([]Change, error) {
	settings, err := ParseConf(undo)
	if err != nil {
		return nil, fmt.Errorf("undo file: %w", err)
	}
	var changes []Change
	var errs []error
	for _, s := range settings {
		old, err := ReadSysctl(root, s.Key)
		if err == nil && old != s.Value {
			err = WriteSysctl(root, s.Key, s.Value)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if old != s.Value {
			changes = append(changes, Change{Key: s.Key, Old: old, New: s.Value})
		}
	}
	return changes, errors.Join(errs...)
}

// ReadSysctl returns the value of key under root, fields separated by
// single spaces (the kernel separates some with tabs).
func ReadSysctl(root, key string) (string, error) {
	t := procTree{root: root}
	b, err := os.ReadFile(t.path(sysctlPath(key)))
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", key, err)
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}

// WriteSysctl writes value to key under root. The newline matters: an
// empty write is ignored by the kernel, and "" must clear a list such as
// ip_local_reserved_ports.
func WriteSysctl(root, key, value string) error {
	t := procTree{root: root}
	p := t.path(sysctlPath(key))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysctl %s = %s: %w", key, value, err)
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sysctl %s = %s: %w", key, value, err)
	}
	return nil
}
