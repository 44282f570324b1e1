// Package sinks sends the audit log to outside sinks (a SIEM's webhook,
// syslog) as it grows: configured by admins at run time, each sink is
// delivered by one node at a time, in seq order, at least once, from its
// last acknowledged seq, across failures and restarts, without ever
// slowing a request or another sink.
package sinks

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"
	"syscall"
	"time"

	"standin/server/standin"
)

// Allowlist says where sinks may deliver. Its entries are host name
// patterns ("siem.example.org", "*.splunkcloud.com"), addresses
// ("10.0.0.7") and networks ("127.0.0.0/8"), comma-separated.
//
// With no entries, a sink may name any host whose addresses are public.
// With entries, its host must match one. Either way an address that is
// not public (loopback, private, link-local, unspecified) is reached
// only when an address or network entry covers it: naming a host is not
// enough, so a public name that resolves to an inside address is
// refused when the connection is made.
type Allowlist struct {
	hosts    []string
	prefixes []netip.Prefix
}

// ParseAllowlist reads an allowlist; "" is the empty one.
func ParseAllowlist(spec string) (*Allowlist, error) {
	a := &Allowlist{}
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.ToLower(strings.TrimSpace(entry))
		switch {
		case entry == "":
		case strings.Contains(entry, "/"):
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, fmt.Errorf("sink allowlist: %q is not a network: %w", entry, err)
			}
			a.prefixes = append(a.prefixes, p.Masked())
		default:
			if ip, err := netip.ParseAddr(entry); err == nil {
				a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			if _, err := path.Match(entry, ""); err != nil {
				return nil, fmt.Errorf("sink allowlist: %q is not a host pattern: %w", entry, err)
			}
			a.hosts = append(a.hosts, entry)
		}
	}
	return a, nil
}

// String lists the entries, for people.
func (a *Allowlist) String() string {
	parts := append([]string(nil), a.hosts...)
	for _, p := range a.prefixes {
		parts = append(parts, p.String())
	}
	if len(parts) == 0 {
		return "any public address"
	}
	return strings.Join(parts, ", ")
}

// covered reports whether an address or network entry covers ip.
func (a *Allowlist) covered(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// special are blocks of global unicast addresses that are not the
// internet at large (RFC 6890): shared address space, documentation,
// benchmarking, reserved.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// public reports whether ip is an address of the internet at large.
func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range special {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// CheckHost decides whether a sink may name host: EInvalid, saying why,
// when it may not.
func (a *Allowlist) CheckHost(host string) error {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if a.covered(ip) || (public(ip) && len(a.hosts)+len(a.prefixes) == 0) {
			return nil
		}
		return standin.Errorf(standin.EInvalid, "%s is not allowed as a destination on this server (allowed: %s).", host, a)
	}
	if len(a.hosts)+len(a.prefixes) == 0 {
		return nil
	}
	for _, pattern := range a.hosts {
		if ok, _ := path.Match(pattern, host); ok {
			return nil
		}
	}
	return standin.Errorf(standin.EInvalid, "%s is not allowed as a destination on this server (allowed: %s).", host, a)
}

// DialContext connects to address after checking its host, and then
// every address it resolves to, against the allowlist.
func (a *Allowlist) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("sink destination %q: %w", address, err)
	}
	if err := a.CheckHost(host); err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, resolved string, _ syscall.RawConn) error {
		h, _, err := net.SplitHostPort(resolved)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return err
		}
		if a.covered(ip) || public(ip) {
			return nil
		}
		return standin.Errorf(standin.EForbidden, "%s resolves to %s, an inside address this server's sink allowlist does not cover.", host, ip)
	}}
	return d.DialContext(ctx, network, address)
}
