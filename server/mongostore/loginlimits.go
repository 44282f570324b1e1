package mongostore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/loginlimit"
	"standin/server/standin"
)

// colSignInLimits holds the sign-in ledgers of package loginlimit.
const colSignInLimits = "signin_limits"

const (
	// limitTries bounds how often one write retries after losing races
	// for a ledger's next version; each lost race is another attempt
	// written, so only a burst far beyond what hashing admits reaches it.
	limitTries = 256
	// limitPeriodsAhead bounds how many sealed periods a write steps over
	// (a server whose clock runs ahead moved the ledger on).
	limitPeriodsAhead = 4
	// limitHeads bounds the newest versions a store remembers; past it,
	// it forgets them all and reads them again as needed.
	limitHeads = 10_000
)

// SignInLimits is a loginlimit.Store in the database, shared by every
// server process on it, so that the limits hold across all of them.
//
// A ledger is, for each period (as long as the window), a chain of
// immutable versions {_id: "<period start>|<ledger>|<version>", entries},
// each the ledger's whole bounded list. Only inserts racing on _id decide
// (exact on the embedded database and on MongoDB): whoever inserts
// version v+1 built it from version v, the newest; a duplicate key means
// another process got there first, and the write reads again and decides
// again. A store remembers the newest version it saw of each ledger, so
// a write usually costs its insert alone, and a read one look-up by _id.
//
// There are two ledgers, not three: the address's holds its pairs' too
// (each entry names its email by a hash and its account), as in the
// memory store, so an attempt writes at most two documents and reads two.
// The period comes first in _id so that the sweep deletes old periods by
// one range on _id.
//
// The first version of a period starts from the previous period's
// newest, less what left the window; before writing it, a write seals the
// previous period's chain by inserting its next version marked sealed
// (even an empty one). A write that finds its period sealed moves on to
// the next, so nothing written late to a period (a server's clock behind,
// or an attempt settled after the period ended) is lost to the carry.
type SignInLimits struct {
	// Recheck is how long a version this store looked up or wrote still
	// counts as the newest when Read confirms a wait (SignInLimits sets a
	// second; zero looks up every time). Within it, a flood refused by
	// its wait costs no look-up; a wait another process lifted in it may
	// be served once more. Set it before the store is used.
	Recheck time.Duration

	db     *DB
	window time.Duration
	mu     sync.Mutex
	heads  map[string]ledgerHead // by _id less its version
}

var _ loginlimit.Glancer = (*SignInLimits)(nil)

// SignInLimits returns the store of sign-in ledgers for a limiter whose
// window is window (loginlimit.Policy.Window): its periods are as long,
// and its reads take since as now less it. Every server sharing the
// database must use the same window.
func (db *DB) SignInLimits(window time.Duration) *SignInLimits {
	if window <= 0 {
		window = loginlimit.Default.Window
	}
	return &SignInLimits{Recheck: time.Second, db: db, window: window, heads: make(map[string]ledgerHead)}
}

// SweepSignInLimits deletes the ledger versions of the periods that began
// before before, and returns how many it deleted. Given now less two
// windows, that is every period before the previous one, which no
// request reads or writes any more. Errors are EUnavailable when the
// database is down.
func (db *DB) SweepSignInLimits(ctx context.Context, before time.Time) (int64, error) {
	if before.UnixNano() <= 0 {
		return 0, nil
	}
	res, err := db.db.Collection(colSignInLimits).DeleteMany(ctx,
		bson.M{"_id": bson.M{"$lt": fmt.Sprintf("%019d|", before.UnixNano())}})
	if err != nil {
		return 0, translate(err, "sweep sign-in limits")
	}
	return res.DeletedCount, nil
}

type ledgerDoc struct {
	ID      string       `bson:"_id"`
	Sealed  bool         `bson:"s,omitempty"`
	Entries []limitEntry `bson:"e"`
}

// limitEntry is one attempt in a ledger. Field names are short: every
// version holds the whole list, and the embedded database reads every
// version for every look-up.
type limitEntry struct {
	ID int64 `bson:"i"`
	// Began is in Unix nanoseconds: exact, where a BSON date keeps
	// milliseconds.
	Began int64 `bson:"b"`
	// Email is a hash of the email typed, in address ledgers: what was
	// typed (sometimes a password) is not kept.
	Email int64 `bson:"m,omitempty"`
	// Account is the account the email named, in address ledgers.
	Account  string `bson:"a,omitempty"`
	Judged   bool   `bson:"j,omitempty"`
	Forgiven bool   `bson:"f,omitempty"`
}

// ledgerHead is the newest version of a ledger in a period that a store
// saw; version -1 when it had none.
type ledgerHead struct {
	version int
	sealed  bool
	entries []limitEntry
	// checked is when it was looked up or written, by this process's
	// monotonic clock.
	checked time.Time
}

// spot is where a ledger's next version goes.
type spot struct {
	prefix string
	start  int64
	// head is the newest version in the period; with none (version -1),
	// its entries are those carried from the previous period.
	head ledgerHead
	// seal, when set, is to be inserted first: it closes the previous
	// period's chain.
	seal *sealing
}

// sealing is the version that closes a period's chain.
type sealing struct {
	prefix  string
	version int
	entries []limitEntry
}

// Read returns the tallies of a's ledgers. Errors are EUnavailable when
// the database is down.
func (s *SignInLimits) Read(ctx context.Context, a loginlimit.Attempt, since time.Time) (loginlimit.Record, error) {
	return s.record(ctx, a, since, recent)
}

// Glance returns the tallies of a's ledgers as this store last saw them,
// with none for those it never saw: it looks nothing up, and so cannot
// fail. The limiter's Check glances, and reads only to confirm a wait.
func (s *SignInLimits) Glance(ctx context.Context, a loginlimit.Attempt, since time.Time) (loginlimit.Record, error) {
	return s.record(ctx, a, since, guess)
}

// record tallies a's ledgers, found as how says.
func (s *SignInLimits) record(ctx context.Context, a loginlimit.Attempt, since time.Time, how lookup) (loginlimit.Record, error) {
	start := s.periodStart(since.Add(s.window))
	addr, err := s.locate(ctx, addressLedger(a.Address), start, how)
	if err != nil {
		return loginlimit.Record{}, err
	}
	email, cut := emailHash(a.Email), since.UnixNano()
	var acct []limitEntry
	if account := accountOf(a, addr.head.entries, email, cut); account != "" {
		sp, err := s.locate(ctx, accountLedger(account), start, how)
		if err != nil {
			return loginlimit.Record{}, err
		}
		acct = sp.head.entries
	}
	return tally(addr.head.entries, acct, email, cut), nil
}

// Begin records a unless decide says it must wait. The address's ledger
// is written first and decides; the account's then, deciding again if
// another attempt got there first, and withdrawing from the address's
// when that says wait. Errors are EUnavailable when the database is down
// or the ledgers are written too busily to get in.
func (s *SignInLimits) Begin(ctx context.Context, a loginlimit.Attempt, now, since time.Time, decide func(loginlimit.Record) time.Duration) (loginlimit.Ticket, time.Duration, error) {
	start, email, cut := s.periodStart(now), emailHash(a.Email), since.UnixNano()
	addrKey := addressLedger(a.Address)
	addr, err := s.locate(ctx, addrKey, start, guess)
	if err != nil {
		return loginlimit.Ticket{}, 0, err
	}
	var acct []limitEntry
	if account := accountOf(a, addr.head.entries, email, cut); account != "" {
		sp, err := s.locate(ctx, accountLedger(account), start, guess)
		if err != nil {
			return loginlimit.Ticket{}, 0, err
		}
		acct = sp.head.entries
	}
	e := limitEntry{ID: newEntryID(), Began: now.UnixNano(), Email: email, Account: a.Account}
	var wait time.Duration
	var decidedOn []limitEntry
	err = s.apply(ctx, addrKey, start, func(entries []limitEntry) ([]limitEntry, bool) {
		if wait = decide(tally(entries, acct, email, cut)); wait > 0 {
			return nil, false
		}
		decidedOn = entries
		return appendEntry(entries, e, cut), true
	})
	if err != nil || wait > 0 {
		return loginlimit.Ticket{}, wait, err
	}
	if a.Account != "" {
		err = s.apply(ctx, accountLedger(a.Account), start, func(entries []limitEntry) ([]limitEntry, bool) {
			if wait = decide(tally(decidedOn, entries, email, cut)); wait > 0 {
				return nil, false
			}
			return appendEntry(entries, limitEntry{ID: e.ID, Began: e.Began}, cut), true
		})
		if err != nil || wait > 0 {
			if werr := s.apply(context.WithoutCancel(ctx), addrKey, start, settled(e.ID, loginlimit.Void, 0, 0)); werr != nil && err == nil {
				err = werr
			}
			return loginlimit.Ticket{}, wait, err
		}
	}
	return loginlimit.Ticket{Attempt: a, ID: uint64(e.ID), Began: now}, 0, nil
}

// Settle records how t's attempt ended, in the period it began in or,
// when that has been sealed, the next. Errors are EUnavailable when the
// database is down or the ledgers are written too busily to get in.
func (s *SignInLimits) Settle(ctx context.Context, t loginlimit.Ticket, o loginlimit.Outcome) error {
	start, id := s.periodStart(t.Began), int64(t.ID)
	err := s.apply(ctx, addressLedger(t.Attempt.Address), start, settled(id, o, emailHash(t.Attempt.Email), t.Began.UnixNano()))
	if err != nil || t.Attempt.Account == "" {
		return err
	}
	if o == loginlimit.Failed {
		// An account's ledger counts its entries, judged or not.
		return nil
	}
	return s.apply(ctx, accountLedger(t.Attempt.Account), start, settled(id, o, 0, 0))
}

// apply writes the next version of ledger key, live at or after the
// period starting at start, as change makes it from the newest; change
// returns false to write nothing, and is called again, on the newer
// entries, after each race lost.
func (s *SignInLimits) apply(ctx context.Context, key string, start int64, change func([]limitEntry) ([]limitEntry, bool)) error {
	how := guess // the first try trusts what this store saw last
	for try := range limitTries {
		sp, err := s.locate(ctx, key, start, how)
		if err != nil {
			return err
		}
		next, ok := change(sp.head.entries)
		if !ok {
			return nil
		}
		won, seen := true, false
		if sp.seal != nil {
			if won, seen, err = s.put(ctx, sp.seal.prefix, sp.seal.version, ledgerHead{sealed: true, entries: nonNil(sp.seal.entries)}); err != nil {
				return err
			}
		}
		if won {
			if won, seen, err = s.put(ctx, sp.prefix, sp.head.version+1, ledgerHead{entries: next}); err != nil || won {
				return err
			}
		}
		// Lost: the version that won is now the newest this store saw,
		// and the next try goes after it; after that, a store far behind
		// searches rather than walk the chain a version at a time.
		how = guess
		if !seen || try > 0 {
			how = search
		}
	}
	return standin.Errorf(standin.EUnavailable, "Sign-in is too busy right now. Try again shortly.")
}

// put inserts version of the ledger with prefix and reports whether it
// was the first; if not, whether it read the one that was, which it then
// remembers as the newest.
func (s *SignInLimits) put(ctx context.Context, prefix string, version int, h ledgerHead) (won, seen bool, err error) {
	id := prefix + strconv.Itoa(version)
	_, err = s.db.db.Collection(colSignInLimits).InsertOne(ctx, &ledgerDoc{ID: id, Sealed: h.sealed, Entries: h.entries})
	switch {
	case err == nil:
		h.version, h.checked = version, time.Now()
		s.remember(prefix, h)
		return true, true, nil
	case !mongo.IsDuplicateKeyError(err):
		return false, false, translate(err, "write sign-in ledger")
	}
	d, err := s.find(ctx, id)
	if err != nil || d == nil {
		return false, false, err
	}
	s.remember(prefix, ledgerHead{version: version, sealed: d.Sealed, entries: d.Entries, checked: time.Now()})
	return false, true, nil
}

// locate finds where ledger key's next version goes, from the period
// starting at start on, found as how says; after a guess, an insert there
// is what checks it.
func (s *SignInLimits) locate(ctx context.Context, key string, start int64, how lookup) (spot, error) {
	period := s.window.Nanoseconds()
	for range limitPeriodsAhead {
		prefix := ledgerPrefix(start, key)
		h, err := s.newest(ctx, prefix, how)
		if err != nil {
			return spot{}, err
		}
		if h.sealed {
			start += period
			continue
		}
		sp := spot{prefix: prefix, start: start, head: h}
		if h.version >= 0 {
			return sp, nil
		}
		prevPrefix := ledgerPrefix(start-period, key)
		prev, err := s.newest(ctx, prevPrefix, how)
		if err != nil {
			return spot{}, err
		}
		sp.head.entries = carry(prev.entries, start-period)
		if !prev.sealed {
			sp.seal = &sealing{prefix: prevPrefix, version: prev.version + 1, entries: prev.entries}
		}
		return sp, nil
	}
	return spot{}, fmt.Errorf("sign-in ledger %s: sealed for %d periods ahead", key, limitPeriodsAhead)
}

// lookup says how a ledger's newest version is found.
type lookup int

const (
	// guess takes the newest this store saw, or none when it saw none:
	// it costs no look-up, and a write's insert checks it.
	guess lookup = iota
	// recent takes the newest this store looked up or wrote within
	// Recheck, and otherwise searches.
	recent
	// search looks the newest up.
	search
)

// newest returns the newest version with the given prefix, found as how
// says. A search goes on from the newest this store saw (or from the
// start), doubling its steps and then halving: versions are contiguous
// from 0, so a missing one is past the end.
func (s *SignInLimits) newest(ctx context.Context, prefix string, how lookup) (ledgerHead, error) {
	s.mu.Lock()
	known, ok := s.heads[prefix]
	s.mu.Unlock()
	switch {
	case how == guess && !ok:
		return ledgerHead{version: -1}, nil
	case how == guess, how == recent && ok && time.Since(known.checked) < s.Recheck:
		return known, nil
	}
	found := ledgerHead{version: -1}
	if ok && known.version >= 0 {
		found = known
	}
	lo, hi, step := found.version, -1, 1
	for hi < 0 || hi-lo > 1 {
		probe := lo + step
		if hi >= 0 {
			probe = lo + (hi-lo)/2
		}
		d, err := s.find(ctx, prefix+strconv.Itoa(probe))
		if err != nil {
			return ledgerHead{}, err
		}
		if d == nil {
			hi = probe
			continue
		}
		lo, found = probe, ledgerHead{version: probe, sealed: d.Sealed, entries: d.Entries}
		if hi < 0 {
			step *= 2
		}
	}
	found.checked = time.Now()
	s.remember(prefix, found)
	return found, nil
}

// remember notes h as the newest version with prefix, unless a newer one
// is known.
func (s *SignInLimits) remember(prefix string, h ledgerHead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if known, ok := s.heads[prefix]; ok && (known.version > h.version || known.version == h.version && known.sealed) {
		return
	}
	if len(s.heads) >= limitHeads {
		clear(s.heads)
	}
	s.heads[prefix] = h
}

// find returns the version with id, or nil when there is none.
func (s *SignInLimits) find(ctx context.Context, id string) (*ledgerDoc, error) {
	var d ledgerDoc
	err := s.db.db.Collection(colSignInLimits).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "read sign-in ledger")
	}
	return &d, nil
}

// periodStart is when the period t falls in began, in Unix nanoseconds.
func (s *SignInLimits) periodStart(t time.Time) int64 {
	n, p := t.UnixNano(), s.window.Nanoseconds()
	return n - n%p
}

func ledgerPrefix(start int64, key string) string {
	return fmt.Sprintf("%019d|%s|", start, key)
}

func addressLedger(address string) string { return "a:" + address }

func accountLedger(account string) string { return "u:" + account }

// emailHash names an email in address ledgers.
func emailHash(email string) int64 {
	sum := sha256.Sum256([]byte("standin sign-in email\x00" + email))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

func newEntryID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	return int64(binary.BigEndian.Uint64(b[:]))
}

// accountOf is the account whose ledger counts for a: its own, or else
// the one its pair's attempts in the window named.
func accountOf(a loginlimit.Attempt, addr []limitEntry, email, since int64) string {
	account := a.Account
	if account != "" {
		return account
	}
	for _, e := range addr {
		if e.Began > since && e.Email == email && !e.Forgiven && e.Account != "" {
			account = e.Account
		}
	}
	return account
}

// tally counts the entries begun after since.
func tally(addr, acct []limitEntry, email, since int64) loginlimit.Record {
	var r loginlimit.Record
	for _, e := range addr {
		if e.Began <= since {
			continue
		}
		add(&r.Address, e.Began)
		if e.Email == email && !e.Forgiven {
			add(&r.Pair, e.Began)
		}
	}
	for _, e := range acct {
		if e.Began > since {
			add(&r.Account, e.Began)
		}
	}
	return r
}

func add(t *loginlimit.Tally, began int64) {
	t.Count++
	if at := time.Unix(0, began); at.After(t.Last) {
		t.Last = at
	}
}

// appendEntry returns a new list of entries with e added, less those
// begun at or before since and, when full, the oldest.
func appendEntry(entries []limitEntry, e limitEntry, since int64) []limitEntry {
	out := make([]limitEntry, 0, len(entries)+1)
	for _, old := range entries {
		if old.Began > since {
			out = append(out, old)
		}
	}
	if len(out) >= loginlimit.LedgerEntries {
		out = out[len(out)-loginlimit.LedgerEntries+1:]
	}
	return append(out, e)
}

// carry is what a period starting at start takes over from the previous
// one: what can still be in the window of a moment in it.
func carry(entries []limitEntry, previousStart int64) []limitEntry {
	var out []limitEntry
	for _, e := range entries {
		if e.Began > previousStart {
			out = append(out, e)
		}
	}
	return out
}

// settled changes a ledger as entry id's attempt ended with o; in an
// address's ledger (email set), a right password also forgives the
// pair's failures judged before began.
func settled(id int64, o loginlimit.Outcome, email, began int64) func([]limitEntry) ([]limitEntry, bool) {
	return func(entries []limitEntry) ([]limitEntry, bool) {
		out, changed := slices.Clone(entries), false
		if i := slices.IndexFunc(out, func(e limitEntry) bool { return e.ID == id }); i >= 0 {
			if o == loginlimit.Failed {
				out[i].Judged = true
			} else {
				out = slices.Delete(out, i, i+1)
			}
			changed = true
		}
		if o == loginlimit.Passed && email != 0 {
			for i := range out {
				if e := &out[i]; e.Email == email && e.Judged && !e.Forgiven && e.Began <= began {
					e.Forgiven = true
					changed = true
				}
			}
		}
		return out, changed
	}
}

func nonNil(entries []limitEntry) []limitEntry {
	if entries == nil {
		return []limitEntry{}
	}
	return entries
}
