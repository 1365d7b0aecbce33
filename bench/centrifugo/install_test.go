package centrifugo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo puts a "go" on $PATH that records how it was called and, for
// "go install", writes a centrifugo into $GOBIN that reports version
// (or fails like a module that cannot be fetched when version is "").
func fakeGo(t *testing.T, version string) (calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$* | GOWORK=$GOWORK CGO_ENABLED=$CGO_ENABLED | $(pwd)" >> ` + calls + `
[ "$1" = install ] || exit 2
if [ -z "$FAKE_VERSION" ]; then
	echo "go: github.com/centrifugal/centrifugo/v6@v6.9.1: module lookup disabled" >&2
	exit 1
fi
printf '#!/bin/sh\necho "Centrifugo %s (Go version: fake)"\n' "$FAKE_VERSION" > "$GOBIN/centrifugo"
chmod +x "$GOBIN/centrifugo"
`
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_VERSION", version)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	return calls
}

func readCalls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestInstall(t *testing.T) {
	calls := fakeGo(t, "v6.9.1")
	cache, err := CacheDir()
	if err != nil || cache != filepath.Join(os.Getenv("XDG_CACHE_HOME"), "wsbench") {
		t.Fatalf("cache %q %v", cache, err)
	}
	ctx := context.Background()
	if _, ok := Installed(ctx, cache); ok {
		t.Fatal("installed in an empty cache")
	}
	bin, err := Install(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	if bin != BinPath(cache) {
		t.Fatalf("bin %s, want %s", bin, BinPath(cache))
	}
	c := readCalls(t, calls)
	if len(c) != 1 {
		t.Fatalf("go called %d times: %q", len(c), c)
	}
	for _, want := range []string{"install -ldflags=-s -w -X " + Module + "/internal/build.Version=6.9.1 " + Module + "@" + Version,
		"GOWORK=off CGO_ENABLED=0", cache + "/install-"} {
		if !strings.Contains(c[0], want) {
			t.Errorf("go call %q lacks %q", c[0], want)
		}
	}
	// Installed now: the next Install builds nothing.
	if _, err := Install(ctx, cache); err != nil || len(readCalls(t, calls)) != 1 {
		t.Fatalf("second install: %v, calls %q", err, readCalls(t, calls))
	}
	assertNoLeftovers(t, cache)
}

func TestInstallFails(t *testing.T) {
	for _, version := range []string{"", "v6.0.0"} {
		fakeGo(t, version)
		cache, _ := CacheDir()
		_, err := Install(context.Background(), cache)
		switch {
		case err == nil:
			t.Fatalf("version %q: installed", version)
		case version == "" && !strings.Contains(err.Error(), "module lookup disabled"):
			t.Errorf("the build's output is not in the error: %v", err)
		case version != "" && !strings.Contains(err.Error(), "does not report version"):
			t.Errorf("wrong version: %v", err)
		}
		if _, err := os.Stat(BinPath(cache)); !os.IsNotExist(err) {
			t.Errorf("version %q: a failed install left a binary in the cache (%v)", version, err)
		}
		assertNoLeftovers(t, cache)
	}
}

func TestInstallWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	cache, _ := CacheDir()
	if _, err := Install(context.Background(), cache); err == nil || !strings.Contains(err.Error(), "no go command") {
		t.Fatalf("err %v", err)
	}
}

// assertNoLeftovers: no build directory stays in the cache.
func assertNoLeftovers(t *testing.T, cache string) {
	t.Helper()
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "install-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}
