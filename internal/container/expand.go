package container

import (
	"strings"
	"unicode/utf8"
)

// Expand replaces $(NAME) references in s, as Kubernetes does for command,
// args and env values:
//
//   - $(NAME) becomes the value of NAME when lookup knows it, and stays
//     literally "$(NAME)" otherwise;
//   - $$ is an escaped $, so "$$(NAME)" becomes "$(NAME)";
//   - a $ followed by anything else, or an unclosed "$(", is kept as is.
func Expand(s string, lookup func(name string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch next := s[i+1]; next {
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
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end + 1
		default:
			// Copy the operator and the whole rune after it.
			_, size := utf8.DecodeRuneInString(s[i+1:])
			b.WriteString(s[i : i+1+size])
			i += 1 + size
		}
	}
	return b.String()
}

// MapLookup looks names up in vars.
func MapLookup(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}
