package standin

import (
	"slices"
	"time"
)

// Event types. The audit log is append-only: these name what happened.
const (
	EventLogin                = "auth.login"
	EventLogout               = "auth.logout"
	EventImpersonationStarted = "impersonation.started"
	EventImpersonationEnded   = "impersonation.ended"
	EventImpersonationDenied  = "impersonation.denied"
	// A moderated session pauses when no moderator watches it (and starts
	// paused, waiting for the first), and resumes when one does.
	EventImpersonationPaused  = "impersonation.paused"
	EventImpersonationResumed = "impersonation.resumed"
	EventActionAllowed        = "action.allowed"
	EventActionDenied         = "action.denied"
	EventPolicyChanged        = "policy.changed"
	EventBookingCreated       = "booking.created"
	EventBookingCancelled     = "booking.cancelled"
	EventUserSuspended        = "user.suspended"
	EventUserRenamed          = "user.renamed"
	// The requests an impersonation mode needs (see Mode), and the
	// consent a target gives ahead of time.
	EventRequestCreated   = "request.created"
	EventRequestApproved  = "request.approved"
	EventRequestDenied    = "request.denied"
	EventRequestExpired   = "request.expired"
	EventRequestCancelled = "request.cancelled"
	EventConsentGranted   = "consent.granted"
	EventConsentWithdrawn = "consent.withdrawn"
	// EventFieldRevealed records that a masked personal data field was
	// shown to staff, for a reason: the field, never its value.
	EventFieldRevealed = "field.revealed"
	// EventSettingsChanged records a change of the impersonation
	// settings (modes and their bounds).
	EventSettingsChanged = "settings.changed"
	// A sink of the audit log was added, changed, removed, or sent a
	// test record by an admin.
	EventSinkCreated = "sink.created"
	EventSinkChanged = "sink.changed"
	EventSinkRemoved = "sink.removed"
	EventSinkTested  = "sink.tested"
	// An alert rule's condition was met, once; someone acknowledged it.
	EventAlertRaised       = "alert.raised"
	EventAlertAcknowledged = "alert.acknowledged"
	// EventAuditRefused stands in for an event that would have carried
	// more than MaxEventBytes: it records the sizes, never the content.
	EventAuditRefused = "audit.refused"
)

// EventTypes lists every event type, in the order above.
func EventTypes() []string {
	return []string{EventLogin, EventLogout, EventImpersonationStarted, EventImpersonationEnded, EventImpersonationDenied,
		EventImpersonationPaused, EventImpersonationResumed, EventActionAllowed, EventActionDenied, EventPolicyChanged,
		EventBookingCreated, EventBookingCancelled, EventUserSuspended, EventUserRenamed, EventRequestCreated,
		EventRequestApproved, EventRequestDenied, EventRequestExpired, EventRequestCancelled, EventConsentGranted,
		EventConsentWithdrawn, EventFieldRevealed, EventSettingsChanged, EventSinkCreated, EventSinkChanged,
		EventSinkRemoved, EventSinkTested, EventAlertRaised, EventAlertAcknowledged, EventAuditRefused}
}

// MaxEventBytes bounds the text one audit event may carry, summed over
// its fields (see Event.TextBytes). Whatever a request sends, no event is
// stored larger: one past the bound is refused and its refusal recorded
// in its place, with the sizes of its fields.
const MaxEventBytes = 16 << 10

// EventUser names a person in an event as they were when it happened.
type EventUser struct {
	ID   string
	Name string
}

// Event is one entry of the audit log. Seq orders all events without gaps;
// Hash covers the event's content and PrevHash, the previous event's Hash,
// so that any change to a stored event breaks the chain.
//
// Subject is whose identity the action used (the impersonated user under
// impersonation); Actor is the person who acted. Projects lists the
// projects the event concerns (its project and the subject's), which is
// what managers' visibility is decided on.
type Event struct {
	ID              string
	Seq             int64
	Time            time.Time
	Type            string
	Actor           EventUser
	Subject         EventUser
	ImpersonationID string
	Action          string
	Object          string
	Project         string
	Outcome         string
	Reason          string
	IP              string
	UserAgent       string
	Projects        []string
	PrevHash        string
	Hash            string
}

// Clone returns a copy of e that shares nothing with it.
func (e *Event) Clone() *Event {
	c := *e
	c.Projects = slices.Clone(e.Projects)
	return &c
}

// TextBytes is how many bytes of text e carries in its fields, the
// measure MaxEventBytes bounds.
func (e *Event) TextBytes() int {
	n := len(e.ID) + len(e.Type) + len(e.Actor.ID) + len(e.Actor.Name) + len(e.Subject.ID) + len(e.Subject.Name) +
		len(e.ImpersonationID) + len(e.Action) + len(e.Object) + len(e.Project) + len(e.Outcome) + len(e.Reason) +
		len(e.IP) + len(e.UserAgent)
	for _, p := range e.Projects {
		n += len(p)
	}
	return n
}

// EventFilter selects events; zero fields do not filter. Projects, when
// not nil, restricts to events concerning at least one of them (a
// manager's view); an empty non-nil slice matches nothing.
type EventFilter struct {
	Type            string
	ActorID         string
	SubjectID       string
	ImpersonationID string
	Project         string
	AfterSeq        int64
	Since           time.Time
	Until           time.Time
	Projects        []string
}

// Origin is where an action came from, as the audit log records it.
type Origin struct {
	IP        string
	UserAgent string
}

// NewEvent builds the audit event of an action by actor using subject's
// identity (the same person outside impersonation). Projects starts as
// the subject's; Concerning adds the action's own project.
func NewEvent(typ string, actor, subject *User, impersonationID string, o Origin) *Event {
	return &Event{
		Type:            typ,
		Actor:           EventUser{ID: actor.ID, Name: actor.Name},
		Subject:         EventUser{ID: subject.ID, Name: subject.Name},
		ImpersonationID: impersonationID,
		IP:              o.IP,
		UserAgent:       o.UserAgent,
		Projects:        distinct(subject.ProjectIDs()),
	}
}

// EventOf builds the audit event of an action by the principal: Subject
// is whose identity was used, Actor who acted.
func (p *Principal) EventOf(typ string, o Origin) *Event {
	impID := ""
	if p.Impersonation != nil {
		impID = p.Impersonation.ID
	}
	return NewEvent(typ, p.Actor, p.Subject, impID, o)
}

// DecisionEvent is the audit event of a decision made while p
// impersonates, written before the decision takes effect: action.allowed
// or action.denied with its reason. Outside impersonation decisions are
// not audited, and it returns nil.
func (p *Principal) DecisionEvent(action, object, project string, dec Decision, o Origin) *Event {
	if p.Impersonation == nil {
		return nil
	}
	typ, outcome := EventActionAllowed, "allowed"
	if !dec.Allowed {
		typ, outcome = EventActionDenied, "denied"
	}
	return p.EventOf(typ, o).Concerning(action, object, project, outcome, dec.Reason)
}

// Concerning sets what the event did and to what, in which project and
// with what result. The project, when set, leads Projects, which holds
// each project once.
func (e *Event) Concerning(action, object, project, outcome, reason string) *Event {
	e.Action, e.Object, e.Project, e.Outcome, e.Reason = action, object, project, outcome, reason
	if project != "" {
		others := slices.DeleteFunc(e.Projects, func(id string) bool { return id == project })
		e.Projects = append([]string{project}, others...)
	}
	return e
}

// distinct drops repeated ids (a member who also leads a project is listed
// once), keeping the first of each in order.
func distinct(ids []string) []string {
	out := ids[:0]
	for i, id := range ids {
		if !slices.Contains(ids[:i], id) {
			out = append(out, id)
		}
	}
	return out
}

// SlotObject is the object of an attempt to book resourceID from start to
// end: "resource:<id> <start>/<end>", the times in UTC (an ISO 8601
// interval), so that the event of a refused booking says which time was
// asked for.
func SlotObject(resourceID string, start, end time.Time) string {
	return "resource:" + resourceID + " " + start.UTC().Format(time.RFC3339) + "/" + end.UTC().Format(time.RFC3339)
}
