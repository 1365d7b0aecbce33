package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/suggest"
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
	// Compression lets the channels' publications go out compressed to
	// connections that negotiated permessage-deflate (default: the
	// --compression flag; without it nothing is negotiated at all).
	Compression bool `json:"compression"`
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

// ParseNamespaces builds namespaces from a config file's "namespaces"
// object: each value is a namespace's options as JSON. The default
// namespace "" starts from def and every other from the default, and each
// overrides the options it names. Errors name the namespace and the key:
// an unknown key (with the one probably meant), a value of the wrong type.
func ParseNamespaces(def Namespace, raw map[string]json.RawMessage) (*Namespaces, error) {
	var errs []error
	// Each problem is its own error, prefixed with its namespace, so a
	// file's problems are all reported at once and each names its place.
	check := func(name string, ns *Namespace) {
		for _, err := range ns.set(raw[name]) {
			errs = append(errs, fmt.Errorf("namespace %q: %w", name, err))
		}
		// A bad value inherited from the default is reported there only.
		if err := ns.validate(); err != nil && (name == "" || def.validate() == nil) {
			errs = append(errs, fmt.Errorf("namespace %q: %w", name, err))
		}
	}
	if _, ok := raw[""]; ok {
		check("", &def)
	}
	named := map[string]Namespace{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if name == "" {
			continue
		}
		ns := def
		check(name, &ns)
		named[name] = ns
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewNamespaces(def, named)
}

// namespaceKeys maps each config key (a Namespace field's json tag) to its
// field index: the struct is the one list of namespace options.
var namespaceKeys = func() map[string]int {
	keys := map[string]int{}
	t := reflect.TypeFor[Namespace]()
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); k != "" && k != "-" {
			keys[k] = i
		}
	}
	return keys
}()

// NamespaceOptions lists the keys a namespace takes in the config file.
func NamespaceOptions() []string { return slices.Sorted(maps.Keys(namespaceKeys)) }

// set overrides ns's options with those raw (a JSON object) names.
// Each error names its key.
func (ns *Namespace) set(raw json.RawMessage) []error {
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(raw, &opts); err != nil || opts == nil {
		return []error{fmt.Errorf("want an object of options, got %s", raw)}
	}
	v := reflect.ValueOf(ns).Elem()
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(opts)) {
		i, ok := namespaceKeys[key]
		if !ok {
			errs = append(errs, suggest.UnknownKey(key, NamespaceOptions()))
			continue
		}
		if err := json.Unmarshal(opts[key], v.Field(i).Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				err = fmt.Errorf("want %s, got %s", kindName(te.Type.Kind()), opts[key])
			}
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errs
}

// kindName says what a JSON value for a Go kind looks like.
func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	}
	return k.String()
}

func (ns Namespace) validate() error {
	for _, r := range []struct {
		key  string
		rule Rule
	}{{"subscribe", ns.Subscribe}, {"publish", ns.Publish}} {
		switch r.rule {
		case RuleAnyone, RuleAuthenticated, RuleClaim, RuleServer:
		default:
			return fmt.Errorf("%s: rule %q: want anyone, authenticated, claim or server", r.key, r.rule)
		}
	}
	if ns.HistorySize < 0 || ns.HistoryTTL < 0 {
		return fmt.Errorf("history_size and history_ttl must not be negative")
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

// HistoryPolicy is the brokers' view of the namespaces. The gateway's
// command channel keeps none.
func (n *Namespaces) HistoryPolicy() func(string) (int, time.Duration) {
	return func(channel string) (int, time.Duration) {
		ns := n.For(channel)
		if channel == commandChannel {
			return 0, time.Duration(ns.HistoryTTL)
		}
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
