package syslog_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"standin/server/sinks/syslog"
)

var when = time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)

func TestFormat(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	cfg := syslog.Config{Address: "127.0.0.1:6514", Hostname: "node-1"}
	tests := []struct {
		name string
		m    syslog.Message
		cfg  syslog.Config
		want string
	}{
		{
			name: "OK",
			m: syslog.Message{
				Time: when, Severity: syslog.SeverityNotice, MsgID: "impersonation.started",
				Data: []syslog.Element{{ID: "standin@32473", Params: []syslog.Param{{"seq", "42"}, {"id", "ev-1"}}}},
				Body: []byte(`{"a":1}`),
			},
			cfg:  cfg,
			want: "<85>1 2026-03-04T05:06:07.891234Z node-1 standin - impersonation.started [standin@32473 seq=\"42\" id=\"ev-1\"] \xef\xbb\xbf{\"a\":1}",
		},
		{
			name: "PRIFacilityAndSeverity",
			m:    syslog.Message{Time: when, Severity: syslog.SeverityDebug},
			cfg:  syslog.Config{Facility: 23},
			want: "<191>1 2026-03-04T05:06:07.891234Z - standin - - -",
		},
		{
			name: "PRIEmergencyDefaultFacility",
			m:    syslog.Message{Time: when, Severity: syslog.SeverityEmergency},
			want: "<80>1 2026-03-04T05:06:07.891234Z - standin - - -",
		},
		{
			name: "AppNameAndFacility",
			m:    syslog.Message{Time: when, Severity: syslog.SeverityWarning},
			cfg:  syslog.Config{AppName: "standin-eu", Facility: 13},
			want: "<108>1 2026-03-04T05:06:07.891234Z - standin-eu - - -",
		},
		{
			name: "TimeInUTCWithMicroseconds",
			m:    syslog.Message{Time: time.Date(2026, 1, 1, 0, 30, 0, 0, paris), Severity: syslog.SeverityInfo},
			want: "<86>1 2025-12-31T23:30:00.000000Z - standin - - -",
		},
		{
			name: "ZeroTimeIsNil",
			m:    syslog.Message{Severity: syslog.SeverityInfo},
			want: "<86>1 - - standin - - -",
		},
		{
			name: "EscapedParamValues",
			m: syslog.Message{Time: when, Severity: syslog.SeverityInfo, Data: []syslog.Element{
				{ID: "standin@32473", Params: []syslog.Param{{"v", `a"b\c]d[e=f g`}, {"empty", ""}}},
				{ID: "origin", Params: []syslog.Param{{"ip", "127.0.0.1"}}},
				{ID: "meta@32473.1"},
			}},
			want: `<86>1 2026-03-04T05:06:07.891234Z - standin - - [standin@32473 v="a\"b\\c\]d[e=f g" empty=""][origin ip="127.0.0.1"][meta@32473.1]`,
		},
		{
			name: "BodyAfterBOM",
			m:    syslog.Message{Time: when, Severity: syslog.SeverityInfo, Body: []byte("héllo — ✓")},
			want: "<86>1 2026-03-04T05:06:07.891234Z - standin - - - \xef\xbb\xbfhéllo — ✓",
		},
		{
			name: "BodyNotUTF8IsReplaced",
			m:    syslog.Message{Time: when, Severity: syslog.SeverityInfo, Body: []byte("a\xffb\xc3")},
			want: "<86>1 2026-03-04T05:06:07.891234Z - standin - - - \xef\xbb\xbfa\uFFFDb\uFFFD",
		},
		{
			name: "EmptyBodyHasNoMSG",
			m:    syslog.Message{Time: when, Severity: syslog.SeverityInfo, Body: []byte{}},
			want: "<86>1 2026-03-04T05:06:07.891234Z - standin - - -",
		},
		{
			name: "BadNamesCleaned",
			m: syslog.Message{Time: when, Severity: 12, MsgID: "a b\x00é" + strings.Repeat("x", 40),
				Data: []syslog.Element{{ID: `x]y="z"`, Params: []syslog.Param{{"", "\xff"}, {"n=1", "v"}}}}},
			cfg:  syslog.Config{Hostname: "host name", AppName: strings.Repeat("a", 60), Facility: 99},
			want: `<191>1 2026-03-04T05:06:07.891234Z host_name ` + strings.Repeat("a", 48) + ` - a_b___` + strings.Repeat("x", 26) + ` [x_y__z_ _="` + "\uFFFD" + `" n_1="v"]`,
		},
		{
			name: "NegativeSeverityClamped",
			m:    syslog.Message{Time: when, Severity: -3},
			cfg:  syslog.Config{Facility: -1},
			want: "<0>1 2026-03-04T05:06:07.891234Z - standin - - -",
		},
		{
			name: "YearBeyond9999IsNil",
			m:    syslog.Message{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Severity: syslog.SeverityInfo},
			want: "<86>1 - - standin - - -",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := syslog.Format(tt.m, tt.cfg)
			if string(got) != tt.want {
				t.Errorf("Format =\n%q\nwant\n%q", got, tt.want)
			}
			mustParse5424(t, got)
		})
	}
}

// TestFormatRoundTrip reads Format's output back with a strict RFC 5424
// parser and finds every field as it went in.
func TestFormatRoundTrip(t *testing.T) {
	t.Parallel()
	m := syslog.Message{
		Time:     when,
		Severity: syslog.SeverityWarning,
		MsgID:    "booking.refused",
		Data: []syslog.Element{
			{ID: "standin@32473", Params: []syslog.Param{{"seq", "7"}, {"why", `quote " backslash \ bracket ] done`}, {"who", "Zoë Ångström 東京"}}},
			{ID: "timeQuality", Params: []syslog.Param{{"tzKnown", "1"}}},
		},
		Body: []byte(`{"text":"line one\nline \"two\"","name":"Zoë"}`),
	}
	got := mustParse5424(t, syslog.Format(m, syslog.Config{Hostname: "h", Facility: 4}))
	want := parsed{
		PRI: 4*8 + 4, Timestamp: "2026-03-04T05:06:07.891234Z", Hostname: "h", AppName: "standin", ProcID: "-",
		MsgID: "booking.refused", Data: m.Data, Msg: m.Body, HasMsg: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
	}
}

func TestMessageValidate(t *testing.T) {
	t.Parallel()
	sd := func(id string, names ...string) []syslog.Element {
		e := syslog.Element{ID: id}
		for _, n := range names {
			e.Params = append(e.Params, syslog.Param{Name: n, Value: "v"})
		}
		return []syslog.Element{e}
	}
	tests := []struct {
		name    string
		m       syslog.Message
		wantErr string // "" when valid
	}{
		{"OK", syslog.Message{Time: when, Severity: 5, MsgID: "a.b", Data: sd("standin@32473", "seq")}, ""},
		{"OKEmpty", syslog.Message{}, ""},
		{"OKRegisteredSDID", syslog.Message{Data: sd("timeQuality", "isSynced")}, ""},
		{"OKDottedEnterpriseNumber", syslog.Message{Data: sd("x@32473.1.2")}, ""},
		{"OKMsgID32", syslog.Message{MsgID: strings.Repeat("m", 32)}, ""},
		{"OKBodyNotUTF8", syslog.Message{Body: []byte{0xff, 0xfe}, Data: []syslog.Element{{ID: "a@1", Params: []syslog.Param{{"n", "\xff"}}}}}, ""},
		{"ErrSeverityNegative", syslog.Message{Severity: -1}, "Severity -1 is outside 0–7"},
		{"ErrSeverityTooHigh", syslog.Message{Severity: 8}, "Severity 8 is outside 0–7"},
		{"ErrYear", syslog.Message{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "year 10000"},
		{"ErrMsgIDTooLong", syslog.Message{MsgID: strings.Repeat("m", 33)}, "33 bytes, more than 32"},
		{"ErrMsgIDSpace", syslog.Message{MsgID: "a b"}, "byte 0x20 at 1"},
		{"ErrMsgIDNonASCII", syslog.Message{MsgID: "é"}, "byte 0xc3 at 0"},
		{"ErrMsgIDControl", syslog.Message{MsgID: "a\nb"}, "byte 0x0a at 1"},
		{"ErrSDIDEmpty", syslog.Message{Data: sd("")}, "SD-ID \"\": empty"},
		{"ErrSDIDUnregistered", syslog.Message{Data: sd("standin")}, "neither name@enterprise-number nor registered"},
		{"ErrSDIDNoName", syslog.Message{Data: sd("@32473")}, `no name before "@"`},
		{"ErrSDIDBadNumber", syslog.Message{Data: sd("a@32x")}, "enterprise number \"32x\""},
		{"ErrSDIDNoNumber", syslog.Message{Data: sd("a@")}, "enterprise number \"\""},
		{"ErrSDIDTwoAts", syslog.Message{Data: sd("a@b@1")}, "enterprise number \"b@1\""},
		{"ErrSDIDBracket", syslog.Message{Data: sd("a]@1")}, `']' at 1 is not allowed`},
		{"ErrSDIDTooLong", syslog.Message{Data: sd(strings.Repeat("a", 30) + "@123")}, "34 bytes, more than 32"},
		{"ErrSDIDDuplicate", syslog.Message{Data: append(sd("a@1"), sd("a@1")...)}, "appears twice"},
		{"ErrParamNameEmpty", syslog.Message{Data: sd("a@1", "")}, "empty name"},
		{"ErrParamNameEquals", syslog.Message{Data: sd("a@1", "a=b")}, `'=' at 1 is not allowed`},
		{"ErrParamNameQuote", syslog.Message{Data: sd("a@1", `a"`)}, `'"' at 1 is not allowed`},
		{"ErrParamNameTooLong", syslog.Message{Data: sd("a@1", strings.Repeat("n", 33))}, "more than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.m.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, syslog.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalid with %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     syslog.Config
		wantErr string
	}{
		{"OK", syslog.Config{Address: "siem.example:6514", Hostname: "node-1", AppName: "standin", Facility: 23}, ""},
		{"OKDefaults", syslog.Config{Address: "[::1]:514"}, ""},
		{"ErrNoAddress", syslog.Config{}, "no Address"},
		{"ErrAddressNoPort", syslog.Config{Address: "siem.example"}, "missing port"},
		{"ErrFacilityNegative", syslog.Config{Address: "h:1", Facility: -1}, "Facility -1 is outside 0–23"},
		{"ErrFacilityTooHigh", syslog.Config{Address: "h:1", Facility: 24}, "Facility 24 is outside 0–23"},
		{"ErrHostnameSpace", syslog.Config{Address: "h:1", Hostname: "a b"}, "Hostname"},
		{"ErrHostnameTooLong", syslog.Config{Address: "h:1", Hostname: strings.Repeat("h", 256)}, "more than 255"},
		{"ErrAppNameTooLong", syslog.Config{Address: "h:1", AppName: strings.Repeat("a", 49)}, "more than 48"},
		{"ErrDialTimeoutNegative", syslog.Config{Address: "h:1", DialTimeout: -time.Second}, "DialTimeout"},
		{"ErrWriteTimeoutNegative", syslog.Config{Address: "h:1", WriteTimeout: -time.Second}, "WriteTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, syslog.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalid with %q", err, tt.wantErr)
			}
		})
	}
}

// TestSendInvalidDoesNotConnect: a batch with one bad record, or a bad
// Config, is refused whole before any connection is opened.
func TestSendInvalidDoesNotConnect(t *testing.T) {
	t.Parallel()
	noDial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("Send dialled for an invalid batch")
		return nil, errors.New("no")
	}
	good := syslog.Message{Time: when, Severity: 6, MsgID: "ok"}
	tests := []struct {
		name    string
		cfg     syslog.Config
		msgs    []syslog.Message
		wantErr string
	}{
		{"ErrMessage", syslog.Config{Address: "127.0.0.1:1", Dial: noDial},
			[]syslog.Message{good, {Severity: 9}, good}, "syslog: message 1 of 3: invalid input: Severity 9"},
		{"ErrConfig", syslog.Config{Address: "127.0.0.1:1", Facility: 30, Dial: noDial},
			[]syslog.Message{good}, "syslog: config: invalid input: Facility 30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := syslog.New(tt.cfg)
			defer c.Close()
			err := c.Send(context.Background(), tt.msgs)
			if !errors.Is(err, syslog.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send = %v, want ErrInvalid with %q", err, tt.wantErr)
			}
		})
	}
}

func TestSendAfterClose(t *testing.T) {
	t.Parallel()
	c := syslog.New(syslog.Config{Address: "127.0.0.1:1"})
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Send(context.Background(), []syslog.Message{{Severity: 6}}); !errors.Is(err, syslog.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}

// FuzzFormat: whatever bytes a record holds, Format returns one record that
// a strict RFC 5424 parser accepts, and what Validate accepts comes back
// unchanged.
func FuzzFormat(f *testing.F) {
	f.Add(6, "impersonation.started", "standin@32473", "seq", "42", []byte(`{"a":"b"}`), "node-1", "standin", 10)
	f.Add(-1, "a b", "x]y", "n=", `v"\]`, []byte("\xff\xc3"), "h h", "", 0)
	f.Add(99, "", "", "", "", []byte{}, "", "\x00", 24)
	f.Fuzz(func(t *testing.T, severity int, msgID, sdID, name, value string, body []byte, hostname, appName string, facility int) {
		m := syslog.Message{Time: when, Severity: severity, MsgID: msgID, Body: body,
			Data: []syslog.Element{{ID: sdID, Params: []syslog.Param{{Name: name, Value: value}}}}}
		cfg := syslog.Config{Address: "127.0.0.1:514", Hostname: hostname, AppName: appName, Facility: facility}
		got := syslog.Format(m, cfg)
		p, err := parse5424(got)
		if err != nil {
			t.Fatalf("Format(%+v) not RFC 5424: %v", m, err)
		}
		if m.Validate() != nil || cfg.Validate() != nil {
			return
		}
		if p.PRI%8 != severity || p.MsgID != orNil(msgID) || p.Hostname != orNil(hostname) ||
			(utf8.ValidString(value) && !reflect.DeepEqual(p.Data, m.Data)) {
			t.Fatalf("Format(%+v) read back as %+v", m, p)
		}
		if len(body) > 0 && utf8.Valid(body) && !bytes.Equal(p.Msg, body) {
			t.Fatalf("body %q read back as %q", body, p.Msg)
		}
	})
}

func orNil(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
