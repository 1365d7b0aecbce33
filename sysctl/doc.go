// Package sysctl holds wsgate's host profiles and the host check behind
// `wsgate doctor`.
//
// The profiles — sysctl.d and limits.d files for gateway and load-generator
// hosts, a systemd unit, nginx and HAProxy examples — live in sysctl/profiles
// and are embedded, so the binary can print them: see [Profile] and
// [ProfileNames].
//
// [Inspect] reads the limits that decide how many connections a host can hold
// from a /proc tree rooted anywhere ("/" for the real host, a temporary
// directory in tests) and returns a [Report]: one [Item] per setting with its
// recommended value and why it matters, plus a capacity estimate — the minimum
// over every [Constraint] — that names the constraint that binds.
package sysctl
