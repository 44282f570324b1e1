package loginlimit

import (
	"context"
	"time"
)

// Attempt names the ledgers a sign-in attempt is counted in.
type Attempt struct {
	// Address is the client's address as AddressOf gives it.
	Address string
	// Email is the email typed, normalized. With Address it names the
	// pair's ledger.
	Email string
	// Account is the id of the account Email names, or "" when it names
	// none: then no account ledger is read or written.
	Account string
}

// Tally is what one ledger holds within the window.
type Tally struct {
	// Count is the attempts that failed or are being judged.
	Count int
	// Last is when the newest of them began (zero when Count is 0).
	Last time.Time
}

// Record is the tallies an attempt is decided on.
type Record struct {
	// Address counts every attempt from the address.
	Address Tally
	// Pair counts the attempts from the address with the same email,
	// except those forgiven by a right password from there.
	Pair Tally
	// Account counts the attempts at the account from every address;
	// zero for an email that names no account.
	Account Tally
}

// Ticket is an attempt a Store recorded as being judged.
type Ticket struct {
	Attempt Attempt
	// ID tells the attempt apart from the others in its ledgers.
	ID uint64
	// Began is when it began.
	Began time.Time
}

// Outcome is how a judged attempt ended.
type Outcome int

// Outcomes.
const (
	// Failed: a wrong password, or an unknown or suspended account. The
	// attempt stays counted.
	Failed Outcome = iota
	// Passed: the right password. The attempt is taken out of its ledgers,
	// and its pair's earlier failures are forgiven (its address's and its
	// account's are not).
	Passed
	// Void: not judged (the server was too busy, or failed). The attempt
	// is taken out of its ledgers.
	Void
)

// Store keeps the ledgers the limiter decides from. Memory, in this
// package, keeps them in one process; mongostore.SignInLimits in the
// database, shared by every server process on it, so that the limits
// hold across all of them rather than once per process.
//
// # Sharing them through the database
//
// The interface is small so that a store in the database can implement it
// with operations that are exact on the embedded database — inserts
// racing on a unique _id, reads by _id equality, deletes of whole old
// periods — with no $inc, no TTL index and no update of a document two
// processes may write. mongostore.SignInLimits does it so:
//
//   - A ledger is, for each period of one window, a chain of immutable
//     versions, each the ledger's whole bounded list as of that version.
//     There are two ledgers, the address's (holding its pairs', each entry
//     naming its email by a hash) and the account's. Version 0 of a period
//     starts from the previous period's newest, less what left the
//     window, after sealing that chain with a last version, so that
//     nothing written late to it is lost.
//   - A process remembers the newest version it saw of each ledger.
//     Begin and Settle write the next version from there (or, for a
//     ledger it never saw, the first); a duplicate key means another
//     process wrote that version first, and the write looks the newest up
//     (exponentially, then by halves: versions are contiguous from 0),
//     decides again and tries again. So every attempt is decided on a
//     record that holds those recorded before it, as under Memory's mutex.
//   - Begin writes the address's ledger, which decides, and then the
//     account's, deciding again when another attempt got there first and
//     withdrawing from the address's when that says wait.
//   - Read looks the newest versions up. Check glances first (Glancer),
//     and reads only to confirm a wait, so that an attempt let on costs
//     no look-up before Begin.
//   - A background sweep, never a request, deletes the chains of periods
//     before the previous one, which no request reads or writes any more.
//
// The versions are then about three per failed attempt over two windows,
// which the hashing bound on sign-in caps whatever a flood sends; every
// look-up on the embedded database filters all of them, which is what a
// refused attempt costs there (see BenchmarkSignInLimits in mongostore).
type Store interface {
	// Read returns the tallies of a's ledgers, counting the attempts
	// begun after since. Without a.Account, the account's ledger is that
	// of the account the pair's attempts named, if they named one: the
	// account rule applies only to a pair with failures, so a reader that
	// has not looked the account up yet still gets the whole record.
	Read(ctx context.Context, a Attempt, since time.Time) (Record, error)
	// Begin records a as being judged, begun at now, when decide, given
	// the tallies of a's ledgers (attempts begun after since) at that
	// moment, returns zero or less; otherwise it records nothing and
	// returns decide's wait. Deciding and recording are one step: of
	// attempts begun at the same moment, each is decided on a record that
	// holds those recorded before it.
	Begin(ctx context.Context, a Attempt, now, since time.Time, decide func(Record) time.Duration) (Ticket, time.Duration, error)
	// Settle records how t's attempt ended. An attempt the store has
	// already forgotten (expired or evicted) is settled without error.
	Settle(ctx context.Context, t Ticket, o Outcome) error
}

// Glancer is a Store that can also tell, looking nothing up, what its
// ledgers held when it last saw them: a store shared by several processes
// through a database, whose every look-up costs. What it tells may be out
// of date either way; the limiter lets an attempt on by it, for Begin to
// decide, and confirms a wait by Read.
type Glancer interface {
	Store
	// Glance is Read as last seen, with nothing looked up.
	Glance(ctx context.Context, a Attempt, since time.Time) (Record, error)
}
