package centrifugo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The pinned release. wsbench installs it from the Go module proxy with
// "go install", the way Centrifugo documents building from source.
const (
	Module  = "github.com/centrifugal/centrifugo/v6"
	Version = "v6.9.1"
)

// ldflags are the release build's (Centrifugo's .goreleaser.yml): symbols
// stripped and the version stamped in, so the binary runs as a release
// and not as a "development build".
var ldflags = "-s -w -X " + Module + "/internal/build.Version=" + strings.TrimPrefix(Version, "v")

// BinName is the executable's name.
const BinName = "centrifugo"

// CacheDir is where wsbench keeps what it installs: $XDG_CACHE_HOME/wsbench
// or ~/.cache/wsbench, outside any repository.
func CacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("centrifugo: no cache directory: %w", err)
	}
	return filepath.Join(dir, "wsbench"), nil
}

// BinPath is where the pinned release lives in cache.
func BinPath(cache string) string {
	return filepath.Join(cache, BinName+"-"+Version, BinName)
}

// Installed returns the binary in cache when it is there and reports the
// pinned version.
func Installed(ctx context.Context, cache string) (string, bool) {
	bin := BinPath(cache)
	if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", false
	}
	v, err := BinVersion(ctx, bin)
	if err != nil || !strings.Contains(v, strings.TrimPrefix(Version, "v")) {
		return "", false
	}
	return bin, true
}

// BinVersion runs "centrifugo version" and returns its output line.
func BinVersion(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s version: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	return string(bytes.TrimSpace(out)), nil
}

// Install returns the pinned release from cache, building it there first
// when it is missing (minutes on a small machine: the whole module graph
// is fetched and compiled). The build runs in a fresh directory inside
// cache with GOWORK off, so no go.mod or go.work of the caller's
// repository takes part, and only a finished binary is moved into place.
func Install(ctx context.Context, cache string) (string, error) {
	if bin, ok := Installed(ctx, cache); ok {
		return bin, nil
	}
	goCmd, err := goTool()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("centrifugo: cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cache, "install-")
	if err != nil {
		return "", fmt.Errorf("centrifugo: cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goCmd, "install", "-ldflags="+ldflags, Module+"@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("centrifugo: go install %s@%s: %w\n%s", Module, Version, err, out.String())
	}
	bin := BinPath(cache)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("centrifugo: cache: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, BinName), bin); err != nil {
		return "", fmt.Errorf("centrifugo: move the binary into the cache: %w", err)
	}
	if _, ok := Installed(ctx, cache); !ok {
		_ = os.Remove(bin)
		return "", fmt.Errorf("centrifugo: %s does not report version %s after the install", bin, Version)
	}
	return bin, nil
}

// goTool finds the go command on $PATH.
func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("centrifugo: no go command on $PATH to install it with")
	}
	return p, nil
}

// tailBuffer keeps the last 8 KiB of the build's output for an error.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - 8<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
