package mongostore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/dbtest"
	"standin/server/loginlimit"
	"standin/server/loginlimit/storetest"
	"standin/server/mongostore"
)

// TestSignInLimitsStore holds the database's store to what every store
// must do.
func TestSignInLimitsStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) loginlimit.Store {
		return mustOpen(t).SignInLimits(loginlimit.Default.Window)
	})
}

// twoServers is two stores on one database through connections of their
// own, as two server processes have them, deciding by p. They confirm
// every wait they see by a look-up.
func twoServers(t *testing.T, p loginlimit.Policy) (db *mongostore.DB, stores [2]*storetest.Limiter) {
	t.Helper()
	db = mustOpen(t)
	other := dbtest.MustConnect(t, db, mongostore.Options{})
	for i, d := range []*mongostore.DB{db, other} {
		s := d.SignInLimits(p.WithDefaults().Window)
		s.Recheck = 0
		stores[i] = &storetest.Limiter{Limiter: loginlimit.New(p, s), Store: s, Now: storetest.T0}
	}
	return db, stores
}

// race begins attempt(i) for i < n from goroutines taking turns between
// the two stores, all at one moment, and returns the tickets of those let
// through.
func race(t *testing.T, stores [2]*storetest.Limiter, n int, attempt func(i int) loginlimit.Attempt) []loginlimit.Ticket {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var tickets []loginlimit.Ticket
	for i := range n {
		wg.Go(func() {
			ticket, wait, err := stores[i%2].Begin(context.Background(), attempt(i), storetest.T0)
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				mu.Lock()
				tickets = append(tickets, ticket)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return tickets
}

// TestSignInLimitsAcrossServers: attempts racing through two servers
// are decided as one server decides them, each on a record holding the
// others: no attempt uncounted, no allowance twice.
func TestSignInLimitsAcrossServers(t *testing.T) {
	t.Parallel()

	t.Run("OneAttemptAtTheAccountRule", func(t *testing.T) {
		t.Parallel()
		_, stores := twoServers(t, loginlimit.Policy{})
		tickets := race(t, stores, 40, func(int) loginlimit.Attempt { return storetest.Owner })
		if len(tickets) != loginlimit.Default.AccountFree {
			t.Fatalf("%d of 40 let through, want %d", len(tickets), loginlimit.Default.AccountFree)
		}
		for i, s := range stores {
			if r := s.Read(t, storetest.Owner); r.Address.Count != len(tickets) || r.Pair.Count != len(tickets) || r.Account.Count != len(tickets) {
				t.Fatalf("server %d reads %+v, want the %d let through everywhere", i, r, len(tickets))
			}
		}
	})

	t.Run("OneAddressAtTheAddressRule", func(t *testing.T) {
		t.Parallel()
		policy := loginlimit.Policy{AddressFree: 10}
		_, stores := twoServers(t, policy)
		n := policy.AddressFree + 10
		tickets := race(t, stores, n, func(i int) loginlimit.Attempt {
			return loginlimit.Attempt{Address: "203.0.113.9", Email: fmt.Sprintf("nobody-%d@example.net", i)}
		})
		if len(tickets) != policy.AddressFree {
			t.Fatalf("%d of %d let through, want %d", len(tickets), n, policy.AddressFree)
		}
		// Settled on either server, they stay counted on both.
		for i, ticket := range tickets {
			if err := stores[i%2].Settle(context.Background(), ticket, loginlimit.Failed); err != nil {
				t.Fatal(err)
			}
		}
		for i, s := range stores {
			if r := s.Read(t, loginlimit.Attempt{Address: "203.0.113.9"}); r.Address.Count != len(tickets) {
				t.Fatalf("server %d reads %+v, want %d at the address", i, r, len(tickets))
			}
		}
	})

	t.Run("AWaitSeenIsConfirmed", func(t *testing.T) {
		t.Parallel()
		_, stores := twoServers(t, loginlimit.Policy{})
		ctx := context.Background()
		// One server sees attempts the other is judging, which then end
		// unjudged: the first must not make anyone wait for them.
		var tickets []loginlimit.Ticket
		for range loginlimit.Default.AccountFree {
			ticket, wait, err := stores[1].Begin(ctx, storetest.Owner, storetest.T0)
			if err != nil || wait != 0 {
				t.Fatalf("Begin = %v, %v", wait, err)
			}
			tickets = append(tickets, ticket)
		}
		if r := stores[0].Read(t, storetest.Owner); r.Pair.Count != len(tickets) {
			t.Fatalf("the first server reads %+v, want the %d being judged", r, len(tickets))
		}
		if wait, err := stores[0].Check(ctx, storetest.Owner, storetest.T0); err != nil || wait != time.Minute {
			t.Fatalf("Check while %d are judged = %v, %v; want a minute", len(tickets), wait, err)
		}
		for _, ticket := range tickets {
			if err := stores[1].Settle(ctx, ticket, loginlimit.Void); err != nil {
				t.Fatal(err)
			}
		}
		if wait, err := stores[0].Check(ctx, storetest.Owner, storetest.T0); err != nil || wait != 0 {
			t.Fatalf("Check once they ended unjudged = %v, %v; want none", wait, err)
		}
	})

	t.Run("AStaleGlanceIsDecidedOnTheTruth", func(t *testing.T) {
		t.Parallel()
		_, stores := twoServers(t, loginlimit.Policy{})
		// The first server sees one failure at the account, the second
		// four more from elsewhere: the first address now waits.
		stores[0].Try(t, storetest.Owner, loginlimit.Failed)
		for i := range loginlimit.Default.AccountFree - 1 {
			stores[1].Try(t, storetest.At(fmt.Sprintf("192.0.2.%d", i+1), storetest.Owner), loginlimit.Failed)
		}
		if wait := stores[0].Try(t, storetest.Owner, loginlimit.Failed); wait != time.Minute {
			t.Fatalf("the first server lets the address wait %v, want a minute", wait)
		}
	})

	t.Run("ManyAddressesAtOneAccount", func(t *testing.T) {
		t.Parallel()
		_, stores := twoServers(t, loginlimit.Policy{})
		tickets := race(t, stores, 30, func(i int) loginlimit.Attempt {
			return storetest.At(fmt.Sprintf("192.0.2.%d", i+1), storetest.Owner)
		})
		// Every address is clean at the account: all go through, and all
		// are counted there.
		if len(tickets) != 30 {
			t.Fatalf("%d of 30 clean addresses let through", len(tickets))
		}
		for i, s := range stores {
			if r := s.Read(t, storetest.At("192.0.2.200", storetest.Owner)); r.Account.Count != 30 {
				t.Fatalf("server %d reads %+v, want 30 at the account", i, r)
			}
		}
	})
}

// countLimits is how many ledger versions the database holds.
func countLimits(t *testing.T, db *mongostore.DB) int64 {
	t.Helper()
	n, err := dbtest.MustDriver(t, db).Collection("signin_limits").CountDocuments(context.Background(), bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSweepSignInLimits: with the sweep run as the server runs it, the
// ledgers hold what two windows wrote, however long attempts go on, and
// what is in the window still counts.
func TestSweepSignInLimits(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	l := storetest.NewLimiter(db.SignInLimits(loginlimit.Default.Window))
	window := l.Policy().Window
	var most int64
	for hour := range 6 {
		for i := range 10 {
			l.Now = storetest.T0.Add(time.Duration(hour)*window + time.Duration(i)*time.Minute)
			l.Try(t, storetest.At(fmt.Sprintf("192.0.2.%d", i), storetest.Owner), loginlimit.Failed)
		}
		if _, err := db.SweepSignInLimits(context.Background(), l.Now.Add(-2*window)); err != nil {
			t.Fatal(err)
		}
		n := countLimits(t, db)
		most = max(most, n)
		if r := l.Read(t, storetest.At("192.0.2.0", storetest.Owner)); r.Pair.Count != 1 || r.Account.Count != 10 {
			t.Fatalf("hour %d: record %+v, want this hour's failures", hour, r)
		}
	}
	// Per hour: 10 addresses × (seal, begin, settle) and the account's
	// seal and 2 × 10 versions. Two hours are kept.
	if perHour := int64(10*3 + 1 + 20); most > 2*perHour {
		t.Fatalf("the collection held up to %d versions, want at most %d", most, 2*perHour)
	}
	removed, err := db.SweepSignInLimits(context.Background(), l.Now.Add(2*window))
	if err != nil {
		t.Fatal(err)
	}
	if n := countLimits(t, db); n != 0 || removed == 0 {
		t.Fatalf("a sweep past every period removed %d and left %d", removed, n)
	}
}

// benchLimiters is one limiter per server over one database, which holds
// about docs versions of other ledgers: every attempt from a new address
// at a known account writes about 4 (a seal, begin and settle at the
// address, begin at the account).
func benchLimiters(b *testing.B, servers, docs int) []*storetest.Limiter {
	db := dbtest.MustOpen(b)
	ls := []*storetest.Limiter{storetest.NewLimiter(db.SignInLimits(loginlimit.Default.Window))}
	if servers == 2 {
		ls = append(ls, storetest.NewLimiter(dbtest.MustConnect(b, db, mongostore.Options{}).SignInLimits(loginlimit.Default.Window)))
	}
	for i := range docs / 4 {
		ls[0].Try(b, storetest.At(fmt.Sprintf("2001:db8:%x::", i), loginlimit.Attempt{Email: "ghost@example.org", Account: fmt.Sprintf("acct-%d", i%50)}), loginlimit.Failed)
	}
	return ls
}

// BenchmarkSignInLimits is what a judged sign-in costs the limits in the
// database (check, begin, settle), with about as many versions of other
// ledgers present as its name says: each a wrong password at one account
// from a new address, on one server, or on two taking turns, each then
// finding the account's ledger moved on by the other.
func BenchmarkSignInLimits(b *testing.B) {
	for _, docs := range []int{0, 1000, 3000} {
		for _, servers := range []int{1, 2} {
			b.Run(fmt.Sprintf("Versions%d/Servers%d", docs, servers), func(b *testing.B) {
				ls := benchLimiters(b, servers, docs)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					a := storetest.At(fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), storetest.Owner)
					if wait := ls[i%len(ls)].Try(b, a, loginlimit.Failed); wait != 0 {
						b.Fatalf("a clean address waits %v", wait)
					}
				}
			})
		}
	}
}

// BenchmarkSignInLimitsRefused is what an attempt refused for its wait
// costs: from one address, at made-up emails, past the address's
// threshold, on one server or on two taking turns.
func BenchmarkSignInLimitsRefused(b *testing.B) {
	for _, servers := range []int{1, 2} {
		b.Run(fmt.Sprintf("Versions3000/Servers%d", servers), func(b *testing.B) {
			ls := benchLimiters(b, servers, 3000)
			for i := range loginlimit.Default.AddressFree {
				ls[0].Try(b, loginlimit.Attempt{Address: "203.0.113.9", Email: fmt.Sprintf("nobody-%d@example.net", i)}, loginlimit.Failed)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if ls[i%len(ls)].Try(b, loginlimit.Attempt{Address: "203.0.113.9", Email: "x@example.net"}, loginlimit.Failed) == 0 {
					b.Fatal("let through")
				}
			}
		})
	}
}
