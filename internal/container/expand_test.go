package container

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "B": "b", "EMPTY": "", "Ü": "u"}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(B)z", "xaybz"},
		{"$(MISSING)", "$(MISSING)"},
		{"$(EMPTY)", ""},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$a"},
		{"$$$$(A)", "$$(A)"},
		{"$(A", "$(A"},
		{"$(A$(B)", "$(A$(B)"},
		{"$", "$"},
		{"a$", "a$"},
		{"$A", "$A"},
		{"$ü", "$ü"},
		{"$(Ü)", "u"},
		{"$()", "$()"},
		{"((A))", "((A))"},
	}
	for _, tt := range tests {
		if got := Expand(tt.in, MapLookup(vars)); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
