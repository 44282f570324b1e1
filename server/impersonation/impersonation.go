// Package impersonation lets support staff act as a user to reproduce what
// the user sees. Starting, ending and refusing are audited; while it runs,
// every request is decided with the user's permissions alone; it ends by
// the actor, by revocation, by expiry (also with no request in flight), by
// the actor signing out, by the user's suspension, or by the actor losing
// the right to impersonate, checked on every request.
package impersonation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"standin/server/standin"
)

// Store keeps impersonations and notifications.
type Store interface {
	CreateImpersonation(ctx context.Context, i *standin.Impersonation) error
	ImpersonationByID(ctx context.Context, id string) (*standin.Impersonation, error)
	EndImpersonation(ctx context.Context, id, cause string, by *standin.User, at time.Time) (*standin.Impersonation, error)
	ActiveImpersonations(ctx context.Context) ([]*standin.Impersonation, error)
	ClearImpersonationSessions(ctx context.Context, id string) ([]string, error)
	ImpersonationInSession(ctx context.Context, id string) (bool, error)
	MarkEndAudited(ctx context.Context, id string) error
	// UnauditedEnds lists ends before a time whose event is not marked
	// written.
	UnauditedEnds(ctx context.Context, before time.Time) ([]*standin.Impersonation, error)
	// Claim inserts a unique key: true for exactly one caller.
	Claim(ctx context.Context, key string, at time.Time) (bool, error)
	// ClaimedAt says when key was claimed, if it was.
	ClaimedAt(ctx context.Context, key string) (time.Time, bool, error)
	// Unclaim gives a claim back.
	Unclaim(ctx context.Context, key string) error
	AddNotification(ctx context.Context, n *standin.Notification) error
	UserByID(ctx context.Context, id string) (*standin.User, error)
	RequestStore
}

// Sessions rotates the actor's session as impersonation starts and ends.
type Sessions interface {
	Rotate(ctx context.Context, old *standin.Session, impersonationID string) (string, *standin.Session, error)
}

// RBAC decides the actor's own rights (to impersonate, to revoke, to be
// destructive while impersonating).
type RBAC interface {
	Check(ctx context.Context, subject *standin.User, action, object, project string) standin.Decision
}

// Audit appends events; they are committed when it returns nil. The
// repair of ends reads it to write no end twice.
type Audit interface {
	Append(ctx context.Context, evs ...*standin.Event) error
	// Settle learns the fate of appends that failed in doubt.
	Settle(ctx context.Context) error
	EventsMatching(ctx context.Context, f standin.EventFilter, fn func(*standin.Event) error) error
	// Query pages the events matching f, newest first (summaries).
	Query(ctx context.Context, f standin.EventFilter, p standin.Page) ([]*standin.Event, string, error)
}

// Config tunes a Service; zero values are the documented defaults.
type Config struct {
	// DefaultDuration applies when a start names none (default 30 min).
	DefaultDuration time.Duration
	// MaxDuration bounds a start's duration (default 4 h).
	MaxDuration time.Duration
	// OnStarted is told of every impersonation that started, once its
	// event is committed and the actor's session switched to it; oldSession
	// is the id the actor's session had before.
	OnStarted func(i *standin.Impersonation, oldSession string)
	// OnEnded is told of every impersonation that ended and the sessions
	// that were in it, after the end is committed, so they can be told
	// live.
	OnEnded func(i *standin.Impersonation, sessionIDs []string)
	// OnNotify is told of every notification stored for a user.
	OnNotify func(n *standin.Notification)
	// Moderation keeps moderators' watches of moderated sessions, the
	// same on every node. Nil watches nothing: moderated sessions stay
	// paused until they end.
	Moderation Moderation
	// Location is the facility's time zone, in which notifications give
	// times (default UTC).
	Location *time.Location
	Logger   *slog.Logger
	Now      func() time.Time
}

// Service runs impersonations.
type Service struct {
	store    Store
	sessions Sessions
	rbac     RBAC
	audit    Audit
	cfg      Config

	moderation moderationState // the owner's memory (Moderate)
}

// New returns a Service.
func New(store Store, sessions Sessions, rbac RBAC, audit Audit, cfg Config) *Service {
	if cfg.DefaultDuration <= 0 {
		cfg.DefaultDuration = 30 * time.Minute
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 4 * time.Hour
	}
	if cfg.OnStarted == nil {
		cfg.OnStarted = func(*standin.Impersonation, string) {}
	}
	if cfg.OnEnded == nil {
		cfg.OnEnded = func(*standin.Impersonation, []string) {}
	}
	if cfg.OnNotify == nil {
		cfg.OnNotify = func(*standin.Notification) {}
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Moderation == nil {
		cfg.Moderation = noModeration{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: store, sessions: sessions, rbac: rbac, audit: audit, cfg: cfg,
		moderation: moderationState{sessions: make(map[string]*moderated)}}
}

// Request is a start request.
type Request struct {
	UserID  string
	Reason  string
	Ticket  string
	Minutes int
}

// Started is a started impersonation and the actor's new session; or,
// when the target's mode needs an answer first, the pending Request
// alone.
type Started struct {
	Impersonation *standin.Impersonation
	Token         string
	Session       *standin.Session
	Request       *standin.AccessRequest
}

// Start begins an impersonation for the principal's actor, or, when the
// target's mode needs an answer first (consent without a grant in force,
// approval), asks for it: Started.Request is then the pending request and
// nothing started. Refusals are audited as impersonation.denied and
// returned as coded errors whose Reason says why: EForbidden (no right,
// rank, self, owner, suspended, a mode this server cannot run), EConflict
// (already impersonating, target held by another agent: the message names
// who, chains), ENotFound (no such user), EInvalid (reason missing,
// duration out of bounds). EUnavailable when the audit log cannot be
// written: then nothing started.
func (s *Service) Start(ctx context.Context, p *standin.Principal, req Request, o standin.Origin) (*Started, error) {
	reason, ticket, duration, err := s.validate(req)
	if err != nil {
		return nil, err
	}
	target, err := s.admit(ctx, p, req.UserID, o)
	if err != nil {
		return nil, err
	}
	set, err := s.store.ImpersonationSettings(ctx)
	if err != nil {
		return nil, err
	}
	sp := startParams{reason: reason, ticket: ticket, d: duration}
	switch need := set.NeedFor(target); need.Mode {
	case standin.ModeDirect:
	case standin.ModeConsent:
		g, err := s.store.GrantOf(ctx, target.ID)
		if err != nil {
			return nil, err
		}
		// A grant counts while its giver still may give one.
		if g.ActiveAt(s.cfg.Now()) && !s.rbac.Check(ctx, target, standin.ActGrant, standin.KindConsent, "").Allowed {
			g = nil
		}
		if !g.ActiveAt(s.cfg.Now()) {
			r, err := s.request(ctx, p, target, need, set, reason, ticket, duration, o)
			if err != nil {
				return nil, err
			}
			return &Started{Request: r}, nil
		}
		sp.grantID = g.ID
	case standin.ModeApproval:
		r, err := s.request(ctx, p, target, need, set, reason, ticket, duration, o)
		if err != nil {
			return nil, err
		}
		return &Started{Request: r}, nil
	case standin.ModeModerated:
		// It starts paused, until a moderator watches it.
		sp.moderated = true
	default:
		// Fail closed: a mode this server cannot enforce starts nothing.
		return nil, s.deny(ctx, p, target, o, standin.EForbidden, "Sessions on this user need a mode this server cannot run.",
			fmt.Sprintf("%s's sessions need the %s mode (%s), which this server does not run.", target.Name, need.Mode, need.Scope))
	}
	started, err := s.begin(ctx, p, target, sp, o)
	if err == nil && sp.moderated {
		imp := started.Impersonation
		s.tellModerators(ctx, imp, target, 0, "A session waits for its moderator",
			fmt.Sprintf("%s started a moderated session as %s; it runs only while a moderator watches it. Reason: %s",
				standin.Named(imp.ActorName, imp.ActorEmail), imp.SubjectName, imp.Reason))
	}
	return started, err
}

// startParams is what a start fixes besides its actor and target: the
// id of the request it starts from, if any, the consent grant it runs
// under, if any.
type startParams struct {
	id, reason, ticket string
	d                  time.Duration
	grantID            string
	moderated          bool
}

// begin starts an admitted impersonation of target: it holds actor and
// target, commits the started event, switches the actor's session and
// tells the target. Under a consent grant, the grant is read again once
// the impersonation is stored: a withdrawal that came meanwhile, and did
// not see it, ends it here.
func (s *Service) begin(ctx context.Context, p *standin.Principal, target *standin.User, sp startParams, o standin.Origin) (*Started, error) {
	now := s.cfg.Now().UTC()
	imp := &standin.Impersonation{
		ID: sp.id, ActorID: p.Actor.ID, ActorName: p.Actor.Name, ActorEmail: p.Actor.Email, SubjectID: target.ID, SubjectName: target.Name,
		Reason: sp.reason, Ticket: sp.ticket, SessionID: p.Session.ID, GrantID: sp.grantID, Moderated: sp.moderated,
		StartedAt: now, ExpiresAt: now.Add(sp.d),
	}
	if err := s.hold(ctx, p, target, imp, o); err != nil {
		return nil, err
	}
	token, sess, seq, err := s.commitStart(ctx, p, target, imp, o)
	if err != nil {
		return nil, err
	}
	s.notify(ctx, imp, true, seq)
	s.cfg.OnStarted(imp, p.Session.ID)
	s.cfg.Logger.Info("impersonation started", "impersonation", imp.ID, "actor", p.Actor.ID, "subject", target.ID)
	if sp.grantID != "" {
		g, err := s.store.GrantOf(ctx, target.ID)
		if err != nil || g == nil || g.ID != sp.grantID || !g.ActiveAt(s.cfg.Now()) {
			if _, eerr := s.end(ctx, imp.ID, standin.CauseConsentWithdrawn, target, o); eerr != nil && standin.ErrorCode(eerr) != standin.EConflict {
				return nil, eerr
			}
			return nil, standin.Errorf(standin.EConflict, "%s withdrew their consent as the session started; it has ended.", target.Name)
		}
	}
	return &Started{Impersonation: imp, Token: token, Session: sess}, nil
}

// refusal is why p may not impersonate a target: its code, message and
// reason, as deny records them.
type refusal struct{ code, message, reason string }

// barred says why p may not impersonate target, whoever may impersonate
// at all: nesting, self, an owner, rank, suspension; nil when none bars it.
func barred(p *standin.Principal, target *standin.User) *refusal {
	if p.Impersonation != nil {
		return &refusal{standin.EConflict, "You are already impersonating someone.",
			fmt.Sprintf("You are impersonating %s; end that first. Impersonations do not nest.", p.Impersonation.SubjectName)}
	}
	actor := p.Actor
	switch standin.ImpersonationBars(actor, target).First() {
	case standin.BarSelf:
		return &refusal{standin.EForbidden, "You cannot impersonate yourself.", "The target is your own account."}
	case standin.BarOwner:
		return &refusal{standin.EForbidden, "Owners cannot be impersonated.",
			fmt.Sprintf("%s is an owner; nobody impersonates an owner.", target.Name)}
	case standin.BarRank:
		return &refusal{standin.EForbidden, "You can only impersonate users of a lower role than yours.",
			fmt.Sprintf("%s has the role %q, which is not lower than your role %q.", target.Name, target.Role, actor.Role)}
	case standin.BarSuspended:
		return &refusal{standin.EForbidden, "Suspended accounts cannot be impersonated.",
			fmt.Sprintf("%s's account is suspended.", target.Name)}
	}
	return nil
}

// MayStart decides, without starting anything or writing an audit event,
// whether p's actor may impersonate target now, with the reason a refusal
// would give: what the console shows on its "Impersonate…" action before
// anyone opens the dialog. A session already on target (held by another
// agent) is not checked here: starting says so.
func (s *Service) MayStart(ctx context.Context, p *standin.Principal, target *standin.User) standin.Decision {
	if dec := s.rbac.Check(ctx, p.Actor, standin.ActStart, standin.KindImpersonation, ""); !dec.Allowed {
		return standin.Decision{Reason: "Impersonating " + dec.Reason + "."}
	}
	if r := barred(p, target); r != nil {
		return standin.Decision{Reason: r.reason}
	}
	return standin.Decision{Allowed: true}
}

// admit decides whether p's actor may impersonate user userID and returns
// the target; every refusal is audited first (see deny).
func (s *Service) admit(ctx context.Context, p *standin.Principal, userID string, o standin.Origin) (*standin.User, error) {
	actor := p.Actor
	if dec := s.rbac.Check(ctx, actor, standin.ActStart, standin.KindImpersonation, ""); !dec.Allowed {
		return nil, s.deny(ctx, p, &standin.User{ID: userID}, o, standin.EForbidden,
			"You do not have permission to impersonate users.", "Impersonating "+dec.Reason+".")
	}
	target, err := s.store.UserByID(ctx, userID)
	if standin.ErrorCode(err) == standin.ENotFound {
		return nil, standin.Errorf(standin.ENotFound, "No user with id %q.", userID)
	}
	if err != nil {
		return nil, err
	}
	if r := barred(p, target); r != nil {
		return nil, s.deny(ctx, p, target, o, r.code, r.message, r.reason)
	}
	return target, nil
}

// deny audits a refused start as impersonation.denied and returns the
// refusal, or the audit log's error when it cannot be written.
func (s *Service) deny(ctx context.Context, p *standin.Principal, target *standin.User, o standin.Origin, code, message, why string) error {
	ev := s.event(standin.EventImpersonationDenied, p, target, "", o)
	ev.Action, ev.Outcome, ev.Reason = "impersonation.start", "denied", why
	if err := s.audit.Append(ctx, ev); err != nil {
		return err
	}
	return &standin.Error{Code: code, Message: message, Reason: why}
}

// hold stores the impersonation, which holds its actor and target: a
// start that meets another's hold is refused, and audited as such.
func (s *Service) hold(ctx context.Context, p *standin.Principal, target *standin.User, imp *standin.Impersonation, o standin.Origin) error {
	err := s.store.CreateImpersonation(ctx, imp)
	if hc, ok := errors.AsType[*standin.HoldConflict](err); ok {
		msg := conflictMessage(hc, p.Actor, target, s.cfg.Location)
		return s.deny(ctx, p, target, o, standin.EConflict, msg, msg)
	}
	return err
}

// commitStart writes the started event, the commit record: without it,
// there is no impersonation. Then the actor's session switches to it. It
// returns the session's new token and the event's seq; on failure the
// impersonation is undone or ended.
func (s *Service) commitStart(ctx context.Context, p *standin.Principal, target *standin.User, imp *standin.Impersonation, o standin.Origin) (string, *standin.Session, int64, error) {
	ev := s.event(standin.EventImpersonationStarted, p, target, imp.ID, o)
	ev.Action, ev.Outcome, ev.Reason = "impersonation.start", "started", imp.Reason
	if imp.Moderated {
		// It waits for its first moderator.
		ev.Outcome = "started_paused"
	}
	if imp.Ticket != "" {
		ev.Object = "ticket:" + imp.Ticket
	}
	if err := s.audit.Append(ctx, ev); err != nil {
		s.undo(imp)
		return "", nil, 0, err
	}
	token, sess, err := s.sessions.Rotate(ctx, p.Session, imp.ID)
	if err != nil {
		s.endAfterFault(imp, p, o)
		return "", nil, 0, err
	}
	return token, sess, ev.Seq, nil
}

// validate checks a start request before anything is looked up or
// written: the target's id has an id's shape, the reason and ticket are
// text a person can read (see standin.TextProblem), and the duration is
// in bounds, judged before any arithmetic so that no number overflows.
func (s *Service) validate(req Request) (reason, ticket string, d time.Duration, err error) {
	if !standin.ValidID(req.UserID) {
		return "", "", 0, standin.Errorf(standin.EInvalid, "Choose the user to impersonate (user_id is not a user's id).")
	}
	reason = strings.TrimSpace(req.Reason)
	if reason == "" {
		return "", "", 0, standin.Errorf(standin.EInvalid, "Give the reason for impersonating, such as the ticket's problem.")
	}
	if problem := standin.TextProblem(reason, 500); problem != "" {
		return "", "", 0, standin.Errorf(standin.EInvalid, "The reason %s", problem)
	}
	ticket = strings.TrimSpace(req.Ticket)
	if ticket != "" {
		if problem := standin.TextProblem(ticket, 100); problem != "" {
			return "", "", 0, standin.Errorf(standin.EInvalid, "The ticket reference %s", problem)
		}
	}
	d = s.cfg.DefaultDuration
	if req.Minutes != 0 {
		maxMinutes := int64(s.cfg.MaxDuration / time.Minute)
		if req.Minutes < 1 || int64(req.Minutes) > maxMinutes {
			return "", "", 0, standin.Errorf(standin.EInvalid, "An impersonation lasts from 1 to %d minutes.", maxMinutes)
		}
		d = time.Duration(req.Minutes) * time.Minute
	}
	return reason, ticket, d, nil
}

func conflictMessage(hc *standin.HoldConflict, actor, target *standin.User, loc *time.Location) string {
	h := hc.Holder
	switch {
	case hc.PersonID == target.ID && hc.Role == "subject":
		return fmt.Sprintf("%s is already being impersonated by %s (since %s).", target.Name, h.ActorName, h.StartedAt.In(loc).Format("15:04 MST"))
	case hc.PersonID == target.ID:
		return fmt.Sprintf("%s is impersonating %s right now; impersonations do not chain.", target.Name, h.SubjectName)
	case hc.Role == "subject":
		return fmt.Sprintf("You are being impersonated by %s right now; impersonations do not chain.", h.ActorName)
	}
	return fmt.Sprintf("You are already impersonating %s.", h.SubjectName)
}

// undo removes an impersonation whose started event could not be written.
func (s *Service) undo(imp *standin.Impersonation) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.store.EndImpersonation(ctx, imp.ID, standin.CauseActorSessionGone,
		&standin.User{ID: imp.ActorID, Name: imp.ActorName, Email: imp.ActorEmail}, s.cfg.Now()); err != nil {
		s.cfg.Logger.Error("could not undo an unaudited impersonation", "impersonation", imp.ID, "err", err)
	}
}

// endAfterFault ends an impersonation that started but whose session could
// not switch to it.
func (s *Service) endAfterFault(imp *standin.Impersonation, p *standin.Principal, o standin.Origin) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.end(ctx, imp.ID, standin.CauseActorSessionGone, p.Actor, o); err != nil {
		s.cfg.Logger.Error("could not end an impersonation after a session fault", "impersonation", imp.ID, "err", err)
	}
}

// Stop ends the actor's impersonation at their request. From the session
// that impersonates, the session rotates back to the actor alone; from
// another of the actor's sessions (after a crash, or a tab left behind),
// it ends the impersonation the actor holds there, and that session
// learns it on its next request while this one stays as it is (token
// "" and sess the current session). EConflict when the actor holds none.
func (s *Service) Stop(ctx context.Context, p *standin.Principal, o standin.Origin) (*standin.Impersonation, string, *standin.Session, error) {
	if p.Impersonation == nil {
		imp, err := s.heldBy(ctx, p.Actor.ID)
		if err != nil {
			return nil, "", nil, err
		}
		if imp == nil {
			return nil, "", nil, standin.Errorf(standin.EConflict, "You are not impersonating anyone.")
		}
		ended, err := s.endOrLoad(ctx, imp.ID, standin.CauseEndedByActor, p.Actor, o)
		return ended, "", p.Session, err
	}
	imp, err := s.endOrLoad(ctx, p.Impersonation.ID, standin.CauseEndedByActor, p.Actor, o)
	if err != nil {
		return nil, "", nil, err
	}
	token, sess, err := s.sessions.Rotate(ctx, p.Session, "")
	if err != nil {
		return nil, "", nil, err
	}
	return imp, token, sess, nil
}

// heldBy returns the active impersonation actorID conducts, or nil.
func (s *Service) heldBy(ctx context.Context, actorID string) (*standin.Impersonation, error) {
	all, err := s.store.ActiveImpersonations(ctx)
	if err != nil {
		return nil, err
	}
	for _, imp := range all {
		if imp.ActorID == actorID {
			return imp, nil
		}
	}
	return nil, nil
}

// endOrLoad ends impersonation id; if something else ended it a moment
// before (expiry, a revoke), it returns it as that end left it: the
// actor asked for it to be over, and it is.
func (s *Service) endOrLoad(ctx context.Context, id, cause string, by *standin.User, o standin.Origin) (*standin.Impersonation, error) {
	imp, err := s.end(ctx, id, cause, by, o)
	if standin.ErrorCode(err) == standin.EConflict {
		return s.store.ImpersonationByID(ctx, id)
	}
	return imp, err
}

// Revoke ends an impersonation from outside it: its own actor from any of
// their sessions (the cause is then ended_by_actor), managers those of
// users in projects they lead, admins and owners any. ENotFound for an
// unknown id and for one the caller may not see, alike, so that its
// existence is not revealed; EConflict when it already ended.
func (s *Service) Revoke(ctx context.Context, p *standin.Principal, id string, o standin.Origin) (*standin.Impersonation, error) {
	imp, err := s.Get(ctx, p.Subject, id)
	if err != nil {
		return nil, err
	}
	cause := standin.CauseRevoked
	if imp.ActorID == p.Subject.ID {
		cause = standin.CauseEndedByActor
	}
	return s.end(ctx, id, cause, p.Actor, o)
}

func (s *Service) mayRevoke(ctx context.Context, who, subject *standin.User) bool {
	return s.allowedIn(ctx, who, standin.ActRevoke, subject.ProjectIDs())
}

// allowedIn reports whether who may do action on impersonations of
// someone in projects: everywhere, or in one of them.
func (s *Service) allowedIn(ctx context.Context, who *standin.User, action string, projects []string) bool {
	if s.rbac.Check(ctx, who, action, standin.KindImpersonation, "").Allowed {
		return true
	}
	for _, p := range projects {
		if s.rbac.Check(ctx, who, action, standin.KindImpersonation, p).Allowed {
			return true
		}
	}
	return false
}

// CanSee reports whether who may see impersonation imp in lists: its own
// actor, the user it is about (whose console shows it while it runs), and
// those who may revoke it.
func (s *Service) CanSee(ctx context.Context, who *standin.User, imp *standin.Impersonation) bool {
	if imp.ActorID == who.ID || imp.SubjectID == who.ID {
		return true
	}
	subject, err := s.store.UserByID(ctx, imp.SubjectID)
	if err != nil {
		return false
	}
	return s.mayRevoke(ctx, who, subject) || s.mayWatch(ctx, who, imp, subject)
}

// Get returns impersonation id, running or ended, when who may see it (see
// CanSee). ENotFound for an unknown id and for one who may not see, so
// its existence is not revealed.
func (s *Service) Get(ctx context.Context, who *standin.User, id string) (*standin.Impersonation, error) {
	imp, err := s.store.ImpersonationByID(ctx, id)
	if err != nil && standin.ErrorCode(err) != standin.ENotFound {
		return nil, err
	}
	if imp == nil || !s.CanSee(ctx, who, imp) {
		return nil, standin.Errorf(standin.ENotFound, "There is no impersonation with this id that you may see.")
	}
	return imp, nil
}

// Active lists the active impersonations who may see.
func (s *Service) Active(ctx context.Context, who *standin.User) ([]*standin.Impersonation, error) {
	all, err := s.store.ActiveImpersonations(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]*standin.Impersonation, 0, len(all))
	for _, imp := range all {
		if imp.ActiveAt(now) && s.CanSee(ctx, who, imp) {
			out = append(out, imp)
		}
	}
	return out, nil
}

// end ends an impersonation with a cause, audits it, takes its sessions
// out of it, notifies the subject and tells OnEnded. Ending is the safe
// direction: if the audit write fails after the end, the error is
// returned and the end stays marked unaudited until RepairEnds writes it.
func (s *Service) end(ctx context.Context, id, cause string, by *standin.User, o standin.Origin) (*standin.Impersonation, error) {
	imp, err := s.store.EndImpersonation(ctx, id, cause, by, s.cfg.Now())
	if err != nil && imp == nil {
		return nil, err
	}
	if err != nil {
		// It ended; only its holds stay behind, and the next start that
		// meets them frees them. The end is still audited and announced.
		s.cfg.Logger.Warn("ended impersonation's holds not freed", "impersonation", id, "err", err)
	}
	seq, auditErr := s.auditEnd(ctx, imp, o)
	sessions, err := s.store.ClearImpersonationSessions(ctx, imp.ID)
	if err != nil {
		s.cfg.Logger.Warn("could not clear sessions of an ended impersonation", "impersonation", imp.ID, "err", err)
	}
	s.notify(ctx, imp, false, seq)
	s.cfg.OnEnded(imp, sessions)
	s.cfg.Logger.Info("impersonation ended", "impersonation", imp.ID, "cause", cause)
	if auditErr != nil {
		return imp, auditErr
	}
	return imp, nil
}

// auditEnd writes an ended impersonation's event, marks the end as
// audited and returns the event's seq. If the log cannot take it now, the
// end stays marked unaudited and RepairEnds writes it later, even across a
// restart.
func (s *Service) auditEnd(ctx context.Context, imp *standin.Impersonation, o standin.Origin) (int64, error) {
	ev := &standin.Event{
		Type: standin.EventImpersonationEnded, Time: imp.EndedAt,
		Actor:           standin.EventUser{ID: imp.ActorID, Name: imp.ActorName},
		Subject:         standin.EventUser{ID: imp.SubjectID, Name: imp.SubjectName},
		ImpersonationID: imp.ID, Action: "impersonation.end", Outcome: imp.Cause, Reason: imp.Reason,
		Object: endedBy(imp), IP: o.IP, UserAgent: o.UserAgent,
	}
	if subject, err := s.store.UserByID(ctx, imp.SubjectID); err == nil {
		ev.Projects = subject.ProjectIDs()
	}
	if err := s.audit.Append(ctx, ev); err != nil {
		return 0, err
	}
	if err := s.store.MarkEndAudited(ctx, imp.ID); err != nil {
		// The event is in the log; the repair finds it there.
		s.cfg.Logger.Warn("could not mark an impersonation end audited", "impersonation", imp.ID, "err", err)
	}
	return ev.Seq, nil
}

// endedBy is the object of an end's event: who ended it, by id, name and
// address ("ended_by:<id> Maya Manager (manager@example.org)"); only
// "ended_by:" when no one did (expiry).
func endedBy(imp *standin.Impersonation) string {
	if imp.EndedBy == "" {
		return "ended_by:"
	}
	return "ended_by:" + imp.EndedBy + " " + standin.Named(imp.EndedByName, imp.EndedByEmail)
}

// endGrace is how long after an end its own request has to write the
// end's event before the repair may: longer than an audit append can
// take (its timeouts bound it to well under a minute).
const endGrace = 2 * time.Minute

// RepairEnds writes the audit events of ends that were not audited (the
// log or the database failed between the end and its event). The server
// runs it at start-up and with the expiry sweep. An end is repaired only
// after endGrace, by the one node that claims it for the current grace
// period, and only if the log does not hold its event already (the write
// may have been stored with no one left to mark it): each end has exactly
// one event.
func (s *Service) RepairEnds(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	ends, err := s.store.UnauditedEnds(ctx, now.Add(-endGrace))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, imp := range ends {
		term := now.UnixNano() / int64(endGrace)
		mine, err := s.store.Claim(ctx, fmt.Sprintf("end-repair:%s:%d", imp.ID, term), now)
		if err != nil {
			return n, err
		}
		if !mine {
			continue
		}
		written, err := s.endWritten(ctx, imp.ID)
		if err != nil {
			return n, err
		}
		if written {
			if err := s.store.MarkEndAudited(ctx, imp.ID); err != nil {
				return n, err
			}
			continue
		}
		if _, err := s.auditEnd(ctx, imp, standin.Origin{}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// endWritten reports whether the log holds impersonation id's end event.
func (s *Service) endWritten(ctx context.Context, id string) (bool, error) {
	return s.written(ctx, standin.EventFilter{ImpersonationID: id, Type: standin.EventImpersonationEnded},
		func(*standin.Event) bool { return true })
}

// written reports whether the log holds an event matching f for which
// match holds, after settling appends whose outcome was in doubt: how a
// repair learns whether a write a fault interrupted reached the log.
func (s *Service) written(ctx context.Context, f standin.EventFilter, match func(*standin.Event) bool) (bool, error) {
	if err := s.audit.Settle(ctx); err != nil {
		return false, err
	}
	found := false
	err := s.audit.EventsMatching(ctx, f, func(e *standin.Event) error {
		found = found || match(e)
		return nil
	})
	return found, err
}

// Resolve turns a session's principal into the effective one: the subject
// while an impersonation is in force. It ends the impersonation, and
// returns the actor alone, when it has expired, the subject was suspended
// or the actor lost the right to impersonate.
func (s *Service) Resolve(ctx context.Context, p *standin.Principal) (*standin.Principal, error) {
	if p.Session.ImpersonationID == "" {
		return p, nil
	}
	imp, err := s.store.ImpersonationByID(ctx, p.Session.ImpersonationID)
	if standin.ErrorCode(err) == standin.ENotFound {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	cause := ""
	var subject *standin.User
	switch {
	case !imp.EndedAt.IsZero():
		return p, nil
	case !imp.ActiveAt(now):
		cause = standin.CauseExpired
	case !s.rbac.Check(ctx, p.Actor, standin.ActStart, standin.KindImpersonation, "").Allowed:
		cause = standin.CauseActorLostRight
	default:
		subject, err = s.store.UserByID(ctx, imp.SubjectID)
		if err != nil && standin.ErrorCode(err) != standin.ENotFound {
			return nil, err
		}
		switch bars := standin.ImpersonationBars(p.Actor, subject); {
		case bars.Has(standin.BarSuspended):
			cause = standin.CauseTargetSuspended
		case len(bars) > 0:
			// Roles changed since it started: the rule that allowed it
			// no longer holds.
			cause = standin.CauseActorLostRight
		}
	}
	if cause != "" {
		if _, err := s.end(ctx, imp.ID, cause, nil, standin.Origin{}); err != nil && standin.ErrorCode(err) != standin.EConflict {
			return nil, err
		}
		p.Session.ImpersonationID = ""
		p.Session.RotatePending = true
		return p, nil
	}
	return &standin.Principal{Actor: p.Actor, Subject: subject, Session: p.Session, Impersonation: imp}, nil
}

// ExpireDue ends every impersonation past its expiry; the server calls it
// on a timer so expiry happens with no request in flight.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	if _, err := s.RepairEnds(ctx); err != nil {
		s.cfg.Logger.Warn("unaudited impersonation ends still pending", "err", err)
	}
	all, err := s.store.ActiveImpersonations(ctx)
	if err != nil {
		return 0, err
	}
	now, n := s.cfg.Now(), 0
	for _, imp := range all {
		cause := ""
		if !imp.ActiveAt(now) {
			cause = standin.CauseExpired
		} else if cause, err = s.invalidated(ctx, imp); err != nil {
			return n, err
		}
		if cause == "" {
			continue
		}
		if _, err := s.end(ctx, imp.ID, cause, nil, standin.Origin{}); err != nil && standin.ErrorCode(err) != standin.EConflict {
			return n, err
		}
		n++
	}
	return n, nil
}

// orphanGrace is how long a start may take to switch the actor's session
// to its impersonation. An impersonation older than this that no session
// is in has lost its actor: the session expired unseen, or the start
// failed with the database and could not undo its record.
const orphanGrace = time.Minute

// invalidated says why an unexpired impersonation may no longer run: the
// subject was suspended, the actor lost the right (or no longer outranks
// the subject), or no session is in it. "" when it may.
func (s *Service) invalidated(ctx context.Context, imp *standin.Impersonation) (string, error) {
	if s.cfg.Now().Sub(imp.StartedAt) > orphanGrace {
		in, err := s.store.ImpersonationInSession(ctx, imp.ID)
		if err != nil {
			return "", err
		}
		if !in {
			return standin.CauseActorSessionGone, nil
		}
	}
	subject, err := s.store.UserByID(ctx, imp.SubjectID)
	if err != nil && standin.ErrorCode(err) != standin.ENotFound {
		return "", err
	}
	actor, err := s.store.UserByID(ctx, imp.ActorID)
	if err != nil && standin.ErrorCode(err) != standin.ENotFound {
		return "", err
	}
	switch bars := standin.ImpersonationBars(actor, subject); {
	case bars.Has(standin.BarSuspended):
		return standin.CauseTargetSuspended, nil
	case actor == nil || !actor.Active() || !s.rbac.Check(ctx, actor, standin.ActStart, standin.KindImpersonation, "").Allowed ||
		len(bars) > 0:
		return standin.CauseActorLostRight, nil
	}
	return "", nil
}

// EndFor ends the impersonations a user takes part in: as actor with
// asActor as the cause, as subject with asSubject; an empty cause leaves
// that role's impersonations alone (signing out ends only those one
// conducts, a suspension both).
func (s *Service) EndFor(ctx context.Context, userID, asActor, asSubject string, by *standin.User, o standin.Origin) error {
	all, err := s.store.ActiveImpersonations(ctx)
	if err != nil {
		return err
	}
	for _, imp := range all {
		cause := ""
		switch userID {
		case imp.ActorID:
			cause = asActor
		case imp.SubjectID:
			cause = asSubject
		}
		if cause == "" {
			continue
		}
		if _, err := s.end(ctx, imp.ID, cause, by, o); err != nil && standin.ErrorCode(err) != standin.EConflict {
			return err
		}
	}
	return nil
}

// notify tells the subject, in a notification kept for later reading;
// seq is the audit seq of the event it tells of.
func (s *Service) notify(ctx context.Context, imp *standin.Impersonation, started bool, seq int64) {
	n := &standin.Notification{UserID: imp.SubjectID, Seq: seq, ActorName: imp.ActorName, ActorEmail: imp.ActorEmail,
		Reason: imp.Reason, Until: imp.ExpiresAt, At: s.cfg.Now(), ImpersonationID: imp.ID}
	if n.ActorEmail == "" { // recorded before addresses were kept with it
		if actor, err := s.store.UserByID(ctx, imp.ActorID); err == nil {
			n.ActorEmail = actor.Email
		}
	}
	// The name alone is whatever the agent chose to be called; the
	// address is theirs alone.
	who := standin.Named(imp.ActorName, n.ActorEmail)
	if started {
		n.Type, n.Title = standin.EventImpersonationStarted, "Support is viewing your account"
		n.Body = fmt.Sprintf("%s started a support session on your account until %s. Reason: %s",
			who, imp.ExpiresAt.In(s.cfg.Location).Format("15:04 MST"), imp.Reason)
	} else {
		n.Type, n.Title = standin.EventImpersonationEnded, "Support session ended"
		n.Body = fmt.Sprintf("The support session of %s on your account has ended: %s.", who, imp.EndWords())
		if sum, err := s.summarize(ctx, imp); err != nil {
			s.cfg.Logger.Warn("could not summarize an ended impersonation", "impersonation", imp.ID, "err", err)
		} else {
			n.Body += " " + sum.Words()
		}
	}
	if err := s.store.AddNotification(ctx, n); err != nil {
		s.cfg.Logger.Warn("could not store a notification", "user", imp.SubjectID, "err", err)
		return
	}
	s.cfg.OnNotify(n)
}

func (s *Service) event(typ string, p *standin.Principal, target *standin.User, impID string, o standin.Origin) *standin.Event {
	return standin.NewEvent(typ, p.Actor, target, impID, o)
}
