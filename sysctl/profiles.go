package sysctl

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// profileDir is the embedded directory; profile names are relative to it.
const profileDir = "profiles"

// profileFiles holds sysctl/profiles. embed.FS is read-only, so this is not
// mutable state: it is part of the binary, like a constant.
//
//go:embed profiles
var profileFiles embed.FS

// ProfileNames returns the names of the embedded profiles, sorted, as
// slash-separated paths relative to sysctl/profiles, e.g.
// "gateway/99-wsgate.conf".
func ProfileNames() []string {
	var names []string
	// The walk cannot fail: go:embed guarantees profileDir exists, and the
	// callback never returns an error except to pass one through.
	_ = fs.WalkDir(profileFiles, profileDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, p[len(profileDir)+1:])
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// Profile returns the content of the embedded profile name (one of
// [ProfileNames]). Unknown names yield an error wrapping fs.ErrNotExist;
// names that try to leave the profile directory yield fs.ErrInvalid.
func Profile(name string) ([]byte, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, fmt.Errorf("profile %q: %w", name, fs.ErrInvalid)
	}
	b, err := profileFiles.ReadFile(path.Join(profileDir, name))
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", name, err)
	}
	return b, nil
}
