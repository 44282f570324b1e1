package standin

import (
	"strings"
	"time"
)

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
	CauseConsentWithdrawn = "consent_withdrawn"
	CauseModeratorAbsent  = "moderator_absent"
)

// Impersonation is an actor acting as a subject for a while, for a reason.
// It is active until EndedAt is set or ExpiresAt passes; Cause says how it
// ended, and EndedBy, EndedByName and EndedByEmail who ended it (as they
// were then; empty when no one did, as on expiry).
type Impersonation struct {
	ID        string
	ActorID   string
	ActorName string
	// ActorEmail names the actor where a name alone could be taken by
	// anyone: names are chosen by their holders, addresses are unique.
	ActorEmail   string
	SubjectID    string
	SubjectName  string
	Reason       string
	Ticket       string
	SessionID    string
	StartedAt    time.Time
	ExpiresAt    time.Time
	EndedAt      time.Time
	Cause        string
	EndedBy      string
	EndedByName  string
	EndedByEmail string
	// GrantID is the consent grant it started under, if any: withdrawing
	// the grant ends it.
	GrantID string
	// Moderated sessions run only while a moderator watches them.
	Moderated bool
}

// ActiveAt reports whether the impersonation is in force at t.
func (i *Impersonation) ActiveAt(t time.Time) bool {
	return i.EndedAt.IsZero() && t.Before(i.ExpiresAt)
}

// NotificationModeration is the type of a notification asking someone
// who may moderate a session to watch it.
const NotificationModeration = "moderation.needed"

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
	// ImpersonationID is the session the notification tells of, whose
	// summary the reader can open.
	ImpersonationID string
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

// Bar is one thing in an actor's or a target's account that keeps an
// actor from impersonating a target.
type Bar string

// The bars, in the order they are told to the actor.
const (
	BarSelf      Bar = "self"      // the target is the actor
	BarOwner     Bar = "owner"     // nobody impersonates an owner
	BarRank      Bar = "rank"      // the target's role is not lower than the actor's
	BarSuspended Bar = "suspended" // the target's account is suspended, or gone
)

// Bars lists the bars that apply, in the order of the constants above.
type Bars []Bar

// First is the bar to tell first, or "" when none applies.
func (bs Bars) First() Bar {
	if len(bs) == 0 {
		return ""
	}
	return bs[0]
}

// Has reports whether b applies.
func (bs Bars) Has(b Bar) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// ImpersonationBars is the one statement of who may impersonate whom, as
// far as their accounts say: never oneself, never an owner, only someone
// of a lower role, and only an active account. The right to impersonate at
// all is granted by policy and decided by the authorizer, not here.
//
// A nil target is an account that is gone: BarSuspended alone. A nil actor
// has no rank: every target outranks it. Suspending an account follows the
// same ranks, so suspension asks the same question.
func ImpersonationBars(actor, target *User) Bars {
	if target == nil {
		return Bars{BarSuspended}
	}
	var bs Bars
	actorRank := -1
	if actor != nil {
		actorRank = actor.Role.Rank()
		if target.ID == actor.ID {
			bs = append(bs, BarSelf)
		}
	}
	if target.Role == RoleOwner {
		bs = append(bs, BarOwner)
	}
	if target.Role.Rank() >= actorRank {
		bs = append(bs, BarRank)
	}
	if !target.Active() {
		bs = append(bs, BarSuspended)
	}
	return bs
}

// MayImpersonate reports whether nothing in their accounts keeps actor
// from impersonating target (see ImpersonationBars).
func MayImpersonate(actor, target *User) bool {
	return len(ImpersonationBars(actor, target)) == 0
}

// EndWords says in a few plain words how the impersonation ended and who
// ended it, naming people by name and address, which names alone could
// not do (anyone may call themselves anything): "Maria Manager
// (maria@example.org) ended it", "its time ran out".
func (i *Impersonation) EndWords() string {
	actor := Named(i.ActorName, i.ActorEmail)
	ender := Named(i.EndedByName, i.EndedByEmail)
	if ender == "" {
		ender = "someone"
	}
	switch i.Cause {
	case CauseEndedByActor:
		return actor + " ended it"
	case CauseRevoked:
		return ender + " ended it"
	case CauseExpired:
		return "its time ran out"
	case CauseActorLoggedOut:
		return actor + " signed out"
	case CauseTargetSuspended:
		return ender + " suspended the account"
	case CauseActorSuspended:
		return actor + "'s account was suspended"
	case CauseActorLostRight:
		return actor + " lost the right to impersonate"
	case CauseActorSessionGone:
		return actor + "'s session ended"
	case CauseConsentWithdrawn:
		return "the user withdrew their consent"
	case CauseModeratorAbsent:
		return "no moderator was watching it"
	default:
		return strings.ReplaceAll(i.Cause, "_", " ")
	}
}

// Named is "Name (address)", or the name alone when there is no address.
func Named(name, email string) string {
	if email == "" {
		return name
	}
	return name + " (" + email + ")"
}
