package v1alpha2

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FlagArgs are extra command-line flags of a component, name (without "--") to value.
// KubeKey 3.1 writes etcd.extraArgs as a list of "--name=value"; kk also reads a mapping
// name: value. A list item without "=" ("--enable-pprof") is the value "true".
type FlagArgs map[string]string

var (
	flagArgsType = reflect.TypeOf(FlagArgs(nil))
	flagNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// parseFlag splits one "--name=value" list item.
func parseFlag(s string) (name, value string, err error) {
	s = strings.TrimSpace(s)
	name, value, ok := strings.Cut(strings.TrimPrefix(s, "--"), "=")
	if !ok {
		value = "true"
	}
	if err := checkFlagName(name); err != nil {
		return "", "", fmt.Errorf("%q: %v (want --name=value)", s, err)
	}
	return name, value, nil
}

func checkFlagName(name string) error {
	if !flagNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a flag name: lowercase letters, digits and '-'", name)
	}
	return nil
}

// UnmarshalJSON reads a list of "--name=value" or a mapping name: value.
func (a *FlagArgs) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	out := FlagArgs{}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		for _, item := range list {
			name, value, err := parseFlag(item)
			if err != nil {
				return err
			}
			out[name] = value
		}
		*a = out
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("want a list of \"--name=value\" or a mapping name: value")
	}
	for k, v := range m {
		out[strings.TrimPrefix(k, "--")] = v
	}
	*a = out
	return nil
}

// walkFlagArgs checks a FlagArgs value: a list of "--name=value" strings or a mapping of
// flag names to scalars. Every value keeps its text; a bad item is reported at its line and
// dropped, so the rest still decodes.
func (s *schemaCheck) walkFlagArgs(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.SequenceNode:
		seen := map[string]int{}
		kept := n.Content[:0]
		for i, item := range n.Content {
			child := indexPath(path, i)
			s.lines[child] = item.Line
			if item.Kind != yaml.ScalarNode || isNull(item) {
				s.rep.errorAt(child, item.Line, "expected \"--name=value\", got %s", describe(item))
				continue
			}
			name, _, err := parseFlag(item.Value)
			if err != nil {
				s.rep.errorAt(child, item.Line, "%v", err)
				continue
			}
			if first, dup := seen[name]; dup {
				s.rep.errorAt(child, item.Line, "flag --%s is given twice (first on line %d)", name, first)
				continue
			}
			seen[name] = item.Line
			keepText(item)
			kept = append(kept, item)
		}
		n.Content = kept
	case yaml.MappingNode:
		kept := n.Content[:0]
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := childPath(path, k.Value)
			s.lines[child] = k.Line
			name := strings.TrimPrefix(k.Value, "--")
			if err := checkFlagName(name); err != nil {
				s.rep.errorAt(child, k.Line, "%v", err)
				continue
			}
			if first, dup := seen[name]; dup {
				s.rep.errorAt(child, k.Line, "flag --%s is given twice (first on line %d)", name, first)
				continue
			}
			seen[name] = k.Line
			if v.Kind != yaml.ScalarNode {
				s.rep.errorAt(child, v.Line, "expected a flag value, got %s", describe(v))
				continue
			}
			keepText(k)
			keepText(v)
			kept = append(kept, k, v)
		}
		n.Content = kept
	default:
		s.typeError(n, path, "a list of \"--name=value\" or a mapping name: value")
	}
}
