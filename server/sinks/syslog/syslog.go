// Package syslog delivers records to a syslog receiver (a SIEM, rsyslog,
// syslog-ng) in the RFC 5424 format, over TCP with octet-counting framing
// (RFC 6587 §3.4.1) or over TLS (RFC 5425).
//
// Format turns one Message into one SYSLOG-MSG; Client sends batches of them.
// Validate on Message and Config tells, before anything is sent, whether a
// record keeps to the RFC's rules; Format never fails and never panics, but
// cleans what Validate would reject so that its output stays well formed.
//
// Syslog over TCP has no acknowledgement: bytes the kernel accepted for a
// receiver that goes away in that moment are lost without the sender
// knowing. Client narrows the window (before writing it notices a connection
// the receiver has closed, and reconnects), and its caller resends a whole
// batch after an error, so a receiver may see a record twice. Records carry
// their own sequence number in STRUCTURED-DATA so that a SIEM can tell
// duplicates and gaps.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of Config's zero values.
const (
	// DefaultFacility is authpriv: security and authorization messages,
	// which an audit log of a support console's actions is.
	DefaultFacility     = 10
	DefaultAppName      = "standin"
	DefaultDialTimeout  = 5 * time.Second
	DefaultWriteTimeout = 5 * time.Second
)

// Severities (RFC 5424 §6.2.1).
const (
	SeverityEmergency = 0
	SeverityAlert     = 1
	SeverityCritical  = 2
	SeverityError     = 3
	SeverityWarning   = 4
	SeverityNotice    = 5
	SeverityInfo      = 6
	SeverityDebug     = 7
)

// Field limits of RFC 5424 §6.
const (
	maxHostname = 255
	maxAppName  = 48
	maxMsgID    = 32
	maxSDName   = 32
)

// ErrInvalid is wrapped by every error about a Message or Config that breaks
// RFC 5424's rules. Resending the same input cannot succeed, so a caller that
// retries batches should set such a record aside instead.
var ErrInvalid = errors.New("invalid input")

// registeredSDIDs are the SD-IDs registered with IANA (RFC 5424 §7), the only
// ones that may go without an "@enterprise-number" part.
var registeredSDIDs = map[string]bool{"timeQuality": true, "origin": true, "meta": true}

// Message is one syslog record (RFC 5424).
type Message struct {
	// Time is when the event happened; it is sent in UTC with microseconds.
	// The zero time is sent as "-" (unknown).
	Time time.Time
	// Severity is 0 (emergency) to 7 (debug).
	Severity int
	// MsgID names the kind of record, e.g. "impersonation.started": 1 to 32
	// printable US-ASCII characters; empty is sent as "-".
	MsgID string
	// Data is the STRUCTURED-DATA, e.g. [standin@32473 seq="42" id="..."].
	Data []Element
	// Body is the MSG: UTF-8 text, often a JSON document. It is sent after
	// the UTF-8 byte order mark (RFC 5424 §6.4); bytes that are not UTF-8
	// are sent as U+FFFD so that the mark stays true. Empty sends no MSG.
	Body []byte
}

// Element is one SD-ELEMENT.
type Element struct {
	// ID is the SD-ID: "name@enterprise-number" (e.g. "standin@32473"), or
	// one of the IANA-registered "timeQuality", "origin", "meta". At most 32
	// printable US-ASCII characters other than '=', ' ', ']' and '"'; each
	// ID appears once in a Message.
	ID     string
	Params []Param
}

// Param is one SD-PARAM.
type Param struct {
	// Name follows the SD-ID's character rules, without the '@' rule.
	Name string
	// Value is UTF-8 text; '"', '\' and ']' are escaped when formatted, and
	// bytes that are not UTF-8 are sent as U+FFFD.
	Value string
}

// Config says where and how a Client sends. Zero values are the documented
// defaults.
type Config struct {
	// Address is the receiver's host:port.
	Address string
	// TLS, when set, wraps the connection in TLS (RFC 5425). Its ServerName
	// defaults to Address's host.
	TLS *tls.Config
	// Hostname is the HOSTNAME field: at most 255 printable US-ASCII
	// characters; empty is sent as "-".
	Hostname string
	// AppName is the APP-NAME field, at most 48 printable US-ASCII
	// characters; DefaultAppName when empty. PROCID is always "-".
	AppName string
	// Facility is 1 to 23; 0 means DefaultFacility (authpriv), since 0
	// itself (kern) is the kernel's.
	Facility int
	// DialTimeout bounds connecting, the TLS handshake included;
	// DefaultDialTimeout when zero.
	DialTimeout time.Duration
	// WriteTimeout bounds each write to the connection; DefaultWriteTimeout
	// when zero.
	WriteTimeout time.Duration
	// Dial, when set, opens the TCP connection; the caller uses it to check
	// destinations against an allowlist. Default: a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// withDefaults returns cfg with its zero values replaced by the defaults.
func (cfg Config) withDefaults() Config {
	if cfg.AppName == "" {
		cfg.AppName = DefaultAppName
	}
	if cfg.Facility == 0 {
		cfg.Facility = DefaultFacility
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return cfg
}

// Validate reports, wrapping ErrInvalid, the first way cfg breaks the rules
// documented on its fields.
func (cfg Config) Validate() error {
	if cfg.Address == "" {
		return fmt.Errorf("%w: no Address", ErrInvalid)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return fmt.Errorf("%w: Address %q: %v", ErrInvalid, cfg.Address, err)
	}
	if cfg.Facility < 0 || cfg.Facility > 23 {
		return fmt.Errorf("%w: Facility %d is outside 0–23", ErrInvalid, cfg.Facility)
	}
	if err := checkPrintASCII(cfg.Hostname, maxHostname, ""); err != nil {
		return fmt.Errorf("%w: Hostname %q: %s", ErrInvalid, cfg.Hostname, err)
	}
	if err := checkPrintASCII(cfg.AppName, maxAppName, ""); err != nil {
		return fmt.Errorf("%w: AppName %q: %s", ErrInvalid, cfg.AppName, err)
	}
	if cfg.DialTimeout < 0 {
		return fmt.Errorf("%w: DialTimeout %v is negative", ErrInvalid, cfg.DialTimeout)
	}
	if cfg.WriteTimeout < 0 {
		return fmt.Errorf("%w: WriteTimeout %v is negative", ErrInvalid, cfg.WriteTimeout)
	}
	return nil
}

// Validate reports, wrapping ErrInvalid, the first way m breaks the rules
// documented on Message, Element and Param. Text that is not UTF-8 (in Body
// and Param values) is no error: Format replaces it.
func (m Message) Validate() error {
	if m.Severity < SeverityEmergency || m.Severity > SeverityDebug {
		return fmt.Errorf("%w: Severity %d is outside 0–7", ErrInvalid, m.Severity)
	}
	if !m.Time.IsZero() {
		if y := m.Time.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("%w: Time %v: year %d has no four-digit form", ErrInvalid, m.Time, y)
		}
	}
	if err := checkPrintASCII(m.MsgID, maxMsgID, ""); err != nil {
		return fmt.Errorf("%w: MsgID %q: %s", ErrInvalid, m.MsgID, err)
	}
	seen := make(map[string]bool, len(m.Data))
	for i, e := range m.Data {
		if err := checkSDID(e.ID); err != nil {
			return fmt.Errorf("%w: Data[%d]: SD-ID %q: %s", ErrInvalid, i, e.ID, err)
		}
		if seen[e.ID] {
			return fmt.Errorf("%w: Data[%d]: SD-ID %q appears twice", ErrInvalid, i, e.ID)
		}
		seen[e.ID] = true
		for j, p := range e.Params {
			if p.Name == "" {
				return fmt.Errorf("%w: Data[%d] %s: Params[%d]: empty name", ErrInvalid, i, e.ID, j)
			}
			if err := checkPrintASCII(p.Name, maxSDName, sdNameForbidden); err != nil {
				return fmt.Errorf("%w: Data[%d] %s: Params[%d]: name %q: %s", ErrInvalid, i, e.ID, j, p.Name, err)
			}
		}
	}
	return nil
}

// sdNameForbidden are the printable characters an SD-NAME may not hold
// (RFC 5424 §6.3.2).
const sdNameForbidden = `= ]"`

// checkSDID checks an SD-ID: an SD-NAME that is either registered or of the
// form name@enterprise-number, the number being digits and dots.
func checkSDID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if err := checkPrintASCII(id, maxSDName, sdNameForbidden); err != nil {
		return err
	}
	name, number, private := strings.Cut(id, "@")
	if !private {
		if !registeredSDIDs[id] {
			return errors.New(`is neither name@enterprise-number nor registered (timeQuality, origin, meta)`)
		}
		return nil
	}
	if name == "" {
		return errors.New(`no name before "@"`)
	}
	if number == "" || number[0] == '.' || number[len(number)-1] == '.' || strings.Contains(number, "..") {
		return fmt.Errorf("enterprise number %q is not digits separated by dots", number)
	}
	for i := 0; i < len(number); i++ {
		if c := number[i]; c != '.' && (c < '0' || c > '9') {
			return fmt.Errorf("enterprise number %q is not digits separated by dots", number)
		}
	}
	return nil
}

// checkPrintASCII checks that s has at most max bytes, each printable
// US-ASCII (33–126) and none of forbidden. Empty s passes.
func checkPrintASCII(s string, max int, forbidden string) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes, more than %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 {
			return fmt.Errorf("byte 0x%02x at %d is not printable US-ASCII", c, i)
		}
		if strings.IndexByte(forbidden, c) >= 0 {
			return fmt.Errorf("%q at %d is not allowed", c, i)
		}
	}
	return nil
}

// bom is the UTF-8 byte order mark that starts a UTF-8 MSG (RFC 5424 §6.4).
const bom = "\xef\xbb\xbf"

// timeLayout is RFC 3339 in UTC with the six fractional digits that are
// RFC 5424's most (TIME-SECFRAC).
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Format returns m as one RFC 5424 SYSLOG-MSG, without framing: PRI
// (facility*8+severity), VERSION 1, TIMESTAMP, HOSTNAME, APP-NAME, PROCID
// "-", MSGID, STRUCTURED-DATA and, when Body is not empty, the BOM and MSG.
//
// It expects m and cfg to pass Validate. Whatever they hold, it returns a
// well-formed record: a Severity or Facility out of range is clamped to the
// nearest valid one, characters a field may not hold become '_', fields are
// cut to their length limits, a Time without a four-digit year is "-", and
// text that is not UTF-8 holds U+FFFD in place of the bad bytes.
func Format(m Message, cfg Config) []byte {
	return appendFormat(nil, m, cfg.withDefaults())
}

// appendFormat appends Format's record to dst; cfg has its defaults.
func appendFormat(dst []byte, m Message, cfg Config) []byte {
	facility := clamp(cfg.Facility, 0, 23)
	severity := clamp(m.Severity, SeverityEmergency, SeverityDebug)
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(facility*8+severity), 10)
	dst = append(dst, ">1 "...)

	if t := m.Time.UTC(); m.Time.IsZero() || t.Year() < 0 || t.Year() > 9999 {
		dst = append(dst, '-')
	} else {
		dst = t.AppendFormat(dst, timeLayout)
	}
	dst = append(dst, ' ')
	dst = appendName(dst, cfg.Hostname, maxHostname, "", "-")
	dst = append(dst, ' ')
	dst = appendName(dst, cfg.AppName, maxAppName, "", "-")
	dst = append(dst, " - "...) // PROCID
	dst = appendName(dst, m.MsgID, maxMsgID, "", "-")
	dst = append(dst, ' ')

	if len(m.Data) == 0 {
		dst = append(dst, '-')
	}
	for _, e := range m.Data {
		dst = append(dst, '[')
		dst = appendName(dst, e.ID, maxSDName, sdNameForbidden, "_")
		for _, p := range e.Params {
			dst = append(dst, ' ')
			dst = appendName(dst, p.Name, maxSDName, sdNameForbidden, "_")
			dst = append(dst, `="`...)
			dst = appendParamValue(dst, p.Value)
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	}

	if len(m.Body) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, bom...)
		dst = appendUTF8(dst, m.Body)
	}
	return dst
}

func clamp(v, lo, hi int) int {
	return min(max(v, lo), hi)
}

// appendName appends s cut to max bytes, each byte that is not printable
// US-ASCII or is in forbidden replaced by '_'; empty s appends empty.
func appendName(dst []byte, s string, max int, forbidden, empty string) []byte {
	if s == "" {
		return append(dst, empty...)
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || strings.IndexByte(forbidden, c) >= 0 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendParamValue appends v as PARAM-VALUE content: UTF-8 with '"', '\' and
// ']' escaped by a backslash (RFC 5424 §6.3.3).
func appendParamValue(dst []byte, v string) []byte {
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case r == '"' || r == '\\' || r == ']':
			dst = append(dst, '\\', byte(r))
		default:
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return dst
}

// appendUTF8 appends b with each byte that is not part of a UTF-8 sequence
// replaced by U+FFFD.
func appendUTF8(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[i:i+size]...)
		}
		i += size
	}
	return dst
}
