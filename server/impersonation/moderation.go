package impersonation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"standin/server/standin"
)

// Moderated sessions run only while a moderator watches them live.
//
// A moderator's console page on a session renews its watch while its
// live connection is open (WatchSession); the watches are kept the same
// on every node (Moderation). Every node refuses the actor's requests at
// once while nobody watches (Paused), by what it knows itself: a node
// that has not heard of a watch yet refuses, never the other way round.
//
// What a pause means beyond refusals is decided by one owner, the node
// that holds the moderation lease (Moderate): the audit events
// impersonation.paused and impersonation.resumed, the moderators told,
// and the end, with the cause moderator_absent, of a session paused for
// longer than the grace period. Each change is the session's next step,
// decided by a unique claim, so two nodes that both believe they own the
// job write each step once. Steps alternate: a session starts paused
// (waiting for its first moderator), odd steps resume it and even steps
// pause it again.

// Moderation keeps the moderators' watches of sessions, the same on
// every node.
type Moderation interface {
	// Watch records that moderator watches session impersonationID on
	// page viewID, or renews that watch; watches not renewed lapse.
	Watch(impersonationID, viewID string, moderator *standin.User)
	// Unwatch ends the watch of page viewID.
	Unwatch(impersonationID, moderatorID, viewID string)
	// Watching lists who watches session impersonationID now.
	Watching(impersonationID string) []standin.EventUser
	// Watches reports whether the watch of moderatorID's page viewID is
	// known here yet (or still).
	Watches(impersonationID, moderatorID, viewID string) bool
}

// noModeration watches nothing: every moderated session stays paused.
type noModeration struct{}

func (noModeration) Watch(string, string, *standin.User) {}
func (noModeration) Unwatch(string, string, string)      {}
func (noModeration) Watching(string) []standin.EventUser { return nil }
func (noModeration) Watches(string, string, string) bool { return false }

// stepGrace is how long a step's claim may stand without its event
// before another owner takes the step over: longer than an audit
// append can take.
const stepGrace = time.Minute

// moderated is what the owner knows of one moderated session: how many
// steps it took, whether it is paused, and since when.
type moderated struct {
	steps  int
	paused bool
	since  time.Time
}

// moderationState is the owner's memory of the sessions it moderates,
// read again from the log for a session it has not seen.
type moderationState struct {
	mu       sync.Mutex
	sessions map[string]*moderated
}

// ModerationView is how a moderated session stands as this node sees it.
type ModerationView struct {
	Paused     bool
	Moderators []standin.EventUser
	// EndsAt is when a paused session ends if no moderator comes: known
	// once the owner recorded the pause, zero before.
	EndsAt time.Time
}

// Paused reports whether imp must refuse its actor's requests now: a
// moderated session nobody watches.
func (s *Service) Paused(imp *standin.Impersonation) bool {
	return imp != nil && imp.Moderated && len(s.cfg.Moderation.Watching(imp.ID)) == 0
}

// Moderation says how the moderated session imp stands: paused or not,
// who watches it, and when a pause ends it.
func (s *Service) Moderation(ctx context.Context, imp *standin.Impersonation) (*ModerationView, error) {
	if imp == nil || !imp.Moderated {
		return nil, nil
	}
	v := &ModerationView{Moderators: s.cfg.Moderation.Watching(imp.ID)}
	v.Paused = len(v.Moderators) == 0
	if !v.Paused || !imp.EndedAt.IsZero() {
		return v, nil
	}
	set, err := s.store.ImpersonationSettings(ctx)
	if err != nil {
		return nil, err
	}
	// Read from the log: another node's steps do not reach this one's
	// memory, which only the owner keeps.
	st, err := s.readModeration(ctx, imp)
	if err != nil {
		return nil, err
	}
	if st.paused {
		v.EndsAt = st.since.Add(time.Duration(set.GraceSeconds) * time.Second)
	}
	return v, nil
}

// PausedError is the refusal of a request in a paused session.
func (s *Service) PausedError(ctx context.Context, imp *standin.Impersonation) error {
	msg := "This session is paused: no moderator is watching it."
	why := "It runs only while a moderator watches it live, and resumes as soon as one opens it."
	if v, err := s.Moderation(ctx, imp); err == nil && v != nil && !v.EndsAt.IsZero() {
		why += fmt.Sprintf(" If none does, it ends at %s.", v.EndsAt.In(s.cfg.Location).Format("15:04:05 MST"))
	}
	return &standin.Error{Code: standin.EPaused, Message: msg, Reason: why}
}

// mayModerate decides whether who may moderate imp, whose target is
// target as it is now: not its actor nor its target, of a higher role
// than the target, with the right to moderate everywhere or in one of
// the target's projects, and not impersonating anyone (p == nil when
// not asked for a request).
func (s *Service) mayModerate(ctx context.Context, who *standin.User, imp *standin.Impersonation, target *standin.User) error {
	switch {
	case who.ID == imp.ActorID:
		return standin.Errorf(standin.EForbidden, "You cannot moderate your own session.")
	case who.ID == imp.SubjectID:
		return standin.Errorf(standin.EForbidden, "You cannot moderate a session on your own account.")
	case target == nil || who.Role.Rank() <= target.Role.Rank():
		return standin.Errorf(standin.EForbidden, "Only someone of a higher role than the user may moderate a session on them.")
	case !s.allowedIn(ctx, who, standin.ActModerate, target.ProjectIDs()):
		return standin.Errorf(standin.EForbidden, "You do not have permission to moderate sessions on %s.", target.Name)
	}
	return nil
}

// WatchSession records that p watches the moderated session id live on
// the console page viewID, or renews it (pages renew while their live
// connection is open). ENotFound for a session p may not see, EConflict
// for one that is not moderated or no longer in force, EForbidden when
// p may not moderate it or is impersonating.
func (s *Service) WatchSession(ctx context.Context, p *standin.Principal, id, viewID string) (*standin.Impersonation, error) {
	if p.Impersonation != nil {
		return nil, standin.Errorf(standin.EForbidden, "You cannot moderate a session while impersonating someone.")
	}
	imp, err := s.Get(ctx, p.Actor, id)
	if err != nil {
		return nil, err
	}
	switch {
	case !imp.Moderated:
		return nil, standin.Errorf(standin.EConflict, "This session is not moderated.")
	case !imp.ActiveAt(s.cfg.Now()):
		return nil, standin.Errorf(standin.EConflict, "This session has ended.")
	}
	target, err := s.store.UserByID(ctx, imp.SubjectID)
	if err != nil && standin.ErrorCode(err) != standin.ENotFound {
		return nil, err
	}
	if err := s.mayModerate(ctx, p.Actor, imp, target); err != nil {
		return nil, err
	}
	first := !s.cfg.Moderation.Watches(imp.ID, p.Actor.ID, viewID)
	s.cfg.Moderation.Watch(imp.ID, viewID, p.Actor)
	s.settleWatch(ctx, imp.ID, p.Actor.ID, viewID, true)
	if first {
		s.stepNow(ctx, imp)
	}
	return imp, nil
}

// UnwatchSession ends p's watch of session id on page viewID; a page
// that watched nothing changes nothing.
func (s *Service) UnwatchSession(ctx context.Context, p *standin.Principal, id, viewID string) {
	s.cfg.Moderation.Unwatch(id, p.Actor.ID, viewID)
	s.settleWatch(ctx, id, p.Actor.ID, viewID, false)
	if len(s.cfg.Moderation.Watching(id)) > 0 {
		return
	}
	imp, err := s.store.ImpersonationByID(ctx, id)
	if err == nil && imp.Moderated && imp.ActiveAt(s.cfg.Now()) {
		s.stepNow(ctx, imp)
	}
}

// stepNow takes the step a watch's start or end calls for at once, on
// this node, rather than at the owner's next turn: a moderator who comes
// and goes between two turns is audited too. The step is claimed as the
// owner's are, so it is written once whoever takes it; what this node
// knows is read again from the log first, as the owner may have moved
// on. A failure is left to the owner's next turn.
func (s *Service) stepNow(ctx context.Context, imp *standin.Impersonation) {
	s.forget(imp.ID)
	st, err := s.recoverModeration(ctx, imp)
	if err == nil {
		_, err = s.stepDue(ctx, imp, st)
	}
	if err != nil {
		s.cfg.Logger.Warn("a moderation step is left to the next turn", "impersonation", imp.ID, "err", err)
	}
}

// watchSettle bounds the wait for a watch's change to reach this node.
const watchSettle = 2 * time.Second

// settleWatch waits, for at most watchSettle, until this node knows the
// watch of moderatorID's page viewID as started (on) or ended: watches
// travel to every node, this one included, and the answer should say
// how the session stands after the change.
func (s *Service) settleWatch(ctx context.Context, id, moderatorID, viewID string, on bool) {
	deadline := time.Now().Add(watchSettle)
	for s.cfg.Moderation.Watches(id, moderatorID, viewID) != on && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// mayWatch reports whether who may see imp as its moderator.
func (s *Service) mayWatch(ctx context.Context, who *standin.User, imp *standin.Impersonation, subject *standin.User) bool {
	return imp.Moderated && s.mayModerate(ctx, who, imp, subject) == nil
}

// Moderate is the owner's turn (the server runs it every second on the
// node holding the moderation lease): each moderated session in force
// that nobody watches pauses, one that is watched again resumes, and
// one paused for longer than the grace period ends. It returns how many
// steps it took.
func (s *Service) Moderate(ctx context.Context) (int, error) {
	all, err := s.store.ActiveImpersonations(ctx)
	if err != nil {
		return 0, err
	}
	var set *standin.ImpersonationSettings
	now, n := s.cfg.Now(), 0
	live := make(map[string]bool)
	for _, imp := range all {
		if !imp.Moderated || !imp.ActiveAt(now) {
			continue
		}
		live[imp.ID] = true
		if set == nil {
			if set, err = s.store.ImpersonationSettings(ctx); err != nil {
				return n, err
			}
		}
		st, err := s.recoverModeration(ctx, imp)
		if err != nil {
			return n, err
		}
		stepped, err := s.stepDue(ctx, imp, st)
		if !stepped && err == nil && st.paused && now.Sub(st.since) >= time.Duration(set.GraceSeconds)*time.Second {
			_, err = s.end(ctx, imp.ID, standin.CauseModeratorAbsent, nil, standin.Origin{})
			stepped = standin.ErrorCode(err) != standin.EConflict
			if !stepped {
				err = nil
			}
		}
		if err != nil {
			return n, err
		}
		if stepped {
			n++
		}
	}
	s.moderation.mu.Lock()
	for id := range s.moderation.sessions {
		if !live[id] {
			delete(s.moderation.sessions, id)
		}
	}
	s.moderation.mu.Unlock()
	return n, nil
}

// stepDue takes imp's next step if the watches call for one: a
// resumption of a paused session someone watches, a pause of a running
// one nobody watches. stepped says whether one was due.
func (s *Service) stepDue(ctx context.Context, imp *standin.Impersonation, st moderated) (stepped bool, err error) {
	watching := s.cfg.Moderation.Watching(imp.ID)
	if st.paused == (len(watching) == 0) {
		return false, nil
	}
	return true, s.step(ctx, imp, st, watching)
}

// stepKey names step k of session id, claimed once.
func stepKey(id string, k int) string { return fmt.Sprintf("moderation:%s:%d", id, k) }

// recoverModeration returns what the owner knows of imp, read from the
// log when it knows nothing yet.
func (s *Service) recoverModeration(ctx context.Context, imp *standin.Impersonation) (moderated, error) {
	s.moderation.mu.Lock()
	if st, ok := s.moderation.sessions[imp.ID]; ok {
		defer s.moderation.mu.Unlock()
		return *st, nil
	}
	s.moderation.mu.Unlock()
	st, err := s.readModeration(ctx, imp)
	if err != nil {
		return moderated{}, err
	}
	s.moderation.mu.Lock()
	s.moderation.sessions[imp.ID] = &st
	s.moderation.mu.Unlock()
	return st, nil
}

// readModeration reads how imp stands from the log's pauses and
// resumptions: what any node knows, owner or not.
func (s *Service) readModeration(ctx context.Context, imp *standin.Impersonation) (moderated, error) {
	st := moderated{paused: true, since: imp.StartedAt}
	err := s.audit.EventsMatching(ctx, standin.EventFilter{ImpersonationID: imp.ID}, func(e *standin.Event) error {
		var k int
		if e.Type != standin.EventImpersonationPaused && e.Type != standin.EventImpersonationResumed {
			return nil
		}
		if _, err := fmt.Sscanf(e.Object, "moderation:"+imp.ID+":%d", &k); err != nil || k <= st.steps {
			return nil
		}
		st = moderated{steps: k, paused: e.Type == standin.EventImpersonationPaused, since: e.Time}
		return nil
	})
	if err != nil {
		return moderated{}, fmt.Errorf("read the moderation of %s: %w", imp.ID, err)
	}
	return st, nil
}

// forget drops what the owner knows of session id, to be read again.
func (s *Service) forget(id string) {
	s.moderation.mu.Lock()
	delete(s.moderation.sessions, id)
	s.moderation.mu.Unlock()
}

// step takes imp's next step: a resumption when watching names its
// moderators, a pause otherwise. The step is claimed first; a claim
// someone else holds is theirs to write, unless it stood for stepGrace
// without its event, when it is given back to be taken again.
func (s *Service) step(ctx context.Context, imp *standin.Impersonation, st moderated, watching []standin.EventUser) error {
	now := s.cfg.Now().UTC()
	k := st.steps + 1
	key := stepKey(imp.ID, k)
	typ, outcome := standin.EventImpersonationPaused, "paused"
	if k%2 == 1 {
		typ, outcome = standin.EventImpersonationResumed, "resumed"
	}
	won, err := s.store.Claim(ctx, key, now)
	if err != nil {
		return err
	}
	if !won {
		return s.stepTaken(ctx, imp.ID, key, typ)
	}
	set, err := s.store.ImpersonationSettings(ctx)
	if err != nil {
		s.giveBack(key)
		return err
	}
	endsAt := now.Add(time.Duration(set.GraceSeconds) * time.Second)
	ev := &standin.Event{
		Type: typ, Time: now,
		Actor:           standin.EventUser{ID: imp.ActorID, Name: imp.ActorName},
		Subject:         standin.EventUser{ID: imp.SubjectID, Name: imp.SubjectName},
		ImpersonationID: imp.ID, Action: "impersonation.moderation", Outcome: outcome, Object: key,
	}
	if typ == standin.EventImpersonationPaused {
		ev.Reason = fmt.Sprintf("No moderator is watching; the session ends at %s unless one opens it.",
			endsAt.In(s.cfg.Location).Format("15:04:05 MST"))
	} else {
		ev.Reason = "Moderated by " + names(watching) + "."
	}
	target, err := s.store.UserByID(ctx, imp.SubjectID)
	if err == nil {
		ev.Projects = target.ProjectIDs()
	}
	if err := s.audit.Append(ctx, ev); err != nil {
		if !errors.Is(err, standin.ErrInDoubt) {
			// Not written: the step is free to take again.
			s.giveBack(key)
		}
		s.forget(imp.ID)
		return err
	}
	s.moderation.mu.Lock()
	s.moderation.sessions[imp.ID] = &moderated{steps: k, paused: !st.paused, since: now}
	s.moderation.mu.Unlock()
	if typ == standin.EventImpersonationPaused && target != nil {
		s.tellModerators(ctx, imp, target, ev.Seq, "A session needs its moderator",
			fmt.Sprintf("%s's session as %s is paused: no moderator is watching. It ends at %s unless one opens it.",
				standin.Named(imp.ActorName, imp.ActorEmail), imp.SubjectName, endsAt.In(s.cfg.Location).Format("15:04 MST")))
	}
	return nil
}

// stepTaken handles a step someone else claimed: written, it is learned
// from the log; claimed for longer than stepGrace without its event, its
// claimant is gone and the claim is given back.
func (s *Service) stepTaken(ctx context.Context, id, key, typ string) error {
	s.forget(id)
	written, err := s.written(ctx, standin.EventFilter{ImpersonationID: id, Type: typ},
		func(e *standin.Event) bool { return e.Object == key })
	if err != nil || written {
		return err
	}
	at, claimed, err := s.store.ClaimedAt(ctx, key)
	if err != nil || !claimed || s.cfg.Now().Sub(at) < stepGrace {
		return err
	}
	return s.store.Unclaim(ctx, key)
}

// giveBack gives a step's claim back after its event failed.
func (s *Service) giveBack(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.Unclaim(ctx, key); err != nil {
		s.cfg.Logger.Warn("could not give back a moderation step; it is taken again later", "step", key, "err", err)
	}
}

// tellModerators notifies everyone who may moderate imp.
func (s *Service) tellModerators(ctx context.Context, imp *standin.Impersonation, target *standin.User, seq int64, title, body string) {
	users, err := s.store.AllUsers(ctx)
	if err != nil {
		s.cfg.Logger.Warn("could not tell the moderators of a session", "impersonation", imp.ID, "err", err)
		return
	}
	for _, u := range users {
		if !u.Active() || s.mayModerate(ctx, u, imp, target) != nil {
			continue
		}
		n := &standin.Notification{UserID: u.ID, Seq: seq, Type: standin.NotificationModeration, Title: title, Body: body,
			ActorName: imp.ActorName, ActorEmail: imp.ActorEmail, Reason: imp.Reason, Until: imp.ExpiresAt, At: s.cfg.Now(),
			ImpersonationID: imp.ID}
		if err := s.store.AddNotification(ctx, n); err != nil {
			s.cfg.Logger.Warn("could not store a notification", "user", u.ID, "err", err)
			continue
		}
		s.cfg.OnNotify(n)
	}
}

// names lists people's names for a sentence: "A", "A and B", "A, B and C".
func names(us []standin.EventUser) string {
	out := ""
	for i, u := range us {
		switch {
		case i == 0:
		case i == len(us)-1:
			out += " and "
		default:
			out += ", "
		}
		out += u.Name
	}
	return out
}
