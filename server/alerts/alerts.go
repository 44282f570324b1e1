// Package alerts watches the audit log for suspicious sessions and raises
// alerts: a session started outside the facility's hours, on someone of a
// staff role, with many refusals within minutes, or running long; one
// agent starting many sessions within an hour; one user impersonated
// many times within a day. Each alert is raised once for its condition
// (a unique insert of the condition's id), is an alert.raised audit event
// (so it reaches the Activity panel of those in scope, and the sinks), and
// can be acknowledged once with a note (alert.acknowledged).
//
// One node at a time evaluates (a lease): it reads the last day of the
// log into its counts when it takes over, then follows the log. Counts
// are rebuilt, never stored: what survives a restart is which alerts were
// raised.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"standin/server/standin"
)

// Store keeps the alerts, and reads what the rules need.
type Store interface {
	RaiseAlert(ctx context.Context, a *standin.Alert) (bool, error)
	MarkAlertWritten(ctx context.Context, id string, seq int64) error
	DropAlert(ctx context.Context, id string) error
	AlertByID(ctx context.Context, id string) (*standin.Alert, error)
	AckAlert(ctx context.Context, id string, by standin.EventUser, at time.Time, note string) error
	Alerts(ctx context.Context, limit int) ([]*standin.Alert, error)
	Claim(ctx context.Context, key string, at time.Time) (bool, error)
	UserByID(ctx context.Context, id string) (*standin.User, error)
	ActiveImpersonations(ctx context.Context) ([]*standin.Impersonation, error)
	ImpersonationSettings(ctx context.Context) (*standin.ImpersonationSettings, error)
}

// Log is the audit log (audit.Log).
type Log interface {
	Append(ctx context.Context, evs ...*standin.Event) error
	EventsAfter(ctx context.Context, afterSeq int64, fn func(*standin.Event) error) error
	EventsMatching(ctx context.Context, f standin.EventFilter, fn func(*standin.Event) error) error
	ByObject(ctx context.Context, typ, object string) (*standin.Event, error)
}

// Leases runs a job on one node at a time (lease.Leases).
type Leases interface {
	Every(ctx context.Context, job string, period, term time.Duration, fn func(context.Context))
}

// Config configures an Evaluator. Store, Log and Leases are required.
type Config struct {
	Store  Store
	Log    Log
	Leases Leases
	// Location is the facility's time zone, for its hours (UTC).
	Location *time.Location
	// Period is how often the evaluating node reads the log (1 s); Term
	// is its lease's term (10 s).
	Period, Term time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Evaluator evaluates the rules on the log as it grows.
type Evaluator struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	primed   bool
	last     int64 // seq of the newest event evaluated
	lastTurn time.Time
	sweptAt  time.Time
	refusals map[string][]time.Time // by session
	starts   map[string][]time.Time // by agent
	targets  map[string][]time.Time // by user
}

// New returns an Evaluator; Run starts it.
func New(cfg Config) *Evaluator {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Period <= 0 {
		cfg.Period = time.Second
	}
	if cfg.Term <= 0 {
		cfg.Term = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Evaluator{cfg: cfg, log: cfg.Logger}
}

// Run evaluates, on the node holding the lease, until ctx ends.
func (e *Evaluator) Run(ctx context.Context) {
	e.cfg.Leases.Every(ctx, "alerts", e.cfg.Period, e.cfg.Term, func(ctx context.Context) {
		if err := e.Turn(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("evaluating the alert rules; trying again shortly", "err", err)
		}
	})
}

// window is the longest a rule looks back.
const window = 24 * time.Hour

// Turn evaluates what was appended since the last turn; after a gap
// (this node did not evaluate for a while, or never) it first reads the
// last day of the log again. Every alert it raises is raised once,
// however many turns or nodes meet its condition.
func (e *Evaluator) Turn(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	if now.Sub(e.lastTurn) > 3*e.cfg.Period+e.cfg.Term {
		e.primed = false
	}
	e.lastTurn = now
	set, err := e.cfg.Store.ImpersonationSettings(ctx)
	if err != nil {
		return err
	}
	rules := set.Alerts.WithDefaults()
	if !e.primed {
		e.refusals, e.starts, e.targets = map[string][]time.Time{}, map[string][]time.Time{}, map[string][]time.Time{}
		e.last = 0
		err := e.cfg.Log.EventsMatching(ctx, standin.EventFilter{Since: now.Add(-window)}, func(ev *standin.Event) error {
			return e.evaluate(ctx, rules, ev)
		})
		if err != nil {
			return fmt.Errorf("read the last day of the log: %w", err)
		}
		e.primed = true
	}
	if err := e.cfg.Log.EventsAfter(ctx, e.last, func(ev *standin.Event) error { return e.evaluate(ctx, rules, ev) }); err != nil {
		return fmt.Errorf("follow the log: %w", err)
	}
	if now.Sub(e.sweptAt) < sweepEvery {
		return nil
	}
	e.sweptAt = now
	if err := e.longSessions(ctx, rules, now); err != nil {
		return err
	}
	return e.repair(ctx, now)
}

// sweepEvery is how often the sessions in force are checked for their
// length, and alerts left without their events repaired.
const sweepEvery = 10 * time.Second

// evaluate counts ev and raises what its rules say.
func (e *Evaluator) evaluate(ctx context.Context, rules standin.AlertRules, ev *standin.Event) error {
	if ev.Seq <= e.last {
		return nil
	}
	e.last = ev.Seq
	switch ev.Type {
	case standin.EventImpersonationStarted:
		return e.started(ctx, rules, ev)
	case standin.EventActionDenied:
		if ev.ImpersonationID == "" {
			return nil
		}
		times := recent(append(e.refusals[ev.ImpersonationID], ev.Time), ev.Time, time.Duration(rules.RefusalMinutes)*time.Minute)
		e.refusals[ev.ImpersonationID] = times
		if len(times) >= rules.Refusals {
			return e.raise(ctx, ev, RuleAlert{ID: "refusals:" + ev.ImpersonationID, Rule: standin.RuleRefusals,
				Words: fmt.Sprintf("%d refusals within %d minutes in %s's session as %s.", len(times), rules.RefusalMinutes, ev.Actor.Name, ev.Subject.Name)})
		}
	case standin.EventImpersonationEnded:
		delete(e.refusals, ev.ImpersonationID)
	}
	return nil
}

// started evaluates the rules about a session's start.
func (e *Evaluator) started(ctx context.Context, rules standin.AlertRules, ev *standin.Event) error {
	if !rules.InHours(ev.Time, e.cfg.Location) {
		at := ev.Time.In(e.cfg.Location).Format("Mon 15:04 MST")
		if err := e.raise(ctx, ev, RuleAlert{ID: "off_hours:" + ev.ImpersonationID, Rule: standin.RuleOffHours,
			Words: fmt.Sprintf("%s started a session as %s at %s, outside the facility's hours.", ev.Actor.Name, ev.Subject.Name, at)}); err != nil {
			return err
		}
	}
	target, err := e.cfg.Store.UserByID(ctx, ev.Subject.ID)
	if err != nil && standin.ErrorCode(err) != standin.ENotFound {
		return err
	}
	if target != nil && target.Role.Rank() >= standin.RoleSupport.Rank() {
		if err := e.raise(ctx, ev, RuleAlert{ID: "privileged_target:" + ev.ImpersonationID, Rule: standin.RulePrivilegedTarget,
			Words: fmt.Sprintf("%s started a session as %s, who has the staff role %q.", ev.Actor.Name, ev.Subject.Name, target.Role)}); err != nil {
			return err
		}
	}
	starts := recent(append(e.starts[ev.Actor.ID], ev.Time), ev.Time, time.Hour)
	e.starts[ev.Actor.ID] = starts
	if len(starts) > rules.StartsPerHour {
		// One alert per agent per hour of starts: the hour of the first.
		if err := e.raise(ctx, ev, RuleAlert{ID: fmt.Sprintf("agent_starts:%s:%d", ev.Actor.ID, starts[0].Unix()/3600), Rule: standin.RuleAgentStarts,
			Words: fmt.Sprintf("%s started %d sessions within an hour.", ev.Actor.Name, len(starts))}); err != nil {
			return err
		}
	}
	targets := recent(append(e.targets[ev.Subject.ID], ev.Time), ev.Time, window)
	e.targets[ev.Subject.ID] = targets
	if len(targets) > rules.RepeatsPerDay {
		return e.raise(ctx, ev, RuleAlert{ID: fmt.Sprintf("repeated_target:%s:%d", ev.Subject.ID, targets[0].Unix()/86400), Rule: standin.RuleRepeatedTarget,
			Words: fmt.Sprintf("%s was impersonated %d times within a day.", ev.Subject.Name, len(targets))})
	}
	return nil
}

// recent keeps the times within d before now.
func recent(times []time.Time, now time.Time, d time.Duration) []time.Time {
	cut := slices.IndexFunc(times, func(t time.Time) bool { return now.Sub(t) < d })
	if cut < 0 {
		return times[:0]
	}
	return times[cut:]
}

// longSessions raises an alert for each session in force longer than the
// rules allow.
func (e *Evaluator) longSessions(ctx context.Context, rules standin.AlertRules, now time.Time) error {
	all, err := e.cfg.Store.ActiveImpersonations(ctx)
	if err != nil {
		return err
	}
	long := time.Duration(rules.LongMinutes) * time.Minute
	for _, imp := range all {
		if !imp.ActiveAt(now) || now.Sub(imp.StartedAt) < long {
			continue
		}
		ev := &standin.Event{Actor: standin.EventUser{ID: imp.ActorID, Name: imp.ActorName},
			Subject: standin.EventUser{ID: imp.SubjectID, Name: imp.SubjectName}, ImpersonationID: imp.ID}
		if err := e.raise(ctx, ev, RuleAlert{ID: "long_session:" + imp.ID, Rule: standin.RuleLongSession,
			Words: fmt.Sprintf("%s's session as %s has run for more than %d minutes.", imp.ActorName, imp.SubjectName, rules.LongMinutes)}); err != nil {
			return err
		}
	}
	return nil
}

// RuleAlert is what a rule found: the condition's id, the rule, and
// what happened in words.
type RuleAlert struct {
	ID, Rule, Words string
}

// raise raises the alert about ev's session once: its unique insert
// decides, then its event is written. An event that cannot be written
// gives the condition back, to be raised again.
func (e *Evaluator) raise(ctx context.Context, about *standin.Event, found RuleAlert) error {
	a := &standin.Alert{ID: found.ID, Rule: found.Rule, Words: found.Words, Actor: about.Actor, Subject: about.Subject,
		ImpersonationID: about.ImpersonationID, RaisedAt: e.cfg.Now().UTC()}
	if subject, err := e.cfg.Store.UserByID(ctx, about.Subject.ID); err == nil {
		a.Projects = subject.ProjectIDs()
	}
	won, err := e.cfg.Store.RaiseAlert(ctx, a)
	if err != nil || !won {
		return err
	}
	return e.write(ctx, a)
}

// write appends a's alert.raised event and records its seq.
func (e *Evaluator) write(ctx context.Context, a *standin.Alert) error {
	ev := raisedEvent(a)
	if err := e.cfg.Log.Append(ctx, ev); err != nil {
		if !errors.Is(err, standin.ErrInDoubt) {
			if derr := e.cfg.Store.DropAlert(context.WithoutCancel(ctx), a.ID); derr != nil {
				e.log.Warn("an alert whose event failed stays; the repair writes it", "alert", a.ID, "err", derr)
			}
		}
		return err
	}
	e.log.Warn("alert raised", "alert", a.ID, "rule", a.Rule)
	return e.cfg.Store.MarkAlertWritten(ctx, a.ID, ev.Seq)
}

// raisedEvent is a's alert.raised event: about the agent and the user
// of the session, in the user's projects, so those in scope see it.
func raisedEvent(a *standin.Alert) *standin.Event {
	return &standin.Event{Type: standin.EventAlertRaised, Time: a.RaisedAt, Actor: a.Actor, Subject: a.Subject,
		ImpersonationID: a.ImpersonationID, Action: "alert.raise", Object: "alert:" + a.ID, Outcome: a.Rule, Reason: a.Words,
		Projects: a.Projects}
}

// repairGrace is how long an alert may wait for its event before the
// repair writes it: longer than an append can take.
const repairGrace = time.Minute

// repair writes the events of alerts a stop left without theirs: found
// in the log (the write was stored), only recorded; else written.
func (e *Evaluator) repair(ctx context.Context, now time.Time) error {
	all, err := e.cfg.Store.Alerts(ctx, 200)
	if err != nil {
		return err
	}
	for _, a := range all {
		if a.Seq != 0 || now.Sub(a.RaisedAt) < repairGrace {
			continue
		}
		ev, err := e.cfg.Log.ByObject(ctx, standin.EventAlertRaised, "alert:"+a.ID)
		switch {
		case err == nil && ev != nil:
			err = e.cfg.Store.MarkAlertWritten(ctx, a.ID, ev.Seq)
		case err == nil || standin.ErrorCode(err) == standin.ENotFound:
			err = e.write(ctx, a)
		}
		if err != nil {
			return fmt.Errorf("repair alert %s: %w", a.ID, err)
		}
	}
	return nil
}

// Access decides where someone may list and acknowledge alerts.
type Access interface {
	Scope(ctx context.Context, p *standin.Principal, action, kind string, projects []string) (standin.Scope, error)
}

// Service lists and acknowledges alerts for those in scope.
type Service struct {
	store  Store
	log    Log
	access Access
	now    func() time.Time
}

// NewService returns a Service.
func NewService(store Store, log Log, access Access, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, log: log, access: access, now: now}
}

// inScope reports whether p may do act on a.
func (s *Service) inScope(ctx context.Context, p *standin.Principal, act string, a *standin.Alert) (bool, error) {
	sc, err := s.access.Scope(ctx, p, act, standin.KindAlert, a.Projects)
	if err != nil {
		return false, err
	}
	return sc.All || len(sc.Projects) > 0, nil
}

// List returns the newest alerts (at most 100) p may see: all for admins,
// those about users of their projects for project leads.
func (s *Service) List(ctx context.Context, p *standin.Principal) ([]*standin.Alert, error) {
	all, err := s.store.Alerts(ctx, 100)
	if err != nil {
		return nil, err
	}
	out := make([]*standin.Alert, 0, len(all))
	for _, a := range all {
		if a.Seq == 0 {
			continue // not in the log yet
		}
		ok, err := s.inScope(ctx, p, standin.ActList, a)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// Acknowledge records, once, that p looked into alert id, with a note,
// audited as alert.acknowledged. ENotFound for an alert p may not see;
// EConflict when it was acknowledged already.
func (s *Service) Acknowledge(ctx context.Context, p *standin.Principal, id, note string, o standin.Origin) (*standin.Alert, error) {
	note = strings.TrimSpace(note)
	if problem := standin.TextProblem(note, 500); note != "" && problem != "" {
		return nil, standin.Errorf(standin.EInvalid, "The note %s", problem)
	}
	if p.Impersonation != nil {
		return nil, standin.Errorf(standin.EForbidden, "Alerts are acknowledged as yourself, not while impersonating.")
	}
	a, err := s.store.AlertByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := s.inScope(ctx, p, standin.ActList, a); err != nil || !ok || a.Seq == 0 {
		if err != nil {
			return nil, err
		}
		return nil, standin.Errorf(standin.ENotFound, "There is no such alert.")
	}
	if ok, err := s.inScope(ctx, p, standin.ActAcknowledge, a); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return nil, standin.Errorf(standin.EForbidden, "You may not acknowledge this alert.")
	}
	now := s.now().UTC()
	won, err := s.store.Claim(ctx, "alert-ack:"+id, now)
	if err != nil {
		return nil, err
	}
	if !won {
		return nil, standin.Errorf(standin.EConflict, "Someone acknowledged this alert already.")
	}
	by := standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name}
	ev := p.EventOf(standin.EventAlertAcknowledged, o).Concerning("alert.acknowledge", "alert:"+id, "", a.Rule, note)
	ev.Projects = a.Projects
	ev.ImpersonationID = a.ImpersonationID
	if err := s.log.Append(ctx, ev); err != nil {
		return nil, err
	}
	if err := s.store.AckAlert(ctx, id, by, now, note); err != nil {
		return nil, err
	}
	a.AckedAt, a.AckedBy, a.AckNote = now, by, note
	return a, nil
}
