// Package loginlimit slows down password guessing at sign-in without
// letting anyone lock other people out.
//
// # The model
//
// Every sign-in attempt that reaches the password check is written, before
// the check, in up to three ledgers:
//
//   - its address's: the client's IPv4 address, or its IPv6 /64 (AddressOf);
//   - its pair's: that address together with the email typed;
//   - its account's, from every address: only when the email names an
//     account, so made-up emails are written nowhere but in their
//     address's own ledgers.
//
// The attempt stays counted if the password was wrong (or the account
// unknown or suspended), and is taken out again if it was right or was not
// judged. While it is being judged it counts as failed, so parallel guesses
// cannot all slip past the check before the first is judged. A failure
// counts for Policy.Window (an hour).
//
// Before its password is checked, an attempt has to wait — it is refused,
// with the time left — when either rule says so:
//
//   - The address rule. An address with AddressFree (50) failures or more,
//     at any accounts, waits a delay that grows with its failures beyond
//     that, after its last one. A flood from one address fills its own
//     ledger and slows only itself: everything the flood leaves behind is
//     in that address's entry, bounded, and the flood is refused before
//     anything is looked up or hashed.
//   - The account rule. An address that has failed at an account (its pair
//     has failures) waits, after its last failure there, once the account
//     has AccountFree (5) failures or more from all addresses together. The
//     delay grows with the account's failures beyond AccountFree, but never
//     beyond what the address's own failures there earn: the first wait
//     after one failure is FirstDelay. For an email that names no account,
//     the pair's failures stand in for the account's, so from one address
//     a made-up email is answered exactly as a real one, waits included.
//
// An address that has not failed at an account is clean for it: it goes to
// the password check whatever the account's ledger holds, so failures from
// elsewhere never keep a person with the right password out. A wrong
// password from a clean address makes it fail there, and it waits from
// then on, but by its own failures: a person who mistypes once while
// their account is under attack waits a minute, not the attack's 15. The
// right password forgives the pair's earlier failures, never the
// account's or the address's.
//
// Delays start at FirstDelay (a minute) and double, up to MaxDelay (15
// minutes): the first wait past a threshold is FirstDelay, the next
// 2×FirstDelay, and so on. Keycloak's brute-force detection with permanent
// lockout off and OWASP's authentication guidance are the models; the
// difference is that the account's wait applies only to the addresses
// that failed there.
//
// What it leaves open: an attacker with many addresses gets a few guesses
// per address per hour at one account (every clean address one at once,
// then one after each doubling wait), and by comparing the waits of
// several addresses can tell a real account, whose ledger counts them all,
// from a made-up one, whose failures count per address only. Counting
// made-up emails across addresses would take shared state for every email
// anyone can type: a table a flood could fill, and then everyone waits.
package loginlimit

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Policy is when attempts wait and for how long. Zero fields take the
// defaults named on each.
type Policy struct {
	// Window is how long a failure counts (default an hour).
	Window time.Duration
	// AccountFree is how many failures an account takes, from all
	// addresses together, before the addresses that failed there wait
	// (default 5; at most MaxFree).
	AccountFree int
	// AddressFree is how many failures an address makes, at any accounts,
	// before it waits whatever it tries (default 50; at most MaxFree).
	AddressFree int
	// FirstDelay is the first wait past a threshold; each further failure
	// doubles it (default a minute).
	FirstDelay time.Duration
	// MaxDelay caps the wait (default 15 minutes).
	MaxDelay time.Duration
}

// MaxFree bounds AccountFree and AddressFree: a ledger keeps only its
// newest ledgerEntries entries, and the waits must be reached well before.
const MaxFree = ledgerEntries - 28

// Default is the policy of the zero Policy.
var Default = Policy{
	Window:      time.Hour,
	AccountFree: 5,
	AddressFree: 50,
	FirstDelay:  time.Minute,
	MaxDelay:    15 * time.Minute,
}

// WithDefaults returns p with its zero fields set to the defaults, as the
// limiter decides by it. A store in the database is told the window by it.
func (p Policy) WithDefaults() Policy { return p.withDefaults() }

func (p Policy) withDefaults() Policy {
	if p.Window <= 0 {
		p.Window = Default.Window
	}
	if p.AccountFree <= 0 {
		p.AccountFree = Default.AccountFree
	}
	if p.AddressFree <= 0 {
		p.AddressFree = Default.AddressFree
	}
	p.AccountFree, p.AddressFree = min(p.AccountFree, MaxFree), min(p.AddressFree, MaxFree)
	if p.FirstDelay <= 0 {
		p.FirstDelay = Default.FirstDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = Default.MaxDelay
	}
	p.MaxDelay = max(p.MaxDelay, p.FirstDelay)
	return p
}

// Wait is how long, from now, an attempt whose ledgers hold r must wait
// before its password is checked; zero when it need not.
func (p Policy) Wait(r Record, now time.Time) time.Duration {
	p = p.withDefaults()
	var wait time.Duration
	if over := r.Address.Count - p.AddressFree; over >= 0 {
		wait = max(wait, p.delay(over)-now.Sub(r.Address.Last))
	}
	if r.Pair.Count > 0 {
		// An unknown account's Count is 0: the pair stands in for it.
		if over := max(r.Account.Count, r.Pair.Count) - p.AccountFree; over >= 0 {
			wait = max(wait, p.delay(min(over, r.Pair.Count-1))-now.Sub(r.Pair.Last))
		}
	}
	return wait
}

// delay is the wait after n failures past a threshold: FirstDelay doubled
// n times, at most MaxDelay.
func (p Policy) delay(n int) time.Duration {
	d := p.FirstDelay
	for range n {
		if d >= p.MaxDelay {
			break
		}
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Limiter decides sign-in attempts by Policy over the ledgers of a Store.
type Limiter struct {
	policy Policy
	store  Store
}

// New returns a limiter deciding by p (zero fields: the defaults) over
// the ledgers in s.
func New(p Policy, s Store) *Limiter {
	return &Limiter{policy: p.withDefaults(), store: s}
}

// Policy returns the policy the limiter decides by, defaults filled in.
func (l *Limiter) Policy() Policy { return l.policy }

// Check looks, writing nothing, at a's ledgers before its account is
// looked up (a.Account may be empty: the store finds the account from the
// pair's earlier attempts), and says how long it must wait: zero when it
// may go on. Refusing a flood here costs it no look-up and no hashing.
// Begin decides again, as it records. Errors are the store's, wrapped.
//
// Over a store that can Glance, it glances first and reads only to
// confirm a wait: an attempt the glance lets on is decided exactly by
// Begin, and a wait it shows may be one another process has lifted.
func (l *Limiter) Check(ctx context.Context, a Attempt, now time.Time) (time.Duration, error) {
	since := now.Add(-l.policy.Window)
	if g, ok := l.store.(Glancer); ok {
		if r, err := g.Glance(ctx, a, since); err == nil && l.policy.Wait(r, now) <= 0 {
			return 0, nil
		}
	}
	r, err := l.store.Read(ctx, a, since)
	if err != nil {
		return 0, fmt.Errorf("loginlimit: read the ledgers of %s: %w", a.Address, err)
	}
	return max(l.policy.Wait(r, now), 0), nil
}

// Begin records a as being judged and returns its ticket, to be settled
// once the password is checked; or, when a must wait, records nothing and
// returns how long. Errors are the store's, wrapped.
func (l *Limiter) Begin(ctx context.Context, a Attempt, now time.Time) (Ticket, time.Duration, error) {
	t, wait, err := l.store.Begin(ctx, a, now, now.Add(-l.policy.Window), func(r Record) time.Duration {
		return l.policy.Wait(r, now)
	})
	if err != nil {
		return Ticket{}, 0, fmt.Errorf("loginlimit: begin an attempt from %s: %w", a.Address, err)
	}
	return t, max(wait, 0), nil
}

// Settle records how t's attempt ended. Errors are the store's, wrapped.
func (l *Limiter) Settle(ctx context.Context, t Ticket, o Outcome) error {
	if err := l.store.Settle(ctx, t, o); err != nil {
		return fmt.Errorf("loginlimit: settle an attempt from %s: %w", t.Attempt.Address, err)
	}
	return nil
}

// AddressOf is the address an attempt from ip is counted under. An IPv6
// client counts by its /64, which one host or one network controls, and
// out of which a host can take a new address for every request. An IPv4
// address stands alone: a /24 often holds unrelated customers (a hosting
// provider's, a carrier-grade NAT's pool), and grouping them would let one
// slow down its neighbours. A value that is not an IP address stands for
// itself.
func AddressOf(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return ip
	}
	if v4 := parsed.To4(); v4 != nil {
		return v4.String() // also for ::ffff:a.b.c.d
	}
	return parsed.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
