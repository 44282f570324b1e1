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
// package, keeps them in one process.
//
// # Sharing them through the database
//
// The interface is small so that a store in the database, shared by every
// server process, can implement it with operations that are exact on the
// embedded database — inserts racing on a unique _id, reads by _id
// equality, deletes by _id — with no $inc, no TTL index and no update of
// a document two processes may write:
//
//   - A ledger is, for each period of one window, a chain of immutable
//     versions: version v of ledger L in period p is {_id: "L|p|v",
//     entries: [{id, began, account, state}]}, the ledger's whole bounded
//     list as of that version, with L "addr:<address>",
//     "pair:<address>:<email>" or "acct:<account id>". Version 0 of a
//     period starts from the previous period's newest, less what left the
//     window.
//   - Read reads the newest version of each ledger by _id: versions are
//     contiguous from 0, so a process that remembers the newest it saw
//     reads the next one or two, and one that knows nothing searches
//     (exponentially, then by halves); with none in this period, the
//     previous period's newest.
//   - Begin reads, calls decide, and inserts the next version of each
//     ledger with the attempt added. A duplicate key means another process
//     wrote that version first: Begin inserts the next versions of the
//     ledgers it did write without the attempt, reads again and decides
//     again. Racing attempts are each decided on a record that holds the
//     others, as under the memory store's mutex here.
//   - Settle inserts the next version with the entry failed, withdrawn, or
//     (Passed) the pair's settled failures forgiven, and reads again and
//     retries on a duplicate.
//   - A background sweep, never a request, deletes the chains of periods
//     before the previous one, which no request writes any more. A live
//     chain never loses a version, so a missing version always means the
//     end of its chain, never a gap another insert could fill.
//
// The documents are then about two per attempt per ledger over two
// windows, which the hashing bound on sign-in caps whatever a flood sends.
// On MongoDB each read is an index look-up. On the embedded database,
// which filters a whole collection for every query, the address and pair
// ledgers should stay in each process's memory, as here, with only the
// account ledgers shared: they are written only by attempts at accounts
// that exist, an address then has its allowance once per process, and an
// account's failures count once whichever process saw them.
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
