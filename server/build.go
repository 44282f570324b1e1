package server

import (
	"context"
	"net/url"
	"time"

	"standin/realtime"
	"standin/server/access"
	"standin/server/accounts"
	"standin/server/alerts"
	"standin/server/bookings"
	"standin/server/httpapi"
	"standin/server/impersonation"
	"standin/server/livefeed"
	"standin/server/loginlimit"
	"standin/server/rbac"
	"standin/server/session"
	"standin/server/sinks"
	"standin/server/standin"
	"standin/server/support"
	"standin/ui"
)

// build makes the console's services over the opened database (the
// authorizer, sessions, accounts, bookings, impersonation, the realtime
// hub and the HTTP API) and finishes what an earlier stop left undone.
func (n *node) build(ctx context.Context) error {
	n.step("Loading the access policies")
	var err error
	if n.rbac, err = rbac.New(ctx, n.db, n.db, n.log.With("component", "authz")); err != nil {
		return err
	}
	n.buildSessions()
	if n.accounts, err = accounts.New(accounts.Config{
		Users: n.auth, Sessions: n.sessions, Impersonations: n.imps, Audit: n.events, Authorizer: n.rbac,
		// Sign-in ledgers live in the database, so every server sharing
		// it counts every attempt.
		SignIn:       loginlimit.New(n.cfg.SignInLimits, n.db.SignInLimits(n.cfg.SignInLimits.WithDefaults().Window)),
		PasswordCost: n.cfg.PasswordCost,
		Logger:       n.log.With("component", "accounts"),
		Now:          n.cfg.Clock,
	}); err != nil {
		return err
	}
	n.facility = newFacilityStore(n.db)
	n.decider = access.New(n.rbac, n.facility, n.cfg.Location, n.cfg.Clock)
	// Bookings a stop left half-written are completed or undone by their
	// commit records before anything is served.
	n.bookings = bookings.New(n.facility, n.decider, n.events, bookings.Config{Now: n.cfg.Clock, Logger: n.log.With("component", "bookings")})
	if err := n.bookings.Recover(ctx); err != nil {
		return err
	}
	// So are the impersonation holds an end that did not finish left.
	if err := freeStaleHolds(ctx, n.db, n.log); err != nil {
		return err
	}
	if err := holdActive(ctx, n.db, n.tracker, n.cfg.Clock()); err != nil {
		return err
	}
	if err := n.buildHub(); err != nil {
		return err
	}
	if count, err := n.imps.RepairEnds(ctx); err != nil {
		return err
	} else if count > 0 {
		n.log.Warn("audited impersonation ends an earlier stop left unaudited", "count", count)
	}
	if err := n.buildSinks(); err != nil {
		return err
	}
	return n.buildHTTP()
}

// buildSinks makes the admins' service of the audit log's sinks; the
// delivery runs with the jobs.
func (n *node) buildSinks() error {
	allow, err := sinks.ParseAllowlist(n.cfg.SinkAllow)
	if err != nil {
		return err
	}
	n.allow = allow
	n.sinks = sinks.NewService(sinks.ServiceConfig{
		Store: n.db, Audit: n.events, Allow: allow, Now: n.cfg.Clock,
		Projects: func(ctx context.Context) ([]string, error) {
			ps, err := n.facility.Projects(ctx)
			ids := make([]string, 0, len(ps))
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			return ids, err
		},
	})
	return nil
}

// buildSessions makes the session manager and the impersonation service,
// whose ends and rotations close the sockets they concern.
func (n *node) buildSessions() {
	n.sessions = session.NewManager(n.auth, n.auth, session.Config{
		Now:   n.cfg.Clock,
		OnEnd: n.feed.SessionEnded,
		OnRotate: func(id string) {
			// A moment's delay lets the response carrying the new cookie
			// reach the browser before its tabs reconnect with it.
			time.AfterFunc(rotateGrace, func() { n.feed.SessionReplaced(id) })
		},
	})
	n.imps = impersonation.New(n.auth, n.sessions, n.rbac, n.events, impersonation.Config{
		Now:        n.cfg.Clock,
		Location:   n.cfg.Location,
		Logger:     n.log.With("component", "impersonation"),
		OnNotify:   n.feed.Notified,
		Moderation: n.presence,
		OnStarted: func(imp *standin.Impersonation, oldSession string) {
			n.presence.Hold(imp)
			n.feed.ImpersonationStarted(imp, oldSession)
		},
		OnEnded: func(imp *standin.Impersonation, sessionIDs []string) {
			n.presence.Release(imp.ID)
			n.feed.ImpersonationEnded(imp, sessionIDs)
			// The actor's tabs learn at once that they are themselves
			// again (after the grace that lets a reply with a new cookie
			// arrive first, when the actor ended it).
			time.AfterFunc(rotateGrace, func() {
				for _, id := range sessionIDs {
					n.feed.SessionReplaced(id)
				}
			})
		},
	})
}

// buildHub makes the realtime hub that serves /ws.
func (n *node) buildHub() error {
	var origins []string
	if u, err := url.Parse(n.publicOrigin); err == nil && u.Host != "" {
		origins = append(origins, u.Host)
	}
	subs := livefeed.NewSubscriptions(livefeed.Config{
		Sessions: n.accounts, Access: n.decider, Audit: n.events,
		Notifications: n.db, Impersonations: n.imps, Presence: n.tracker,
		Logger: n.log.With("component", "livefeed"),
	})
	hub, err := realtime.New(n.hubCtx, realtime.Config{
		Sessions:       subs,
		Authorizer:     subs,
		Backlog:        subs,
		Cookie:         SessionCookie,
		OriginPatterns: origins,
		Logger:         n.log.With("component", "realtime"),

		MaxSocketsPerSession: n.cfg.MaxSocketsPerSession,
		MaxSocketsPerUser:    n.cfg.MaxSocketsPerUser,
		MaxSockets:           n.cfg.MaxSockets,
	})
	if err != nil {
		return err
	}
	n.hub = hub
	n.feed.Attach(hub)
	n.log.Info("live connections", "at_most", hub.SocketLimit())
	return nil
}

// buildHTTP makes the HTTP API over the services.
func (n *node) buildHTTP() error {
	app, err := httpapi.New(httpapi.Config{
		Users:          n.auth,
		Accounts:       n.accounts,
		Facility:       n.facility,
		Bookings:       n.bookings,
		Access:         n.decider,
		Policies:       n.rbac,
		Impersonations: n.imps,
		Audit:          n.events,
		Notifications:  n.db,
		Presence:       n.presence,
		Sessions:       n.sessions,
		Support:        support.New(n.facility, n.decider, n.events, n.cfg.Clock),
		Sinks:          n.sinks,
		Alerts:         alerts.NewService(n.db, n.events, n.decider, n.cfg.Clock),
		VerifyWait:     n.cfg.VerifyWait,
		DB:             n.db,
		Logger:         n.log.With("component", "http"),
		WebSocket:      n.hub,
		UI:             ui.Files(),
		AllowedHosts:   n.allowedHosts,
		PublicOrigin:   n.publicOrigin,
		SessionCookie:  SessionCookie,
		SecureCookies:  n.cfg.SecureCookies,
		TrustedProxies: n.cfg.TrustedProxies,
		Demo:           n.cfg.demoEnabled(),
		TimeZone:       n.cfg.Location.String(),
		Now:            n.cfg.Clock,
	})
	n.app = app
	return err
}
