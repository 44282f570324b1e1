package loginlimit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

func TestPolicyWait(t *testing.T) {
	t.Parallel()
	tally := func(n int, ago time.Duration) Tally {
		if n == 0 {
			return Tally{}
		}
		return Tally{Count: n, Last: t0.Add(-ago)}
	}
	tests := []struct {
		name string
		p    Policy
		r    Record
		want time.Duration
	}{
		{"Clean", Policy{}, Record{}, 0},
		{"PairBelowThreshold", Policy{}, Record{Pair: tally(4, 0), Account: tally(4, 0), Address: tally(4, 0)}, 0},
		{"PairAtThreshold", Policy{}, Record{Pair: tally(5, 0), Account: tally(5, 0), Address: tally(5, 0)}, time.Minute},
		{"PartlyWaited", Policy{}, Record{Pair: tally(5, 20*time.Second), Account: tally(5, 0), Address: tally(5, 0)}, 40 * time.Second},
		{"WaitedOut", Policy{}, Record{Pair: tally(5, time.Hour), Account: tally(5, 0), Address: tally(5, 0)}, 0},
		{"Doubles", Policy{}, Record{Pair: tally(7, 0), Account: tally(7, 0)}, 4 * time.Minute},
		{"Capped", Policy{}, Record{Pair: tally(9, 0), Account: tally(9, 0)}, 15 * time.Minute},
		{"CappedFarBeyond", Policy{}, Record{Pair: tally(100, 0), Account: tally(100, 0)}, 15 * time.Minute},
		{"UnknownAccountCountsThePair", Policy{}, Record{Pair: tally(6, 0)}, 2 * time.Minute},
		{"AttackedAccountCleanAddress", Policy{}, Record{Account: tally(55, 0)}, 0},
		{"AttackedAccountOneFailureHere", Policy{}, Record{Pair: tally(1, 0), Account: tally(55, 0)}, time.Minute},
		{"AttackedAccountTwoFailuresHere", Policy{}, Record{Pair: tally(2, 0), Account: tally(55, 0)}, 2 * time.Minute},
		{"AttackedAccountWaitFromOwnFailure", Policy{}, Record{Pair: tally(1, 45*time.Second), Account: tally(55, 0)}, 15 * time.Second},
		{"AccountAtThresholdOneFailureHere", Policy{}, Record{Pair: tally(1, 0), Account: tally(5, 0)}, time.Minute},
		{"AccountBelowThresholdFailuresHere", Policy{}, Record{Pair: tally(3, 0), Account: tally(4, 0)}, 0},
		{"AddressBelowThreshold", Policy{}, Record{Address: tally(49, 0)}, 0},
		{"AddressAtThreshold", Policy{}, Record{Address: tally(50, 0)}, time.Minute},
		{"AddressDoubles", Policy{}, Record{Address: tally(52, 10*time.Second)}, 4*time.Minute - 10*time.Second},
		{"LongerRuleWins", Policy{}, Record{Address: tally(50, 0), Pair: tally(8, 0), Account: tally(8, 0)}, 8 * time.Minute},
		{"OwnPolicy", Policy{AccountFree: 2, AddressFree: 3, FirstDelay: time.Second, MaxDelay: 3 * time.Second},
			Record{Address: tally(3, 0), Pair: tally(5, 0), Account: tally(5, 0)}, 3 * time.Second},
		{"FreeBeyondTheLedgerIsBounded", Policy{AddressFree: 1_000_000}, Record{Address: tally(MaxFree, 0)}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.Wait(tt.r, t0); got != tt.want {
				t.Fatalf("Wait(%+v) = %v, want %v", tt.r, got, tt.want)
			}
		})
	}
}

// limiter is a Limiter over a Memory store, with the test's clock.
type limiter struct {
	*Limiter
	mem *Memory
	now time.Time
}

func newLimiter(addresses int) *limiter {
	mem := NewMemory(addresses)
	return &limiter{Limiter: New(Policy{}, mem), mem: mem, now: t0}
}

// try makes an attempt and settles it with o when it is let through; it
// returns the wait otherwise.
func (l *limiter) try(t testing.TB, a Attempt, o Outcome) time.Duration {
	t.Helper()
	ctx := context.Background()
	if wait, err := l.Check(ctx, a, l.now); err != nil || wait > 0 {
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	ticket, wait, err := l.Begin(ctx, a, l.now)
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

func (l *limiter) read(t testing.TB, a Attempt) Record {
	t.Helper()
	r, err := l.mem.Read(context.Background(), a, l.now.Add(-l.Policy().Window))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (l *limiter) sizes() (addresses, accounts int) {
	l.mem.mu.Lock()
	defer l.mem.mu.Unlock()
	if len(l.mem.addresses) != l.mem.order.Len() {
		panic("address table and its order disagree")
	}
	return len(l.mem.addresses), len(l.mem.accounts)
}

var owner = Attempt{Address: "198.51.100.7", Email: "owner@example.org", Account: "acct-owner"}

func at(address string, a Attempt) Attempt { a.Address = address; return a }

func TestFloodFromOneAddress(t *testing.T) {
	t.Parallel()
	l := newLimiter(4)
	flood := func(n int) (judged int) {
		for i := range n {
			if l.try(t, Attempt{Address: "203.0.113.9", Email: fmt.Sprintf("nobody-%d@example.net", i)}, Failed) == 0 {
				judged++
			}
		}
		return judged
	}
	if judged := flood(100_000); judged != Default.AddressFree {
		t.Fatalf("%d of 100,000 made-up attempts from one address were judged, want %d", judged, Default.AddressFree)
	}
	if addresses, accounts := l.sizes(); addresses != 1 || accounts != 0 {
		t.Fatalf("the flood left %d addresses and %d accounts, want 1 and 0", addresses, accounts)
	}
	// Nobody else waits, not even at an account the flood named.
	if wait := l.try(t, owner, Passed); wait != 0 {
		t.Fatalf("the owner from another address waits %v", wait)
	}
	if wait := l.try(t, at("2001:db8::1", owner), Passed); wait != 0 {
		t.Fatalf("the owner from another address waits %v", wait)
	}
	// The flood itself goes on one attempt per doubling wait.
	for _, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		l.now = l.now.Add(wait)
		if judged := flood(1000); judged != 1 {
			t.Fatalf("after waiting %v, %d attempts judged, want 1", wait, judged)
		}
	}
}

func TestFloodFromManyAddresses(t *testing.T) {
	t.Parallel()
	l := newLimiter(8)
	for i := range 1000 {
		address := fmt.Sprintf("2001:db8:%x::1", i)
		for j := range 3 {
			if wait := l.try(t, Attempt{Address: address, Email: fmt.Sprintf("nobody-%d@example.net", j)}, Failed); wait != 0 {
				t.Fatalf("address %d attempt %d waits %v", i, j, wait)
			}
		}
		if wait := l.try(t, at(address, owner), Failed); wait != 0 {
			t.Fatalf("address %d, clean at the account, waits %v", i, wait)
		}
	}
	if addresses, _ := l.sizes(); addresses != 8 {
		t.Fatalf("%d addresses remembered, want the bound, 8", addresses)
	}
	// The account's ledger keeps its newest entries only.
	if r := l.read(t, at("192.0.2.1", owner)); r.Account.Count != ledgerEntries {
		t.Fatalf("account ledger holds %d, want its bound, %d", r.Account.Count, ledgerEntries)
	}
	if wait := l.try(t, at("192.0.2.1", owner), Passed); wait != 0 {
		t.Fatalf("the owner from a clean address waits %v", wait)
	}
	// The most recent addresses are the ones remembered.
	if r := l.read(t, at("2001:db8:3e7::1", owner)); r.Pair.Count != 1 {
		t.Fatalf("the newest attacker is forgotten: %+v", r)
	}
}

// TestNoLockout is the attack of 5 wrong passwords from each of 11
// addresses.
func TestNoLockout(t *testing.T) {
	t.Parallel()
	l := newLimiter(0)
	judged := 0
	for i := range 11 {
		for range 5 {
			if l.try(t, at(fmt.Sprintf("192.0.2.%d", i+1), owner), Failed) == 0 {
				judged++
			}
		}
	}
	// Each address after the first failed once, then waited.
	if judged != 5+10 {
		t.Fatalf("%d attempts judged, want 15", judged)
	}
	if wait := l.try(t, owner, Passed); wait != 0 {
		t.Fatalf("the owner from a clean address waits %v", wait)
	}
	if wait := l.try(t, at("192.0.2.11", owner), Passed); wait != time.Minute {
		t.Fatalf("an address that failed once at the attacked account waits %v, want a minute", wait)
	}
	// Its own 5 failures there, with the account's 15, earn the longest.
	if wait := l.try(t, at("192.0.2.1", owner), Passed); wait != 15*time.Minute {
		t.Fatalf("the first address (5 failures) waits %v, want 15 minutes", wait)
	}
}

func TestParallelAttemptsStopAtTheThreshold(t *testing.T) {
	t.Parallel()
	l := newLimiter(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var tickets []Ticket
	for range 50 {
		wg.Go(func() {
			ticket, wait, err := l.Begin(context.Background(), owner, t0)
			if err != nil {
				t.Error(err)
			}
			if wait == 0 {
				mu.Lock()
				tickets = append(tickets, ticket)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(tickets) != Default.AccountFree {
		t.Fatalf("%d of 50 parallel attempts let through, want %d", len(tickets), Default.AccountFree)
	}
	// Once they are judged right, the next ones are let through again.
	for _, ticket := range tickets {
		if err := l.Settle(context.Background(), ticket, Passed); err != nil {
			t.Fatal(err)
		}
	}
	if wait := l.try(t, owner, Failed); wait != 0 {
		t.Fatalf("after right passwords, waits %v", wait)
	}
}

func TestSettle(t *testing.T) {
	t.Parallel()

	t.Run("FailedStays", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(0)
		l.try(t, owner, Failed)
		if r := l.read(t, owner); r.Address.Count != 1 || r.Pair.Count != 1 || r.Account.Count != 1 || !r.Pair.Last.Equal(t0) {
			t.Fatalf("record %+v, want one failure everywhere at %v", r, t0)
		}
	})

	t.Run("PassedForgivesThePairOnly", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(0)
		other := Attempt{Address: owner.Address, Email: "ada@example.org", Account: "acct-ada"}
		for range 4 {
			l.try(t, owner, Failed)
		}
		l.try(t, other, Failed)
		l.now = l.now.Add(time.Second)
		if wait := l.try(t, owner, Passed); wait != 0 {
			t.Fatalf("waits %v", wait)
		}
		if r := l.read(t, owner); r.Pair.Count != 0 || r.Address.Count != 5 || r.Account.Count != 4 {
			t.Fatalf("record %+v, want the pair forgiven, the address's 5 and account's 4 failures kept", r)
		}
		if r := l.read(t, other); r.Pair.Count != 1 {
			t.Fatalf("another email's pair was forgiven: %+v", r)
		}
	})

	t.Run("VoidLeavesNothing", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(0)
		for range 10 {
			if wait := l.try(t, owner, Void); wait != 0 {
				t.Fatalf("waits %v after attempts that were not judged", wait)
			}
		}
		if addresses, accounts := l.sizes(); addresses != 0 || accounts != 0 {
			t.Fatalf("%d addresses, %d accounts left", addresses, accounts)
		}
	})

	t.Run("ForgottenAttempt", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(1)
		ticket, _, err := l.Begin(context.Background(), owner, t0)
		if err != nil {
			t.Fatal(err)
		}
		l.try(t, at("192.0.2.99", owner), Failed) // the table holds one address
		if err := l.Settle(context.Background(), ticket, Passed); err != nil {
			t.Fatal(err)
		}
		if r := l.read(t, owner); r.Account.Count != 1 || r.Address.Count != 0 {
			t.Fatalf("record %+v", r)
		}
	})
}

func TestUnknownAccountsWriteNothingShared(t *testing.T) {
	t.Parallel()
	l := newLimiter(0)
	for i := range 20 {
		l.try(t, Attempt{Address: fmt.Sprintf("192.0.2.%d", i), Email: "ghost@example.org"}, Failed)
	}
	if _, accounts := l.sizes(); accounts != 0 {
		t.Fatalf("%d account ledgers for an email that names no account", accounts)
	}
	// Each address counts its own failures at the made-up email only.
	if r := l.read(t, Attempt{Address: "192.0.2.0", Email: "ghost@example.org"}); r.Pair.Count != 1 || r.Account.Count != 0 {
		t.Fatalf("record %+v", r)
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	l := newLimiter(0)
	for range 9 {
		l.now = l.now.Add(15 * time.Minute)
		l.try(t, owner, Failed)
	}
	// The failures of the last hour count: 4 of them, below the threshold.
	if r := l.read(t, owner); r.Pair.Count != 4 {
		t.Fatalf("record %+v, want the 4 failures of the last hour", r)
	}
	l.now = l.now.Add(time.Hour)
	if r := l.read(t, owner); r != (Record{}) {
		t.Fatalf("record %+v an hour after the last failure", r)
	}
	l.try(t, at("192.0.2.50", owner), Failed) // sweeps
	if addresses, accounts := l.sizes(); addresses != 1 || accounts != 1 {
		t.Fatalf("%d addresses and %d accounts kept, want only the new failure's", addresses, accounts)
	}
}

func TestAddressOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.9":          "203.0.113.9",
		"::ffff:203.0.113.9":   "203.0.113.9",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::/64",
		"not-an-ip":            "not-an-ip",
	} {
		if got := AddressOf(in); got != want {
			t.Errorf("AddressOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkRefusedFlood is what an attempt from a throttled address
// costs: the early check alone.
func BenchmarkRefusedFlood(b *testing.B) {
	l := newLimiter(0)
	for i := range Default.AddressFree {
		l.try(b, Attempt{Address: "203.0.113.9", Email: fmt.Sprintf("nobody-%d@example.net", i)}, Failed)
	}
	for b.Loop() {
		if l.try(b, Attempt{Address: "203.0.113.9", Email: "x@example.net"}, Failed) == 0 {
			b.Fatal("let through")
		}
	}
}

// BenchmarkAttempt is what a judged attempt costs the limiter: check,
// begin and settle, from a table of DefaultAddresses addresses.
func BenchmarkAttempt(b *testing.B) {
	l := newLimiter(0)
	for i := range DefaultAddresses {
		l.try(b, Attempt{Address: fmt.Sprintf("2001:db8:%x:%x::", i>>16, i&0xffff), Email: "ghost@example.org"}, Failed)
	}
	for i := 0; b.Loop(); i++ {
		l.try(b, Attempt{Address: fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), Email: owner.Email, Account: owner.Account}, Failed)
	}
}
