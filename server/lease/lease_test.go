package lease_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/dbtest"
	"standin/server/lease"
	"standin/server/mongostore"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

const term = time.Minute

func TestTermOf(t *testing.T) {
	t.Parallel()
	base := time.Unix(0, 0)
	cases := []struct {
		name string
		at   time.Time
		want int64
	}{
		{"Epoch", base, 0},
		{"InFirst", base.Add(term - 1), 0},
		{"Boundary", base.Add(term), 1},
		{"Later", base.Add(10*term + time.Second), 10},
		{"BeforeEpoch", base.Add(-time.Nanosecond), -1},
		{"BeforeEpochBoundary", base.Add(-term), -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := lease.TermOf(c.at, term); got != c.want {
				t.Errorf("TermOf(%v) = %d, want %d", c.at, got, c.want)
			}
			if end := lease.TermEnd(c.want, term); !c.at.Before(end) || c.at.Before(end.Add(-term)) {
				t.Errorf("%v is not in term %d, which ends at %v", c.at, c.want, end)
			}
		})
	}
}

// mustTwoStores opens two connections to one fresh database, as two nodes
// sharing it would, and returns their lease stores.
func mustTwoStores(t *testing.T) (*mongostore.Leases, *mongostore.Leases) {
	t.Helper()
	db := dbtest.MustOpen(t)
	other := dbtest.MustConnect(t, db, mongostore.Options{})
	return db.Leases(), other.Leases()
}

func TestClaimOneWinnerPerTerm(t *testing.T) {
	t.Parallel()
	a, b := mustTwoStores(t)
	ctx := context.Background()
	until := time.Now().Add(term)
	for k := int64(100); k < 120; k++ {
		var wonA, wonB bool
		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() { wonA, errA = a.Claim(ctx, "job", k, "a", until) })
		wg.Go(func() { wonB, errB = b.Claim(ctx, "job", k, "b", until) })
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("term %d: claims failed: %v, %v", k, errA, errB)
		}
		if wonA == wonB {
			t.Fatalf("term %d: a won %v and b won %v, want exactly one winner", k, wonA, wonB)
		}
		// A claim retried (its first answer lost) keeps its answer.
		againA, err := a.Claim(ctx, "job", k, "a", until)
		if err != nil || againA != wonA {
			t.Fatalf("term %d: a's retried claim = %v, %v; want %v", k, againA, err, wonA)
		}
	}
	// Another job's lease for the same term is its own.
	won, err := b.Claim(ctx, "other", 100, "b", until)
	if err != nil || !won {
		t.Fatalf("another job's term: won %v, %v; want won", won, err)
	}
}

func TestPruneKeepsRecentTerms(t *testing.T) {
	t.Parallel()
	a, _ := mustTwoStores(t)
	ctx := context.Background()
	for k := int64(1); k <= 5; k++ {
		for _, job := range []string{"job", "other"} {
			if _, err := a.Claim(ctx, job, k, "a", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := a.Prune(ctx, "job", 4)
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3 records deleted", n, err)
	}
	recs, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string][]int64{}
	for _, r := range recs {
		left[r.Job] = append(left[r.Job], r.Term)
	}
	if len(left["job"]) != 2 || len(left["other"]) != 5 {
		t.Fatalf("records left: %v; want job's terms 4 and 5 and all of other's", left)
	}
	// A pruned term is gone: nobody holds it, and it is not claimed
	// again by the one that held it.
	if won, err := a.Claim(ctx, "job", 4, "b", time.Now()); err != nil || won {
		t.Fatalf("claim of a kept term by another holder: %v, %v; want lost", won, err)
	}
}

// answers notes which holders have had an answer to their claim of a
// term.
type answers struct {
	mu sync.Mutex
	m  map[string]map[int64]bool
}

func (a *answers) note(holder string, k int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[holder] == nil {
		a.m[holder] = map[int64]bool{}
	}
	a.m[holder][k] = true
}

func (a *answers) has(holder string, k int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[holder][k]
}

// recorder is a real lease store that notes its answered claims.
type recorder struct {
	lease.Store
	answers *answers
}

func (r recorder) Claim(ctx context.Context, job string, k int64, holder string, until time.Time) (bool, error) {
	won, err := r.Store.Claim(ctx, job, k, holder, until)
	if err == nil {
		r.answers.note(holder, k)
	}
	return won, err
}

// runs counts, per term and holder, the calls of a job's function.
type runs struct {
	mu sync.Mutex
	n  map[int64]map[string]int
}

func (r *runs) add(k int64, holder string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n[k] == nil {
		r.n[k] = map[string]int{}
	}
	r.n[k][holder]++
}

func (r *runs) of(k int64) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for h, c := range r.n[k] {
		out[h] = c
	}
	return out
}

// node is one process's leases, running a job with Every on a clock the
// test sets. It remembers the term its loop last read, so the job's
// function knows the term the loop decided on.
type node struct {
	name   string
	leases *lease.Leases
	read   atomic.Int64 // the term of the loop's last clock reading
	stop   context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, name string, store lease.Store, now *atomic.Int64, r *runs) *node {
	t.Helper()
	n := &node{name: name, done: make(chan struct{})}
	n.leases = lease.New(store, lease.Config{Holder: name, Now: func() time.Time {
		at := time.Unix(0, now.Load())
		n.read.Store(lease.TermOf(at, term))
		return at
	}})
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() {
		defer close(n.done)
		n.leases.Every(ctx, "job", 5*time.Millisecond, term, func(context.Context) { r.add(n.read.Load(), name) })
	}()
	t.Cleanup(n.halt)
	return n
}

// halt stops the node's loop and waits until it has returned.
func (n *node) halt() {
	n.stop()
	<-n.done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEveryRunsOnOneNodePerTerm runs one job on two nodes, each with its
// own connection to one database, on a clock the test moves a term at a
// time: in every term exactly one node runs it, and when that node stops
// the other runs it from the next term on.
func TestEveryRunsOnOneNodePerTerm(t *testing.T) {
	t.Parallel()
	storeA, storeB := mustTwoStores(t)
	seen := &answers{m: map[string]map[int64]bool{}}
	var now atomic.Int64
	first := int64(1_000)
	now.Store(first * int64(term))
	r := &runs{n: map[int64]map[string]int{}}
	nodes := map[string]*node{
		"a": startNode(t, "a", recorder{storeA, seen}, &now, r),
		"b": startNode(t, "b", recorder{storeB, seen}, &now, r),
	}
	last := first + 5
	for k := first; k <= last; k++ {
		now.Store(k*int64(term) + int64(k-first)*int64(time.Second))
		waitFor(t, fmt.Sprintf("both nodes to claim term %d", k), func() bool {
			return seen.has("a", k) && seen.has("b", k)
		})
		waitFor(t, fmt.Sprintf("the job to run 3 times in term %d", k), func() bool {
			total := 0
			for _, c := range r.of(k) {
				total += c
			}
			return total >= 3
		})
		if got := r.of(k); len(got) != 1 {
			t.Fatalf("term %d: the job ran on %v, want one node", k, got)
		}
	}
	holder := mustHolder(t, storeA, last)
	if _, ran := r.of(last)[holder]; !ran {
		t.Fatalf("term %d is held by %s, which did not run it: %v", last, holder, r.of(last))
	}
	mustKeepFewRecords(t, storeA, last)

	// The holder of the current term stops and gives the term back: the
	// other, which lost it, waits for the next term, but a node started
	// now (a process replacing the one that stopped) runs the job at once.
	other := map[string]string{"a": "b", "b": "a"}[holder]
	nodes[holder].halt()
	mustHaveNoRecord(t, storeA, last)
	c := startNode(t, "c", recorder{storeA, seen}, &now, r)
	waitFor(t, "a node started in the term to run the job", func() bool { return r.of(last)["c"] >= 2 })
	c.halt()
	if got := r.of(last)[other]; got != 0 {
		t.Fatalf("%s ran the job %d times in term %d, which it had lost", other, got, last)
	}

	// With the others gone, the one left runs the job from the next term.
	now.Store((last+1)*int64(term) + int64(time.Millisecond))
	waitFor(t, "the other node to run the job in the next term", func() bool { return r.of(last + 1)[other] >= 3 })
	if got := r.of(last + 1); len(got) != 1 {
		t.Fatalf("term %d: the job ran on %v, want %s alone", last+1, got, other)
	}
	if h := mustHolder(t, storeA, last+1); h != other {
		t.Fatalf("term %d is held by %s, want %s", last+1, h, other)
	}
}

// TestDeadHolderKeepsItsTerm: a node that dies holding a term (it never
// gives it back) keeps the others from the job until the term ends.
func TestDeadHolderKeepsItsTerm(t *testing.T) {
	t.Parallel()
	storeA, storeB := mustTwoStores(t)
	var now atomic.Int64
	k := int64(2_000)
	now.Store(k * int64(term))
	dead := lease.New(storeA, lease.Config{Holder: "dead", Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if held, got, err := dead.Acquire(context.Background(), "job", term); err != nil || !held || got != k {
		t.Fatalf("Acquire = %v, %d, %v; want term %d held", held, got, err, k)
	}
	seen := &answers{m: map[string]map[int64]bool{}}
	r := &runs{n: map[int64]map[string]int{}}
	startNode(t, "b", recorder{storeB, seen}, &now, r)
	waitFor(t, "the live node to claim the dead one's term", func() bool { return seen.has("b", k) })
	now.Store((k + 1) * int64(term))
	waitFor(t, "the live node to run the job in the next term", func() bool { return r.of(k + 1)["b"] >= 1 })
	if got := r.of(k)["b"]; got != 0 {
		t.Fatalf("the live node ran the job %d times in the dead node's term", got)
	}
}

func TestReleaseFreesTheTerm(t *testing.T) {
	t.Parallel()
	a, b := mustTwoStores(t)
	ctx := context.Background()
	until := time.Now().Add(term)
	if won, err := a.Claim(ctx, "job", 7, "a", until); err != nil || !won {
		t.Fatalf("claim: %v, %v", won, err)
	}
	// Only the holder gives a term back.
	if err := b.Release(ctx, "job", 7, "b"); err != nil {
		t.Fatal(err)
	}
	if won, err := b.Claim(ctx, "job", 7, "b", until); err != nil || won {
		t.Fatalf("claim of a term another holds, after a release not its own: %v, %v; want lost", won, err)
	}
	if err := a.Release(ctx, "job", 7, "a"); err != nil {
		t.Fatal(err)
	}
	if won, err := b.Claim(ctx, "job", 7, "b", until); err != nil || !won {
		t.Fatalf("claim of a released term: %v, %v; want won", won, err)
	}
}

// mustHaveNoRecord checks that job's term k has no record.
func mustHaveNoRecord(t *testing.T, s *mongostore.Leases, k int64) {
	t.Helper()
	recs, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Job == "job" && r.Term == k {
			t.Fatalf("term %d still held by %s after it stopped", k, r.Holder)
		}
	}
}

// mustHolder returns the holder of job's term k.
func mustHolder(t *testing.T, s *mongostore.Leases, k int64) string {
	t.Helper()
	recs, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Job == "job" && r.Term == k {
			return r.Holder
		}
	}
	t.Fatalf("no record of term %d in %v", k, recs)
	return ""
}

// mustKeepFewRecords checks that the winners pruned the records of terms
// long past.
func mustKeepFewRecords(t *testing.T, s *mongostore.Leases, current int64) {
	t.Helper()
	recs, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Term < current-2 {
			t.Fatalf("record of term %d kept in term %d: %v", r.Term, current, recs)
		}
	}
}
