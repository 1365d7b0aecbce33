package sysctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parsers for the deployment kit (profiles/container, profiles/kubernetes):
// just the fields that must agree with the binary and with the host
// profiles. No container engine or cluster runs here, so these files are
// checked as data.

// dockerfile is a Dockerfile as a list of instructions, continuation lines
// joined and comments dropped.
type dockerfile []instruction

type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

func parseDockerfile(b []byte) dockerfile {
	var out dockerfile
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// all returns the arguments of every instruction cmd, in order.
func (d dockerfile) all(cmd string) []string {
	var out []string
	for _, in := range d {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// execForm parses a JSON-array (exec form) instruction argument.
func execForm(args string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		return nil, fmt.Errorf("%q is not in exec form (a JSON array): %w", args, err)
	}
	return v, nil
}

// scalar is any YAML scalar, kept as its text (ports and sysctl values
// may be written as numbers or strings).
type scalar string

func (s *scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a scalar", n.Line)
	}
	*s = scalar(n.Value)
	return nil
}

// composeFile is the compose.yaml subset the checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	StopSignal      string            `yaml:"stop_signal"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Ulimits         map[string]struct {
		Soft scalar `yaml:"soft"`
		Hard scalar `yaml:"hard"`
	} `yaml:"ulimits"`
	Sysctls map[string]scalar `yaml:"sysctls"`
	Ports   []string          `yaml:"ports"`
	Volumes []string          `yaml:"volumes"`
}

func parseCompose(b []byte) (composeFile, error) {
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("compose.yaml: %w", err)
	}
	return c, nil
}

// k8sObject is one document of a manifest file: its kind and name, and
// the document itself for a typed second decode.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	node yaml.Node
}

func parseManifests(b []byte) ([]k8sObject, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []k8sObject
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", len(out)+1, err)
		}
		var o k8sObject
		if err := n.Decode(&o); err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", len(out)+1, err)
		}
		o.node = n
		out = append(out, o)
	}
}

type k8sDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
					RunAsGroup   int  `yaml:"runAsGroup"`
					Sysctls      []struct {
						Name  string `yaml:"name"`
						Value scalar `yaml:"value"`
					} `yaml:"sysctls"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []k8sEnv `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

type k8sEnv struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port scalar `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort scalar `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	Spec struct {
		MaxUnavailable scalar `yaml:"maxUnavailable"`
		MinAvailable   scalar `yaml:"minAvailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

// flagArgs parses a wsgate command line after the command: "--name=value",
// "--name value", "-name value" and bare booleans, in order.
type flagArg struct{ name, value string }

func parseFlagArgs(args []string) ([]flagArg, error) {
	var out []flagArg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("%q is not a flag (position %d of %q)", a, i, args)
		}
		name := strings.TrimLeft(a, "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			out = append(out, flagArg{n, v})
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, flagArg{name, args[i+1]})
			i++
			continue
		}
		out = append(out, flagArg{name, ""})
	}
	return out, nil
}

func flagValue(fs []flagArg, name string) (string, bool) {
	for _, f := range fs {
		if f.name == name {
			return f.value, true
		}
	}
	return "", false
}

// envFlag maps WSGATE_DRAIN_WINDOW to drain-window (README: every flag has
// an environment variable WSGATE_<FLAG>).
func envFlag(env string) (string, bool) {
	rest, ok := strings.CutPrefix(env, "WSGATE_")
	if !ok {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(rest, "_", "-")), true
}
