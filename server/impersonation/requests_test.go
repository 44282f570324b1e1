package impersonation_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/impersonation"
	"standin/server/mongostore"
	"standin/server/rbac"
	"standin/server/session"
	"standin/server/standin"
)

var origin = standin.Origin{IP: "192.0.2.9", UserAgent: "requests-test"}

// facility is a database with people, an authorizer and sessions, and
// impersonation services over it as separate nodes would run them.
type facility struct {
	db       *mongostore.DB
	rbac     *rbac.Authorizer
	sessions *session.Manager
	project  string // NEURO: Ben's, Maya leads it
	admin    *standin.User
	maya     *standin.User // manager, lead of NEURO
	sam      *standin.User // support
	tess     *standin.User // support
	ben      *standin.User // user, member of NEURO
}

func mustFacility(t *testing.T) *facility {
	t.Helper()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	f := &facility{db: db}
	p := &standin.Project{Code: "NEURO", Name: "Neuro Imaging"}
	if err := db.EnsureProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	f.project = p.ID
	member := func(r standin.ProjectRole) []standin.Membership {
		return []standin.Membership{{ProjectID: p.ID, Role: r}}
	}
	f.admin = mustMember(t, db, "admin@example.org", standin.RoleAdmin, nil)
	f.maya = mustMember(t, db, "maya@example.org", standin.RoleManager, member(standin.ProjectLead))
	f.sam = mustMember(t, db, "sam@example.org", standin.RoleSupport, nil)
	f.tess = mustMember(t, db, "tess@example.org", standin.RoleSupport, nil)
	f.ben = mustMember(t, db, "ben@example.org", standin.RoleUser, member(standin.ProjectMember))
	var err error
	if f.rbac, err = rbac.New(ctx, db, db, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	f.sessions = session.NewManager(db, db, session.Config{})
	return f
}

func mustMember(t *testing.T, db *mongostore.DB, email string, role standin.Role, ms []standin.Membership) *standin.User {
	t.Helper()
	u := &standin.User{Name: "Test " + email, Email: email, PasswordHash: "x", Role: role, Status: standin.StatusActive, Memberships: ms}
	if err := db.EnsureUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// service is one node's impersonation service with its own log and clock.
func (f *facility) service(t *testing.T, clk *clock) node {
	t.Helper()
	l, err := audit.Open(context.Background(), f.db.Events(), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return node{svc: impersonation.New(f.db, f.sessions, f.rbac, l, impersonation.Config{Now: clk.Now}), log: l}
}

// signIn returns a principal of u on a session of its own.
func (f *facility) signIn(t *testing.T, u *standin.User) *standin.Principal {
	t.Helper()
	_, sess, err := f.sessions.Start(context.Background(), u, origin.IP, origin.UserAgent)
	if err != nil {
		t.Fatal(err)
	}
	return &standin.Principal{Actor: u, Subject: u, Session: sess}
}

// mustSettings sets the modes through n's service, as an admin.
func (f *facility) mustSettings(t *testing.T, n node, rules ...standin.ModeRule) {
	t.Helper()
	f.mustSettingsWaiting(t, n, 0, rules...)
}

// mustSettingsWaiting sets the modes and how long requests wait (0: as
// it is).
func (f *facility) mustSettingsWaiting(t *testing.T, n node, minutes int, rules ...standin.ModeRule) {
	t.Helper()
	ctx := context.Background()
	cur, err := n.svc.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := cur.Clone()
	next.Rules = rules
	if minutes > 0 {
		next.RequestMinutes = minutes
	}
	if _, err := n.svc.ChangeSettings(ctx, f.signIn(t, f.admin), next, []string{f.project}, origin); err != nil {
		t.Fatalf("change settings: %v", err)
	}
}

// mustRequest has actor ask to impersonate Ben and returns the request.
func (f *facility) mustRequest(t *testing.T, n node, actor *standin.User) (*standin.Principal, *standin.AccessRequest) {
	t.Helper()
	p := f.signIn(t, actor)
	started, err := n.svc.Start(context.Background(), p, impersonation.Request{UserID: f.ben.ID, Reason: "Ben cannot book", Minutes: 20}, origin)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if started.Request == nil || started.Impersonation != nil {
		t.Fatalf("a start that needs an answer started: %+v", started)
	}
	return p, started.Request
}

// requestEvents counts the log's events of each type for request id.
func requestEvents(t *testing.T, l *audit.Log, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := l.EventsMatching(context.Background(), standin.EventFilter{ImpersonationID: id}, func(e *standin.Event) error {
		out[e.Type]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if standin.ErrorCode(err) != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

// TestConsentRequest: a consent request waits for the target alone; the
// approval starts one session on the request's id, once.
func TestConsentRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	n := f.service(t, &clock{})
	f.mustSettings(t, n, standin.ModeRule{Scope: "role:user", Mode: standin.ModeConsent})
	sam, r := f.mustRequest(t, n, f.sam)
	if r.Mode != standin.ModeConsent || r.Status(time.Now()) != standin.RequestPending || r.Minutes != 20 {
		t.Fatalf("request = %+v", r)
	}

	// Nobody but Ben answers: not an admin, who does not even see it,
	// not the agent.
	_, err := n.svc.Approve(ctx, f.signIn(t, f.admin), r.ID, "", origin)
	wantCode(t, err, standin.ENotFound)
	_, err = n.svc.Approve(ctx, sam, r.ID, "", origin)
	wantCode(t, err, standin.EForbidden)
	_, err = n.svc.StartRequest(ctx, sam, r.ID, origin)
	wantCode(t, err, standin.EConflict)

	approved, err := n.svc.Approve(ctx, f.signIn(t, f.ben), r.ID, "go ahead", origin)
	if err != nil {
		t.Fatal(err)
	}
	if approved.Status(time.Now()) != standin.RequestApproved {
		t.Fatalf("status after Ben's approval: %s", approved.Status(time.Now()))
	}
	// Another agent cannot use it.
	_, err = n.svc.StartRequest(ctx, f.signIn(t, f.tess), r.ID, origin)
	wantCode(t, err, standin.ENotFound)

	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			started, err := n.svc.StartRequest(ctx, sam, r.ID, origin)
			switch {
			case err == nil && started.Impersonation.ID == r.ID:
				wins.Add(1)
			case err == nil:
				t.Errorf("started on id %s, not the request's %s", started.Impersonation.ID, r.ID)
			case standin.ErrorCode(err) != standin.EConflict:
				t.Errorf("StartRequest: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d starts from one approval, want 1", wins.Load())
	}
	got := requestEvents(t, n.log, r.ID)
	if got[standin.EventRequestCreated] != 1 || got[standin.EventRequestApproved] != 1 || got[standin.EventImpersonationStarted] != 1 {
		t.Fatalf("events of the request: %v", got)
	}
}

// TestApprovalFourEyes: approvers other than the actor and the target, of
// a higher role than the target's, with the right in its project; a
// threshold of distinct approvers; three approving at once give two
// approvals and one refusal.
func TestApprovalFourEyes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	n := f.service(t, &clock{})
	f.mustSettings(t, n, standin.ModeRule{Scope: "project:" + f.project, Mode: standin.ModeApproval, Approvals: 2})

	admin := f.signIn(t, f.admin)
	_, r := f.mustRequest(t, n, f.admin)
	_, err := n.svc.Approve(ctx, admin, r.ID, "", origin)
	wantCode(t, err, standin.EForbidden) // one's own request
	_, err = n.svc.Approve(ctx, f.signIn(t, f.ben), r.ID, "", origin)
	wantCode(t, err, standin.EForbidden) // the target
	_, err = n.svc.Approve(ctx, f.signIn(t, f.tess), r.ID, "", origin)
	wantCode(t, err, standin.ENotFound) // no right to approve: not even to see it

	// While impersonating, nobody answers.
	f.mustSettings(t, n)
	direct, err := n.svc.Start(ctx, f.signIn(t, f.maya), impersonation.Request{UserID: f.tess.ID, Reason: "x"}, origin)
	if err != nil {
		t.Fatal(err)
	}
	acting := &standin.Principal{Actor: f.maya, Subject: f.tess, Session: direct.Session, Impersonation: direct.Impersonation}
	_, err = n.svc.Approve(ctx, acting, r.ID, "", origin)
	wantCode(t, err, standin.EForbidden)
	f.mustSettings(t, n, standin.ModeRule{Scope: "project:" + f.project, Mode: standin.ModeApproval, Approvals: 2})

	// A request by Sam: Maya (lead of NEURO) and the admin approve, and a
	// second admin at once finds no place left.
	admin2 := mustMember(t, f.db, "admin2@example.org", standin.RoleAdmin, nil)
	if err := f.rbac.SyncUser(admin2); err != nil {
		t.Fatal(err)
	}
	sam, r2 := f.mustRequest(t, n, f.sam)
	if r2.Approvals != 2 {
		t.Fatalf("request needs %d approvals, want 2", r2.Approvals)
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for _, u := range []*standin.User{f.maya, f.admin, admin2} {
		wg.Go(func() {
			_, err := n.svc.Approve(ctx, f.signIn(t, u), r2.ID, "ok by "+u.Email, origin)
			switch standin.ErrorCode(err) {
			case "":
				ok.Add(1)
			case standin.EConflict:
				refused.Add(1)
			default:
				t.Errorf("Approve by %s: %v", u.Email, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 2 || refused.Load() != 1 {
		t.Fatalf("%d approvals counted and %d refused, want 2 and 1", ok.Load(), refused.Load())
	}
	got, err := n.svc.Request(ctx, f.sam, r2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status(time.Now()) != standin.RequestApproved || len(got.Votes) != 2 || got.Votes[0].By.ID == got.Votes[1].By.ID {
		t.Fatalf("request after two approvals: status %s, votes %+v", got.Status(time.Now()), got.Votes)
	}
	// Two approvals, each with its event, one of which decides; or, when
	// both were written at once, neither counted the other and the
	// decision has an event of its own.
	if ev := requestEvents(t, n.log, r2.ID); ev[standin.EventRequestApproved] < 2 || ev[standin.EventRequestApproved] > 3 {
		t.Fatalf("events: %v, want two approvals", ev)
	}
	if n := approvalsDecided(t, n.log, r2.ID); n != 1 {
		t.Fatalf("%d events decided the approval, want 1", n)
	}
	if _, err := n.svc.StartRequest(ctx, sam, r2.ID, origin); err != nil {
		t.Fatalf("start after the approvals: %v", err)
	}
}

// TestApprovalRaces: an approval racing the expiry on another node (whose
// clock says the request is past its time), and an approval racing a
// refusal: exactly one outcome each time, audited once, and only an
// approved request starts.
func TestApprovalRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	// Requests wait a minute; the late node's clock is just past that,
	// well within how long an answer may take to be audited.
	early, late := &clock{}, &clock{}
	late.Advance(time.Minute + time.Second)
	a, b := f.service(t, early), f.service(t, late)
	f.mustSettingsWaiting(t, a, 1, standin.ModeRule{Scope: "role:user", Mode: standin.ModeApproval})
	outcomes := map[string]int{}
	for round := range 12 {
		sam, r := f.mustRequest(t, a, f.sam)
		maya, admin := f.signIn(t, f.maya), f.signIn(t, f.admin)
		// The other answer starts a little later in some rounds, so that
		// each side wins some.
		lag := time.Duration(round%4) * 4 * time.Millisecond
		var approveErr, otherErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, approveErr = a.svc.Approve(ctx, maya, r.ID, "", origin) })
		if round%2 == 0 {
			wg.Go(func() { time.Sleep(lag); _, otherErr = b.svc.ExpireRequests(ctx) })
		} else {
			wg.Go(func() { time.Sleep(lag); _, otherErr = a.svc.Deny(ctx, admin, r.ID, "not now", origin) })
		}
		wg.Wait()
		if otherErr != nil && standin.ErrorCode(otherErr) != standin.EConflict {
			t.Fatalf("round %d: %v", round, otherErr)
		}
		if approveErr != nil && standin.ErrorCode(approveErr) != standin.EConflict {
			t.Fatalf("round %d: approve: %v", round, approveErr)
		}
		got, err := a.svc.Request(ctx, f.sam, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome == nil {
			t.Fatalf("round %d: no outcome", round)
		}
		outcomes[got.Outcome.Status]++
		ev := requestEvents(t, a.log, r.ID)
		decided := ev[standin.EventRequestApproved] + ev[standin.EventRequestDenied] + ev[standin.EventRequestExpired]
		if decided != 1 {
			t.Fatalf("round %d: outcome %s with events %v, want exactly one decision", round, got.Outcome.Status, ev)
		}
		if (approveErr == nil) != (got.Outcome.Status == standin.RequestApproved) {
			t.Fatalf("round %d: approve returned %v but the outcome is %s", round, approveErr, got.Outcome.Status)
		}
		_, err = a.svc.StartRequest(ctx, sam, r.ID, origin)
		if (err == nil) != (got.Outcome.Status == standin.RequestApproved) {
			t.Fatalf("round %d: start returned %v for a request %s", round, err, got.Outcome.Status)
		}
		if err == nil {
			if _, _, _, err := a.svc.Stop(ctx, &standin.Principal{Actor: f.sam, Subject: f.sam, Session: sam.Session}, origin); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestWithdrawDuringStart: a start under a consent grant racing its
// withdrawal never leaves a session running under the withdrawn grant.
func TestWithdrawDuringStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	n := f.service(t, &clock{})
	f.mustSettings(t, n, standin.ModeRule{Scope: "role:user", Mode: standin.ModeConsent})
	ben := f.signIn(t, f.ben)
	for round := range 6 {
		g, err := n.svc.Grant(ctx, ben, 24, origin)
		if err != nil {
			t.Fatal(err)
		}
		sam := f.signIn(t, f.sam)
		var started *impersonation.Started
		var startErr, withdrawErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			started, startErr = n.svc.Start(ctx, sam, impersonation.Request{UserID: f.ben.ID, Reason: "under the grant"}, origin)
		})
		wg.Go(func() { _, withdrawErr = n.svc.Withdraw(ctx, ben, origin) })
		wg.Wait()
		if withdrawErr != nil {
			t.Fatalf("round %d: withdraw: %v", round, withdrawErr)
		}
		active, err := f.db.ActiveImpersonations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range active {
			if imp.GrantID == g.ID {
				t.Fatalf("round %d: impersonation %s runs under the withdrawn grant", round, imp.ID)
			}
		}
		switch {
		case startErr == nil && started.Request != nil:
			// The grant was gone before the start looked: it asked.
		case startErr == nil:
			imp, err := f.db.ImpersonationByID(ctx, started.Impersonation.ID)
			if err != nil {
				t.Fatal(err)
			}
			if imp.Cause != standin.CauseConsentWithdrawn {
				t.Fatalf("round %d: the session under the grant ended with %q", round, imp.Cause)
			}
		case standin.ErrorCode(startErr) != standin.EConflict:
			t.Fatalf("round %d: start: %v", round, startErr)
		}
	}
}

// TestSettingsChangeOnce: two changes made from one version: one stands.
func TestSettingsChangeOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	a, b := f.service(t, &clock{}), f.service(t, &clock{})
	cur, err := a.svc.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ok, conflict atomic.Int32
	var wg sync.WaitGroup
	for i, n := range []node{a, b, a, b} {
		wg.Go(func() {
			next := cur.Clone()
			next.RequestMinutes = 11 + i
			_, err := n.svc.ChangeSettings(ctx, f.signIn(t, f.admin), next, []string{f.project}, origin)
			switch standin.ErrorCode(err) {
			case "":
				ok.Add(1)
			case standin.EConflict:
				conflict.Add(1)
			default:
				t.Errorf("ChangeSettings: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || conflict.Load() != 3 {
		t.Fatalf("%d changes stood and %d conflicted, want 1 and 3", ok.Load(), conflict.Load())
	}
	got, err := b.svc.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != cur.Version+1 || got.RequestMinutes < 11 {
		t.Fatalf("settings after the change: %+v", got)
	}
	n := 0
	if err := a.log.EventsMatching(ctx, standin.EventFilter{Type: standin.EventSettingsChanged}, func(*standin.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d settings.changed events, want 1", n)
	}
}

// TestRequestOutcomeRepair: an outcome whose call stopped before its event
// was written is undone once the grace has passed, and one whose event is
// in the log is kept; an approval stays listed for its actor until started.
func TestRequestOutcomeRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	clk := &clock{}
	n := f.service(t, clk)
	f.mustSettings(t, n, standin.ModeRule{Scope: "role:user", Mode: standin.ModeApproval})

	_, lost := f.mustRequest(t, n, f.sam)
	_, kept := f.mustRequest(t, n, f.tess)
	// A crash after the outcome and before its event, for lost; for kept,
	// after the event and before the mark that says so.
	for _, r := range []*standin.AccessRequest{lost, kept} {
		won, err := f.db.SetOutcome(ctx, r.ID, standin.Outcome{Status: standin.RequestApproved, By: standin.EventUser{ID: f.maya.ID}, At: clk.Now()})
		if err != nil || !won {
			t.Fatalf("SetOutcome = %v, %v", won, err)
		}
	}
	ev := &standin.Event{Type: standin.EventRequestApproved, ImpersonationID: kept.ID, Outcome: standin.RequestApproved,
		Actor: standin.EventUser{ID: f.maya.ID}, Subject: standin.EventUser{ID: f.ben.ID}}
	if err := n.log.Append(ctx, ev); err != nil {
		t.Fatal(err)
	}
	status := func(r *standin.AccessRequest) *standin.AccessRequest {
		t.Helper()
		got, err := f.db.RequestByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	if _, err := n.svc.ExpireRequests(ctx); err != nil {
		t.Fatal(err)
	}
	if status(lost).Outcome == nil || status(kept).Outcome.Audited {
		t.Fatal("outcomes repaired within the grace their own calls have")
	}
	if _, err := n.svc.StartRequest(ctx, f.signIn(t, f.tess), kept.ID, origin); standin.ErrorCode(err) != standin.EConflict {
		t.Fatalf("start of an approval not yet recorded: %v", err)
	}

	clk.Advance(3 * time.Minute)
	if _, err := n.svc.ExpireRequests(ctx); err != nil {
		t.Fatal(err)
	}
	if got := status(lost); got.Outcome != nil {
		t.Fatalf("an unaudited approval stands: %+v", got.Outcome)
	}
	if got := status(kept); got.Outcome == nil || !got.Outcome.Audited {
		t.Fatalf("an approval whose event is in the log: %+v", got.Outcome)
	}
	listed, err := n.svc.Requests(ctx, f.tess)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].ID != kept.ID {
		t.Fatalf("Tess's requests: %d, want her approved one", len(listed))
	}
	if _, err := n.svc.StartRequest(ctx, f.signIn(t, f.tess), kept.ID, origin); err != nil {
		t.Fatalf("start after the repair: %v", err)
	}
	if listed, err = n.svc.Requests(ctx, f.tess); err != nil || len(listed) != 0 {
		t.Fatalf("Tess's requests after the start: %d, %v", len(listed), err)
	}
}

// TestAnswersFollowTheTargetAsItIs: an approver must outrank the target as
// it is now (a promotion since the request counts); a withdrawal ends the
// sessions under every grant of the user, a replaced one too; a grant
// whose event never reached the log, or given by someone who lost the
// right to give it, lets nobody in.
func TestAnswersFollowTheTargetAsItIs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	n := f.service(t, &clock{})

	t.Run("Promoted", func(t *testing.T) {
		f.mustSettings(t, n, standin.ModeRule{Scope: "project:" + f.project, Mode: standin.ModeApproval})
		_, r := f.mustRequest(t, n, f.sam)
		c, err := mongo.Connect(options.Client().ApplyURI(dbtest.MustServer(t).URI))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Disconnect(ctx) }()
		oid, err := bson.ObjectIDFromHex(f.ben.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Database(f.db.Name()).Collection("users").UpdateOne(ctx, bson.M{"_id": oid},
			bson.M{"$set": bson.M{"role": string(standin.RoleManager)}}); err != nil {
			t.Fatal(err)
		}
		_, err = n.svc.Approve(ctx, f.signIn(t, f.maya), r.ID, "", origin)
		wantCode(t, err, standin.ENotFound) // no longer hers to answer, nor to see
		if _, err := c.Database(f.db.Name()).Collection("users").UpdateOne(ctx, bson.M{"_id": oid},
			bson.M{"$set": bson.M{"role": string(standin.RoleUser)}}); err != nil {
			t.Fatal(err)
		}
	})

	f.mustSettings(t, n, standin.ModeRule{Scope: "role:user", Mode: standin.ModeConsent})
	ben := f.signIn(t, f.ben)
	t.Run("WithdrawAfterAReplacedGrant", func(t *testing.T) {
		if _, err := n.svc.Grant(ctx, ben, 2, origin); err != nil {
			t.Fatal(err)
		}
		started, err := n.svc.Start(ctx, f.signIn(t, f.sam), impersonation.Request{UserID: f.ben.ID, Reason: "under the first grant"}, origin)
		if err != nil || started.Impersonation == nil {
			t.Fatalf("start under the grant: %+v, %v", started, err)
		}
		if _, err := n.svc.Grant(ctx, ben, 24, origin); err != nil {
			t.Fatal(err)
		}
		if _, err := n.svc.Withdraw(ctx, ben, origin); err != nil {
			t.Fatal(err)
		}
		imp, err := f.db.ImpersonationByID(ctx, started.Impersonation.ID)
		if err != nil {
			t.Fatal(err)
		}
		if imp.Cause != standin.CauseConsentWithdrawn {
			t.Fatalf("the session under the replaced grant: ended %v with %q", imp.EndedAt, imp.Cause)
		}
	})

	t.Run("UnauditedGrant", func(t *testing.T) {
		g := &standin.ConsentGrant{UserID: f.ben.ID, UserName: f.ben.Name, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := f.db.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		started, err := n.svc.Start(ctx, f.signIn(t, f.sam), impersonation.Request{UserID: f.ben.ID, Reason: "a grant never audited"}, origin)
		if err != nil || started.Request == nil {
			t.Fatalf("a start under an unaudited grant: %+v, %v", started, err)
		}
		if _, err := n.svc.Cancel(ctx, f.signIn(t, f.sam), started.Request.ID, origin); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("GiverLostTheRight", func(t *testing.T) {
		if _, err := n.svc.Grant(ctx, ben, 2, origin); err != nil {
			t.Fatal(err)
		}
		right := standin.Policy{Role: "role:user", Domain: "*", Object: standin.KindConsent, Action: standin.ActGrant}
		if err := f.rbac.RemovePolicy(ctx, right); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.rbac.AddPolicy(ctx, right) }()
		started, err := n.svc.Start(ctx, f.signIn(t, f.sam), impersonation.Request{UserID: f.ben.ID, Reason: "a grant its giver may no longer give"}, origin)
		if err != nil || started.Request == nil {
			t.Fatalf("a start under such a grant: %+v, %v", started, err)
		}
		if _, err := n.svc.Withdraw(ctx, ben, origin); err != nil {
			t.Fatalf("withdraw without the right to grant: %v", err)
		}
	})

	t.Run("RevealNeedsTheRightToRead", func(t *testing.T) {
		f.mustSettings(t, n)
		started, err := n.svc.Start(ctx, f.signIn(t, f.sam), impersonation.Request{UserID: f.ben.ID, Reason: "Ben's record"}, origin)
		if err != nil || started.Impersonation == nil {
			t.Fatalf("start: %+v, %v", started, err)
		}
		acting := &standin.Principal{Actor: f.sam, Subject: f.ben, Session: started.Session, Impersonation: started.Impersonation}
		read := standin.Policy{Role: "role:support", Domain: "*", Object: standin.KindUser, Action: standin.ActRead}
		if err := f.rbac.RemovePolicy(ctx, read); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.rbac.AddPolicy(ctx, read) }()
		_, err = n.svc.Reveal(ctx, acting, f.ben.ID, standin.FieldPhone, "to call him", origin)
		wantCode(t, err, standin.EForbidden)
	})
}

// TestApprovalUnused: an approval not started within its window ends with
// one request.expired event (outcome "unused"), however often the sweep
// runs, its actor told, and it can no longer start.
func TestApprovalUnused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	clk := &clock{}
	n := f.service(t, clk)
	f.mustSettings(t, n, standin.ModeRule{Scope: "role:user", Mode: standin.ModeConsent})
	sam, r := f.mustRequest(t, n, f.sam)
	if _, err := n.svc.Approve(ctx, f.signIn(t, f.ben), r.ID, "", origin); err != nil {
		t.Fatal(err)
	}
	clk.Advance(standin.StartWindow + time.Second)
	for range 3 {
		if _, err := n.svc.ExpireRequests(ctx); err != nil {
			t.Fatal(err)
		}
	}
	unused := 0
	if err := n.log.EventsMatching(ctx, standin.EventFilter{ImpersonationID: r.ID, Type: standin.EventRequestExpired}, func(e *standin.Event) error {
		if e.Outcome == "unused" {
			unused++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if unused != 1 {
		t.Fatalf("%d unused expiries audited, want 1", unused)
	}
	notes, _, err := f.db.Notifications(ctx, f.sam.ID, standin.Page{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) == 0 || notes[0].Title != "Approval unused" {
		t.Fatalf("Sam's newest notification: %+v", notes)
	}
	_, err = n.svc.StartRequest(ctx, sam, r.ID, origin)
	wantCode(t, err, standin.EConflict)
	if listed, err := n.svc.Requests(ctx, f.sam); err != nil || len(listed) != 0 {
		t.Fatalf("Sam's requests after the expiry: %d, %v", len(listed), err)
	}
}

// TestApproversToldOfTheAnswer: once one approver answers a request, the
// other approvers are told that it no longer waits for them (their
// inboxes follow live); the one who answered is not.
func TestApproversToldOfTheAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	n := f.service(t, &clock{})
	f.mustSettings(t, n, standin.ModeRule{Scope: "project:" + f.project, Mode: standin.ModeApproval, Approvals: 1})
	_, r := f.mustRequest(t, n, f.sam)
	if _, err := n.svc.Deny(ctx, f.signIn(t, f.maya), r.ID, "not now", origin); err != nil {
		t.Fatal(err)
	}
	told := func(u *standin.User) []string {
		notes, _, err := f.db.Notifications(ctx, u.ID, standin.Page{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, note := range notes {
			if note.ImpersonationID == r.ID {
				out = append(out, note.Title+": "+note.Body)
			}
		}
		return out
	}
	admin := told(f.admin)
	if len(admin) != 2 || admin[0] != "Request answered: The request of "+f.sam.Name+" ("+f.sam.Email+") to act as "+f.ben.Name+
		" no longer waits for an answer: "+f.maya.Name+" refused it." {
		t.Fatalf("the other approver was told: %q", admin)
	}
	for _, note := range told(f.maya) {
		if note != "Approval needed: "+fmt.Sprintf("%s (%s) asks to act as %s for 20 minutes. Reason: Ben cannot book", f.sam.Name, f.sam.Email, f.ben.Name) {
			t.Fatalf("the approver who answered was told: %q", told(f.maya))
		}
	}
}
