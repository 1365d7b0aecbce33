package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Rule says who may subscribe to or publish in a namespace's channels.
type Rule string

// Rules, from most to least open.
const (
	RuleAnyone        Rule = "anyone"        // any connection, anonymous included
	RuleAuthenticated Rule = "authenticated" // connections with a user id
	RuleClaim         Rule = "claim"         // the connection's token lists the channel (channels claim)
	RuleServer        Rule = "server"        // no client: only the server API
)

// Namespace holds the options of the channels "<name>:…" (the default
// namespace, "", holds channels without a colon).
type Namespace struct {
	HistorySize int      `json:"history_size"`
	HistoryTTL  Duration `json:"history_ttl"`
	Recovery    bool     `json:"recovery"`
	Presence    bool     `json:"presence"`
	JoinLeave   bool     `json:"join_leave"` // push join/leave of subscribers to the channel, on every instance
	Subscribe   Rule     `json:"subscribe"`
	Publish     Rule     `json:"publish"`
}

// Duration is a time.Duration written as "5m" in the config file.
type Duration time.Duration

// UnmarshalJSON reads "5m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration: want \"5m\" or seconds, got %s", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Namespaces maps channels to their namespace's options.
type Namespaces struct {
	Default Namespace
	byName  map[string]Namespace
}

// FileConfig is the gateway's config file (JSON; --config): channel
// namespaces. Every namespace starts from the defaults (the command line's
// history flags, recovery on, presence off, anyone may subscribe and
// publish) and overrides what it names.
type FileConfig struct {
	Namespaces map[string]json.RawMessage `json:"namespaces"`
}

// NewNamespaces builds namespaces from def and per-name overrides.
func NewNamespaces(def Namespace, named map[string]Namespace) (*Namespaces, error) {
	n := &Namespaces{Default: def, byName: map[string]Namespace{}}
	for name, ns := range named {
		if strings.ContainsAny(name, ":") {
			return nil, fmt.Errorf("namespace %q: a name cannot contain ':'", name)
		}
		if err := ns.validate(); err != nil {
			return nil, fmt.Errorf("namespace %q: %w", name, err)
		}
		if name == "" {
			n.Default = ns
			continue
		}
		n.byName[name] = ns
	}
	return n, n.Default.validate()
}

// LoadNamespaces reads a config file; every namespace inherits def's
// fields it does not set.
func LoadNamespaces(path string, def Namespace) (*Namespaces, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var fc FileConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	named := map[string]Namespace{}
	// The default namespace first, so the others inherit from it.
	if raw, ok := fc.Namespaces[""]; ok {
		if err := json.Unmarshal(raw, &def); err != nil {
			return nil, fmt.Errorf("config %s: namespace \"\": %w", path, err)
		}
	}
	for name, raw := range fc.Namespaces {
		ns := def
		if err := json.Unmarshal(raw, &ns); err != nil {
			return nil, fmt.Errorf("config %s: namespace %q: %w", path, name, err)
		}
		named[name] = ns
	}
	return NewNamespaces(def, named)
}

func (ns Namespace) validate() error {
	for _, r := range []Rule{ns.Subscribe, ns.Publish} {
		switch r {
		case RuleAnyone, RuleAuthenticated, RuleClaim, RuleServer:
		default:
			return fmt.Errorf("rule %q: want anyone, authenticated, claim or server", r)
		}
	}
	if ns.HistorySize < 0 || ns.HistoryTTL < 0 {
		return fmt.Errorf("history size and ttl must not be negative")
	}
	return nil
}

// For returns the options of channel's namespace.
func (n *Namespaces) For(channel string) *Namespace {
	if name, _, ok := strings.Cut(channel, ":"); ok {
		if ns, ok := n.byName[name]; ok {
			return &ns
		}
	}
	return &n.Default
}

// HistoryPolicy is the brokers' view of the namespaces.
func (n *Namespaces) HistoryPolicy() func(string) (int, time.Duration) {
	return func(channel string) (int, time.Duration) {
		ns := n.For(channel)
		return ns.HistorySize, time.Duration(ns.HistoryTTL)
	}
}

// userChannelOwners returns the users a private channel belongs to:
// "user#42" → [42], "chat:dialog#42,43" → [42 43]; ok is false for a
// channel without '#'.
func userChannelOwners(channel string) ([]string, bool) {
	_, rest, found := strings.Cut(channel, ":")
	if !found {
		rest = channel
	}
	_, users, ok := strings.Cut(rest, "#")
	if !ok {
		return nil, false
	}
	return strings.Split(users, ","), true
}

// permitted checks rule for a connection with identity id on channel.
func permitted(rule Rule, id Identity, channel string) bool {
	switch rule {
	case RuleAnyone:
		return true
	case RuleAuthenticated:
		return id.UserID != ""
	case RuleClaim:
		return slices.Contains(id.Channels, channel)
	}
	return false
}
