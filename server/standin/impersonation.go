package standin

import "time"

// Why an impersonation ended.
const (
	CauseEndedByActor     = "ended_by_actor"
	CauseRevoked          = "revoked"
	CauseExpired          = "expired"
	CauseActorLoggedOut   = "actor_logged_out"
	CauseTargetSuspended  = "target_suspended"
	CauseActorSuspended   = "actor_suspended"
	CauseActorLostRight   = "actor_lost_permission"
	CauseActorSessionGone = "actor_session_ended"
)

// Impersonation is an actor acting as a subject for a while, for a reason.
// It is active until EndedAt is set or ExpiresAt passes; Cause and EndedBy
// say how it ended.
type Impersonation struct {
	ID        string
	ActorID   string
	ActorName string
	// ActorEmail names the actor where a name alone could be taken by
	// anyone: names are chosen by their holders, addresses are unique.
	ActorEmail  string
	SubjectID   string
	SubjectName string
	Reason      string
	Ticket      string
	SessionID   string
	StartedAt   time.Time
	ExpiresAt   time.Time
	EndedAt     time.Time
	Cause       string
	EndedBy     string
}

// ActiveAt reports whether the impersonation is in force at t.
func (i *Impersonation) ActiveAt(t time.Time) bool {
	return i.EndedAt.IsZero() && t.Before(i.ExpiresAt)
}

// Notification is a message to a user, kept for reading later.
type Notification struct {
	ID     string
	UserID string
	// Seq is the audit seq of the event the notification tells of (0 when
	// that event could not be written at the time), so that a client
	// reconnecting to its live notifications resumes after the last one
	// it saw.
	Seq       int64
	Type      string
	Title     string
	Body      string
	ActorName string
	// ActorEmail tells the reader who acted whatever name they chose.
	ActorEmail string
	Reason     string
	Until      time.Time
	At         time.Time
}

// HoldConflict is returned when an impersonation cannot start because the
// person PersonID already takes part in an active one, as Role ("subject":
// being impersonated; "actor": impersonating someone).
type HoldConflict struct {
	PersonID string
	Role     string
	Holder   *Impersonation
}

func (e *HoldConflict) Error() string {
	return "impersonation: " + e.PersonID + " is already the " + e.Role + " of impersonation " + e.Holder.ID
}
