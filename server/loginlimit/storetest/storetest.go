// Package storetest holds the behaviour every loginlimit.Store must show,
// as tests any store's package runs against its own: the memory store in
// package loginlimit, the database's in package mongostore. They judge a
// store only through loginlimit.Limiter and Store.Read, never its
// insides.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"standin/server/loginlimit"
)

// T0 is the tests' clock at their start: the start of an hour, so that
// a store cutting time into windows meets a boundary within a test.
var T0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// Open returns an empty store for one test, whose limiter decides by
// loginlimit.Default (its window an hour).
type Open func(t *testing.T) loginlimit.Store

// Run runs every behaviour test against the stores open makes.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		run  func(*testing.T, Open)
	}{
		{"FloodFromOneAddress", testFloodFromOneAddress},
		{"FloodFromManyAddresses", testFloodFromManyAddresses},
		{"NoLockout", testNoLockout},
		{"ParallelAttemptsStopAtTheThreshold", testParallel},
		{"SettleFailedStays", testFailedStays},
		{"SettlePassedForgivesThePairOnly", testPassedForgivesThePairOnly},
		{"SettleVoidLeavesNothing", testVoidLeavesNothing},
		{"SettleForgottenAttempt", testForgottenAttempt},
		{"UnknownAccountsCountPerAddress", testUnknownAccounts},
		{"Window", testWindow},
		{"AcrossTheHour", testAcrossTheHour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open)
		})
	}
}

// Limiter is a loginlimit.Limiter over a store, with a test's clock.
type Limiter struct {
	*loginlimit.Limiter
	Store loginlimit.Store
	Now   time.Time
}

// NewLimiter returns a limiter deciding by loginlimit.Default over s, its
// clock at T0.
func NewLimiter(s loginlimit.Store) *Limiter {
	return &Limiter{Limiter: loginlimit.New(loginlimit.Policy{}, s), Store: s, Now: T0}
}

// Try makes an attempt as the sign-in does (check, begin, settle with o
// when let through) and returns zero, or the wait when refused.
func (l *Limiter) Try(t testing.TB, a loginlimit.Attempt, o loginlimit.Outcome) time.Duration {
	t.Helper()
	ctx := context.Background()
	if wait, err := l.Check(ctx, a, l.Now); err != nil || wait > 0 {
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	ticket, wait, err := l.Begin(ctx, a, l.Now)
	if err != nil {
		t.Fatal(err)
	}
	if wait > 0 {
		return wait
	}
	if err := l.Settle(ctx, ticket, o); err != nil {
		t.Fatal(err)
	}
	return 0
}

// Read returns the record of a's ledgers now.
func (l *Limiter) Read(t testing.TB, a loginlimit.Attempt) loginlimit.Record {
	t.Helper()
	r, err := l.Store.Read(context.Background(), a, l.Now.Add(-l.Policy().Window))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Owner is an attempt at a real account.
var Owner = loginlimit.Attempt{Address: "198.51.100.7", Email: "owner@example.org", Account: "acct-owner"}

// At is a from address.
func At(address string, a loginlimit.Attempt) loginlimit.Attempt { a.Address = address; return a }

func testFloodFromOneAddress(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	next := 0
	flood := func(n int) (judged int) {
		for range n {
			next++
			if l.Try(t, loginlimit.Attempt{Address: "203.0.113.9", Email: fmt.Sprintf("nobody-%d@example.net", next)}, loginlimit.Failed) == 0 {
				judged++
			}
		}
		return judged
	}
	if judged := flood(200); judged != loginlimit.Default.AddressFree {
		t.Fatalf("%d of 200 made-up attempts from one address were judged, want %d", judged, loginlimit.Default.AddressFree)
	}
	if wait := l.Try(t, Owner, loginlimit.Passed); wait != 0 {
		t.Fatalf("the owner from another address waits %v", wait)
	}
	for _, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		l.Now = l.Now.Add(wait)
		if judged := flood(50); judged != 1 {
			t.Fatalf("after waiting %v, %d attempts judged, want 1", wait, judged)
		}
	}
}

func testFloodFromManyAddresses(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	attackers := loginlimit.LedgerEntries + 12
	for i := range attackers {
		address := fmt.Sprintf("2001:db8:%x::1", i)
		if wait := l.Try(t, loginlimit.Attempt{Address: address, Email: fmt.Sprintf("nobody-%d@example.net", i)}, loginlimit.Failed); wait != 0 {
			t.Fatalf("address %d waits %v", i, wait)
		}
		if wait := l.Try(t, At(address, Owner), loginlimit.Failed); wait != 0 {
			t.Fatalf("address %d, clean at the account, waits %v", i, wait)
		}
	}
	// The account's ledger keeps its newest entries only.
	if r := l.Read(t, At("192.0.2.1", Owner)); r.Account.Count != loginlimit.LedgerEntries {
		t.Fatalf("account ledger holds %d, want its bound, %d", r.Account.Count, loginlimit.LedgerEntries)
	}
	if wait := l.Try(t, At("192.0.2.1", Owner), loginlimit.Passed); wait != 0 {
		t.Fatalf("the owner from a clean address waits %v", wait)
	}
	if r := l.Read(t, At(fmt.Sprintf("2001:db8:%x::1", attackers-1), Owner)); r.Pair.Count != 1 || r.Address.Count != 2 {
		t.Fatalf("the newest attacker's record %+v, want 1 at the pair, 2 at the address", r)
	}
}

func testNoLockout(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	judged := 0
	for i := range 11 {
		for range 5 {
			if l.Try(t, At(fmt.Sprintf("192.0.2.%d", i+1), Owner), loginlimit.Failed) == 0 {
				judged++
			}
		}
	}
	if judged != 5+10 {
		t.Fatalf("%d attempts judged, want 15", judged)
	}
	if wait := l.Try(t, Owner, loginlimit.Passed); wait != 0 {
		t.Fatalf("the owner from a clean address waits %v", wait)
	}
	if wait := l.Try(t, At("192.0.2.11", Owner), loginlimit.Passed); wait != time.Minute {
		t.Fatalf("an address that failed once at the attacked account waits %v, want a minute", wait)
	}
	if wait := l.Try(t, At("192.0.2.1", Owner), loginlimit.Passed); wait != 15*time.Minute {
		t.Fatalf("the first address (5 failures) waits %v, want 15 minutes", wait)
	}
}

func testParallel(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var tickets []loginlimit.Ticket
	for range 50 {
		wg.Go(func() {
			ticket, wait, err := l.Begin(context.Background(), Owner, T0)
			if err != nil {
				t.Error(err)
			}
			if err == nil && wait == 0 {
				mu.Lock()
				tickets = append(tickets, ticket)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(tickets) != loginlimit.Default.AccountFree {
		t.Fatalf("%d of 50 parallel attempts let through, want %d", len(tickets), loginlimit.Default.AccountFree)
	}
	if r := l.Read(t, Owner); r.Address.Count != len(tickets) || r.Pair.Count != len(tickets) || r.Account.Count != len(tickets) {
		t.Fatalf("record %+v, want the %d let through, and only them, everywhere", r, len(tickets))
	}
	for _, ticket := range tickets {
		if err := l.Settle(context.Background(), ticket, loginlimit.Passed); err != nil {
			t.Fatal(err)
		}
	}
	if wait := l.Try(t, Owner, loginlimit.Failed); wait != 0 {
		t.Fatalf("after right passwords, waits %v", wait)
	}
}

func testFailedStays(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	l.Try(t, Owner, loginlimit.Failed)
	if r := l.Read(t, Owner); r.Address.Count != 1 || r.Pair.Count != 1 || r.Account.Count != 1 || !r.Pair.Last.Equal(T0) {
		t.Fatalf("record %+v, want one failure everywhere at %v", r, T0)
	}
	// Before the account is looked up, the pair names it.
	if r := l.Read(t, loginlimit.Attempt{Address: Owner.Address, Email: Owner.Email}); r.Account.Count != 1 {
		t.Fatalf("record without the account %+v, want the account's failure", r)
	}
}

func testPassedForgivesThePairOnly(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	other := loginlimit.Attempt{Address: Owner.Address, Email: "ada@example.org", Account: "acct-ada"}
	for range 4 {
		l.Try(t, Owner, loginlimit.Failed)
	}
	l.Try(t, other, loginlimit.Failed)
	l.Now = l.Now.Add(time.Second)
	if wait := l.Try(t, Owner, loginlimit.Passed); wait != 0 {
		t.Fatalf("waits %v", wait)
	}
	if r := l.Read(t, Owner); r.Pair.Count != 0 || r.Address.Count != 5 || r.Account.Count != 4 {
		t.Fatalf("record %+v, want the pair forgiven, the address's 5 and account's 4 failures kept", r)
	}
	if r := l.Read(t, other); r.Pair.Count != 1 {
		t.Fatalf("another email's pair was forgiven: %+v", r)
	}
}

func testVoidLeavesNothing(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	for range 10 {
		if wait := l.Try(t, Owner, loginlimit.Void); wait != 0 {
			t.Fatalf("waits %v after attempts that were not judged", wait)
		}
	}
	if r := l.Read(t, Owner); r != (loginlimit.Record{}) {
		t.Fatalf("record %+v after attempts that were not judged", r)
	}
}

func testForgottenAttempt(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	l.Try(t, Owner, loginlimit.Failed)
	forgotten := loginlimit.Ticket{Attempt: Owner, ID: 12345, Began: T0.Add(-3 * time.Hour)}
	for _, o := range []loginlimit.Outcome{loginlimit.Failed, loginlimit.Void} {
		if err := l.Settle(context.Background(), forgotten, o); err != nil {
			t.Fatalf("settling an attempt the store never had: %v", err)
		}
	}
	if r := l.Read(t, Owner); r.Address.Count != 1 || r.Account.Count != 1 {
		t.Fatalf("record %+v, want the one failure", r)
	}
}

func testUnknownAccounts(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	for i := range 20 {
		l.Try(t, loginlimit.Attempt{Address: fmt.Sprintf("192.0.2.%d", i), Email: "ghost@example.org"}, loginlimit.Failed)
	}
	if r := l.Read(t, loginlimit.Attempt{Address: "192.0.2.0", Email: "ghost@example.org"}); r.Pair.Count != 1 || r.Account.Count != 0 {
		t.Fatalf("record %+v", r)
	}
}

func testWindow(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	for range 9 {
		l.Now = l.Now.Add(15 * time.Minute)
		l.Try(t, Owner, loginlimit.Failed)
	}
	if r := l.Read(t, Owner); r.Pair.Count != 4 || r.Account.Count != 4 || r.Address.Count != 4 {
		t.Fatalf("record %+v, want the 4 failures of the last hour", r)
	}
	l.Now = l.Now.Add(time.Hour)
	if r := l.Read(t, Owner); r != (loginlimit.Record{}) {
		t.Fatalf("record %+v an hour after the last failure", r)
	}
}

// testAcrossTheHour: attempts on both sides of an hour count together,
// and one begun before it is settled after it as if nothing happened.
func testAcrossTheHour(t *testing.T, open Open) {
	l := NewLimiter(open(t))
	ctx := context.Background()
	hour := T0.Add(time.Hour)
	l.Now = hour.Add(-10 * time.Minute)
	for range 3 {
		l.Try(t, Owner, loginlimit.Failed)
	}
	l.Now = hour.Add(-time.Second)
	pending, wait, err := l.Begin(ctx, Owner, l.Now)
	if err != nil || wait != 0 {
		t.Fatalf("Begin = %v, %v", wait, err)
	}
	l.Now = hour.Add(time.Second)
	l.Try(t, At("192.0.2.77", Owner), loginlimit.Failed)
	if r := l.Read(t, Owner); r.Pair.Count != 4 || r.Account.Count != 5 {
		t.Fatalf("record %+v, want 4 at the pair (1 being judged) and 5 at the account", r)
	}
	if err := l.Settle(ctx, pending, loginlimit.Passed); err != nil {
		t.Fatal(err)
	}
	if r := l.Read(t, Owner); r.Pair.Count != 0 || r.Address.Count != 3 || r.Account.Count != 4 {
		t.Fatalf("record %+v after the right password, want the pair forgiven, 3 at the address, 4 at the account", r)
	}
	l.Now = hour.Add(50*time.Minute + time.Second)
	if r := l.Read(t, At("192.0.2.77", Owner)); r.Pair.Count != 1 || r.Account.Count != 1 {
		t.Fatalf("record %+v when only the failure after the hour is in the window", r)
	}
}
