package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as "30s", "5m" in YAML.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts Go duration strings and rejects negatives.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "expected a duration such as 30s or 5m")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return typeError(n, "%q is not a duration such as 30s or 5m", n.Value)
	}
	if v < 0 {
		return typeError(n, "duration %q must not be negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// typeError is how a custom unmarshaler reports a problem so that yaml.v3
// keeps decoding and the other errors in the file are not lost.
func typeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: ", n.Line, n.Column) + fmt.Sprintf(format, args...)}}
}

// Secret is a password read from a file or an environment variable, never
// written inline. Its value never reaches logs, errors, metrics or pages:
// String and MarshalYAML redact it.
type Secret struct {
	File  string `yaml:"file"`
	Env   string `yaml:"env"`
	value string
}

// UnmarshalYAML refuses inline values, so a password can't be committed by accident.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return typeError(n, "secrets are not written inline: give {file: PATH} or {env: NAME}")
	}
	// Only file and env: {file: F, value: V} would smuggle an inline
	// password past the rule above. Every error names the secret itself
	// (n), not the key inside it, so that the secret counts as undecoded
	// and is not also reported as missing or empty.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			at := ""
			if k.Line != n.Line {
				at = fmt.Sprintf(" (line %d)", k.Line)
			}
			if k.Value != "file" && k.Value != "env" {
				return typeError(n, "%q%s is not a field of a secret: give only {file: PATH} or {env: NAME}, never the value inline", k.Value, at)
			}
			if val.Kind != yaml.ScalarNode {
				return typeError(n, "%s%s must be a path or a variable name, not a list or mapping", k.Value, at)
			}
		}
	}
	type plain Secret
	var p plain
	if err := n.Decode(&p); err != nil {
		return typeError(n, "expected {file: PATH} or {env: NAME}")
	}
	if (p.File == "") == (p.Env == "") {
		return typeError(n, "a secret needs exactly one of file or env")
	}
	*s = Secret(p)
	return nil
}

func (s *Secret) resolve() error {
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return fmt.Errorf("secret file %s cannot be read: %v", s.File, pe.Err)
			}
			return fmt.Errorf("secret file %s cannot be read", s.File)
		}
		s.value = strings.TrimRight(string(b), "\r\n")
	case s.Env != "":
		val, ok := os.LookupEnv(s.Env)
		if !ok {
			return fmt.Errorf("environment variable %s is not set", s.Env)
		}
		s.value = val
	}
	if s.value == "" {
		return errors.New("secret is empty")
	}
	return nil
}

// Value returns the secret. Only the code that authenticates calls it.
func (s *Secret) Value() string {
	if s == nil {
		return ""
	}
	return s.value
}

// NewSecret makes a resolved secret, for tests and programmatic configs.
func NewSecret(value string) *Secret { return &Secret{Env: "(programmatic)", value: value} }

func (s *Secret) String() string { return "<secret>" }

// MarshalYAML keeps where the secret comes from and drops its value.
func (s Secret) MarshalYAML() (any, error) {
	if s.File != "" {
		return map[string]string{"file": s.File}, nil
	}
	return map[string]string{"env": s.Env}, nil
}
