package ocsf

import (
	"strings"

	"standin/server/standin"
)

// who names a person in a message: "Sam Agent (u-sam)".
func who(u standin.EventUser) string {
	switch {
	case u.Name != "" && u.ID != "":
		return u.Name + " (" + u.ID + ")"
	case u.Name != "":
		return u.Name
	case u.ID != "":
		return u.ID
	}
	return "someone"
}

// because appends the reason, if any, to a sentence's end.
func because(s, reason string) string {
	if reason != "" {
		s += ": " + reason
	}
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}

// message is a readable sentence saying what e records.
func message(e *standin.Event) string {
	actor, subject := who(e.Actor), who(e.Subject)
	as := ""
	if e.Subject != e.Actor {
		as = " as " + subject
	}
	switch e.Type {
	case standin.EventLogin:
		return actor + " signed in."
	case standin.EventLogout:
		return actor + " signed out."
	case standin.EventImpersonationStarted:
		s := actor + " started impersonating " + subject
		if e.Outcome == "started_paused" {
			s += ", paused until a moderator watches"
		}
		return because(s, e.Reason)
	case standin.EventImpersonationDenied:
		return because(actor+" was refused impersonating "+subject, e.Reason)
	case standin.EventImpersonationEnded:
		return because(actor+"'s impersonation of "+subject+" ended ("+e.Outcome+")", e.Reason)
	case standin.EventImpersonationPaused:
		return because(actor+"'s impersonation of "+subject+" was paused: no moderator watches it", e.Reason)
	case standin.EventImpersonationResumed:
		return because(actor+"'s impersonation of "+subject+" resumed", e.Reason)
	case standin.EventActionAllowed:
		verb := " did "
		if e.Outcome == "failed" {
			verb = " failed to do "
		}
		return because(actor+verb+e.Action+" on "+e.Object+as, e.Reason)
	case standin.EventActionDenied:
		return because(actor+" was refused "+e.Action+" on "+e.Object+as, e.Reason)
	case standin.EventBookingCreated:
		return because(actor+" booked "+e.Object+as, e.Reason)
	case standin.EventBookingCancelled:
		return because(actor+" cancelled "+e.Object+as, e.Reason)
	case standin.EventPolicyChanged:
		return actor + " " + e.Outcome + " the policy line " + e.Object + as + "."
	case standin.EventUserSuspended:
		return actor + " suspended the account of " + subject + "."
	case standin.EventUserRenamed:
		return because(actor+" renamed "+subject, e.Reason)
	case standin.EventRequestCreated:
		return because(actor+" asked to impersonate "+subject+" ("+e.Outcome+")", e.Reason)
	case standin.EventRequestApproved:
		return because(actor+" approved the request "+e.Object+" to impersonate "+subject+" ("+e.Outcome+")", e.Reason)
	case standin.EventRequestDenied:
		return because(actor+" refused the request "+e.Object+" to impersonate "+subject, e.Reason)
	case standin.EventRequestExpired:
		return because("The request "+e.Object+" of "+actor+" to impersonate "+subject+" ended unused ("+e.Outcome+")", e.Reason)
	case standin.EventRequestCancelled:
		return because(actor+" withdrew the request "+e.Object+" to impersonate "+subject, e.Reason)
	case standin.EventConsentGranted:
		return because(actor+" let support act as them without asking ("+e.Object+")", e.Reason)
	case standin.EventConsentWithdrawn:
		return because(actor+" withdrew their consent to support acting as them ("+e.Object+")", e.Reason)
	case standin.EventFieldRevealed:
		field := strings.TrimPrefix(e.Object, "field:")
		return because(actor+" revealed the "+field+" of "+subject, e.Reason)
	case standin.EventSettingsChanged:
		return because(actor+" changed the impersonation settings", e.Reason)
	case standin.EventAuditRefused:
		return because("A request of "+actor+as+" was refused: its audit event ("+e.Action+") would have been too large", e.Reason)
	case "alert.raised":
		return because("Alert "+e.Object+" raised about "+subject, e.Reason)
	case "alert.acknowledged":
		return because(actor+" acknowledged alert "+e.Object, e.Reason)
	}
	s := e.Type + " by " + actor + as
	if e.Action != "" || e.Object != "" {
		s += ": " + strings.TrimSpace(e.Action+" "+e.Object)
	}
	if e.Outcome != "" {
		s += " (" + e.Outcome + ")"
	}
	return because(s, e.Reason)
}
