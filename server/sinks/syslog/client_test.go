package syslog_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/sinks/syslog"
	"standin/server/sinks/syslog/rsyslogtest"
)

// arrival bounds how long a record may take to reach rsyslogd's file.
const arrival = 10 * time.Second

// mustSend sends msgs and fails the test on an error.
func mustSend(t *testing.T, c *syslog.Client, msgs ...syslog.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Send(ctx, msgs); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// mustWaitLines waits for n records at srv and returns them.
func mustWaitLines(t *testing.T, srv *rsyslogtest.Server, n int) []string {
	t.Helper()
	lines, err := srv.WaitLines(n, arrival)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != n {
		t.Fatalf("%d records arrived, want %d:\n%s", len(lines), n, strings.Join(lines, "\n"))
	}
	return lines
}

// mustArrive waits until a record equal to want arrives at srv.
func mustArrive(t *testing.T, srv *rsyslogtest.Server, want string) {
	t.Helper()
	deadline := time.Now().Add(arrival)
	for {
		lines := srv.Lines()
		if slices.Contains(lines, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q did not arrive within %v; %d records did", want, arrival, len(lines))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newClient returns a Client for srv, closed on t.Cleanup.
func newClient(t *testing.T, cfg syslog.Config) *syslog.Client {
	t.Helper()
	c := syslog.New(cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// auditRecord is a record like those the audit sink sends.
func auditRecord(seq int, body string) syslog.Message {
	return syslog.Message{
		Time:     when.Add(time.Duration(seq) * time.Millisecond),
		Severity: syslog.SeverityNotice,
		MsgID:    "impersonation.started",
		Data: []syslog.Element{{ID: "standin@32473", Params: []syslog.Param{
			{Name: "seq", Value: fmt.Sprint(seq)},
			{Name: "id", Value: fmt.Sprintf("ev-%d", seq)},
		}}},
		Body: []byte(body),
	}
}

// TestSendPlainTCP: a batch over TCP reaches rsyslogd whole and in order,
// and rsyslog's own RFC 5424 parser reads every field back.
func TestSendPlainTCP(t *testing.T) {
	t.Parallel()
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	cfg := syslog.Config{Address: srv.Addr, Hostname: "node-1"}
	c := newClient(t, cfg)

	body, err := json.Marshal(map[string]string{
		"reason": "customer said \"it's broken\"\nsecond line\\path",
		"name":   "Zoë Ångström — 東京 ✓",
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []syslog.Message{
		auditRecord(1, string(body)),
		{Time: when, Severity: syslog.SeverityWarning, MsgID: "signin.refused",
			Data: []syslog.Element{{ID: "standin@32473", Params: []syslog.Param{{Name: "why", Value: `quote " slash \ bracket ]`}}}}},
		auditRecord(3, `{"n":3}`),
	}
	mustSend(t, c, msgs[:2]...)
	mustSend(t, c, msgs[2:]...) // the same connection again

	lines := mustWaitLines(t, srv, len(msgs))
	for i, m := range msgs {
		if want := string(syslog.Format(m, cfg)); lines[i] != want {
			t.Errorf("record %d arrived as\n%q\nwant\n%q", i, lines[i], want)
		}
	}

	records, err := srv.WaitRecords(len(msgs), arrival)
	if err != nil {
		t.Fatal(err)
	}
	r := records[0]
	if r.PRI != "85" || r.Hostname != "node-1" || r.AppName != "standin" || r.ProcID != "-" ||
		r.MsgID != "impersonation.started" || r.StructuredData != `[standin@32473 seq="1" id="ev-1"]` ||
		r.Timestamp != "2026-03-04T05:06:07.892234Z" {
		t.Errorf("rsyslog parsed record 0 as %+v", r)
	}
	if got := strings.TrimPrefix(r.Msg, "\ufeff"); got != string(body) {
		t.Errorf("rsyslog's MSG = %q, want %q", r.Msg, body)
	}
	if r := records[1]; r.PRI != "84" || r.MsgID != "signin.refused" ||
		r.StructuredData != `[standin@32473 why="quote \" slash \\ bracket \]"]` || r.Msg != "" {
		t.Errorf("rsyslog parsed record 1 as %+v", r)
	}
}

// TestSendLargeBody: octet counting carries a 10 KB record, newlines in
// MSG included, without cutting it or running into the next one.
func TestSendLargeBody(t *testing.T) {
	t.Parallel()
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	cfg := syslog.Config{Address: srv.Addr}
	c := newClient(t, cfg)

	var big strings.Builder
	for i := 0; big.Len() < 10_000; i++ {
		fmt.Fprintf(&big, "line %d: ünïcödé and \"quotes\"\n", i)
	}
	big.WriteString("end") // rsyslog drops a trailing newline
	msgs := []syslog.Message{auditRecord(1, "before"), auditRecord(2, big.String()), auditRecord(3, "after")}
	mustSend(t, c, msgs...)

	lines := mustWaitLines(t, srv, 3)
	for i, m := range msgs {
		// rsyslog writes a control character as '#' and its octal code.
		want := strings.ReplaceAll(string(syslog.Format(m, cfg)), "\n", "#012")
		if lines[i] != want {
			t.Errorf("record %d: %d bytes arrived, want %d:\n%.300q…", i, len(lines[i]), len(want), lines[i])
		}
	}
}

// TestSendTLS: over TLS to rsyslogd's ossl driver, trusting only the test
// CA with the server name taken from Address; a client that does not trust
// the CA is refused at the handshake.
func TestSendTLS(t *testing.T) {
	t.Parallel()
	srv := rsyslogtest.Start(t, rsyslogtest.Options{TLS: true})

	t.Run("OK", func(t *testing.T) {
		cfg := syslog.Config{Address: srv.Addr, TLS: srv.ClientTLS(), Hostname: "node-1"}
		c := newClient(t, cfg)
		msgs := []syslog.Message{auditRecord(1, `{"over":"tls","ü":"✓"}`), auditRecord(2, `{"n":2}`)}
		mustSend(t, c, msgs[0])
		mustSend(t, c, msgs[1])
		lines := mustWaitLines(t, srv, 2)
		for i, m := range msgs {
			if want := string(syslog.Format(m, cfg)); lines[i] != want {
				t.Errorf("record %d arrived as\n%q\nwant\n%q", i, lines[i], want)
			}
		}
	})
	t.Run("ErrUnknownCA", func(t *testing.T) {
		c := newClient(t, syslog.Config{Address: srv.Addr, TLS: &tls.Config{RootCAs: x509.NewCertPool()}})
		err := c.Send(context.Background(), []syslog.Message{auditRecord(9, "refused")})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "TLS handshake with "+srv.Addr) {
			t.Fatalf("Send = %v, want an unknown-authority handshake error", err)
		}
	})
}

// TestSendReconnect: with rsyslogd stopped Send fails; once it is back on
// the same port the next Send connects again and is delivered.
func TestSendReconnect(t *testing.T) {
	t.Parallel()
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	cfg := syslog.Config{Address: srv.Addr, DialTimeout: 2 * time.Second}
	c := newClient(t, cfg)

	mustSend(t, c, auditRecord(1, "first"))
	mustWaitLines(t, srv, 1)

	srv.Stop()
	err := c.Send(context.Background(), []syslog.Message{auditRecord(2, "while stopped")})
	if err == nil || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Send with rsyslogd stopped = %v, want an error naming %s", err, srv.Addr)
	}

	srv.Restart()
	mustSend(t, c, auditRecord(2, "after restart"))
	lines := mustWaitLines(t, srv, 2)
	if want := string(syslog.Format(auditRecord(2, "after restart"), cfg)); lines[1] != want {
		t.Errorf("record after restart arrived as %q, want %q", lines[1], want)
	}
}

// TestSendReconnectsClosedIdleConnection: when the receiver closed an idle
// connection (here by restarting), Send notices before writing and delivers
// the batch on a new connection instead of into a dead socket.
func TestSendReconnectsClosedIdleConnection(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "TCP", true: "TLS"}[tlsOn], func(t *testing.T) {
			t.Parallel()
			srv := rsyslogtest.Start(t, rsyslogtest.Options{TLS: tlsOn})
			var dials atomic.Int32
			cfg := syslog.Config{Address: srv.Addr, TLS: srv.ClientTLS(),
				Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
					dials.Add(1)
					return (&net.Dialer{}).DialContext(ctx, network, address)
				}}
			c := newClient(t, cfg)

			mustSend(t, c, auditRecord(1, "first"))
			mustWaitLines(t, srv, 1)
			srv.Restart()
			mustSend(t, c, auditRecord(2, "second"))
			lines := mustWaitLines(t, srv, 2)
			if want := string(syslog.Format(auditRecord(2, "second"), cfg)); lines[1] != want {
				t.Errorf("second record arrived as %q, want %q", lines[1], want)
			}
			if n := dials.Load(); n != 2 {
				t.Errorf("Dial called %d times, want 2 (once per rsyslogd)", n)
			}
		})
	}
}

// TestSendDialError: the caller's Dial decides; its refusal is Send's
// error, wrapped with the address.
func TestSendDialError(t *testing.T) {
	t.Parallel()
	refused := errors.New("destination not on the allowlist")
	c := newClient(t, syslog.Config{Address: "127.0.0.1:6514",
		Dial: func(context.Context, string, string) (net.Conn, error) { return nil, refused }})
	err := c.Send(context.Background(), []syslog.Message{auditRecord(1, "x")})
	if !errors.Is(err, refused) || !strings.Contains(err.Error(), "connecting to 127.0.0.1:6514") {
		t.Fatalf("Send = %v, want the Dial error wrapped with the address", err)
	}
}

// TestSendContext: a Send blocked on a receiver that stopped reading (a
// paused rsyslogd) returns soon after its context ends or WriteTimeout
// passes, and the next Send reconnects.
func TestSendContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tls     bool
		ctx     func() (context.Context, context.CancelFunc)
		timeout time.Duration
		want    error
	}{
		{"ErrCanceled", false, cancelAfter(300 * time.Millisecond), time.Minute, context.Canceled},
		{"ErrDeadline", false, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, time.Minute, context.DeadlineExceeded},
		{"ErrWriteTimeout", false, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, 300 * time.Millisecond, os.ErrDeadlineExceeded},
		{"ErrCanceledTLS", true, cancelAfter(300 * time.Millisecond), time.Minute, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := rsyslogtest.Start(t, rsyslogtest.Options{TLS: tt.tls})
			cfg := syslog.Config{Address: srv.Addr, TLS: srv.ClientTLS(), WriteTimeout: tt.timeout}
			c := newClient(t, cfg)
			mustSend(t, c, auditRecord(0, "connected"))
			mustWaitLines(t, srv, 1)

			srv.Pause()
			// Far more than the socket buffers hold, so that writing blocks.
			msgs := make([]syslog.Message, 2000)
			for i, m := 0, auditRecord(1, strings.Repeat("x", 32<<10)); i < len(msgs); i++ {
				msgs[i] = m
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			err := c.Send(ctx, msgs)
			took := time.Since(start)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
			if took > 5*time.Second {
				t.Errorf("Send returned after %v, want soon after 300ms", took)
			}

			srv.Resume()
			after := auditRecord(-1, "after")
			mustSend(t, c, after)
			mustArrive(t, srv, string(syslog.Format(after, cfg)))
		})
	}
}

// cancelAfter returns a context cancelled after d.
func cancelAfter(d time.Duration) func() (context.Context, context.CancelFunc) {
	return func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(d, cancel)
		return ctx, cancel
	}
}

// TestSendContextDuringHandshake: a receiver that accepts TCP but never
// answers the TLS handshake (a paused rsyslogd: the kernel accepts for it)
// does not hold Send past its context.
func TestSendContextDuringHandshake(t *testing.T) {
	t.Parallel()
	srv := rsyslogtest.Start(t, rsyslogtest.Options{TLS: true})
	c := newClient(t, syslog.Config{Address: srv.Addr, TLS: srv.ClientTLS(), DialTimeout: time.Minute})
	srv.Pause()
	ctx, cancel := cancelAfter(300 * time.Millisecond)()
	defer cancel()
	start := time.Now()
	err := c.Send(ctx, []syslog.Message{auditRecord(1, "x")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Send returned after %v, want soon after 300ms", took)
	}
	srv.Resume()
}
