package syslog_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"standin/server/sinks/syslog"
)

// parsed is a SYSLOG-MSG read by parse5424.
type parsed struct {
	PRI       int
	Timestamp string
	Hostname  string
	AppName   string
	ProcID    string
	MsgID     string
	Data      []syslog.Element // values unescaped
	Msg       []byte           // after the BOM
	HasMsg    bool
}

// parse5424 reads b strictly by RFC 5424 §6's ABNF, as a receiver that
// checks everything would, and says where it breaks a rule.
func parse5424(b []byte) (parsed, error) {
	var p parsed
	s := string(b)
	fail := func(format string, args ...any) (parsed, error) {
		return p, fmt.Errorf("at %d of %q: %s", len(b)-len(s), b, fmt.Sprintf(format, args...))
	}
	// PRI VERSION
	if !strings.HasPrefix(s, "<") {
		return fail("no '<'")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return fail("PRI is not 1–3 digits")
	}
	digits := s[1:end]
	if len(digits) > 1 && digits[0] == '0' {
		return fail("PRI %q has a leading zero", digits)
	}
	pri, err := strconv.Atoi(digits)
	if err != nil || pri < 0 || pri > 191 || strings.ContainsAny(digits, "+-") {
		return fail("PRI %q is not 0–191", digits)
	}
	p.PRI = pri
	s = s[end+1:]
	if !strings.HasPrefix(s, "1 ") {
		return fail("VERSION is not 1")
	}
	s = s[2:]

	field := func(name string, max int) (string, error) {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return "", fmt.Errorf("%s: no SP after it", name)
		}
		v := s[:i]
		if v == "" || len(v) > max {
			return "", fmt.Errorf("%s %q: not 1–%d characters", name, v, max)
		}
		for j := 0; j < len(v); j++ {
			if v[j] < 33 || v[j] > 126 {
				return "", fmt.Errorf("%s %q: byte 0x%02x is not PRINTUSASCII", name, v, v[j])
			}
		}
		s = s[i+1:]
		return v, nil
	}
	if p.Timestamp, err = field("TIMESTAMP", 32); err != nil {
		return fail("%v", err)
	}
	if p.Timestamp != "-" {
		if _, err := time.Parse(time.RFC3339Nano, p.Timestamp); err != nil {
			return fail("TIMESTAMP: %v", err)
		}
		if dot := strings.IndexByte(p.Timestamp, '.'); dot >= 0 {
			frac := strings.TrimRight(p.Timestamp[dot+1:], "Z")
			if len(frac) < 1 || len(frac) > 6 {
				return fail("TIME-SECFRAC %q is not 1–6 digits", frac)
			}
		}
	}
	if p.Hostname, err = field("HOSTNAME", 255); err != nil {
		return fail("%v", err)
	}
	if p.AppName, err = field("APP-NAME", 48); err != nil {
		return fail("%v", err)
	}
	if p.ProcID, err = field("PROCID", 128); err != nil {
		return fail("%v", err)
	}
	if p.MsgID, err = field("MSGID", 32); err != nil {
		return fail("%v", err)
	}

	// STRUCTURED-DATA
	sdName := func() (string, error) {
		i := 0
		for i < len(s) && s[i] >= 33 && s[i] <= 126 && !strings.ContainsRune(`= ]"`, rune(s[i])) {
			i++
		}
		if i == 0 || i > 32 {
			return "", fmt.Errorf("SD-NAME %q is not 1–32 characters", s[:i])
		}
		name := s[:i]
		s = s[i:]
		return name, nil
	}
	switch {
	case strings.HasPrefix(s, "-"):
		s = s[1:]
	case strings.HasPrefix(s, "["):
		for strings.HasPrefix(s, "[") {
			s = s[1:]
			id, err := sdName()
			if err != nil {
				return fail("SD-ID: %v", err)
			}
			e := syslog.Element{ID: id}
			for strings.HasPrefix(s, " ") {
				s = s[1:]
				name, err := sdName()
				if err != nil {
					return fail("PARAM-NAME: %v", err)
				}
				if !strings.HasPrefix(s, `="`) {
					return fail(`no =" after PARAM-NAME %q`, name)
				}
				s = s[2:]
				var v strings.Builder
				for {
					if s == "" {
						return fail("PARAM-VALUE does not end")
					}
					c := s[0]
					if c == '"' {
						s = s[1:]
						break
					}
					if c == ']' {
						return fail("unescaped ']' in PARAM-VALUE")
					}
					if c == '\\' && len(s) > 1 && strings.IndexByte(`"\]`, s[1]) >= 0 {
						v.WriteByte(s[1])
						s = s[2:]
						continue
					}
					v.WriteByte(c)
					s = s[1:]
				}
				if !utf8.ValidString(v.String()) {
					return fail("PARAM-VALUE %q is not UTF-8", v.String())
				}
				e.Params = append(e.Params, syslog.Param{Name: name, Value: v.String()})
			}
			if !strings.HasPrefix(s, "]") {
				return fail("SD-ELEMENT does not end with ']'")
			}
			s = s[1:]
			p.Data = append(p.Data, e)
		}
	default:
		return fail("STRUCTURED-DATA is neither '-' nor '['")
	}

	// [SP MSG]
	if s == "" {
		return p, nil
	}
	if s[0] != ' ' {
		return fail("no SP before MSG")
	}
	s = s[1:]
	p.HasMsg = true
	if !strings.HasPrefix(s, "\xef\xbb\xbf") {
		return fail("MSG does not start with the BOM")
	}
	p.Msg = []byte(s[3:])
	if !utf8.Valid(p.Msg) {
		return fail("MSG is not UTF-8")
	}
	return p, nil
}

// mustParse5424 is parse5424 for input that must be well formed.
func mustParse5424(t interface {
	Helper()
	Fatalf(string, ...any)
}, b []byte) parsed {
	t.Helper()
	p, err := parse5424(b)
	if err != nil {
		t.Fatalf("not RFC 5424: %v", err)
	}
	return p
}

// unframe splits octet-counted frames ("LEN SP MSG"...).
func unframe(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp < 1 {
			return out, errors.New("no length")
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n < 1 || b[0] == '0' {
			return out, fmt.Errorf("bad length %q", b[:sp])
		}
		b = b[sp+1:]
		if n > len(b) {
			return out, fmt.Errorf("length %d beyond the %d bytes left", n, len(b))
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out, nil
}
