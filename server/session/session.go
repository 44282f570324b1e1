// Package session starts, resolves and ends sign-in sessions. A client holds
// a random token; storage holds only its SHA-256, so a database dump holds no
// usable credential. The HTTP API and the WebSocket door resolve tokens
// through the same Manager, so both judge expiry and suspension alike.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"standin/server/standin"
)

// Store is the session storage a Manager needs.
type Store interface {
	CreateSession(ctx context.Context, s *standin.Session) error
	SessionByID(ctx context.Context, id string) (*standin.Session, error)
	TouchSession(ctx context.Context, id string, seen, expires time.Time) error
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, userID string) ([]string, error)
	DeleteExpiredSessions(ctx context.Context, now time.Time) ([]string, error)
	SetSessionImpersonation(ctx context.Context, id, impersonationID string) error
}

// Users finds the account a session belongs to.
type Users interface {
	UserByID(ctx context.Context, id string) (*standin.User, error)
}

// Config tunes a Manager; zero values are the documented defaults.
type Config struct {
	// TTL is a session's absolute lifetime (default 12h).
	TTL time.Duration
	// Idle ends a session unused for this long (default 2h).
	Idle time.Duration
	// TouchEvery limits how often the sliding expiry is written (default 1m).
	TouchEvery time.Duration
	// OnEnd is told the id of every session that ends, however it ends,
	// so that its open sockets can be closed.
	OnEnd func(id string)
	// OnRotate is told the id of a session replaced by a new one for the
	// same person (impersonation started or ended), so its sockets can be
	// told to reconnect with the new cookie rather than to sign in again.
	OnRotate func(oldID string)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Manager starts, resolves and ends sessions.
type Manager struct {
	store Store
	users Users
	cfg   Config
}

// NewManager returns a Manager over store and users.
func NewManager(store Store, users Users, cfg Config) *Manager {
	if cfg.TTL <= 0 {
		cfg.TTL = 12 * time.Hour
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 2 * time.Hour
	}
	if cfg.TouchEvery <= 0 {
		cfg.TouchEvery = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnEnd == nil {
		cfg.OnEnd = func(string) {}
	}
	if cfg.OnRotate == nil {
		cfg.OnRotate = func(string) {}
	}
	return &Manager{store: store, users: users, cfg: cfg}
}

// ID is the stored id of a token.
func ID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Start creates a session for u and returns the token the client keeps.
func (m *Manager) Start(ctx context.Context, u *standin.User, ip, userAgent string) (string, *standin.Session, error) {
	token, csrf, err := newTokens()
	if err != nil {
		return "", nil, err
	}
	now := m.cfg.Now().UTC()
	s := &standin.Session{
		ID:         ID(token),
		UserID:     u.ID,
		CSRFToken:  csrf,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  m.expiry(now, now),
		IP:         ip,
		UserAgent:  userAgent,
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	return token, s, nil
}

// Deadline is the latest a session can last: its absolute lifetime.
func (m *Manager) Deadline(s *standin.Session) time.Time {
	return s.CreatedAt.Add(m.cfg.TTL)
}

// Authenticate resolves a token into the principal it acts for. It returns
// EUnauthenticated for an unknown or expired token and for an account that
// is gone or suspended (ending that session), EUnavailable when storage is
// down.
func (m *Manager) Authenticate(ctx context.Context, token string) (*standin.Principal, error) {
	if token == "" {
		return nil, standin.Errorf(standin.EUnauthenticated, "Sign in to continue.")
	}
	s, err := m.store.SessionByID(ctx, ID(token))
	if standin.ErrorCode(err) == standin.ENotFound {
		return nil, standin.Errorf(standin.EUnauthenticated, "Your session has ended. Sign in again.")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	now := m.cfg.Now()
	if s.ExpiredAt(now) {
		if err := m.End(ctx, s.ID); err != nil {
			return nil, err
		}
		return nil, standin.Errorf(standin.EUnauthenticated, "Your session has expired. Sign in again.")
	}
	user, err := m.users.UserByID(ctx, s.UserID)
	if standin.ErrorCode(err) == standin.ENotFound || (err == nil && !user.Active()) {
		if err := m.End(ctx, s.ID); err != nil {
			return nil, err
		}
		return nil, standin.Errorf(standin.EUnauthenticated, "Your account cannot sign in. Contact an administrator.")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if now.Sub(s.LastSeenAt) >= m.cfg.TouchEvery {
		s.LastSeenAt, s.ExpiresAt = now.UTC(), m.expiry(s.CreatedAt, now)
		if err := m.store.TouchSession(ctx, s.ID, s.LastSeenAt, s.ExpiresAt); err != nil {
			return nil, fmt.Errorf("authenticate: %w", err)
		}
	}
	return &standin.Principal{Actor: user, Subject: user, Session: s}, nil
}

// End deletes a session and tells OnEnd. Ending a session that is already
// gone is not an error.
func (m *Manager) End(ctx context.Context, id string) error {
	if err := m.store.DeleteSession(ctx, id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	m.cfg.OnEnd(id)
	return nil
}

// Rotate replaces old by a new session of the same person with a fresh
// token and CSRF token, in impersonation impersonationID ("" for none). The
// new session keeps old's absolute lifetime. The old token stops working
// at once. The caller sets the new cookie.
func (m *Manager) Rotate(ctx context.Context, old *standin.Session, impersonationID string) (string, *standin.Session, error) {
	token, csrf, err := newTokens()
	if err != nil {
		return "", nil, err
	}
	now := m.cfg.Now().UTC()
	s := &standin.Session{
		ID:              ID(token),
		UserID:          old.UserID,
		CSRFToken:       csrf,
		CreatedAt:       old.CreatedAt,
		LastSeenAt:      now,
		ExpiresAt:       m.expiry(old.CreatedAt, now),
		IP:              old.IP,
		UserAgent:       old.UserAgent,
		ImpersonationID: impersonationID,
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return "", nil, fmt.Errorf("rotate session: %w", err)
	}
	if err := m.store.DeleteSession(ctx, old.ID); err != nil {
		// The new session must not outlive a failed rotation.
		_ = m.store.DeleteSession(context.WithoutCancel(ctx), s.ID)
		return "", nil, fmt.Errorf("rotate session: %w", err)
	}
	m.cfg.OnRotate(old.ID)
	return token, s, nil
}

// ClearImpersonation takes a session out of its impersonation without
// rotating it (the impersonation was revoked or expired, and the request
// that noticed is not the session's own).
func (m *Manager) ClearImpersonation(ctx context.Context, id string) error {
	err := m.store.SetSessionImpersonation(ctx, id, "")
	if err != nil && standin.ErrorCode(err) != standin.ENotFound {
		return fmt.Errorf("clear session impersonation: %w", err)
	}
	return nil
}

// EndUser ends every session of a user, as when the account is suspended,
// and returns how many ended.
func (m *Manager) EndUser(ctx context.Context, userID string) (int, error) {
	ids, err := m.store.DeleteUserSessions(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("end sessions of user: %w", err)
	}
	for _, id := range ids {
		m.cfg.OnEnd(id)
	}
	return len(ids), nil
}

// Sweep removes expired sessions and returns how many it removed.
func (m *Manager) Sweep(ctx context.Context) (int, error) {
	ids, err := m.store.DeleteExpiredSessions(ctx, m.cfg.Now())
	if err != nil {
		return 0, fmt.Errorf("sweep sessions: %w", err)
	}
	for _, id := range ids {
		m.cfg.OnEnd(id)
	}
	return len(ids), nil
}

// expiry is when a session created at created and last used at seen ends:
// after Idle of disuse, and never later than TTL after it began.
func (m *Manager) expiry(created, seen time.Time) time.Time {
	idle, absolute := seen.Add(m.cfg.Idle), created.Add(m.cfg.TTL)
	if idle.Before(absolute) {
		return idle.UTC()
	}
	return absolute.UTC()
}

// newTokens returns a fresh session token and CSRF token.
func newTokens() (token, csrf string, err error) {
	if token, err = randomToken(); err != nil {
		return "", "", err
	}
	if csrf, err = randomToken(); err != nil {
		return "", "", err
	}
	return token, csrf, nil
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
