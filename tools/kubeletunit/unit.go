package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// unit is what kubeletunit takes from a service unit and its drop-ins: the
// [Service] settings that decide how the kubelet is started and restarted.
// Every other setting and section is ignored.
type unit struct {
	execStart  string
	env        []string // Environment= assignments, "NAME=value", in order
	envFiles   []envFile
	restart    string // Restart=: no (systemd's default), always, on-failure
	restartSec time.Duration
}

type envFile struct {
	path     string
	optional bool // "-" prefix: a missing file is not an error
}

func newUnit() *unit {
	// systemd's defaults: Restart=no, RestartSec=100ms.
	return &unit{restart: "no", restartSec: 100 * time.Millisecond}
}

// apply reads one unit file or drop-in on top of what u holds, as systemd
// applies drop-ins in order: an empty assignment of a list setting
// (ExecStart=, Environment=, EnvironmentFile=) clears it.
func (u *unit) apply(name, text string) error {
	section := ""
	lines := joinContinuations(strings.Split(text, "\n"))
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		if section != "Service" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s: line %d: %q is not a KEY=value setting", name, i+1, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if err := u.set(key, value); err != nil {
			return fmt.Errorf("%s: line %d: %s: %w", name, i+1, key, err)
		}
	}
	return nil
}

func (u *unit) set(key, value string) error {
	switch key {
	case "ExecStart":
		if value != "" && u.execStart != "" {
			// Only Type=oneshot services may have several.
			return errors.New("a second ExecStart= without clearing the first (ExecStart=)")
		}
		u.execStart = value
	case "Environment":
		if value == "" {
			u.env = nil
			return nil
		}
		words, err := splitWords(value)
		if err != nil {
			return err
		}
		for _, w := range words {
			if !strings.Contains(w, "=") {
				return fmt.Errorf("%q is not NAME=value", w)
			}
			u.env = append(u.env, w)
		}
	case "EnvironmentFile":
		if value == "" {
			u.envFiles = nil
			return nil
		}
		f := envFile{path: value}
		if strings.HasPrefix(value, "-") {
			f = envFile{path: value[1:], optional: true}
		}
		u.envFiles = append(u.envFiles, f)
	case "Restart":
		switch value {
		case "no", "always", "on-failure":
			u.restart = value
		default:
			return fmt.Errorf("%q is not supported (no, always, on-failure)", value)
		}
	case "RestartSec":
		d, err := parseSeconds(value)
		if err != nil {
			return err
		}
		u.restartSec = d
	}
	return nil
}

// parseSeconds reads a systemd time span: a plain number is seconds.
func parseSeconds(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s + "s"); err == nil {
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time span", s)
	}
	return d, nil
}

// restarts says whether the service is started again after its process
// ended; failed is true for a non-zero exit or a signal.
func (u *unit) restarts(failed bool) bool {
	return u.restart == "always" || (u.restart == "on-failure" && failed)
}

// command is ExecStart with the variables expanded as systemd does: a word
// that is exactly $NAME becomes the value's whitespace-separated words (none
// when empty or unset), ${NAME} becomes the value as it is. Values from
// environment files override Environment=, later ones earlier ones.
func (u *unit) command(fileEnv []map[string]string) ([]string, error) {
	if u.execStart == "" {
		return nil, errors.New("the unit has no ExecStart=")
	}
	env := map[string]string{}
	for _, kv := range u.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, m := range fileEnv {
		for k, v := range m {
			env[k] = v
		}
	}
	words, err := splitWords(u.execStart)
	if err != nil {
		return nil, fmt.Errorf("ExecStart: %w", err)
	}
	var argv []string
	for _, w := range words {
		if name, ok := strings.CutPrefix(w, "$"); ok && isName(name) {
			argv = append(argv, strings.Fields(env[name])...)
			continue
		}
		argv = append(argv, expandBraces(w, env))
	}
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return nil, fmt.Errorf("ExecStart: %q does not start with an absolute path", u.execStart)
	}
	return argv, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// expandBraces replaces ${NAME} in w and turns $$ into $.
func expandBraces(w string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		switch {
		case strings.HasPrefix(w[i:], "$$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(w[i:], "${"):
			end := strings.IndexByte(w[i:], '}')
			if end < 0 {
				b.WriteString(w[i:])
				return b.String()
			}
			b.WriteString(env[w[i+2:i+end]])
			i += end
		default:
			b.WriteByte(w[i])
		}
	}
	return b.String()
}

// splitWords splits a setting's value into words: whitespace separates,
// double or single quotes group, a backslash escapes the next character.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && quote != '\'':
			i++
			cur.WriteByte(s[i])
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// joinContinuations joins lines that end in a backslash with the next.
func joinContinuations(lines []string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// parseEnvFile reads an EnvironmentFile=: NAME=value lines, # and ;
// comments, values optionally in double or single quotes.
func parseEnvFile(text string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range joinContinuations(strings.Split(text, "\n")) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		if !ok || !isName(k) {
			return nil, fmt.Errorf("line %d: %q is not NAME=value", i+1, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
			words, err := splitWords(v)
			if err != nil || len(words) != 1 {
				return nil, fmt.Errorf("line %d: bad quoting in %q", i+1, v)
			}
			v = words[0]
		}
		env[k] = v
	}
	return env, nil
}
