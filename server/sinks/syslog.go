package sinks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"strings"
	"time"

	"standin/server/sinks/syslog"
	"standin/server/standin"
)

// SyslogSD is the structured data element every syslog record carries:
// its seq, event id and session, for a SIEM to find gaps and repeats.
// 32473 is the private enterprise number set aside for examples (RFC
// 5612): Standin has none of its own.
const SyslogSD = "standin@32473"

// syslogSink writes records as RFC 5424 messages over TCP or TLS.
type syslogSink struct {
	c *syslog.Client
}

func newSyslog(s *standin.Sink, allow *Allowlist, timeout time.Duration) *syslogSink {
	cfg := syslog.Config{Address: s.Address, Hostname: "standin", AppName: "standin",
		DialTimeout: timeout, WriteTimeout: timeout, Dial: allow.DialContext}
	if s.TLS {
		host, _, _ := net.SplitHostPort(s.Address)
		cfg.TLS = tlsConfig(s, host)
	}
	return &syslogSink{c: syslog.New(cfg)}
}

// tlsConfig is how a sink speaks TLS to host: at least TLS 1.2, its
// certificate checked against the sink's own authorities when it names
// some, else the system's.
func tlsConfig(s *standin.Sink, host string) *tls.Config {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.CA != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(s.CA))
		c.RootCAs = pool
	}
	return c
}

// severity is the syslog severity of e: warning for what was refused or
// failed, notice for sign-ins and sessions, informational otherwise.
func severity(e *standin.Event) int {
	switch {
	case e.Outcome == "denied" || e.Outcome == "failed" || e.Outcome == "refused" || strings.HasSuffix(e.Type, ".denied"):
		return syslog.SeverityWarning
	case strings.HasPrefix(e.Type, "auth.") || strings.HasPrefix(e.Type, "impersonation."):
		return syslog.SeverityNotice
	}
	return syslog.SeverityInfo
}

func (s *syslogSink) Send(ctx context.Context, recs []record) error {
	msgs := make([]syslog.Message, 0, len(recs))
	for _, r := range recs {
		e := r.event
		params := []syslog.Param{{Name: "seq", Value: strconv.FormatInt(e.Seq, 10)}, {Name: "id", Value: e.ID}}
		if e.ImpersonationID != "" {
			params = append(params, syslog.Param{Name: "session", Value: e.ImpersonationID})
		}
		msgs = append(msgs, syslog.Message{Time: e.Time, Severity: severity(e), MsgID: e.Type,
			Data: []syslog.Element{{ID: SyslogSD, Params: params}}, Body: r.data})
	}
	return s.c.Send(ctx, msgs)
}

func (s *syslogSink) Close() error { return s.c.Close() }
