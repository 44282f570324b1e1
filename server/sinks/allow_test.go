package sinks_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"standin/server/sinks"
	"standin/server/standin"
)

func TestAllowlist(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec, host string
		ok         bool
	}{
		{"", "siem.example.org", true},
		{"", "203.0.113.9", false}, // documentation addresses are not public
		{"", "8.8.8.8", true},
		{"", "127.0.0.1", false},
		{"", "10.1.2.3", false},
		{"", "169.254.169.254", false},
		{"", "::1", false},
		{"*.splunkcloud.com", "acme.splunkcloud.com", true},
		{"*.splunkcloud.com", "siem.example.org", false},
		{"*.splunkcloud.com", "8.8.8.8", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"127.0.0.0/8, siem.example.org", "127.0.0.2", true},
		{"127.0.0.0/8, siem.example.org", "SIEM.example.org.", true},
		{"10.0.0.0/8", "::ffff:10.0.0.1", true},
	} {
		a, err := sinks.ParseAllowlist(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		err = a.CheckHost(tc.host)
		if (err == nil) != tc.ok {
			t.Errorf("allowlist %q, host %q: %v, want allowed %v", tc.spec, tc.host, err, tc.ok)
		}
		if err != nil && standin.ErrorCode(err) != standin.EInvalid {
			t.Errorf("allowlist %q, host %q: code %s", tc.spec, tc.host, standin.ErrorCode(err))
		}
	}
	for _, bad := range []string{"10.0.0.0/99", "[a-", "300.1.1.1/8"} {
		if _, err := sinks.ParseAllowlist(bad); err == nil {
			t.Errorf("allowlist %q parsed", bad)
		}
	}
}

// TestAllowlistAtConnect: a name allowed by pattern that resolves to an
// inside address is refused when connecting, unless an address entry
// covers it.
func TestAllowlistAtConnect(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	byName, _ := sinks.ParseAllowlist("localhost")
	if _, err := byName.DialContext(context.Background(), "tcp", net.JoinHostPort("localhost", port)); err == nil ||
		!strings.Contains(err.Error(), "inside address") {
		t.Fatalf("localhost allowed by name alone: %v", err)
	}
	byAddr, _ := sinks.ParseAllowlist("localhost, 127.0.0.1, ::1")
	c, err := byAddr.DialContext(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatalf("localhost with its address allowed: %v", err)
	}
	c.Close()
}
