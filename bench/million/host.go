package million

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/sysctl"
)

// Profiles are the repository's sysctl profiles a run applies: this host is
// gateway and load generator at once. Later files win on a shared key.
var Profiles = []string{"gateway/99-wsgate.conf", "loadgen/99-wsgate-loadgen.conf"}

// hostPrep is the sysctls a run changed, and where their old values are
// kept on disk until they are restored.
type hostPrep struct {
	applied  *sysctl.Applied
	undoPath string
}

// RestoreLeftover puts back the sysctls an interrupted run recorded in
// undoPath (see prepareHost) and removes the file. No file: nothing to do.
func RestoreLeftover(root, undoPath string) ([]results.SysctlChange, error) {
	undo, err := os.ReadFile(undoPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", undoPath, err)
	}
	changes, err := sysctl.RestoreConf(root, undo)
	if err != nil {
		return sysctlChanges(changes), fmt.Errorf("restore from %s: %w (the file is kept)", undoPath, err)
	}
	if err := os.Remove(undoPath); err != nil {
		return sysctlChanges(changes), err
	}
	return sysctlChanges(changes), nil
}

// prepareHost applies Profiles under root and writes the old values to
// undoPath before returning, so a run killed before its restore can be
// undone later (RestoreLeftover). The caller must call restore.
func prepareHost(root, undoPath string) (*hostPrep, error) {
	var settings []sysctl.Setting
	for _, name := range Profiles {
		b, err := sysctl.Profile(name)
		if err != nil {
			return nil, err
		}
		s, err := sysctl.ParseConf(b)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		settings = append(settings, s...)
	}
	// Keep every key's current value on disk before touching any: a crash
	// in the middle leaves a file that also restores values that were
	// never changed, which is harmless.
	var before bytes.Buffer
	for _, st := range settings {
		if v, err := sysctl.ReadSysctl(root, st.Key); err == nil {
			fmt.Fprintf(&before, "%s = %s\n", st.Key, v)
		}
	}
	if err := os.WriteFile(undoPath, before.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", undoPath, err)
	}
	a, err := sysctl.Apply(root, settings)
	if err != nil {
		return nil, errors.Join(err, os.Remove(undoPath))
	}
	// Now only what changed, so a later restore touches nothing else.
	if err := os.WriteFile(undoPath, a.UndoConf(), 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("write %s: %w", undoPath, err), a.Restore())
	}
	return &hostPrep{applied: a, undoPath: undoPath}, nil
}

// restore writes back every changed sysctl and removes the undo file once
// that worked.
func (h *hostPrep) restore() error {
	if err := h.applied.Restore(); err != nil {
		return err
	}
	return os.Remove(h.undoPath)
}

func sysctlChanges(cs []sysctl.Change) []results.SysctlChange {
	out := make([]results.SysctlChange, len(cs))
	for i, c := range cs {
		out[i] = results.SysctlChange{Key: c.Key, Old: c.Old, New: c.New}
	}
	return out
}

// RunDoctor runs `wsgate doctor --root root --target target --processes
// processes` and judges its report (see JudgeDoctor).
func RunDoctor(ctx context.Context, wsgateBin, root string, target, processes int) (results.Doctor, bool, error) {
	args := []string{"doctor", "--root", root, "--target", strconv.Itoa(target), "--processes", strconv.Itoa(processes)}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wsgateBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	d := results.Doctor{Command: "wsgate " + strings.Join(args, " "), Output: out.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		d.ExitCode = ee.ExitCode()
	case err != nil:
		return d, false, fmt.Errorf("wsgate doctor: %w", err)
	}
	if d.ExitCode > 1 {
		return d, false, fmt.Errorf("wsgate doctor failed (exit %d): %s", d.ExitCode, strings.TrimSpace(d.Output))
	}
	ok, err := JudgeDoctor(&d, target)
	return d, ok, err
}

// columns splits a row of the doctor's tables (tabwriter, two spaces
// between columns; single spaces inside a cell).
var columns = regexp.MustCompile(`\s{2,}`)

// JudgeDoctor parses d.Output into Verdict, Summary and Failing, and says
// whether the run may proceed: the doctor found the host READY (and exited
// 0). Otherwise
// the error names every failing item and every constraint that allows
// fewer than target connections.
func JudgeDoctor(d *results.Doctor, target int) (bool, error) {
	var inItems, inConstraints bool
	var blocking []string
	for _, line := range strings.Split(d.Output, "\n") {
		cells := columns.Split(strings.TrimSpace(line), -1)
		switch {
		case strings.HasPrefix(line, "ITEM "):
			inItems = true
		case strings.HasPrefix(line, "CONSTRAINT "):
			inConstraints = true
		case strings.TrimSpace(line) == "":
			inItems, inConstraints = false, false
		case strings.HasPrefix(line, "this host can hold"):
			d.Summary = strings.TrimSpace(line)
		case strings.HasPrefix(line, "READY") || strings.HasPrefix(line, "NOT READY"):
			d.Verdict = strings.TrimSpace(line)
		case inItems && len(cells) >= 4:
			if status := cells[3]; status != "ok" {
				d.Failing = append(d.Failing, cells[0])
			}
		case inConstraints && len(cells) >= 2:
			n, err := strconv.ParseInt(cells[1], 10, 64)
			if err != nil {
				return false, fmt.Errorf("doctor constraint line %q: %w", line, err)
			}
			if n < int64(target) {
				blocking = append(blocking, fmt.Sprintf("%s allows %d", cells[0], n))
			}
		}
	}
	if d.Verdict == "" {
		return false, fmt.Errorf("doctor output has no verdict:\n%s", d.Output)
	}
	blocking = append(slices.Clone(d.Failing), blocking...)
	if d.ExitCode != 0 || !strings.HasPrefix(d.Verdict, "READY") || len(blocking) > 0 {
		return false, fmt.Errorf("host not ready: %s", orElse(strings.Join(blocking, ", "), d.Verdict))
	}
	return true, nil
}

// orElse is s, or alt when s is empty.
func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
