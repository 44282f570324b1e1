package standin

import (
	"slices"
	"time"
)

// Statuses of an AccessRequest.
const (
	RequestPending   = "pending"
	RequestApproved  = "approved"
	RequestDenied    = "denied"
	RequestExpired   = "expired"
	RequestCancelled = "cancelled"
	RequestStarted   = "started"
)

// StartWindow is how long after its approval a request may be started.
const StartWindow = 10 * time.Minute

// AccessRequest asks to impersonate a target whose mode needs an answer
// first (ModeConsent: the target's; ModeApproval: Approvals approvers').
// Its ID is the impersonation's once it starts. Everything but Votes and
// Outcome is fixed when it is made: an answer is for this actor, this
// target, this reason and this duration only.
type AccessRequest struct {
	ID          string
	ActorID     string
	ActorName   string
	ActorEmail  string
	SubjectID   string
	SubjectName string
	// SubjectRole and Projects are the target's when the request was
	// made: whoever approves must outrank that role and have the right to
	// approve in one of those projects (or everywhere).
	SubjectRole Role
	Projects    []string
	Reason      string
	Ticket      string
	Minutes     int
	Mode        Mode
	Approvals   int // approvers needed (ModeApproval)
	CreatedAt   time.Time
	ExpiresAt   time.Time // unanswered by then, it expires
	// Votes are the approvals given so far, in the order of their
	// places; only those Audited count (see Counted).
	Votes   []Vote
	Outcome *Outcome // nil while pending
	Started bool     // the impersonation started from it
	// Audited is true once the request.created event is in the audit
	// log: until then the request is nobody's to see or answer.
	Audited bool
}

// Vote is one approval of a request.
type Vote struct {
	By   EventUser
	At   time.Time
	Note string
	// K is the vote's place among the request's approvals, from 1.
	K int
	// EventID is the id of the request.approved event that records the
	// vote (empty for votes stored before votes were audited).
	EventID string
	// Audited is true once that event is in the audit log: only then
	// does the vote count towards the approvals the request needs.
	Audited bool
}

// Outcome is how a request was decided: approved, denied, expired or
// cancelled, by whom (none for an expiry) and when.
type Outcome struct {
	Status string
	By     EventUser
	At     time.Time
	Note   string
	// Audited is true once the outcome's event is in the audit log.
	Audited bool
}

// Status is the request's status at now: its outcome's, "started" once
// started, "expired" once unanswered past ExpiresAt or approved and not
// started within StartWindow, else "pending".
func (r *AccessRequest) Status(now time.Time) string {
	switch {
	case r.Started:
		return RequestStarted
	case r.Outcome == nil && !now.Before(r.ExpiresAt):
		return RequestExpired
	case r.Outcome == nil:
		return RequestPending
	case r.Outcome.Status == RequestApproved && !now.Before(r.StartBy()):
		return RequestExpired
	}
	return r.Outcome.Status
}

// StartBy is when an approved request can no longer be started (zero
// while it is not approved).
func (r *AccessRequest) StartBy() time.Time {
	if r.Outcome == nil || r.Outcome.Status != RequestApproved {
		return time.Time{}
	}
	return r.Outcome.At.Add(StartWindow)
}

// VotedBy reports whether userID approved r already.
func (r *AccessRequest) VotedBy(userID string) bool {
	return slices.ContainsFunc(r.Votes, func(v Vote) bool { return v.By.ID == userID })
}

// Counted returns the votes that count: those whose event is in the
// audit log.
func (r *AccessRequest) Counted() []Vote {
	out := make([]Vote, 0, len(r.Votes))
	for _, v := range r.Votes {
		if v.Audited {
			out = append(out, v)
		}
	}
	return out
}

// Needed is how many counted votes approve r: its Approvals, at least
// one (a consent request's one answer is its target's vote).
func (r *AccessRequest) Needed() int { return max(r.Approvals, 1) }

// Clone returns a deep copy of r.
func (r *AccessRequest) Clone() *AccessRequest {
	c := *r
	c.Projects = slices.Clone(r.Projects)
	c.Votes = slices.Clone(r.Votes)
	if r.Outcome != nil {
		o := *r.Outcome
		c.Outcome = &o
	}
	return &c
}

// ConsentGrant is a target's consent ahead of time: while it holds, staff
// with the right to impersonate them may start without asking.
type ConsentGrant struct {
	ID        string
	UserID    string
	UserName  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ActiveAt reports whether the grant holds at t.
func (g *ConsentGrant) ActiveAt(t time.Time) bool { return g != nil && t.Before(g.ExpiresAt) }

// MaxGrantHours bounds a consent grant.
const MaxGrantHours = 7 * 24
