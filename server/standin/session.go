package standin

import "time"

// Session is a signed-in browser or client. ID is a digest of the secret
// token the client holds, so the database never stores a usable credential.
type Session struct {
	ID         string
	UserID     string
	CSRFToken  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	IP         string
	UserAgent  string
	// ImpersonationID is set while the session's user impersonates
	// someone; the session's own user stays the actor.
	ImpersonationID string
	// RotatePending is set when someone else ended the session's
	// impersonation (revoke, expiry, suspension): the session's next
	// request gets a new token, as an end by the actor does at once.
	RotatePending bool
}

// ExpiredAt reports whether the session no longer authenticates at t.
func (s *Session) ExpiredAt(t time.Time) bool { return !t.Before(s.ExpiresAt) }
