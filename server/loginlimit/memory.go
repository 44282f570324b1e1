package loginlimit

import (
	"container/list"
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// LedgerEntries bounds every ledger, in any store: it keeps its newest
// entries. Far fewer reach the longest wait (see MaxFree), and the waits
// keep an address's ledger well below it.
const LedgerEntries = 128

const ledgerEntries = LedgerEntries

// DefaultAddresses is how many addresses a Memory store remembers when
// not told.
const DefaultAddresses = 100_000

// sweepEvery is how often Begin drops the ledgers that have nothing left
// in the window.
const sweepEvery = time.Minute

// Memory is a Store in one process's memory.
//
// It keeps one ledger per address, which holds its pairs' ledgers too
// (each attempt names its email by a keyed hash); so a flood from one
// address, whatever emails it makes up, grows one ledger, of at most
// ledgerEntries attempts. It remembers at most a fixed number of
// addresses: when a new one comes and the table is full, it forgets the
// address whose newest attempt is the oldest. Forgetting only ever lets an
// address off, never makes anyone wait, so filling the table — which
// takes that many addresses — locks nobody out. Account ledgers exist
// only for accounts that exist, and are bounded by them.
//
// Every attempt kept is one that passed the limiter on its way to the
// password check, so, however many requests arrive, the attempts kept
// from a window are at most what the server could hash in it.
type Memory struct {
	mu        sync.Mutex
	seed      maphash.Seed
	capacity  int
	addresses map[string]*addressLedger
	order     list.List // of *addressLedger, the most recently written first
	accounts  map[string]*accountLedger
	lastID    uint64
	swept     time.Time
}

type addressLedger struct {
	key     string
	elem    *list.Element
	entries []entry // oldest first
}

type accountLedger struct {
	entries []entry // oldest first
}

type entry struct {
	id       uint64
	began    time.Time
	email    uint64 // the email's keyed hash, in address ledgers
	account  string // the account the email named, in address ledgers
	judged   bool   // settled as failed; false while being judged
	forgiven bool   // a right password came from the same address and email since
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store remembering at most addresses
// addresses (DefaultAddresses when 0 or less).
func NewMemory(addresses int) *Memory {
	if addresses <= 0 {
		addresses = DefaultAddresses
	}
	return &Memory{
		seed:      maphash.MakeSeed(),
		capacity:  addresses,
		addresses: make(map[string]*addressLedger),
		accounts:  make(map[string]*accountLedger),
	}
}

// Read returns the tallies of a's ledgers. It never fails.
func (m *Memory) Read(_ context.Context, a Attempt, since time.Time) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.read(a, since), nil
}

// Begin records a unless decide says it must wait. It never fails.
func (m *Memory) Begin(_ context.Context, a Attempt, now, since time.Time, decide func(Record) time.Duration) (Ticket, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now, since)
	if wait := decide(m.read(a, since)); wait > 0 {
		return Ticket{}, wait, nil
	}
	m.lastID++
	e := entry{id: m.lastID, began: now, email: m.emailHash(a.Email), account: a.Account}
	al := m.addresses[a.Address]
	if al == nil {
		if len(m.addresses) >= m.capacity {
			m.forget(m.order.Back().Value.(*addressLedger))
		}
		al = &addressLedger{key: a.Address}
		al.elem = m.order.PushFront(al)
		m.addresses[a.Address] = al
	} else {
		m.order.MoveToFront(al.elem)
	}
	al.entries = appendEntry(al.entries, e, since)
	if a.Account != "" {
		acc := m.accounts[a.Account]
		if acc == nil {
			acc = &accountLedger{}
			m.accounts[a.Account] = acc
		}
		acc.entries = appendEntry(acc.entries, entry{id: e.id, began: now}, since)
	}
	return Ticket{Attempt: a, ID: e.id, Began: now}, 0, nil
}

// Settle records how t's attempt ended. It never fails.
func (m *Memory) Settle(_ context.Context, t Ticket, o Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if al := m.addresses[t.Attempt.Address]; al != nil {
		al.entries = settle(al.entries, t.ID, o)
		if o == Passed {
			email := m.emailHash(t.Attempt.Email)
			for i := range al.entries {
				if e := &al.entries[i]; e.email == email && e.judged && !e.began.After(t.Began) {
					e.forgiven = true
				}
			}
		}
		if len(al.entries) == 0 {
			m.forget(al)
		}
	}
	if acc := m.accounts[t.Attempt.Account]; acc != nil {
		acc.entries = settle(acc.entries, t.ID, o)
		if len(acc.entries) == 0 {
			delete(m.accounts, t.Attempt.Account)
		}
	}
	return nil
}

// read tallies a's ledgers; m.mu is held. Without a.Account, the account
// is the one the pair's attempts named, if any.
func (m *Memory) read(a Attempt, since time.Time) Record {
	var r Record
	account := a.Account
	if al := m.addresses[a.Address]; al != nil {
		email := m.emailHash(a.Email)
		for _, e := range al.entries {
			if !e.began.After(since) {
				continue
			}
			r.Address.add(e.began)
			if e.email == email && !e.forgiven {
				r.Pair.add(e.began)
				if a.Account == "" && e.account != "" {
					account = e.account
				}
			}
		}
	}
	if acc := m.accounts[account]; acc != nil {
		for _, e := range acc.entries {
			if e.began.After(since) {
				r.Account.add(e.began)
			}
		}
	}
	return r
}

func (t *Tally) add(began time.Time) {
	t.Count++
	if began.After(t.Last) {
		t.Last = began
	}
}

// sweep drops, now and then, the ledgers with nothing in the window, so
// the tables hold only what still counts; m.mu is held.
func (m *Memory) sweep(now, since time.Time) {
	if now.Sub(m.swept) < sweepEvery && !now.Before(m.swept) {
		return
	}
	m.swept = now
	for back := m.order.Back(); back != nil; back = m.order.Back() {
		al := back.Value.(*addressLedger)
		if len(al.entries) > 0 && al.entries[len(al.entries)-1].began.After(since) {
			break // and the ledgers before it were written to later
		}
		m.forget(al)
	}
	for id, acc := range m.accounts {
		if len(acc.entries) == 0 || !acc.entries[len(acc.entries)-1].began.After(since) {
			delete(m.accounts, id)
		}
	}
}

// forget drops an address's ledger; m.mu is held.
func (m *Memory) forget(al *addressLedger) {
	m.order.Remove(al.elem)
	delete(m.addresses, al.key)
}

func (m *Memory) emailHash(email string) uint64 {
	return maphash.String(m.seed, email)
}

// appendEntry adds e to a ledger, dropping the entries that left the
// window and, when it is full, the oldest. The array is reallocated as
// append grows it, so dropped entries do not hold memory for long.
func appendEntry(entries []entry, e entry, since time.Time) []entry {
	expired := 0
	for expired < len(entries) && !entries[expired].began.After(since) {
		expired++
	}
	entries = entries[expired:]
	if len(entries) >= ledgerEntries {
		entries = entries[len(entries)-ledgerEntries+1:]
	}
	return append(entries, e)
}

// settle marks the entry id failed, or removes it.
func settle(entries []entry, id uint64, o Outcome) []entry {
	i := slices.IndexFunc(entries, func(e entry) bool { return e.id == id })
	if i < 0 {
		return entries
	}
	if o == Failed {
		entries[i].judged = true
		return entries
	}
	return slices.Delete(entries, i, i+1)
}
