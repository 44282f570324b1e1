package standin

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// ValidID reports whether s has the shape of a stored object's id: 24
// lower-case hexadecimal digits. Ids of any other shape name nothing, so
// they are refused before anything is looked up or written.
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// TextProblem says what is wrong with a piece of text a person typed for
// others to read (a name, a reason, a ticket reference), or "" when it
// may be stored: it must be valid UTF-8, hold at most max characters and
// at least one visible character, and contain no control characters and
// no bidirectional overrides or isolates (U+202A–U+202E, U+2066–U+2069),
// which could make it read differently from what it is. The answer is
// phrased to follow the field's name: "Reason " + problem.
func TextProblem(s string, max int) string {
	if !utf8.ValidString(s) {
		return "is not valid text."
	}
	visible := false
	n := 0
	for _, r := range s {
		n++
		switch {
		case unicode.IsControl(r):
			return "may not contain control characters such as line breaks or tabs."
		case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return "may not contain characters that reverse the direction of the text."
		case !visible && unicode.IsGraphic(r) && !unicode.IsSpace(r) && !unicode.Is(unicode.Cf, r):
			visible = true
		}
	}
	switch {
	case !visible:
		return "needs at least one visible character."
	case n > max:
		return "may have at most " + strconv.Itoa(max) + " characters."
	}
	return ""
}

// FormatTime writes t as people and clients read it everywhere: RFC 3339
// in UTC, to the second; "" for the zero time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
