package impersonation

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"standin/server/standin"
)

// Requests: a target whose mode (standin.Mode, set by the impersonation
// settings) is consent or approval is impersonated only after an answer.
// The request is stored and audited, the people who may answer are told,
// and its answers are decided by unique inserts (see RequestStore): of
// two answers, an answer and the expiry, or two starts at once, exactly
// one counts. An approved request is started by its actor, once, within
// standin.StartWindow, on the request's own id, after every check of a
// direct start is made again.
//
// Nothing of a request counts before its event is in the audit log: the
// request itself (unseen and unanswerable until then), each approval
// (counted towards the approvals needed only once audited) and the
// outcome. What a call stored and could not audit is undone by the call;
// what a crash, or an append in doubt, left unaudited is settled by
// ExpireRequests from the log once decideGrace has passed: kept and
// marked audited if its event is there, removed if not.

// RequestStore keeps requests, their answers and consent grants.
type RequestStore interface {
	SettingsStore
	// CreateRequest stores a request, unaudited.
	CreateRequest(ctx context.Context, r *standin.AccessRequest) error
	MarkRequestAudited(ctx context.Context, id string) error
	// DeleteRequest removes a request whose audit event could not be
	// written.
	DeleteRequest(ctx context.Context, id string) error
	RequestByID(ctx context.Context, id string) (*standin.AccessRequest, error)
	// AddVote records an approval, unaudited, as the k-th of at most
	// most; k is 0 when its approver approved already (dup) or no place
	// is left.
	AddVote(ctx context.Context, id string, v standin.Vote, most int) (k int, dup bool, err error)
	// MarkVoteAudited makes vote v count; DropVote undoes it, so that
	// its approver may approve again. Each acts on v only while its place
	// still holds v.
	MarkVoteAudited(ctx context.Context, id string, v standin.Vote) error
	DropVote(ctx context.Context, id string, v standin.Vote) error
	// SetOutcome decides the request: true for exactly one caller.
	SetOutcome(ctx context.Context, id string, o standin.Outcome) (bool, error)
	MarkOutcomeAudited(ctx context.Context, id string) error
	DropOutcome(ctx context.Context, id string) error
	// ClaimStart takes the request's one start: true for exactly one.
	ClaimStart(ctx context.Context, id string, at time.Time) (bool, error)
	DropStart(ctx context.Context, id string) error
	// MarkUnused decides, once, that an approved request went unused.
	MarkUnused(ctx context.Context, id string, at time.Time) (bool, error)
	DropUnused(ctx context.Context, id string) error
	// SettleRequest takes a decided request off the pending list.
	SettleRequest(ctx context.Context, id string) error
	PendingRequests(ctx context.Context) ([]*standin.AccessRequest, error)
	GrantOf(ctx context.Context, userID string) (*standin.ConsentGrant, error)
	// PutGrant stores a grant that counts only once MarkGrantAudited
	// marks it.
	PutGrant(ctx context.Context, g *standin.ConsentGrant) error
	MarkGrantAudited(ctx context.Context, userID, grantID string) error
	RemoveGrant(ctx context.Context, userID, grantID string) (bool, error)
	AllUsers(ctx context.Context) ([]*standin.User, error)
}

// decideGrace is how long a call has to audit what it stored (a request,
// a vote, an outcome, a settings version) before ExpireRequests treats it
// as left behind by a fault and settles it by the log.
const decideGrace = 2 * time.Minute

// inDoubt reports whether an append failed in doubt: its event may be in
// the log, so what it records is not undone but left for ExpireRequests
// to settle by the log.
func inDoubt(err error) bool { return errors.Is(err, standin.ErrInDoubt) }

// newEventID returns an id, of the shape the audit log gives, for an
// event that a repair must be able to find again: the record it audits
// keeps it.
func newEventID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(time.Now().Unix()))
	_, _ = rand.Read(b[4:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// request stores and audits a request to impersonate target, which needs
// need, and tells those who may answer it.
func (s *Service) request(ctx context.Context, p *standin.Principal, target *standin.User, need standin.Need,
	set *standin.ImpersonationSettings, reason, ticket string, d time.Duration, o standin.Origin) (*standin.AccessRequest, error) {
	now := s.cfg.Now().UTC()
	r := &standin.AccessRequest{
		ActorID: p.Actor.ID, ActorName: p.Actor.Name, ActorEmail: p.Actor.Email,
		SubjectID: target.ID, SubjectName: target.Name, SubjectRole: target.Role, Projects: target.ProjectIDs(),
		Reason: reason, Ticket: ticket, Minutes: int(d / time.Minute), Mode: need.Mode, Approvals: need.Approvals,
		CreatedAt: now, ExpiresAt: now.Add(time.Duration(set.RequestMinutes) * time.Minute),
	}
	if err := s.store.CreateRequest(ctx, r); err != nil {
		return nil, err
	}
	ev := s.requestEvent(standin.EventRequestCreated, p.Actor, r, o)
	ev.Outcome, ev.Reason = string(r.Mode), r.Reason
	if err := s.audit.Append(ctx, ev); err != nil {
		// Unaudited, the request must not stand (in doubt, the sweep
		// settles it by the log).
		if !inDoubt(err) {
			if derr := s.store.DeleteRequest(context.WithoutCancel(ctx), r.ID); derr != nil {
				s.cfg.Logger.Error("an unaudited request could not be removed", "request", r.ID, "err", derr)
			}
		}
		return nil, err
	}
	r.Audited = true
	if err := s.store.MarkRequestAudited(context.WithoutCancel(ctx), r.ID); err != nil {
		s.cfg.Logger.Warn("a request stays unseen until the sweep finds its event", "request", r.ID, "err", err)
	}
	s.tellAnswerers(ctx, r, ev.Seq)
	s.cfg.Logger.Info("impersonation requested", "request", r.ID, "mode", r.Mode, "actor", r.ActorID, "subject", r.SubjectID)
	return r, nil
}

// requestEvent is the audit event of something done to request r by who.
// It carries the request's id as its impersonation's: the session that
// starts from it has the same id, so the activity of one session reads
// from the request to the end.
func (s *Service) requestEvent(typ string, who *standin.User, r *standin.AccessRequest, o standin.Origin) *standin.Event {
	ev := standin.NewEvent(typ, who, &standin.User{ID: r.SubjectID, Name: r.SubjectName}, r.ID, o)
	ev.Projects = slices.Clone(r.Projects)
	ev.Action, ev.Object = "impersonation.request", "request:"+r.ID
	return ev
}

// mayAnswer says why who may not answer request r, or nil when they may:
// for consent the target alone, with the right to answer for themselves;
// for an approval anyone but the actor and the target who outranks the
// target and may approve in one of its projects (or everywhere). The
// target is judged as it is now: cur, or read when cur is nil.
func (s *Service) mayAnswer(ctx context.Context, who *standin.User, r *standin.AccessRequest, cur *standin.User) error {
	switch r.Mode {
	case standin.ModeConsent:
		if who.ID != r.SubjectID {
			return standin.Errorf(standin.EForbidden, "Only %s can answer this request: it asks for their consent.", r.SubjectName)
		}
		if dec := s.rbac.Check(ctx, who, standin.ActRespond, standin.KindConsent, ""); !dec.Allowed {
			return &standin.Error{Code: standin.EForbidden, Message: "You may not answer requests to act as you.", Reason: "Answering " + dec.Reason + "."}
		}
		return nil
	case standin.ModeApproval:
		switch {
		case who.ID == r.ActorID:
			return standin.Errorf(standin.EForbidden, "You cannot approve your own request: someone else must (four eyes).")
		case who.ID == r.SubjectID:
			return standin.Errorf(standin.EForbidden, "This request needs an approver's answer, not yours.")
		}
		// The target as they are now: a promotion, or a project left,
		// since the request was made counts.
		if cur == nil {
			var err error
			if cur, err = s.store.UserByID(ctx, r.SubjectID); err != nil {
				return standin.Errorf(standin.EForbidden, "%s's account cannot be read now; try again.", r.SubjectName)
			}
		}
		role := cur.Role
		if r.SubjectRole.Rank() > role.Rank() {
			role = r.SubjectRole
		}
		if who.Role.Rank() <= role.Rank() {
			return standin.Errorf(standin.EForbidden, "Only someone of a higher role than %s's (%s) can approve this request.", r.SubjectName, role)
		}
		if s.allowedIn(ctx, who, standin.ActApprove, cur.ProjectIDs()) {
			return nil
		}
		return standin.Errorf(standin.EForbidden, "You may not approve impersonations of %s.", r.SubjectName)
	}
	return standin.Errorf(standin.EInternal, "A request in mode %q cannot be answered.", r.Mode)
}

// answerable checks an answer's note and loads request id for p to
// answer: it must be pending, and p must not be impersonating (an answer
// is one's own, never given in someone else's name).
func (s *Service) answerable(ctx context.Context, p *standin.Principal, id, note string) (*standin.AccessRequest, string, error) {
	note, err := answerNote(note)
	if err != nil {
		return nil, "", err
	}
	if p.Impersonation != nil {
		return nil, "", standin.Errorf(standin.EForbidden, "Answer requests as yourself: end the impersonation first.")
	}
	r, answer, err := s.lookup(ctx, p.Actor, id)
	if err != nil {
		return nil, "", err
	}
	if answer != nil {
		return nil, "", answer
	}
	if st := r.Status(s.cfg.Now()); st != standin.RequestPending {
		return nil, "", standin.Errorf(standin.EConflict, "This request is %s already.", st)
	}
	return r, note, nil
}

// Approve records who's approval of request id. An approval counts once
// its event is in the audit log; the one whose event completes the
// approvals the request needs approves it, and its actor is told to
// start. An approval is never built on another whose event is still being
// written, or never will be: when two are written at once, each counts
// once written, and whichever call then sees them complete decides the
// request (a unique insert: exactly one does, with its own event). The
// sweep decides it when repairs complete them (see ExpireRequests).
// EConflict when it was answered, expired or approved by who already, or
// when enough approvals are being recorded; EForbidden when who may not
// answer it (see mayAnswer).
func (s *Service) Approve(ctx context.Context, p *standin.Principal, id, note string, o standin.Origin) (*standin.AccessRequest, error) {
	r, note, err := s.answerable(ctx, p, id, note)
	if err != nil {
		return nil, err
	}
	need := r.Needed()
	by := standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name}
	v := standin.Vote{By: by, At: s.cfg.Now().UTC(), Note: note, EventID: newEventID()}
	k, dup, err := s.store.AddVote(ctx, r.ID, v, need)
	switch {
	case err != nil:
		return nil, err
	case dup:
		return nil, standin.Errorf(standin.EConflict, "You approved this request already; it needs another approver.")
	case k == 0:
		return nil, standin.Errorf(standin.EConflict, "This request has all the approvals it needs already, or they are being recorded; look again in a moment.")
	}
	v.K = k
	undoVote := func() {
		if err := s.store.DropVote(context.WithoutCancel(ctx), r.ID, v); err != nil {
			s.cfg.Logger.Error("an approval could not be undone", "request", r.ID, "err", err)
		}
	}
	// Only the approvals already audited are built on.
	cur, err := s.store.RequestByID(ctx, r.ID)
	if err != nil {
		undoVote()
		return nil, err
	}
	if cur.Outcome != nil {
		undoVote()
		return nil, standin.Errorf(standin.EConflict, "This request was %s meanwhile.", cur.Status(s.cfg.Now()))
	}
	counted := len(cur.Counted())
	final := counted+1 >= need
	if final {
		// This approval completes them: it decides the request, and its
		// one event records both.
		won, err := s.store.SetOutcome(ctx, r.ID, standin.Outcome{Status: standin.RequestApproved, By: by, At: v.At, Note: note})
		if err != nil || !won {
			undoVote()
			if err != nil {
				return nil, err
			}
			return nil, s.decidedMeanwhile(ctx, r.ID)
		}
	}
	ev := s.requestEvent(standin.EventRequestApproved, p.Actor, r, o)
	ev.ID, ev.Outcome, ev.Reason = v.EventID, standin.RequestApproved, note
	if !final {
		ev.Outcome = fmt.Sprintf("approval %d of %d", counted+1, need)
	}
	if err := s.audit.Append(ctx, ev); err != nil {
		if !inDoubt(err) {
			if final {
				s.undoOutcome(ctx, r.ID)
			}
			undoVote()
		}
		return nil, err
	}
	if err := s.store.MarkVoteAudited(context.WithoutCancel(ctx), r.ID, v); err != nil {
		s.cfg.Logger.Warn("an approval counts once the sweep finds its event", "request", r.ID, "err", err)
	}
	seq, decided := ev.Seq, final
	if final {
		// It stays on the pending list, approved, until it is started or
		// its start window closes.
		s.markAudited(ctx, r.ID)
	} else {
		// Approvals written at the same time did not count each other:
		// the one that sees them complete decides.
		cur, err := s.store.RequestByID(ctx, r.ID)
		var won bool
		var dseq int64
		if err == nil {
			won, dseq, err = s.approveCounted(ctx, cur, by, o)
		}
		switch {
		case err != nil:
			s.cfg.Logger.Warn("complete approvals are decided by the sweep", "request", r.ID, "err", err)
		case won:
			seq, decided = dseq, true
		}
	}
	out, err := s.store.RequestByID(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if decided || out.Outcome == nil {
		// Whoever decided tells the actor; a count is told while it waits.
		s.tellActor(ctx, out, seq)
	}
	if decided {
		s.tellDecided(ctx, out, seq)
	}
	return shown(out), nil
}

// approveCounted approves request r when it has no outcome and its
// counted approvals reach those it needs, naming by (the approver whose
// approval completed them) and auditing it with an event of its own. Of
// the calls and sweeps that see them complete at once, exactly one
// decides (a unique insert); won says it was this one, seq is its event.
func (s *Service) approveCounted(ctx context.Context, r *standin.AccessRequest, by standin.EventUser, o standin.Origin) (won bool, seq int64, err error) {
	n, need := len(r.Counted()), r.Needed()
	if r.Outcome != nil || n < need {
		return false, 0, nil
	}
	won, err = s.store.SetOutcome(ctx, r.ID, standin.Outcome{Status: standin.RequestApproved, By: by, At: s.cfg.Now().UTC()})
	if err != nil || !won {
		return false, 0, err
	}
	ev := s.requestEvent(standin.EventRequestApproved, &standin.User{ID: by.ID, Name: by.Name}, r, o)
	ev.Outcome, ev.Reason = standin.RequestApproved, fmt.Sprintf("%d of %d approvals.", n, need)
	if err := s.audit.Append(ctx, ev); err != nil {
		if !inDoubt(err) {
			s.undoOutcome(ctx, r.ID)
		}
		return false, 0, err
	}
	s.markAudited(ctx, r.ID)
	return true, ev.Seq, nil
}

// shown is r as its readers see it: with the approvals that count.
func shown(r *standin.AccessRequest) *standin.AccessRequest {
	r.Votes = r.Counted()
	return r
}

// Deny refuses request id on who's word: it is over, and its actor is
// told why. Errors as Approve's.
func (s *Service) Deny(ctx context.Context, p *standin.Principal, id, note string, o standin.Origin) (*standin.AccessRequest, error) {
	r, note, err := s.answerable(ctx, p, id, note)
	if err != nil {
		return nil, err
	}
	return s.decide(ctx, p.Actor, r, standin.RequestDenied, standin.EventRequestDenied, note, o)
}

// Cancel withdraws request id at its actor's word. ENotFound for a
// request that is not theirs; EConflict once it is answered or expired.
func (s *Service) Cancel(ctx context.Context, p *standin.Principal, id string, o standin.Origin) (*standin.AccessRequest, error) {
	if p.Impersonation != nil {
		return nil, standin.Errorf(standin.EForbidden, "Withdraw your requests as yourself: end the impersonation first.")
	}
	r, err := s.Request(ctx, p.Actor, id)
	if err != nil {
		return nil, err
	}
	if r.ActorID != p.Actor.ID {
		return nil, standin.Errorf(standin.EForbidden, "Only %s, who asked, can withdraw this request.", r.ActorName)
	}
	if st := r.Status(s.cfg.Now()); st != standin.RequestPending {
		return nil, standin.Errorf(standin.EConflict, "This request is %s already.", st)
	}
	return s.decide(ctx, p.Actor, r, standin.RequestCancelled, standin.EventRequestCancelled, "", o)
}

// decide gives request r its final outcome status (not an approval: see
// Approve), audits it as typ, takes it off the pending list and tells its
// actor (and, for consent, its target). EConflict when another outcome
// came first.
func (s *Service) decide(ctx context.Context, who *standin.User, r *standin.AccessRequest, status, typ, note string, o standin.Origin) (*standin.AccessRequest, error) {
	now := s.cfg.Now().UTC()
	var by standin.EventUser
	if who != nil {
		by = standin.EventUser{ID: who.ID, Name: who.Name}
	}
	won, err := s.store.SetOutcome(ctx, r.ID, standin.Outcome{Status: status, By: by, At: now, Note: note})
	if err != nil {
		return nil, err
	}
	if !won {
		return nil, s.decidedMeanwhile(ctx, r.ID)
	}
	auditor := who
	if auditor == nil { // an expiry: nobody acted; the event names the request's actor
		auditor = &standin.User{ID: r.ActorID, Name: r.ActorName}
	}
	ev := s.requestEvent(typ, auditor, r, o)
	ev.Outcome, ev.Reason = status, note
	if err := s.audit.Append(ctx, ev); err != nil {
		if !inDoubt(err) {
			s.undoOutcome(ctx, r.ID)
		}
		return nil, err
	}
	s.markAudited(ctx, r.ID)
	s.settle(ctx, r.ID)
	out, err := s.store.RequestByID(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	s.tellActor(ctx, out, ev.Seq)
	s.tellDecided(ctx, out, ev.Seq)
	if out.Mode == standin.ModeConsent && status != standin.RequestDenied {
		// The target's prompt goes away: withdrawn or expired.
		s.tellTarget(ctx, out, ev.Seq)
	}
	return shown(out), nil
}

// decidedMeanwhile is the error for an answer that lost to another.
func (s *Service) decidedMeanwhile(ctx context.Context, id string) error {
	r, err := s.store.RequestByID(ctx, id)
	if err != nil {
		return err
	}
	return standin.Errorf(standin.EConflict, "This request was %s meanwhile.", r.Status(s.cfg.Now()))
}

// undoOutcome removes an outcome whose event could not be written: the
// request is pending again (or expires), as if no one had answered.
func (s *Service) undoOutcome(ctx context.Context, id string) {
	if err := s.store.DropOutcome(context.WithoutCancel(ctx), id); err != nil {
		s.cfg.Logger.Error("an unaudited answer could not be undone", "request", id, "err", err)
	}
}

// markAudited records that request id's outcome is in the log; if that
// fails, ExpireRequests finds the event there later.
func (s *Service) markAudited(ctx context.Context, id string) {
	if err := s.store.MarkOutcomeAudited(context.WithoutCancel(ctx), id); err != nil {
		s.cfg.Logger.Warn("could not mark a request's outcome audited", "request", id, "err", err)
	}
}

// settle takes a decided request off the pending list; if that fails,
// ExpireRequests does it later.
func (s *Service) settle(ctx context.Context, id string) {
	if err := s.store.SettleRequest(context.WithoutCancel(ctx), id); err != nil {
		s.cfg.Logger.Warn("a decided request stays on the pending list for now", "request", id, "err", err)
	}
}

// answerNote checks the note an answer may carry.
func answerNote(note string) (string, error) {
	if problem := standin.TextProblem(note, 500); note != "" && problem != "" {
		return "", standin.Errorf(standin.EInvalid, "The note %s", problem)
	}
	return note, nil
}

// Request returns request id when who may see it: its actor, its target,
// and those who may answer it, once its event is in the log. ENotFound
// otherwise, so that its existence is not revealed.
func (s *Service) Request(ctx context.Context, who *standin.User, id string) (*standin.AccessRequest, error) {
	r, _, err := s.lookup(ctx, who, id)
	if err != nil {
		return nil, err
	}
	return shown(r), nil
}

// lookup loads request id for who, with why who may not answer it (nil
// when they may): ENotFound unless who sees it (see sees) and it is
// audited.
func (s *Service) lookup(ctx context.Context, who *standin.User, id string) (*standin.AccessRequest, error, error) {
	hidden := standin.Errorf(standin.ENotFound, "There is no request with this id that you may see.")
	if !standin.ValidID(id) {
		return nil, nil, hidden
	}
	r, err := s.store.RequestByID(ctx, id)
	if standin.ErrorCode(err) == standin.ENotFound {
		return nil, nil, hidden
	}
	if err != nil {
		return nil, nil, err
	}
	if !r.Audited {
		// Its event is not in the log (yet): it is nobody's to see.
		return nil, nil, hidden
	}
	answer := s.mayAnswer(ctx, who, r, nil)
	if !sees(who, r, answer) {
		return nil, nil, hidden
	}
	return r, answer, nil
}

// sees reports whether who may see request r: its actor, its target, and
// those who may answer it (answer is mayAnswer's verdict).
func sees(who *standin.User, r *standin.AccessRequest, answer error) bool {
	return who.ID == r.ActorID || who.ID == r.SubjectID || answer == nil
}

// Requests lists the pending requests who may see, oldest first: their
// own, those asking for their consent, those they may approve; and their
// own approved ones not yet started.
func (s *Service) Requests(ctx context.Context, who *standin.User) ([]*standin.AccessRequest, error) {
	all, err := s.store.PendingRequests(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]*standin.AccessRequest, 0, len(all))
	for _, r := range all {
		if !r.Audited {
			continue
		}
		switch r.Status(now) {
		case standin.RequestPending:
			if sees(who, r, s.mayAnswer(ctx, who, r, nil)) {
				out = append(out, shown(r))
			}
		case standin.RequestApproved:
			// Approved and not yet started: its actor starts it.
			if who.ID == r.ActorID && r.Outcome.Audited {
				out = append(out, shown(r))
			}
		}
	}
	return out, nil
}

// StartRequest starts the impersonation request id asked for, on its id,
// for its actor: once, after it was approved, within standin.StartWindow.
// Every check of a direct start is made again (the actor may have lost
// the right, the target been suspended). Errors as Start's, and
// EConflict when the request is not approved or was started already.
func (s *Service) StartRequest(ctx context.Context, p *standin.Principal, id string, o standin.Origin) (*Started, error) {
	r, err := s.Request(ctx, p.Actor, id)
	if err != nil {
		return nil, err
	}
	if r.ActorID != p.Actor.ID {
		return nil, standin.Errorf(standin.ENotFound, "There is no request of yours with this id.")
	}
	if p.Impersonation != nil {
		// Refused as any nested start is, and audited as such.
		_, err := s.admit(ctx, p, r.SubjectID, o)
		return nil, err
	}
	now := s.cfg.Now().UTC()
	switch st := r.Status(now); st {
	case standin.RequestApproved:
		if !r.Outcome.Audited {
			// Its approver's call is still writing the approval's event.
			return nil, standin.Errorf(standin.EConflict, "This request's approval is still being recorded; try again in a moment.")
		}
	case standin.RequestPending:
		return nil, standin.Errorf(standin.EConflict, "This request is still waiting for its answer.")
	case standin.RequestStarted:
		return nil, standin.Errorf(standin.EConflict, "This request was used already; an approval starts one session only.")
	default:
		return nil, standin.Errorf(standin.EConflict, "This request is %s; ask again.", st)
	}
	mine, err := s.store.ClaimStart(ctx, r.ID, now)
	if err != nil {
		return nil, err
	}
	if !mine {
		return nil, standin.Errorf(standin.EConflict, "This request was used already; an approval starts one session only.")
	}
	started, err := s.startApproved(ctx, p, r, o)
	if err != nil {
		if derr := s.store.DropStart(context.WithoutCancel(ctx), r.ID); derr != nil {
			s.cfg.Logger.Error("a failed start of a request could not be given back", "request", r.ID, "err", derr)
		}
		return nil, err
	}
	s.settle(ctx, r.ID)
	return started, nil
}

// startApproved admits r's actor again and starts the session r asked
// for, unless the target's mode became stricter than r's since.
func (s *Service) startApproved(ctx context.Context, p *standin.Principal, r *standin.AccessRequest, o standin.Origin) (*Started, error) {
	target, err := s.admit(ctx, p, r.SubjectID, o)
	if err != nil {
		return nil, err
	}
	set, err := s.store.ImpersonationSettings(ctx)
	if err != nil {
		return nil, err
	}
	if need := set.NeedFor(target); need.Mode.Strictness() > r.Mode.Strictness() || need.Approvals > r.Approvals {
		return nil, s.deny(ctx, p, target, o, standin.EConflict, "The rules for this user changed since the request was answered; ask again.",
			fmt.Sprintf("%s's sessions now need %s (%s); the request was answered under %s.", target.Name, need.Mode, need.Scope, r.Mode))
	}
	return s.begin(ctx, p, target, startParams{id: r.ID, reason: r.Reason, ticket: r.Ticket, d: time.Duration(r.Minutes) * time.Minute}, o)
}

// ExpireRequests expires the pending requests whose time ran out and
// takes off the pending list those decided, started, or approved and not
// started in time. What a call stored and left unaudited (a crash, or an
// append in doubt, between the two) is settled by the log once
// decideGrace has passed: kept and marked audited if its event is there,
// removed if not. So it settles requests, approvals (and then approves
// the requests whose counted approvals are complete), outcomes, and the
// versions of the settings (see ChangeSettings). The server runs it with
// the expiry sweep, on one node at a time.
func (s *Service) ExpireRequests(ctx context.Context) (int, error) {
	all, err := s.store.PendingRequests(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range all {
		expired, err := s.sweep(ctx, r)
		if err != nil {
			return n, errors.Join(err, s.settleSettings(ctx))
		}
		if expired {
			n++
		}
	}
	return n, s.settleSettings(ctx)
}

// sweep does for pending request r what ExpireRequests does; expired
// says it expired r unanswered.
func (s *Service) sweep(ctx context.Context, r *standin.AccessRequest) (expired bool, err error) {
	now := s.cfg.Now()
	late := func(at time.Time) bool { return now.Sub(at) > decideGrace }
	switch {
	case !r.Audited && late(r.CreatedAt):
		return false, s.repairRequest(ctx, r)
	case !r.Audited:
		// Its own call is still auditing it.
		return false, nil
	case r.Started:
		return false, s.store.SettleRequest(ctx, r.ID)
	}
	if err := s.repairVotes(ctx, r, late); err != nil {
		return false, err
	}
	o := r.Outcome
	switch {
	case o == nil && len(r.Counted()) >= r.Needed():
		// Its approvals are complete, and no call decided it: an
		// approval audited by the repair, or a call that stopped first.
		votes := r.Counted()
		last := slices.MaxFunc(votes, func(a, b standin.Vote) int { return a.At.Compare(b.At) })
		won, seq, err := s.approveCounted(ctx, r, last.By, standin.Origin{})
		if err != nil || !won {
			return false, err
		}
		out, err := s.store.RequestByID(ctx, r.ID)
		if err != nil {
			return false, err
		}
		s.tellActor(ctx, out, seq)
		s.tellDecided(ctx, out, seq)
	case o == nil && !now.Before(r.ExpiresAt):
		_, err = s.decide(ctx, nil, r, standin.RequestExpired, standin.EventRequestExpired, "", standin.Origin{})
		if err == nil {
			return true, nil
		}
		if standin.ErrorCode(err) == standin.EConflict {
			err = nil
		}
	case o == nil:
	case !o.Audited && late(o.At):
		err = s.repairOutcome(ctx, r)
	case !o.Audited:
		// Its own call is still auditing it.
	case o.Status != standin.RequestApproved:
		err = s.store.SettleRequest(ctx, r.ID)
	case !now.Before(r.StartBy()):
		err = s.expireUnused(ctx, r)
	}
	return false, err
}

// repairRequest settles request r, left unaudited: if the log holds its
// request.created event, it is marked audited and those who may answer
// it are told, as its own call would have; if not, it is removed, as if
// never made.
func (s *Service) repairRequest(ctx context.Context, r *standin.AccessRequest) error {
	var created *standin.Event
	found, err := s.written(ctx, standin.EventFilter{ImpersonationID: r.ID, Type: standin.EventRequestCreated}, func(e *standin.Event) bool {
		created = e.Clone()
		return true
	})
	if err != nil {
		return err
	}
	if !found {
		return s.store.DeleteRequest(ctx, r.ID)
	}
	if err := s.store.MarkRequestAudited(ctx, r.ID); err != nil {
		return err
	}
	r.Audited = true
	s.tellAnswerers(ctx, r, created.Seq)
	return nil
}

// repairVotes settles r's approvals left unaudited past the grace (late
// says which): one whose event the log holds is marked audited and
// counts; one whose event it lacks is dropped, and its approver may
// approve again. r.Votes is updated to match.
func (s *Service) repairVotes(ctx context.Context, r *standin.AccessRequest, late func(time.Time) bool) error {
	kept := make([]standin.Vote, 0, len(r.Votes))
	for _, v := range r.Votes {
		if v.Audited || !late(v.At) {
			kept = append(kept, v)
			continue
		}
		found, err := s.written(ctx, standin.EventFilter{ImpersonationID: r.ID, Type: standin.EventRequestApproved}, func(e *standin.Event) bool {
			if v.EventID == "" {
				// A vote stored before votes had their event's id.
				return e.Actor.ID == v.By.ID
			}
			return e.ID == v.EventID
		})
		if err != nil {
			return err
		}
		if !found {
			if err := s.store.DropVote(ctx, r.ID, v); err != nil {
				return err
			}
			continue
		}
		if err := s.store.MarkVoteAudited(ctx, r.ID, v); err != nil {
			return err
		}
		v.Audited = true
		kept = append(kept, v)
	}
	r.Votes = kept
	return nil
}

// expireUnused ends an approved request its actor did not start within
// standin.StartWindow: audited as request.expired (outcome "unused"),
// once, its actor told, off the pending list. Once is decided by a unique
// mark, undone if the event cannot be written.
func (s *Service) expireUnused(ctx context.Context, r *standin.AccessRequest) error {
	mine, err := s.store.MarkUnused(ctx, r.ID, s.cfg.Now())
	if err != nil {
		return err
	}
	if mine {
		ev := s.requestEvent(standin.EventRequestExpired, &standin.User{ID: r.ActorID, Name: r.ActorName}, r, standin.Origin{})
		ev.Outcome = "unused"
		ev.Reason = fmt.Sprintf("Approved, and not started within %d minutes.", int(standin.StartWindow/time.Minute))
		if err := s.audit.Append(ctx, ev); err != nil {
			if derr := s.store.DropUnused(context.WithoutCancel(ctx), r.ID); derr != nil {
				s.cfg.Logger.Error("an unaudited expiry could not be undone", "request", r.ID, "err", derr)
			}
			return err
		}
		s.notifyRequest(ctx, r.ActorID, r, ev.Seq, "Approval unused",
			fmt.Sprintf("Your approved request to act as %s was not started in time. Ask again when you are ready.", r.SubjectName))
	}
	return s.store.SettleRequest(ctx, r.ID)
}

// repairOutcome settles an outcome left unaudited: if the log holds its
// event, it is marked audited; if not, the call that decided it failed
// before auditing it, and the outcome is undone.
func (s *Service) repairOutcome(ctx context.Context, r *standin.AccessRequest) error {
	found, err := s.written(ctx, standin.EventFilter{ImpersonationID: r.ID}, func(e *standin.Event) bool {
		return e.Outcome == r.Outcome.Status
	})
	if err != nil {
		return err
	}
	if found {
		return s.store.MarkOutcomeAudited(ctx, r.ID)
	}
	return s.store.DropOutcome(ctx, r.ID)
}

// tellAnswerers tells those who may answer a new request: the target for
// consent, every approver for an approval.
func (s *Service) tellAnswerers(ctx context.Context, r *standin.AccessRequest, seq int64) {
	if r.Mode == standin.ModeConsent {
		s.tellTarget(ctx, r, seq)
		return
	}
	s.tellApprovers(ctx, r, seq, "", "Approval needed",
		fmt.Sprintf("%s asks to act as %s for %d minutes. Reason: %s", standin.Named(r.ActorName, r.ActorEmail), r.SubjectName, r.Minutes, r.Reason))
}

// tellDecided tells the approvers of an approval request, but the one who
// decided it, that it no longer waits for them: their inboxes and counts
// follow live.
func (s *Service) tellDecided(ctx context.Context, r *standin.AccessRequest, seq int64) {
	if r.Mode != standin.ModeApproval {
		return
	}
	by, body := "", fmt.Sprintf("The request of %s to act as %s no longer waits for an answer", standin.Named(r.ActorName, r.ActorEmail), r.SubjectName)
	st := r.Status(s.cfg.Now())
	if st == standin.RequestPending {
		return
	}
	words := map[string]string{standin.RequestDenied: "refused", standin.RequestCancelled: "withdrew"}[st]
	if words == "" {
		words = st
	}
	if r.Outcome != nil && r.Outcome.By.ID != "" {
		by = r.Outcome.By.ID
		body += fmt.Sprintf(": %s %s it.", r.Outcome.By.Name, words)
	} else {
		body += ": it " + words + "."
	}
	s.tellApprovers(ctx, r, seq, by, "Request answered", body)
}

// tellApprovers notifies everyone who may approve r but except.
func (s *Service) tellApprovers(ctx context.Context, r *standin.AccessRequest, seq int64, except, title, body string) {
	users, err := s.store.AllUsers(ctx)
	if err != nil {
		s.cfg.Logger.Warn("could not tell the approvers of a request", "request", r.ID, "err", err)
		return
	}
	// The target, read once for every approver judged.
	i := slices.IndexFunc(users, func(u *standin.User) bool { return u.ID == r.SubjectID })
	if i < 0 {
		return
	}
	for _, u := range users {
		if u.ID != except && u.Active() && s.mayAnswer(ctx, u, r, users[i]) == nil {
			s.notifyRequest(ctx, u.ID, r, seq, title, body)
		}
	}
}

// tellTarget tells the target of a consent request where it stands.
func (s *Service) tellTarget(ctx context.Context, r *standin.AccessRequest, seq int64) {
	who := standin.Named(r.ActorName, r.ActorEmail)
	switch r.Status(s.cfg.Now()) {
	case standin.RequestPending:
		s.notifyRequest(ctx, r.SubjectID, r, seq, "Support asks to act as you",
			fmt.Sprintf("%s asks to act as you for %d minutes. Reason: %s", who, r.Minutes, r.Reason))
	case standin.RequestCancelled:
		s.notifyRequest(ctx, r.SubjectID, r, seq, "Request withdrawn", who+" withdrew the request to act as you.")
	case standin.RequestExpired:
		s.notifyRequest(ctx, r.SubjectID, r, seq, "Request expired", "The request of "+who+" to act as you expired unanswered.")
	}
}

// tellActor tells a request's actor where it stands after a change.
func (s *Service) tellActor(ctx context.Context, r *standin.AccessRequest, seq int64) {
	switch st := r.Status(s.cfg.Now()); st {
	case standin.RequestApproved:
		s.notifyRequest(ctx, r.ActorID, r, seq, "Request approved",
			fmt.Sprintf("You may act as %s now (start within %d minutes).", r.SubjectName, int(standin.StartWindow/time.Minute)))
	case standin.RequestPending:
		s.notifyRequest(ctx, r.ActorID, r, seq, "Approval counted",
			fmt.Sprintf("%d of %d approvals to act as %s.", len(r.Counted()), r.Approvals, r.SubjectName))
	case standin.RequestDenied:
		body := fmt.Sprintf("%s refused your request to act as %s.", r.Outcome.By.Name, r.SubjectName)
		if r.Outcome.Note != "" {
			body += " Note: " + r.Outcome.Note
		}
		s.notifyRequest(ctx, r.ActorID, r, seq, "Request refused", body)
	case standin.RequestExpired:
		s.notifyRequest(ctx, r.ActorID, r, seq, "Request expired", fmt.Sprintf("Your request to act as %s expired unanswered.", r.SubjectName))
	}
}

// notifyRequest stores and pushes a notification about request r.
func (s *Service) notifyRequest(ctx context.Context, userID string, r *standin.AccessRequest, seq int64, title, body string) {
	n := &standin.Notification{UserID: userID, Seq: seq, Type: "request." + r.Status(s.cfg.Now()), Title: title, Body: body,
		ActorName: r.ActorName, ActorEmail: r.ActorEmail, Reason: r.Reason, Until: r.ExpiresAt, At: s.cfg.Now(), ImpersonationID: r.ID}
	if err := s.store.AddNotification(ctx, n); err != nil {
		s.cfg.Logger.Warn("could not store a notification", "user", userID, "err", err)
		return
	}
	s.cfg.OnNotify(n)
}

// Grant gives consent ahead of time: for the next hours, staff with the
// right to impersonate p's user may start without asking. It replaces any
// grant in force. EForbidden while impersonating (consent is one's own)
// or without the right; EInvalid for hours out of bounds.
func (s *Service) Grant(ctx context.Context, p *standin.Principal, hours int, o standin.Origin) (*standin.ConsentGrant, error) {
	if p.Impersonation != nil {
		return nil, standin.Errorf(standin.EForbidden, "Consent is given by the user alone, never while impersonating them.")
	}
	if dec := s.rbac.Check(ctx, p.Actor, standin.ActGrant, standin.KindConsent, ""); !dec.Allowed {
		return nil, &standin.Error{Code: standin.EForbidden, Message: "You may not grant access to your account.", Reason: "Granting " + dec.Reason + "."}
	}
	if hours < 1 || hours > standin.MaxGrantHours {
		return nil, standin.Errorf(standin.EInvalid, "Access can be granted for 1 to %d hours.", standin.MaxGrantHours)
	}
	now := s.cfg.Now().UTC()
	g := &standin.ConsentGrant{UserID: p.Actor.ID, UserName: p.Actor.Name, CreatedAt: now, ExpiresAt: now.Add(time.Duration(hours) * time.Hour)}
	if err := s.store.PutGrant(ctx, g); err != nil {
		return nil, err
	}
	ev := standin.NewEvent(standin.EventConsentGranted, p.Actor, p.Actor, "", o)
	ev.Action, ev.Object, ev.Outcome = "consent.grant", "grant:"+g.ID, "granted"
	ev.Reason = fmt.Sprintf("Support may act as %s until %s.", p.Actor.Name, standin.FormatTime(g.ExpiresAt))
	if err := s.audit.Append(ctx, ev); err != nil {
		if _, rerr := s.store.RemoveGrant(context.WithoutCancel(ctx), g.UserID, g.ID); rerr != nil {
			s.cfg.Logger.Error("an unaudited consent grant could not be removed", "user", g.UserID, "err", rerr)
		}
		return nil, err
	}
	// Only now does it count: a grant whose event a fault kept out of the
	// log never lets anyone in.
	if err := s.store.MarkGrantAudited(ctx, g.UserID, g.ID); err != nil {
		return nil, err
	}
	return g, nil
}

// Withdraw takes back p's user's consent grant and ends every session
// running under consent given ahead of time. It needs no right: it only
// takes access away. EConflict when no grant is in force.
func (s *Service) Withdraw(ctx context.Context, p *standin.Principal, o standin.Origin) (*standin.ConsentGrant, error) {
	if p.Impersonation != nil {
		return nil, standin.Errorf(standin.EForbidden, "Consent is withdrawn by the user alone, never while impersonating them.")
	}
	g, err := s.store.GrantOf(ctx, p.Actor.ID)
	if err != nil {
		return nil, err
	}
	if !g.ActiveAt(s.cfg.Now()) {
		return nil, standin.Errorf(standin.EConflict, "You have not granted access to your account.")
	}
	removed, err := s.store.RemoveGrant(ctx, g.UserID, g.ID)
	if err != nil {
		return nil, err
	}
	if !removed {
		return nil, standin.Errorf(standin.EConflict, "Your grant changed meanwhile; look again.")
	}
	ev := standin.NewEvent(standin.EventConsentWithdrawn, p.Actor, p.Actor, "", o)
	ev.Action, ev.Object, ev.Outcome = "consent.withdraw", "grant:"+g.ID, "withdrawn"
	if err := s.audit.Append(ctx, ev); err != nil {
		// Withdrawing is the safe direction, but unaudited it must not
		// stand: the grant is put back as it was.
		uctx := context.WithoutCancel(ctx)
		if perr := s.store.PutGrant(uctx, g); perr != nil {
			s.cfg.Logger.Error("an unaudited withdrawal could not be undone", "user", g.UserID, "err", perr)
		} else if merr := s.store.MarkGrantAudited(uctx, g.UserID, g.ID); merr != nil {
			s.cfg.Logger.Error("an unaudited withdrawal could not be undone", "user", g.UserID, "err", merr)
		}
		return nil, err
	}
	all, err := s.store.ActiveImpersonations(ctx)
	if err != nil {
		return g, err
	}
	for _, imp := range all {
		// Every session under consent given ahead of time, whichever
		// grant (a replaced one too) it started under.
		if imp.SubjectID != g.UserID || imp.GrantID == "" {
			continue
		}
		if _, err := s.end(ctx, imp.ID, standin.CauseConsentWithdrawn, p.Actor, o); err != nil && standin.ErrorCode(err) != standin.EConflict {
			return g, err
		}
	}
	return g, nil
}

// GrantOf returns who's consent grant in force, or nil.
func (s *Service) GrantOf(ctx context.Context, who *standin.User) (*standin.ConsentGrant, error) {
	g, err := s.store.GrantOf(ctx, who.ID)
	if err != nil || !g.ActiveAt(s.cfg.Now()) {
		return nil, err
	}
	return g, nil
}
