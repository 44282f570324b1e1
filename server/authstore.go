package server

import (
	"context"
	"slices"
	"time"

	"standin/server/authcache"
	"standin/server/mongostore"
	"standin/server/standin"
)

// authStore is the requests' database with what authenticating a request
// reads (its session, the session's user, the impersonation in force and
// its subject) answered from memory (package authcache).
//
// Every write of those records goes through it and forgets the record
// after writing, so this node reads its own writes at once. What other
// nodes write, this node forgets as it learns of it (forgetFor: the audit
// events it follows, the signals it applies), within the time following
// takes; authcache.DefaultTTL bounds anything else, such as an edit made
// to the database by hand.
type authStore struct {
	*mongostore.DB
	sessions *authcache.Cache[*standin.Session]
	users    *authcache.Cache[*standin.User]
	imps     *authcache.Cache[*standin.Impersonation]
}

// announcedHold is how long a user announced changed by an event (which
// the log commits before the change is written) is read from the
// database each time, rather than kept.
const announcedHold = time.Second

func newAuthStore(db *mongostore.DB) *authStore {
	return &authStore{
		DB:       db,
		sessions: authcache.New(0, nil, func(s *standin.Session) *standin.Session { cp := *s; return &cp }),
		users:    authcache.New(0, nil, cloneUser),
		imps:     authcache.New(0, nil, func(i *standin.Impersonation) *standin.Impersonation { cp := *i; return &cp }),
	}
}

func cloneUser(u *standin.User) *standin.User {
	cp := *u
	cp.Memberships = slices.Clone(u.Memberships)
	cp.Trainings = slices.Clone(u.Trainings)
	return &cp
}

func (s *authStore) SessionByID(ctx context.Context, id string) (*standin.Session, error) {
	return s.sessions.Get(ctx, id, func(ctx context.Context) (*standin.Session, error) { return s.DB.SessionByID(ctx, id) })
}

func (s *authStore) UserByID(ctx context.Context, id string) (*standin.User, error) {
	return s.users.Get(ctx, id, func(ctx context.Context) (*standin.User, error) { return s.DB.UserByID(ctx, id) })
}

func (s *authStore) ImpersonationByID(ctx context.Context, id string) (*standin.Impersonation, error) {
	return s.imps.Get(ctx, id, func(ctx context.Context) (*standin.Impersonation, error) { return s.DB.ImpersonationByID(ctx, id) })
}

// Writes of sessions.

func (s *authStore) CreateSession(ctx context.Context, sess *standin.Session) error {
	defer s.sessions.Forget(0, sess.ID)
	return s.DB.CreateSession(ctx, sess)
}

func (s *authStore) TouchSession(ctx context.Context, id string, seen, expires time.Time) error {
	defer s.sessions.Forget(0, id)
	return s.DB.TouchSession(ctx, id, seen, expires)
}

func (s *authStore) SetSessionImpersonation(ctx context.Context, id, impersonationID string) error {
	defer s.sessions.Forget(0, id)
	return s.DB.SetSessionImpersonation(ctx, id, impersonationID)
}

func (s *authStore) DeleteSession(ctx context.Context, id string) error {
	defer s.sessions.Forget(0, id)
	return s.DB.DeleteSession(ctx, id)
}

func (s *authStore) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	defer s.sessions.ForgetAll() // which were deleted is known only when it succeeds
	return s.DB.DeleteUserSessions(ctx, userID)
}

func (s *authStore) DeleteExpiredSessions(ctx context.Context, now time.Time) ([]string, error) {
	defer s.sessions.ForgetAll()
	return s.DB.DeleteExpiredSessions(ctx, now)
}

// Writes of users.

func (s *authStore) EnsureUser(ctx context.Context, u *standin.User) error {
	err := s.DB.EnsureUser(ctx, u)
	s.users.ForgetAll() // u.ID is set only when it succeeds
	return err
}

func (s *authStore) UpdateUserName(ctx context.Context, id, name string, at time.Time) (*standin.User, error) {
	defer s.users.Forget(0, id)
	return s.DB.UpdateUserName(ctx, id, name, at)
}

func (s *authStore) SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	defer s.users.Forget(0, id)
	return s.DB.SetPasswordHash(ctx, id, hash, at)
}

func (s *authStore) SetUserStatus(ctx context.Context, id string, status standin.Status, at time.Time) (*standin.User, error) {
	defer s.users.Forget(0, id)
	return s.DB.SetUserStatus(ctx, id, status, at)
}

func (s *authStore) SetTrainings(ctx context.Context, id string, recs []standin.TrainingRecord, at time.Time) (*standin.User, error) {
	defer s.users.Forget(0, id)
	return s.DB.SetTrainings(ctx, id, recs, at)
}

// Writes of impersonations.

func (s *authStore) CreateImpersonation(ctx context.Context, i *standin.Impersonation) error {
	defer s.imps.Forget(0, i.ID)
	return s.DB.CreateImpersonation(ctx, i)
}

func (s *authStore) EndImpersonation(ctx context.Context, id, cause string, by *standin.User, at time.Time) (*standin.Impersonation, error) {
	defer s.imps.Forget(0, id)
	return s.DB.EndImpersonation(ctx, id, cause, by, at)
}

func (s *authStore) MarkEndAudited(ctx context.Context, id string) error {
	defer s.imps.Forget(0, id)
	return s.DB.MarkEndAudited(ctx, id)
}

func (s *authStore) ClearImpersonationSessions(ctx context.Context, id string) ([]string, error) {
	defer s.sessions.ForgetAll()
	return s.DB.ClearImpersonationSessions(ctx, id)
}

// forgetFor forgets what an event of the log, from any node, says has
// changed: an impersonation that started or ended (and the sessions it
// rotated or cleared), a session that ended, a user renamed or suspended
// (announced before the change is written, so read afresh for a moment).
func (s *authStore) forgetFor(e *standin.Event) {
	switch e.Type {
	case standin.EventImpersonationStarted, standin.EventImpersonationEnded:
		s.imps.Forget(0, e.ImpersonationID)
		s.sessions.ForgetAll()
	case standin.EventLogout:
		s.sessions.ForgetAll()
	case standin.EventUserRenamed, standin.EventUserSuspended:
		s.users.Forget(announcedHold, e.Subject.ID)
		s.sessions.ForgetAll()
	}
}
