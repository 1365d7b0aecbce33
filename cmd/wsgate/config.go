package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/suggest"
)

// Settings come from four places, in this order of precedence: the command
// line, the environment (WSGATE_<FLAG>), the config file (--config), the
// flag's default. The flag set is the one list of settings: every flag is
// an environment variable and a config-file key, so a flag added later is
// both without another line.

// envName is a flag's environment variable: --max-queue-bytes is
// WSGATE_MAX_QUEUE_BYTES.
func envName(flagName string) string {
	return "WSGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configKey is a flag's key in the config file: --max-queue-bytes is
// max_queue_bytes (the style of the namespace options).
func configKey(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

const (
	// namespacesKey holds the channel namespaces (gateway.ParseNamespaces).
	namespacesKey = "namespaces"
	// configFlag names the config file; the file cannot name another.
	configFlag = "config"
)

// loadSettings completes fs after the command line was parsed: every flag
// not given there is taken from the environment, then from the config file
// that --config (or WSGATE_CONFIG) names. It returns the file's channel
// namespaces (nil without any), built on def, the default namespace the
// resolved flags describe.
func loadSettings(fs *flag.FlagSet, def func() gateway.Namespace) (*gateway.Namespaces, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if err := applyEnv(fs, set); err != nil {
		return nil, err
	}
	path := fs.Lookup(configFlag).Value.String()
	if path == "" {
		return nil, nil
	}
	raw, problems := applyConfigFile(fs, set, path)
	var ns *gateway.Namespaces
	if raw != nil {
		var err error
		if ns, err = gateway.ParseNamespaces(def(), raw); err != nil {
			problems = append(problems, unjoin(err)...) // each names its namespace
		}
	}
	switch len(problems) {
	case 0:
		return ns, nil
	case 1:
		return nil, fmt.Errorf("config %s: %w", path, problems[0])
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = "  " + p.Error()
	}
	return nil, fmt.Errorf("config %s: %d problems:\n%s", path, len(problems), strings.Join(lines, "\n"))
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// applyEnv sets every flag not in set from its WSGATE_<FLAG> variable and
// adds the names it set to set.
func applyEnv(fs *flag.FlagSet, set map[string]bool) error {
	var errs []error
	fs.VisitAll(func(fl *flag.Flag) {
		v, ok := os.LookupEnv(envName(fl.Name))
		if !ok || set[fl.Name] {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envName(fl.Name), v, err))
			return
		}
		set[fl.Name] = true
	})
	return errors.Join(errs...)
}

// applyConfigFile reads the config file at path and sets every flag not in
// set from it. It returns the namespaces' raw options and every problem
// found: unknown keys and bad values, each naming its key.
func applyConfigFile(fs *flag.FlagSet, set map[string]bool, path string) (map[string]json.RawMessage, []error) {
	doc, err := readConfigFile(path)
	if err != nil {
		return nil, []error{err}
	}
	flags := map[string]*flag.Flag{}
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name != configFlag {
			flags[configKey(fl.Name)] = fl
		}
	})
	known := append(slices.Collect(maps.Keys(flags)), namespacesKey)
	var namespaces map[string]json.RawMessage
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		val := doc[key]
		fl, isFlag := flags[key]
		switch {
		case key == namespacesKey:
			namespaces, err = namespacesValue(val)
		case isFlag:
			err = setFromFile(fl, val, set[fl.Name])
		case key == configFlag:
			err = errors.New(`key "config": a config file cannot name another`)
		default:
			err = unknownTopKey(key, known)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return namespaces, errs
}

// unknownTopKey explains a top-level key that is no flag: a typo of a flag
// (the flag meant), or a namespace option (or a typo of one) written
// outside "namespaces".
func unknownTopKey(key string, known []string) error {
	if _, ok := suggest.Closest(key, known); ok {
		return suggest.UnknownKey(key, known)
	}
	opt, ok := suggest.Closest(key, gateway.NamespaceOptions())
	switch {
	case ok && opt == key:
		return fmt.Errorf("unknown key %q: it is a namespace option; put it under %s", key, namespacesKey)
	case ok:
		return fmt.Errorf("unknown key %q; did you mean the namespace option %q (under %s)?", key, opt, namespacesKey)
	}
	return suggest.UnknownKey(key, known)
}

// readConfigFile decodes a JSON file (name ending in .json, or content
// starting with '{') or a YAML one into a map of its top-level keys.
func readConfigFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if strings.EqualFold(filepath.Ext(path), ".json") || bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("JSON: %w", err)
		}
		if dec.More() {
			return nil, errors.New("JSON: more than one value")
		}
		return doc, nil
	}
	// Node by node, to keep the text of each number: yaml turns
	// jwt_secret: 0123456789 into 1.23456789e+08 and api_key: 0755 into
	// 493, which a string flag must not get.
	var nodes map[string]yaml.Node
	if err := yaml.Unmarshal(b, &nodes); err != nil {
		return nil, err // yaml's errors start with "yaml:"
	}
	doc = make(map[string]any, len(nodes)) // an empty file sets nothing
	for key, n := range nodes {
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			v = yamlNumber{text: n.Value, val: v}
		}
		doc[key] = v
	}
	return doc, nil
}

// yamlNumber is a number at the top of a YAML config file: its value for a
// numeric flag, its text as written for a string flag.
type yamlNumber struct {
	text string
	val  any
}

// setFromFile sets fl from a decoded config value unless a flag or the
// environment already set it (the value is still checked).
func setFromFile(fl *flag.Flag, val any, alreadySet bool) error {
	key := configKey(fl.Name)
	s, err := flagText(fl, val)
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	if alreadySet {
		return nil
	}
	if err := fl.Value.Set(s); err != nil {
		return fmt.Errorf("key %q: %q: %w", key, s, err)
	}
	return nil
}

// flagText turns a decoded JSON or YAML value into the text fl.Value.Set
// takes, checking that it is of the flag's kind.
func flagText(fl *flag.Flag, val any) (string, error) {
	if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		if v, ok := val.(bool); ok {
			return strconv.FormatBool(v), nil
		}
		return "", fmt.Errorf("want true or false, got %s", describe(val))
	}
	var def any
	if g, ok := fl.Value.(flag.Getter); ok {
		def = g.Get()
	}
	switch def.(type) {
	case int, int64, uint, uint64:
		if n, ok := number(val); ok && n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return strconv.FormatInt(int64(n), 10), nil
		}
		return "", fmt.Errorf("want an integer, got %s", describe(val))
	case float64:
		if n, ok := number(val); ok {
			return strconv.FormatFloat(n, 'g', -1, 64), nil
		}
		return "", fmt.Errorf("want a number, got %s", describe(val))
	case time.Duration:
		if n, ok := number(val); ok {
			return time.Duration(n * float64(time.Second)).String(), nil // seconds, as in namespaces
		}
		if s, ok := val.(string); ok {
			if _, err := time.ParseDuration(s); err != nil {
				return "", fmt.Errorf("want a duration such as \"5s\" or a number of seconds: %w", err)
			}
			return s, nil
		}
		return "", fmt.Errorf("want a duration such as \"5s\" or a number of seconds, got %s", describe(val))
	case []string:
		if list, ok := val.([]any); ok {
			items := make([]string, len(list))
			for i, v := range list {
				s, ok := v.(string)
				if !ok {
					return "", fmt.Errorf("item %d: want a string, got %s", i, describe(v))
				}
				items[i] = s
			}
			return strings.Join(items, ","), nil
		}
	}
	switch v := val.(type) {
	case string:
		return v, nil
	case yamlNumber:
		return v.text, nil
	case json.Number:
		return v.String(), nil
	}
	return "", fmt.Errorf("want a string, got %s", describe(val))
}

// number reads a JSON or YAML number.
func number(val any) (float64, bool) {
	switch v := val.(type) {
	case yamlNumber:
		return number(v.val)
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// describe shows a decoded value in an error message.
func describe(val any) string {
	switch v := val.(type) {
	case nil:
		return "no value"
	case string:
		return strconv.Quote(v)
	case yamlNumber:
		return v.text
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "an object"
	}
	return fmt.Sprint(val)
}

// namespacesValue checks that the namespaces key holds an object of
// objects and re-encodes each namespace as JSON for gateway.ParseNamespaces
// (which checks their keys and values).
func namespacesValue(val any) (map[string]json.RawMessage, error) {
	m, ok := val.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("key %q: want an object of namespaces, got %s", namespacesKey, describe(val))
	}
	out := map[string]json.RawMessage{}
	for name, ns := range m {
		b, err := json.Marshal(ns)
		if err != nil {
			return nil, fmt.Errorf("%s: namespace %q: %w", namespacesKey, name, err)
		}
		out[name] = b
	}
	return out, nil
}
