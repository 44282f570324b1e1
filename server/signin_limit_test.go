package server_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"standin/server"
	"standin/server/standin"
)

// newClientFrom is a client whose connections leave from the loopback
// address ip (any of 127.0.0.0/8 on Linux), so that one test can sign in
// from several addresses.
func newClientFrom(t testing.TB, base, ip string) *client {
	t.Helper()
	c := newClient(t, base)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	transport := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(transport.CloseIdleConnections)
	c.http.Transport = transport
	return c
}

// signIn posts a sign-in and returns the answer, whatever it is.
func (c *client) signIn(email, password string) *response {
	c.t.Helper()
	return c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": password})
}

// retryAfter checks that r is a sign-in refusal for too many attempts and
// returns its Retry-After.
func retryAfter(t *testing.T, r *response) time.Duration {
	t.Helper()
	if r.Status != http.StatusTooManyRequests || r.ErrorCode(t) != standin.ETooManyRequests {
		t.Fatalf("status %d %s, want 429 too_many_requests", r.Status, r.Body)
	}
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		t.Fatalf("Retry-After %q, want a number of seconds", r.Header.Get("Retry-After"))
	}
	return time.Duration(secs) * time.Second
}

// TestSignInFlood: a flood of sign-ins with made-up emails slows down the
// address it comes from and nobody else, even when the limiter remembers
// only a few addresses.
func TestSignInFlood(t *testing.T) {
	t.Parallel()

	t.Run("FromOneAddress", func(t *testing.T) {
		t.Parallel()
		srv := mustRun(t, server.Config{DataDir: t.TempDir()})
		flood := newClientFrom(t, srv.URL, "127.0.0.1")
		limited := 0
		for i := range 200 {
			switch r := flood.signIn(fmt.Sprintf("nobody-%d@example.net", i), "guess"); r.Status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				retryAfter(t, r)
				limited++
			default:
				t.Fatalf("attempt %d: %d %s", i, r.Status, r.Body)
			}
		}
		t.Logf("result: made-up sign-ins refused for their address=%d of 200", limited)
		if limited == 0 {
			t.Fatal("200 sign-ins from one address were never slowed down")
		}
		// The flood's own address is what is slowed, whatever it asks.
		retryAfter(t, flood.signIn("ada@example.org", "demo"))
		for i, email := range []string{"admin@example.org", "owner@example.org", "support@example.org"} {
			newClientFrom(t, srv.URL, fmt.Sprintf("127.0.%d.1", i+1)).mustLogin(email)
		}
	})

	t.Run("FromManyAddresses", func(t *testing.T) {
		t.Parallel()
		srv := mustRun(t, server.Config{DataDir: t.TempDir()})
		// Twice as many addresses as the limiter remembers, each failing
		// with made-up emails and at a real account.
		for i := range 16 {
			c := newClientFrom(t, srv.URL, fmt.Sprintf("127.0.%d.3", i+1))
			for j := range 3 {
				if r := c.signIn(fmt.Sprintf("nobody-%d-%d@example.net", i, j), "guess"); r.Status != http.StatusUnauthorized {
					t.Fatalf("address %d, attempt %d: %d %s", i, j, r.Status, r.Body)
				}
			}
			if r := c.signIn("support@example.org", "guess"); r.Status != http.StatusUnauthorized && r.Status != http.StatusTooManyRequests {
				t.Fatalf("address %d at support: %d %s", i, r.Status, r.Body)
			}
		}
		for i, email := range []string{"admin@example.org", "owner@example.org", "support@example.org"} {
			newClientFrom(t, srv.URL, fmt.Sprintf("127.0.%d.4", 100+i)).mustLogin(email)
		}
	})
}

// TestSignInNoLockout: wrong passwords from many addresses slow those
// addresses down at that account, progressively, but do not lock the
// account: its owner, from an address that has not failed there, with the
// right password, gets in at once.
func TestSignInNoLockout(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	srv := mustRun(t, server.Config{DataDir: t.TempDir(), Clock: clk.Now})
	const account = "owner@example.org"

	attackers := make([]*client, 11)
	for i := range attackers {
		attackers[i] = newClientFrom(t, srv.URL, fmt.Sprintf("127.0.%d.5", i+1))
		for j := range 5 {
			switch r := attackers[i].signIn(account, "wrong"); r.Status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				if wait := retryAfter(t, r); wait > 15*time.Minute+time.Second {
					t.Fatalf("address %d, attempt %d: Retry-After %v, more than 15 minutes", i, j, wait)
				}
			default:
				t.Fatalf("address %d, attempt %d: %d %s", i, j, r.Status, r.Body)
			}
		}
	}

	t.Run("OwnerFromAnotherAddress", func(t *testing.T) {
		newClientFrom(t, srv.URL, "127.0.99.5").mustLogin(account)
	})

	t.Run("AttackerWaitsEvenWithTheRightPassword", func(t *testing.T) {
		wait := retryAfter(t, attackers[10].signIn(account, "demo"))
		t.Logf("result: Retry-After for an address that failed at the account=%v", wait)
		// Once its wait is over, it is judged again.
		clk.Advance(wait)
		if r := attackers[10].signIn(account, "demo"); r.Status != http.StatusOK {
			t.Fatalf("after waiting %v: %d %s", wait, r.Status, r.Body)
		}
	})

	t.Run("AWrongPasswordMakesAnAddressWait", func(t *testing.T) {
		c := newClientFrom(t, srv.URL, "127.0.98.5")
		if r := c.signIn(account, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("first wrong password from a new address: %d %s", r.Status, r.Body)
		}
		first := retryAfter(t, c.signIn(account, "demo"))
		clk.Advance(first)
		if r := c.signIn(account, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("after waiting %v: %d %s", first, r.Status, r.Body)
		}
		second := retryAfter(t, c.signIn(account, "demo"))
		if second <= first || second > 15*time.Minute+time.Second {
			t.Fatalf("waits %v then %v: want growing, at most 15 minutes", first, second)
		}
		// Other accounts from the same address are not held back.
		c.mustLogin("ada@example.org")
	})
}

// TestSignInSameAnswerForUnknownAccounts: from one address, wrong
// passwords at a made-up email are answered exactly as at a real account,
// waits included, so the limiter does not tell which accounts exist.
func TestSignInSameAnswerForUnknownAccounts(t *testing.T) {
	t.Parallel()
	// A stopped clock: the two answers compared are a moment apart, which
	// must not show in their waits.
	stopped := time.Now()
	srv := mustRun(t, server.Config{DataDir: t.TempDir(), Clock: func() time.Time { return stopped }})
	real := newClientFrom(t, srv.URL, "127.0.0.6")
	madeUp := newClientFrom(t, srv.URL, "127.0.0.7")
	for i := range 7 {
		a, b := real.signIn("cleo@example.org", "wrong"), madeUp.signIn("ghost@example.org", "wrong")
		if a.Status != b.Status || a.Header.Get("Retry-After") != b.Header.Get("Retry-After") || string(a.Body) != string(b.Body) {
			t.Fatalf("attempt %d: real account %d %q %s, made-up %d %q %s", i+1,
				a.Status, a.Header.Get("Retry-After"), a.Body, b.Status, b.Header.Get("Retry-After"), b.Body)
		}
	}
}
