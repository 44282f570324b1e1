package livefeed_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"standin/realtime"
	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/livefeed"
	"standin/server/presence"
	"standin/server/standin"
)

// policy is a double of the access decider: scopes per action, and who
// may read the user directory.
type policy struct {
	scopes map[string]standin.Scope // by action; none is an empty scope
	staff  map[string]bool          // by subject id
	err    error
}

func (p policy) Decide(ctx context.Context, pr *standin.Principal, action string, obj standin.Object, project string) (standin.Decision, error) {
	if p.err != nil {
		return standin.Decision{}, p.err
	}
	return standin.Decision{Allowed: action == standin.ActRead && obj.Kind == standin.KindUser && p.staff[pr.Subject.ID]}, nil
}

func (p policy) Scope(ctx context.Context, pr *standin.Principal, action, kind string, projects []string) (standin.Scope, error) {
	if p.err != nil {
		return standin.Scope{}, p.err
	}
	sc := p.scopes[action+" "+kind]
	if sc.All {
		return sc, nil
	}
	// As the decider does: only the projects asked about.
	var in []string
	for _, id := range sc.Projects {
		if slices.Contains(projects, id) {
			in = append(in, id)
		}
	}
	return standin.Scope{Projects: in}, nil
}

func (p policy) ActivityScope(ctx context.Context, pr *standin.Principal) (standin.Scope, error) {
	return p.Scope(ctx, pr, standin.ActList, standin.KindActivity, pr.Subject.ProjectIDs())
}

// Staff is the decider's: reading users, never while impersonating.
func (p policy) Staff(ctx context.Context, pr *standin.Principal) (bool, error) {
	if pr.Impersonation != nil {
		return false, nil
	}
	dec, err := p.Decide(ctx, pr, standin.ActRead, standin.Object{Kind: standin.KindUser}, "")
	return dec.Allowed, err
}

// visible is a double of the impersonation workflow's Get.
type visible struct {
	imps map[string]*standin.Impersonation // visible to anyone asking
	err  error
}

func (v visible) Get(ctx context.Context, who *standin.User, id string) (*standin.Impersonation, error) {
	if v.err != nil {
		return nil, v.err
	}
	if imp := v.imps[id]; imp != nil {
		return imp, nil
	}
	return nil, standin.Errorf(standin.ENotFound, "There is no impersonation with this id that you may see.")
}

func user(id string, projects ...string) *standin.User {
	u := &standin.User{ID: id, Name: id, Role: standin.RoleUser, Status: standin.StatusActive}
	for _, p := range projects {
		u.Memberships = append(u.Memberships, standin.Membership{ProjectID: p})
	}
	return u
}

// socket returns the hub's principal for a console principal, as
// Authenticate makes it.
func socket(p *standin.Principal) *realtime.Principal {
	return &realtime.Principal{SessionID: "s-" + p.Actor.ID, UserID: p.Actor.ID, Value: p}
}

func signedIn(u *standin.User) *standin.Principal {
	return &standin.Principal{Actor: u, Subject: u, Session: &standin.Session{ID: "s-" + u.ID, UserID: u.ID}}
}

func acting(actor, subject *standin.User, impID string) *standin.Principal {
	return &standin.Principal{Actor: actor, Subject: subject, Session: &standin.Session{ID: "s-" + actor.ID, UserID: actor.ID},
		Impersonation: &standin.Impersonation{ID: impID, ActorID: actor.ID, SubjectID: subject.ID}}
}

var (
	admin   = user("u-admin")
	lead    = user("u-lead", "NEURO")
	ben     = user("u-ben", "NEURO")
	support = user("u-support")

	rules = policy{
		scopes: map[string]standin.Scope{
			standin.ActList + " " + standin.KindActivity:        {Projects: []string{"NEURO"}},
			standin.ActRevoke + " " + standin.KindImpersonation: {Projects: []string{"NEURO"}},
		},
		staff: map[string]bool{"u-support": true, "u-admin": true},
	}
	adminRules = policy{scopes: map[string]standin.Scope{
		standin.ActList + " " + standin.KindActivity: {All: true},
	}, staff: map[string]bool{"u-admin": true}}
)

func TestCanSubscribe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down := standin.Errorf(standin.EUnavailable, "The database is down.")
	imps := visible{imps: map[string]*standin.Impersonation{"imp-1": {ID: "imp-1"}}}
	tests := []struct {
		name   string
		access livefeed.Access
		imps   livefeed.Impersonations
		p      *realtime.Principal
		topic  string
		want   string // realtime error code; "" allows
	}{
		{"OKNotifications", policy{}, imps, socket(signedIn(ben)), realtime.TopicNotifications, ""},
		{"OKActivityOfTheirProject", rules, imps, socket(signedIn(lead)), realtime.TopicActivity, ""},
		{"OKActivityAll", adminRules, imps, socket(signedIn(admin)), realtime.TopicActivity, ""},
		{"ErrActivityNoScope", rules, imps, socket(signedIn(support)), realtime.TopicActivity, realtime.EForbidden},
		{"ErrActivityUndecided", policy{err: down}, imps, socket(signedIn(lead)), realtime.TopicActivity, realtime.EUnavailable},
		{"OKPresenceStaff", rules, imps, socket(signedIn(support)), realtime.TopicPresence, ""},
		{"ErrPresenceUser", rules, imps, socket(signedIn(ben)), realtime.TopicPresence, realtime.EForbidden},
		{"ErrPresenceWhileActing", rules, imps, socket(acting(support, ben, "imp-1")), realtime.TopicPresence, realtime.EForbidden},
		{"ErrPresenceUndecided", policy{err: errors.New("boom")}, imps, socket(signedIn(support)), realtime.TopicPresence, realtime.EInternal},
		{"OKOwnImpersonation", rules, visible{}, socket(acting(support, ben, "imp-1")), realtime.ImpersonationTopic("imp-1"), ""},
		{"ErrOtherImpersonationWhileActing", rules, imps, socket(acting(support, ben, "imp-2")), realtime.ImpersonationTopic("imp-1"), realtime.EForbidden},
		{"OKVisibleImpersonation", rules, imps, socket(signedIn(lead)), realtime.ImpersonationTopic("imp-1"), ""},
		{"ErrHiddenImpersonation", rules, imps, socket(signedIn(lead)), realtime.ImpersonationTopic("imp-9"), realtime.EForbidden},
		{"ErrImpersonationUndecided", rules, visible{err: down}, socket(signedIn(lead)), realtime.ImpersonationTopic("imp-1"), realtime.EUnavailable},
		{"ErrUnknownTopic", rules, imps, socket(signedIn(admin)), "weather", realtime.EForbidden},
		{"ErrNoPrincipal", rules, imps, &realtime.Principal{SessionID: "s", UserID: "u"}, realtime.TopicNotifications, realtime.EInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := livefeed.NewSubscriptions(livefeed.Config{Access: tt.access, Impersonations: tt.imps})
			err := s.CanSubscribe(ctx, tt.p, tt.topic)
			if got := realtime.ErrorCode(err); got != tt.want {
				t.Fatalf("CanSubscribe(%s) = %v, want code %q", tt.topic, err, tt.want)
			}
			if err != nil && realtime.ErrorMessage(err) == "" {
				t.Fatalf("a refusal without a message: %v", err)
			}
		})
	}
	t.Run("ErrHiddenLikeUnknown", func(t *testing.T) {
		t.Parallel()
		// A refusal must not tell an id one may not follow from one that
		// names nothing.
		s := livefeed.NewSubscriptions(livefeed.Config{Access: rules, Impersonations: imps})
		hidden := s.CanSubscribe(ctx, socket(acting(support, ben, "imp-2")), realtime.ImpersonationTopic("imp-1"))
		unknown := s.CanSubscribe(ctx, socket(signedIn(lead)), realtime.ImpersonationTopic("imp-9"))
		if realtime.ErrorMessage(hidden) != realtime.ErrorMessage(unknown) {
			t.Fatalf("refusals differ: %v and %v", hidden, unknown)
		}
	})
}

func TestCanReceive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	neuro := &standin.Event{Seq: 1, Actor: standin.EventUser{ID: "u-support"}, ImpersonationID: "imp-1", Projects: []string{"NEURO"}}
	cell := &standin.Event{Seq: 2, Actor: standin.EventUser{ID: "u-support"}, ImpersonationID: "imp-2", Projects: []string{"CELL"}}
	note := &standin.Notification{UserID: "u-ben", Seq: 3}
	tests := []struct {
		name   string
		access policy
		p      *realtime.Principal
		topic  string
		meta   any
		want   bool
	}{
		{"OKOwnNotification", rules, socket(signedIn(ben)), realtime.TopicNotifications, note, true},
		{"ErrOthersNotification", rules, socket(signedIn(lead)), realtime.TopicNotifications, note, false},
		{"ErrNotificationWhileActedAs", rules, socket(acting(support, ben, "imp-1")), realtime.TopicNotifications, note, false},
		{"ErrNotificationWithoutMeta", rules, socket(signedIn(ben)), realtime.TopicNotifications, nil, false},
		{"OKPresenceStaff", rules, socket(signedIn(support)), realtime.TopicPresence, nil, true},
		{"ErrPresenceLostRight", policy{}, socket(signedIn(support)), realtime.TopicPresence, nil, false},
		{"ErrPresenceUndecided", policy{err: errors.New("boom")}, socket(signedIn(support)), realtime.TopicPresence, nil, false},
		{"OKActivityOfTheirProject", rules, socket(signedIn(lead)), realtime.TopicActivity, neuro, true},
		{"ErrActivityOfAnotherProject", rules, socket(signedIn(lead)), realtime.TopicActivity, cell, false},
		{"OKActivityAll", adminRules, socket(signedIn(admin)), realtime.TopicActivity, cell, true},
		{"ErrActivityWithoutMeta", adminRules, socket(signedIn(admin)), realtime.TopicActivity, note, false},
		{"OKOwnImpersonationWhileActing", policy{}, socket(acting(support, ben, "imp-1")), realtime.ImpersonationTopic("imp-1"), neuro, true},
		{"OKActorAfterwards", policy{}, socket(signedIn(support)), realtime.ImpersonationTopic("imp-1"), neuro, true},
		{"OKSupervisor", rules, socket(signedIn(lead)), realtime.ImpersonationTopic("imp-1"), neuro, true},
		{"ErrNotSupervisor", rules, socket(signedIn(lead)), realtime.ImpersonationTopic("imp-2"), cell, false},
		{"ErrEventOfAnotherTopic", adminRules, socket(signedIn(support)), realtime.ImpersonationTopic("imp-2"), neuro, false},
		{"ErrNoPrincipal", adminRules, &realtime.Principal{SessionID: "s", UserID: "u"}, realtime.TopicActivity, neuro, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := livefeed.NewSubscriptions(livefeed.Config{Access: tt.access})
			if got := s.CanReceive(ctx, tt.p, tt.topic, realtime.Event{Seq: 1, Meta: tt.meta}); got != tt.want {
				t.Fatalf("CanReceive(%s) = %v, want %v", tt.topic, got, tt.want)
			}
		})
	}
}

// sessionsFunc is an Authenticator made of a function.
type sessionsFunc func(token string) (*standin.Principal, error)

func (f sessionsFunc) Authenticate(ctx context.Context, token string) (*standin.Principal, error) {
	return f(token)
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	expires := time.Now().Add(time.Hour).UTC()
	p := acting(support, ben, "imp-1")
	p.Session.ExpiresAt = expires
	tests := []struct {
		name string
		p    *standin.Principal
		err  error
		want string
	}{
		{"OK", p, nil, ""},
		{"ErrUnauthenticated", nil, standin.Errorf(standin.EUnauthenticated, "Your session has ended."), realtime.EUnauthenticated},
		{"ErrUnavailable", nil, standin.Errorf(standin.EUnavailable, "The database is down."), realtime.EUnavailable},
		{"ErrFault", nil, errors.New("boom"), realtime.EInternal},
		{"ErrIncomplete", &standin.Principal{Actor: ben, Subject: ben}, nil, realtime.EInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := livefeed.NewSubscriptions(livefeed.Config{Sessions: sessionsFunc(func(string) (*standin.Principal, error) { return tt.p, tt.err })})
			got, err := s.Authenticate(context.Background(), "token")
			if code := realtime.ErrorCode(err); code != tt.want {
				t.Fatalf("Authenticate = %v, want code %q", err, tt.want)
			}
			if tt.want == "" && (got.SessionID != "s-u-support" || got.UserID != "u-support" || !got.ExpiresAt.Equal(expires) || got.Value != p) {
				t.Fatalf("Authenticate = %+v: want the session, its actor, its expiry and the principal", got)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("the cause %v is lost in %v", tt.err, err)
			}
		})
	}
}

// collect replays topic after afterSeq for p and returns the events.
func collect(t *testing.T, s *livefeed.Subscriptions, p *realtime.Principal, topic string, afterSeq int64) []realtime.Event {
	t.Helper()
	var out []realtime.Event
	if err := s.EventsAfter(context.Background(), p, topic, afterSeq, func(ev realtime.Event) error {
		out = append(out, ev)
		return nil
	}); err != nil {
		t.Fatalf("EventsAfter(%s, %d): %v", topic, afterSeq, err)
	}
	return out
}

func seqs(evs []realtime.Event) []int64 {
	var out []int64
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// TestEventsAfter: replay reads the audit log for the activity feed and an
// impersonation's topic, the subscriber's own stored notifications, and
// the presence state when it is newer, from a real database.
func TestEventsAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	log, err := audit.Open(ctx, db.Events(), audit.Config{})
	if err != nil {
		t.Fatalf("open the audit log: %v", err)
	}
	t.Cleanup(func() { log.Close(context.Background()) })
	for i, imp := range []string{"", "imp-1", "imp-2", "imp-1", ""} {
		e := &standin.Event{Type: standin.EventActionAllowed, Time: at.Add(time.Duration(i) * time.Second),
			Actor: standin.EventUser{ID: "u-support"}, Subject: standin.EventUser{ID: "u-ben"}, ImpersonationID: imp}
		if err := log.Append(ctx, e); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	for _, n := range []*standin.Notification{
		{UserID: "u-ben", Seq: 2, Type: "impersonation.started", At: at},
		{UserID: "u-lead", Seq: 3, Type: "impersonation.started", At: at},
		{UserID: "u-ben", Seq: 4, Type: "impersonation.ended", At: at},
	} {
		if err := db.AddNotification(ctx, n); err != nil {
			t.Fatalf("add notification: %v", err)
		}
	}
	tracker := presence.New(presence.Config{})
	tracker.View("tab-1", presence.Person{ID: "u-support"}, presence.Person{ID: "u-ben"})
	s := livefeed.NewSubscriptions(livefeed.Config{Audit: log, Notifications: db, Presence: tracker})
	p := socket(signedIn(ben))

	if got := seqs(collect(t, s, p, realtime.TopicActivity, 2)); !slices.Equal(got, []int64{3, 4, 5}) {
		t.Errorf("activity after 2: %v", got)
	}
	evs := collect(t, s, p, realtime.ImpersonationTopic("imp-1"), 0)
	if got := seqs(evs); !slices.Equal(got, []int64{2, 4}) {
		t.Errorf("imp-1 after 0: %v", got)
	}
	if e, ok := evs[0].Meta.(*standin.Event); !ok || e.Seq != 2 || string(evs[0].Payload) == "" {
		t.Errorf("a replayed audit event carries %v and %s", evs[0].Meta, evs[0].Payload)
	}
	if got := seqs(collect(t, s, p, realtime.TopicNotifications, 2)); !slices.Equal(got, []int64{4}) {
		t.Errorf("Ben's notifications after 2: %v", got)
	}
	if got := seqs(collect(t, s, p, realtime.TopicPresence, 0)); !slices.Equal(got, []int64{tracker.State().Version}) {
		t.Errorf("presence after 0: %v", got)
	}
	if got := collect(t, s, p, realtime.TopicPresence, tracker.State().Version); len(got) != 0 {
		t.Errorf("presence after its version: %v", seqs(got))
	}

	t.Run("ErrNoPrincipal", func(t *testing.T) {
		err := s.EventsAfter(ctx, &realtime.Principal{SessionID: "s", UserID: "u"}, realtime.TopicActivity, 0,
			func(realtime.Event) error { return nil })
		if realtime.ErrorCode(err) != realtime.EUnauthenticated {
			t.Fatalf("EventsAfter without a principal = %v", err)
		}
	})
	t.Run("StopsWithFnError", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.EventsAfter(ctx, p, realtime.TopicActivity, 0, func(realtime.Event) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("EventsAfter = %v after %d events, want stop after 1", err, n)
		}
	})
}
