package prober

import (
	"strings"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
)

// expandStatic expands $(NAME) in an exec probe's command with the
// container's literal env values only (upstream's
// ExpandContainerCommandOnlyStatic): values from secrets, config maps or
// the downward API are not known here. The rules are those of
// internal/runtime's expand: $$ escapes $, unknown names stay as written.
func expandStatic(cmd []string, env []v1.EnvVar) []string {
	if len(cmd) == 0 || len(env) == 0 {
		return cmd
	}
	vars := make(map[string]string, len(env))
	for _, e := range env {
		if e.ValueFrom == nil {
			vars[e.Name] = e.Value
		}
	}
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = expand(s, vars)
	}
	return out
}

func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i += 2
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end + 1
		default:
			_, size := utf8.DecodeRuneInString(s[i+1:])
			b.WriteString(s[i : i+1+size])
			i += 1 + size
		}
	}
	return b.String()
}
