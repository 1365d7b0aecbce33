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
