package standin

import "testing"

func TestTextProblem(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		ok       bool
	}{
		{"OK", "Ben cannot book the confocal", 500, true},
		{"OKScripts", "Zoë 山田 Ångström", 100, true},
		{"OKAtMax", "abc", 3, true},
		{"ErrOverMax", "abcd", 3, false},
		{"ErrZeroWidthOnly", "\u200b\u200c\u200d\ufeff", 100, false},
		{"ErrSpacesOnly", " \u00a0\u3000", 100, false},
		{"ErrNUL", "a\x00b", 100, false},
		{"ErrNewline", "a\nb", 100, false},
		{"ErrRLO", "a\u202eb", 100, false},
		{"ErrIsolate", "a\u2067b", 100, false},
		{"ErrNotUTF8", "a\xffb", 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TextProblem(tt.in, tt.max); (got == "") != tt.ok {
				t.Fatalf("TextProblem(%q, %d) = %q, want ok=%v", tt.in, tt.max, got, tt.ok)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		"65a1b2c3d4e5f60718293a4b": true, "65A1B2C3D4E5F60718293A4B": false, "65a1b2c3d4e5f60718293a4": false,
		"65a1b2c3d4e5f60718293a4bc": false, "65a1b2c3d4e5f60718293a4g": false, "": false,
	} {
		if got := ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v", s, got)
		}
	}
}
