package layout

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	fuzzLine = regexp.MustCompile(`-fuzz '\^(\w+)\$\$' .* \./(\S+?)/?\s*$`)
)

// TestMakeFuzzRunsEveryTarget: `make fuzz` ("each fuzz target", README)
// runs every Fuzz function of the tree, in the package that holds it, so
// a target added later is not left out.
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	want := map[string]string{} // target -> package directory
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(b), -1) {
			dir, _ := filepath.Rel(root, filepath.Dir(path))
			want[m[1]] = filepath.ToSlash(dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 10 {
		t.Fatalf("found only %d fuzz targets: the walk missed the tree", len(want))
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, ok := strings.Cut(string(mk), "\nfuzz:\n")
	if !ok {
		t.Fatal("Makefile has no fuzz target")
	}
	got := map[string]string{}
	for _, l := range strings.Split(recipe, "\n") {
		if !strings.HasPrefix(l, "\t") {
			break // the recipe ends at the first line that is not a command
		}
		if m := fuzzLine.FindStringSubmatch(l); m != nil {
			got[m[1]] = m[2]
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		switch dir, ok := got[name]; {
		case !ok:
			t.Errorf("make fuzz does not run %s (./%s/)", name, want[name])
		case dir != want[name]:
			t.Errorf("make fuzz runs %s in ./%s/, it is in ./%s/", name, dir, want[name])
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("make fuzz runs %s, which no test file defines", name)
		}
	}
}

var (
	toolLookup   = regexp.MustCompile(`(?:LookPath|sbin)\("([^"]+)"\)|lookBin\(\w+, "([^"]+)"\)`)
	depsCheck    = regexp.MustCompile(`command -v ([a-z][\w.-]*)`)
	depsLoop     = regexp.MustCompile(`for \w+ in ([^;]+); do command -v`)
	baseTools    = []string{"go", "make", "nice", "sh", "sed", "sleep", "wsgate"} // Go's, Debian's base, or built by the tests
	cgoCompilers = regexp.MustCompile(`\$\(GO\) env CC`)
)

// TestMakeDepsCoversTestTools: every program the tests look up on PATH
// (exec.LookPath, redistest's lookBin, e2e's sbin) is checked by `make deps`,
// which installs it when it is missing, and so is the C compiler that
// go test -race needs (cgo); apt-get goes through sudo for a user who is
// not root. A fresh Debian has none of these.
func TestMakeDepsCoversTestTools(t *testing.T) {
	need := map[string]string{} // tool -> a file that looks it up
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range toolLookup.FindAllStringSubmatch(string(b), -1) {
			if tool := m[1] + m[2]; !slices.Contains(baseTools, tool) {
				need[tool] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(need) < 4 {
		t.Fatalf("found only %d tools the tests look up: the walk missed the tree", len(need))
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, ok := strings.Cut(string(mk), "\ndeps:\n")
	if !ok {
		t.Fatal("Makefile has no deps target")
	}
	if i := strings.Index(recipe, "\n\n"); i >= 0 {
		recipe = recipe[:i]
	}
	checked := map[string]bool{}
	for _, m := range depsCheck.FindAllStringSubmatch(recipe, -1) {
		checked[m[1]] = true
	}
	for _, m := range depsLoop.FindAllStringSubmatch(recipe, -1) {
		for _, tool := range strings.Fields(m[1]) {
			checked[tool] = true
		}
	}
	for _, tool := range slices.Sorted(maps.Keys(need)) {
		if !checked[tool] {
			t.Errorf("%s looks up %s, which make deps neither checks nor installs", need[tool], tool)
		}
	}
	if !cgoCompilers.MatchString(recipe) || !regexp.MustCompile(`(?m)^APT_PKGS :=.*\bgcc\b`).Match(mk) {
		t.Errorf("make deps does not check for the C compiler (go env CC) and install gcc: go test -race needs cgo")
	}
	if !strings.Contains(recipe, "sudo") {
		t.Errorf("make deps runs apt-get without sudo for a user who is not root")
	}
}
