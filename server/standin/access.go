package standin

import "time"

// Decision answers "may this principal do this?". Reason says why, in a
// sentence a person can act on: for a denial it names the missing role,
// membership or training, the expired training, or the broken rule.
type Decision struct {
	Allowed bool
	Reason  string
}

// Object is what an action is about. Kind is the policy object (such as
// "booking" or "user"); Resource, Start and End, when set, let the
// facility's own rules judge a booking too.
type Object struct {
	Kind     string
	Resource *Resource
	Start    time.Time
	End      time.Time
}

// Object kinds and actions of the default policy. Policies may grant them
// to other roles at run time; code refers to them only by these names.
const (
	KindUser           = "user"
	KindUserAccess     = "user.access"
	KindProject        = "project"
	KindResource       = "resource"
	KindBooking        = "booking"
	KindBookingOwn     = "booking.own"
	KindBookingProject = "booking.project"
	KindBookingAny     = "booking.any"
	KindProfile        = "profile"
	KindPassword       = "password"
	KindPolicy         = "policy"
	KindImpersonation  = "impersonation"
	KindActivity       = "activity"
	// KindSettings is the impersonation settings (modes, bounds).
	KindSettings = "settings"
	// KindSink is the audit log's outside sinks (SIEM webhooks, syslog).
	KindSink = "sink"
	// KindAlert is the alerts on suspicious sessions: listed and
	// acknowledged by those in scope.
	KindAlert = "alert"
	// KindConsent is a user's own consent: answering requests to
	// impersonate them, granting access ahead of time.
	KindConsent = "consent"

	ActList    = "list"
	ActRead    = "read"
	ActCreate  = "create"
	ActCancel  = "cancel"
	ActUpdate  = "update"
	ActChange  = "change"
	ActCheck   = "check"
	ActStart   = "start"
	ActRevoke  = "revoke"
	ActSuspend = "suspend"
	// ActApprove on KindImpersonation approves others' requests in a
	// project (four eyes).
	ActApprove = "approve"
	// ActModerate on KindImpersonation watches others' moderated
	// sessions, which run only while someone with it does.
	ActModerate = "moderate"
	// ActRespond and ActGrant on KindConsent answer requests to
	// impersonate oneself and grant access ahead of time.
	ActRespond = "respond"
	ActGrant   = "grant"
	// ActAcknowledge on KindAlert acknowledges an alert with a note.
	ActAcknowledge = "acknowledge"
	// ActDestructive on KindImpersonation lets an actor do destructive
	// things (cancel a booking) while impersonating. No role has it by
	// default.
	ActDestructive = "destructive"
)

// Policy grants Role the Action on objects of kind Object in Domain: a
// project id, or "*" for every project and global things alike.
type Policy struct {
	Role   string
	Domain string
	Object string
	Action string
}

// Scope is where a principal may do something: everywhere (All), or in
// the Projects listed. Global is the decision for everywhere, whose reason
// explains a refusal when Projects is empty too.
type Scope struct {
	All      bool
	Projects []string
	Global   Decision
}

// Empty reports a scope that allows nothing.
func (s Scope) Empty() bool { return !s.All && len(s.Projects) == 0 }

// Activity scopes of Permissions.
const (
	ScopeAll      = "all"
	ScopeProjects = "projects"
	ScopeNone     = "none"
)

// Permissions is what a principal may do in the console, decided by the
// same policies as each request: the console shows what these allow and
// hides the rest. Every field is about the effective user (the subject
// while impersonating), except Impersonate and Directory, which no one has
// while impersonating.
type Permissions struct {
	// Directory: the support staff's console: list and read users, see
	// who is looking at which user and be seen doing so.
	Directory bool
	// CheckAccess: ask why a user may or may not book.
	CheckAccess bool
	// Impersonate: start an impersonation.
	Impersonate bool
	// Suspend: suspend users.
	Suspend bool
	// Activity: which part of the activity log may be read (ScopeAll,
	// ScopeProjects or ScopeNone).
	Activity string
	// Revoke: whose impersonations may be ended (ScopeAll, ScopeProjects
	// or ScopeNone); everyone may end their own.
	Revoke string
	// Policies and EditPolicies: read and change the access policies.
	Policies     bool
	EditPolicies bool
	// Settings and EditSettings: read and change the impersonation
	// settings (modes).
	Settings     bool
	EditSettings bool
	// Approve: where requests to impersonate may be approved (ScopeAll,
	// ScopeProjects or ScopeNone); never while impersonating.
	Approve string
	// Moderate: where moderated sessions may be moderated (ScopeAll,
	// ScopeProjects or ScopeNone); never while impersonating.
	Moderate string
	// Sinks and EditSinks: see and change the audit log's sinks (SIEM
	// webhooks, syslog); never while impersonating.
	Sinks     bool
	EditSinks bool
}

// ScopeName names a scope for Permissions.
func ScopeName(s Scope) string {
	switch {
	case s.All:
		return ScopeAll
	case len(s.Projects) > 0:
		return ScopeProjects
	}
	return ScopeNone
}
