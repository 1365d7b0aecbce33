package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Builds compiles this module's commands (cmd/<name>) once each into a
// private directory, for tests that run the real binaries: the first
// caller builds, later ones get the same path. Cleanup removes the
// directory. Safe for concurrent use.
type Builds struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

// Build returns the path of cmd/name built without the race detector (the
// binary is measured and run as deployed).
func (b *Builds) Build(name string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.built[name]; ok {
		return p, nil
	}
	if b.dir == "" {
		dir, err := os.MkdirTemp("", "wsgate-bin-")
		if err != nil {
			return "", fmt.Errorf("build %s: %w", name, err)
		}
		b.dir, b.built = dir, map[string]string{}
	}
	path := filepath.Join(b.dir, name)
	out, err := exec.Command("go", "build", "-o", path, "github.com/wsgate/wsgate/cmd/"+name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", name, err, out)
	}
	b.built[name] = path
	return path, nil
}

// Cleanup removes what Build made.
func (b *Builds) Cleanup() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
		b.dir, b.built = "", nil
	}
}
