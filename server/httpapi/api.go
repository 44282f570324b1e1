// Package httpapi is the console's HTTP surface: the JSON API under /api/v1,
// health checks, the embedded UI and the door to /ws, all on one Fiber app.
// Every route declares who may call it in one routes table; a route that
// declares nothing stops the server from starting.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"standin/server/accounts"
	"standin/server/audit"
	"standin/server/bookings"
	"standin/server/impersonation"
	"standin/server/standin"
	"standin/server/support"
	"standin/server/upgrade"
)

// Users is the account storage the API reads; changes to accounts go
// through Accounts.
type Users interface {
	UserByID(ctx context.Context, id string) (*standin.User, error)
	SearchUsers(ctx context.Context, q string, p standin.Page) ([]*standin.User, string, error)
}

// Accounts runs the account workflows and says who a session token acts
// for (package accounts).
type Accounts interface {
	Authenticate(ctx context.Context, token string) (*standin.Principal, error)
	SignIn(ctx context.Context, c accounts.Credentials) (*accounts.SignedIn, error)
	SignOut(ctx context.Context, p *standin.Principal, o standin.Origin) error
	Rename(ctx context.Context, p *standin.Principal, name string, o standin.Origin) (*standin.User, error)
	ChangePassword(ctx context.Context, p *standin.Principal, current, next string) error
	Suspend(ctx context.Context, p *standin.Principal, userID string, o standin.Origin) (*standin.User, error)
}

// Facility is the storage of projects, resources and bookings.
type Facility interface {
	Projects(ctx context.Context) ([]*standin.Project, error)
	ProjectByID(ctx context.Context, id string) (*standin.Project, error)
	Resources(ctx context.Context) ([]*standin.Resource, error)
	ResourceByID(ctx context.Context, id string) (*standin.Resource, error)
	Trainings(ctx context.Context) ([]*standin.Training, error)
	BookingByID(ctx context.Context, id string) (*standin.Booking, error)
	Bookings(ctx context.Context, f standin.BookingFilter, p standin.Page) ([]*standin.Booking, string, error)
}

// Bookings runs the booking workflow (package bookings): its rules, its
// audit events, its commit records.
type Bookings interface {
	Create(ctx context.Context, p *standin.Principal, req bookings.Request, o standin.Origin) (*standin.Booking, *standin.Resource, error)
	Cancel(ctx context.Context, p *standin.Principal, b *standin.Booking, o standin.Origin) (*standin.Booking, error)
}

// Support answers a user's page for support staff (package support).
type Support interface {
	Overview(ctx context.Context, id string) (*support.Overview, error)
}

// Decider decides every authorized route (package access).
type Decider interface {
	Decide(ctx context.Context, p *standin.Principal, action string, obj standin.Object, project string) (standin.Decision, error)
	// Scope says where p may do action on kind: everywhere, or in which
	// of projects.
	Scope(ctx context.Context, p *standin.Principal, action, kind string, projects []string) (standin.Scope, error)
	Location() *time.Location
	// ActivityScope says which part of the activity log p may read.
	ActivityScope(ctx context.Context, p *standin.Principal) (standin.Scope, error)
	// Permissions says what p may do in the console, for the UI.
	Permissions(ctx context.Context, p *standin.Principal) (standin.Permissions, error)
}

// Policies changes the authorization policy at run time (package authz).
type Policies interface {
	Policies() []standin.Policy
	AddPolicy(ctx context.Context, p standin.Policy) error
	RemovePolicy(ctx context.Context, p standin.Policy) error
}

// Sessions rotates sessions and says how long their cookies last
// (package session).
type Sessions interface {
	Rotate(ctx context.Context, old *standin.Session, impersonationID string) (string, *standin.Session, error)
	Deadline(s *standin.Session) time.Time
}

// Impersonations runs impersonation (package impersonation).
type Impersonations interface {
	Start(ctx context.Context, p *standin.Principal, req impersonation.Request, o standin.Origin) (*impersonation.Started, error)
	Stop(ctx context.Context, p *standin.Principal, o standin.Origin) (*standin.Impersonation, string, *standin.Session, error)
	Revoke(ctx context.Context, p *standin.Principal, id string, o standin.Origin) (*standin.Impersonation, error)
	Active(ctx context.Context, who *standin.User) ([]*standin.Impersonation, error)
	Get(ctx context.Context, who *standin.User, id string) (*standin.Impersonation, error)
	Summary(ctx context.Context, who *standin.User, id string) (*impersonation.Summary, error)
	MayStart(ctx context.Context, p *standin.Principal, target *standin.User) standin.Decision

	// Requests the target's mode needs, their answers, consent grants
	// and the impersonation settings.
	Requests(ctx context.Context, who *standin.User) ([]*standin.AccessRequest, error)
	Request(ctx context.Context, who *standin.User, id string) (*standin.AccessRequest, error)
	Approve(ctx context.Context, p *standin.Principal, id, note string, o standin.Origin) (*standin.AccessRequest, error)
	Deny(ctx context.Context, p *standin.Principal, id, note string, o standin.Origin) (*standin.AccessRequest, error)
	Cancel(ctx context.Context, p *standin.Principal, id string, o standin.Origin) (*standin.AccessRequest, error)
	StartRequest(ctx context.Context, p *standin.Principal, id string, o standin.Origin) (*impersonation.Started, error)
	GrantOf(ctx context.Context, who *standin.User) (*standin.ConsentGrant, error)
	Grant(ctx context.Context, p *standin.Principal, hours int, o standin.Origin) (*standin.ConsentGrant, error)
	Withdraw(ctx context.Context, p *standin.Principal, o standin.Origin) (*standin.ConsentGrant, error)
	Settings(ctx context.Context) (*standin.ImpersonationSettings, error)
	ChangeSettings(ctx context.Context, p *standin.Principal, next *standin.ImpersonationSettings, projects []string, o standin.Origin) (*standin.ImpersonationSettings, error)
	// Reveal shows one masked personal data field for a reason, audited.
	Reveal(ctx context.Context, p *standin.Principal, userID, field, reason string, o standin.Origin) (string, error)

	// Moderated sessions: whether one refuses its actor now, how it
	// stands, and a moderator's watch of it.
	Paused(imp *standin.Impersonation) bool
	PausedError(ctx context.Context, imp *standin.Impersonation) error
	Moderation(ctx context.Context, imp *standin.Impersonation) (*impersonation.ModerationView, error)
	WatchSession(ctx context.Context, p *standin.Principal, id, viewID string) (*standin.Impersonation, error)
	UnwatchSession(ctx context.Context, p *standin.Principal, id, viewID string)
}

// Audit is the append-only audit log (package audit).
type Audit interface {
	Append(ctx context.Context, evs ...*standin.Event) error
	Query(ctx context.Context, f standin.EventFilter, p standin.Page) ([]*standin.Event, string, error)
	Export(ctx context.Context, f standin.EventFilter, format string, w io.Writer) error
	// Check verifies the whole chain, shared by all who ask while it
	// runs, waiting up to wait for it (see audit.Log.Check); Status is
	// what the log knows of itself without walking it.
	Check(ctx context.Context, run int64, wait time.Duration) audit.Checking
	Status() audit.Status
	// PublicKey is the key the log's checkpoints are signed with; ok is
	// false when the log is not anchored.
	PublicKey() (key audit.PublicKey, ok bool)
}

// Notifications are the messages kept for users.
type Notifications interface {
	Notifications(ctx context.Context, userID string, p standin.Page) ([]*standin.Notification, string, error)
}

// Presence records which support staff are looking at which user.
type Presence interface {
	// View records, or renews, that viewer looks at user on the page
	// viewID.
	View(viewID string, viewer, user *standin.User)
	// Leave ends viewer's view viewID.
	Leave(viewerID, viewID string)
}

// Pinger reports whether the database can serve requests.
type Pinger interface {
	// Ready returns nil when the database answers and stores writes, and
	// an EUnavailable error saying what is wrong when it does not.
	Ready(ctx context.Context) error
}

// Config wires the API. Zero values of the optional fields are the
// documented defaults.
type Config struct {
	Users          Users
	Accounts       Accounts
	Facility       Facility
	Bookings       Bookings
	Access         Decider
	Policies       Policies
	Impersonations Impersonations
	Audit          Audit
	Notifications  Notifications
	Presence       Presence
	Sessions       Sessions
	Support        Support
	Sinks          Sinks
	Alerts         Alerts
	DB             Pinger
	Logger         *slog.Logger

	// WebSocket serves /ws (net/http, upgraded through package upgrade).
	// Nil answers /ws with 404.
	WebSocket http.Handler
	// UI is the console's static files, index.html at the root. Nil serves
	// no UI.
	UI fs.FS
	// AllowedHosts, when set, are the only host names (without port) the
	// server answers to: a request naming another Host is refused, which
	// defeats DNS rebinding against a server on loopback. Empty answers
	// any host.
	AllowedHosts []string
	// TrustedProxies are the addresses (IPs or CIDR ranges) whose
	// X-Forwarded-For names the client (see server.Config).
	TrustedProxies []string
	// PublicOrigin is the scheme://host[:port] browsers use when the
	// server sits behind a proxy; requests from it pass the Origin check
	// besides same-host ones.
	PublicOrigin string

	// Demo says the demo facility is on, so the sign-in page may list its
	// accounts.
	Demo bool
	// TimeZone names the facility's time zone ("Europe/Berlin"), which
	// the console states once and shows every time in.
	TimeZone string

	// SessionCookie names the cookie that carries the session token
	// (required): the realtime hub reads the same one.
	SessionCookie string
	// SecureCookies marks the session cookie Secure even on plain HTTP, for
	// a server behind a TLS-terminating proxy. Requests that arrive over
	// TLS always get Secure cookies.
	SecureCookies bool
	// BodyLimit caps request bodies in bytes (default 1 MiB).
	BodyLimit int
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// VerifyWait is how long GET /activity/verify waits for the
	// verification of the whole log before it answers with how far it
	// has got (default 3s): on a large log it takes minutes.
	VerifyWait time.Duration
}

// API holds the handlers' dependencies.
type API struct {
	cfg       Config
	log       *slog.Logger
	websocket fiber.Handler // /ws
}

// access says who may call a route.
type access int

const (
	undeclared access = iota // a route must never keep this
	public                   // anyone, no session needed
	signedIn                 // any valid session, nothing more (the session itself)
	authorized               // a valid session and an allowing decision of its rule
	socket                   // the WebSocket door: the hub checks the session and Origin itself
)

// rule is what an authorized route asks the decider: action on kind,
// in the project target finds (global when target is nil).
type rule struct {
	action string
	kind   string
	target target
	// sensitive actions are refused under impersonation whatever the
	// subject may do (password, email, MFA, tokens, account deletion).
	sensitive bool
	// destructive actions are refused under impersonation unless policy
	// grants the actor the right to be destructive while impersonating.
	destructive bool
	// auditsItself marks a signedIn route whose handler (or service)
	// writes its own audit events while impersonating; every other
	// signedIn route is audited by outcome (see recordOutcome).
	auditsItself bool
	// records marks an authorized route that changes something: its
	// workflow writes the event that records the request (its commit
	// record, or the refusal by the facility's rules) before the change
	// is seen, so no decision event precedes it. A request that fails
	// before any change is recorded by its outcome.
	records bool
	// bookkeeping marks a request the console makes for itself (the
	// session, what the person may do, the notification bell, presence,
	// the sessions in force that its banners show):
	// authorized as any other, never an audit event (PRODUCT §5).
	bookkeeping bool
	// whilePaused marks a route a paused moderated session still
	// answers its actor: leaving it, and reading it.
	whilePaused bool
}

// selfAudited is the rule of a signedIn route that audits itself.
var selfAudited = rule{auditsItself: true}

// bookkeeping is the rule of a signedIn route the console calls for
// itself.
var bookkeeping = rule{bookkeeping: true}

// sensitive marks a rule as never allowed under impersonation.
func (r rule) sensitiveAction() rule { r.sensitive = true; return r }

// destructiveAction marks a rule as destructive.
func (r rule) destructiveAction() rule { r.destructive = true; return r }

// recordsItself marks a rule whose workflow writes the request's event.
func (r rule) recordsItself() rule { r.records = true; return r }

// bookkeepingOnly marks a rule as the console's own bookkeeping.
func (r rule) bookkeepingOnly() rule { r.bookkeeping = true; return r }

// evenWhilePaused marks a rule as answered while the caller's moderated
// session is paused.
func (r rule) evenWhilePaused() rule { r.whilePaused = true; return r }

// The rules of the profile's forms, which GET /permissions also answers
// so that the console shows a form it refuses as refused before anyone
// types: a change of one's profile is destructive while impersonating, a
// password sensitive.
var (
	editProfile    = can(standin.ActUpdate, standin.KindProfile, nil).destructiveAction().recordsItself()
	changePassword = can(standin.ActChange, standin.KindPassword, nil).sensitiveAction()
	// A user's consent is theirs alone: never given in their name.
	grantConsent = can(standin.ActGrant, standin.KindConsent, nil).sensitiveAction().recordsItself()
)

// route is one line of the routes table: method, path, who may call it,
// handler.
type route struct {
	method  string
	path    string
	access  access
	rule    rule
	handler fiber.Handler
}

// can builds the rule of an authorized route.
func can(action, kind string, t target) rule { return rule{action: action, kind: kind, target: t} }

func (a *API) routes() []route {
	const v1 = "/api/v1"
	return []route{
		{fiber.MethodGet, "/healthz", public, rule{}, a.healthz},
		{fiber.MethodGet, "/readyz", public, rule{}, a.readyz},
		{fiber.MethodGet, "/ws", socket, rule{}, a.websocket},
		{fiber.MethodGet, v1 + "/about", public, rule{}, a.about},
		{fiber.MethodPost, v1 + "/auth/login", public, rule{}, a.login},
		{fiber.MethodPost, v1 + "/auth/logout", signedIn, selfAudited.evenWhilePaused(), a.logout},
		{fiber.MethodGet, v1 + "/session", signedIn, bookkeeping, a.session},
		{fiber.MethodGet, v1 + "/permissions", signedIn, bookkeeping, a.permissions},

		{fiber.MethodGet, v1 + "/users", authorized, can(standin.ActList, standin.KindUser, nil), a.listUsers},
		{fiber.MethodGet, v1 + "/users/:id", authorized, can(standin.ActRead, standin.KindUser, nil), a.getUser},
		{fiber.MethodGet, v1 + "/users/:id/access", authorized, can(standin.ActCheck, standin.KindUserAccess, nil), a.checkAccess},
		{fiber.MethodGet, v1 + "/users/:id/overview", authorized, can(standin.ActRead, standin.KindUser, nil), a.userOverview},

		{fiber.MethodGet, v1 + "/projects", authorized, can(standin.ActList, standin.KindProject, nil), a.listProjects},
		{fiber.MethodGet, v1 + "/resources", authorized, can(standin.ActList, standin.KindResource, nil), a.listResources},
		{fiber.MethodGet, v1 + "/bookings", authorized, can(standin.ActList, standin.KindBookingOwn, a.bookingsScope), a.listBookings},
		{fiber.MethodPost, v1 + "/bookings", authorized, can(standin.ActCreate, standin.KindBooking, a.bodyProject).recordsItself(), a.createBooking},
		{fiber.MethodDelete, v1 + "/bookings/:id", authorized, can(standin.ActCancel, standin.KindBookingOwn, a.bookingTarget).destructiveAction().recordsItself(), a.cancelBooking},

		{fiber.MethodGet, v1 + "/profile", authorized, can(standin.ActRead, standin.KindProfile, nil), a.getProfile},
		{fiber.MethodPatch, v1 + "/profile", authorized, editProfile, a.updateProfile},
		{fiber.MethodPost, v1 + "/profile/password", authorized, changePassword, a.changePassword},
		{fiber.MethodGet, v1 + "/notifications", signedIn, bookkeeping, a.listNotifications},

		// Presence: the console's user pages say whom they show, so other
		// agents see it live; only those who may read the directory.
		{fiber.MethodPut, v1 + "/presence", authorized, can(standin.ActRead, standin.KindUser, nil).bookkeepingOnly(), a.viewUser},
		{fiber.MethodDelete, v1 + "/presence/:view", authorized, can(standin.ActRead, standin.KindUser, nil).bookkeepingOnly(), a.leaveUser},

		// Impersonation decides its own refusals in the service, which
		// audits each one as impersonation.denied.
		{fiber.MethodPost, v1 + "/impersonations", signedIn, selfAudited, a.startImpersonation},
		// Requests a target's mode needs (consent, approval): the service
		// decides who may see and answer each; answers are one's own,
		// refused while impersonating.
		{fiber.MethodGet, v1 + "/impersonations/requests", signedIn, bookkeeping, a.listRequests},
		{fiber.MethodGet, v1 + "/impersonations/requests/:id", signedIn, rule{}, a.getRequest},
		{fiber.MethodPost, v1 + "/impersonations/requests/:id/approve", signedIn, rule{}, a.approveRequest},
		{fiber.MethodPost, v1 + "/impersonations/requests/:id/deny", signedIn, rule{}, a.denyRequest},
		{fiber.MethodPost, v1 + "/impersonations/requests/:id/cancel", signedIn, rule{}, a.cancelRequest},
		{fiber.MethodPost, v1 + "/impersonations/:id/start", signedIn, selfAudited, a.startRequest},
		// A user's consent ahead of time: never given in their name.
		{fiber.MethodGet, v1 + "/consent", signedIn, bookkeeping, a.getConsent},
		{fiber.MethodPut, v1 + "/consent", authorized, grantConsent, a.grantConsent},
		// Taking consent back needs no right (it only takes access away);
		// the service refuses it while impersonating, and the refusal is
		// audited by its outcome.
		{fiber.MethodDelete, v1 + "/consent", signedIn, rule{}, a.withdrawConsent},
		{fiber.MethodGet, v1 + "/settings/impersonation", authorized, can(standin.ActRead, standin.KindSettings, nil), a.getSettings},
		{fiber.MethodPut, v1 + "/settings/impersonation", authorized, can(standin.ActUpdate, standin.KindSettings, nil).recordsItself(), a.changeSettings},
		{fiber.MethodDelete, v1 + "/impersonations/current", signedIn, selfAudited.evenWhilePaused(), a.stopImpersonation},
		// The sessions in force that the caller may see; for the user a
		// session is about, their console's banner: bookkeeping.
		{fiber.MethodGet, v1 + "/impersonations", signedIn, bookkeeping, a.listImpersonations},
		{fiber.MethodGet, v1 + "/impersonations/:id", signedIn, rule{}.evenWhilePaused(), a.getImpersonation},
		// A moderator's page watches a moderated session while its live
		// connection is open: the session runs only meanwhile.
		{fiber.MethodPut, v1 + "/impersonations/:id/moderator", signedIn, bookkeeping, a.watchSession},
		{fiber.MethodDelete, v1 + "/impersonations/:id/moderator/:view", signedIn, bookkeeping, a.unwatchSession},
		// What was done in the user's name: for the user and for staff who
		// may see the session, without addresses or user agents.
		{fiber.MethodGet, v1 + "/impersonations/:id/summary", signedIn, rule{}.evenWhilePaused(), a.impersonationSummary},
		{fiber.MethodPost, v1 + "/impersonations/:id/revoke", signedIn, rule{}, a.revokeImpersonation},
		// A masked field shown for a reason: the service audits the reveal,
		// and a refusal while impersonating.
		{fiber.MethodPost, v1 + "/users/:id/reveal", signedIn, selfAudited, a.revealField},
		{fiber.MethodPost, v1 + "/users/:id/suspend", authorized, can(standin.ActSuspend, standin.KindUser, nil).destructiveAction().recordsItself(), a.suspendUser},

		// The activity log's scope (all, or a manager's projects) is
		// decided per request in activityScope.
		{fiber.MethodGet, v1 + "/activity", signedIn, selfAudited, a.listActivity},
		{fiber.MethodGet, v1 + "/activity/export", signedIn, selfAudited, a.exportActivity},
		{fiber.MethodGet, v1 + "/activity/verify", signedIn, selfAudited, a.verifyActivity},
		{fiber.MethodGet, v1 + "/activity/key", signedIn, selfAudited, a.activityKey},

		// Alerts on suspicious sessions: their scope is decided per alert
		// by the service; acknowledging one audits itself.
		{fiber.MethodGet, v1 + "/alerts", signedIn, rule{}, a.listAlerts},
		{fiber.MethodPost, v1 + "/alerts/:id/acknowledge", signedIn, selfAudited, a.acknowledgeAlert},
		// The audit log's outside sinks, for admins: each change audited
		// by the service.
		{fiber.MethodGet, v1 + "/sinks", authorized, can(standin.ActList, standin.KindSink, nil), a.listSinks},
		{fiber.MethodGet, v1 + "/sinks/:id", authorized, can(standin.ActList, standin.KindSink, nil), a.getSink},
		{fiber.MethodPost, v1 + "/sinks", authorized, can(standin.ActUpdate, standin.KindSink, nil).sensitiveAction().recordsItself(), a.createSink},
		{fiber.MethodPut, v1 + "/sinks/:id", authorized, can(standin.ActUpdate, standin.KindSink, nil).sensitiveAction().recordsItself(), a.updateSink},
		{fiber.MethodDelete, v1 + "/sinks/:id", authorized, can(standin.ActUpdate, standin.KindSink, nil).sensitiveAction().recordsItself(), a.deleteSink},
		{fiber.MethodPost, v1 + "/sinks/:id/test", authorized, can(standin.ActUpdate, standin.KindSink, nil).sensitiveAction().recordsItself(), a.testSink},

		{fiber.MethodGet, v1 + "/policies", authorized, can(standin.ActList, standin.KindPolicy, nil), a.listPolicies},
		{fiber.MethodPost, v1 + "/policies", authorized, can(standin.ActUpdate, standin.KindPolicy, nil).recordsItself(), a.addPolicy},
		{fiber.MethodDelete, v1 + "/policies", authorized, can(standin.ActUpdate, standin.KindPolicy, nil).recordsItself(), a.removePolicy},
	}
}

// New builds the Fiber app. It fails if a route declares no access rule.
func New(cfg Config) (*fiber.App, error) {
	if cfg.Users == nil || cfg.Accounts == nil || cfg.Facility == nil || cfg.Access == nil || cfg.Policies == nil || cfg.Sessions == nil ||
		cfg.DB == nil || cfg.Impersonations == nil || cfg.Audit == nil || cfg.Notifications == nil || cfg.Presence == nil {
		return nil, errors.New("httpapi: Users, Accounts, Facility, Access, Policies, Impersonations, Audit, Notifications, Presence, Sessions and DB are required")
	}
	if cfg.Bookings == nil || cfg.Support == nil || cfg.Sinks == nil || cfg.Alerts == nil {
		return nil, errors.New("httpapi: Bookings, Support, Sinks and Alerts are required")
	}
	if cfg.SessionCookie == "" {
		return nil, errors.New("httpapi: SessionCookie is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.VerifyWait <= 0 {
		cfg.VerifyWait = 3 * time.Second
	}
	a := &API{
		cfg:       cfg,
		log:       cfg.Logger,
		websocket: func(*fiber.Ctx) error { return fiber.ErrNotFound },
	}
	if cfg.WebSocket != nil {
		a.websocket = upgrade.Handler(cfg.WebSocket)
	}

	app := fiber.New(fiber.Config{
		AppName:               "standin",
		ErrorHandler:          errorHandler(cfg.Logger),
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		DisableStartupMessage: true,
		// Strings read from a request (headers, path, parameters) are
		// copies, not views of a buffer the next request reuses: audit
		// events, sessions and rate limits keep them beyond the request.
		Immutable: true,
		// Forwarded headers are trusted only from the configured proxies,
		// and only X-Forwarded-For (the client's address, validated):
		// Protocol and Hostname come from the connection and the Host
		// header.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
		ProxyHeader:             proxyHeader(cfg.TrustedProxies),
		EnableIPValidation:      true,
	})
	app.Use(a.recoverPanic, a.checkHost, securityHeaders, textAddress)
	if err := a.mount(app, a.routes()); err != nil {
		return nil, err
	}
	// Unknown API addresses answer in JSON, never with the UI's page.
	app.All("/api/*", func(*fiber.Ctx) error { return fiber.ErrNotFound })
	if cfg.UI != nil {
		app.Use("/", filesystem.New(filesystem.Config{
			Root:   http.FS(cfg.UI),
			Index:  "index.html",
			MaxAge: 0,
		}))
	}
	return app, nil
}

// mount adds routes to app, each behind the checks its access rule
// demands. A route without a rule is an error: the server does not start.
func (a *API) mount(app *fiber.App, routes []route) error {
	for _, r := range routes {
		var chain []fiber.Handler
		switch r.access {
		case public:
			chain = []fiber.Handler{a.checkOrigin}
		case signedIn:
			chain = []fiber.Handler{a.authenticate, a.checkOrigin, a.checkCSRF}
			if !r.rule.bookkeeping && !r.rule.whilePaused {
				chain = append(chain, a.refuseWhilePaused(r.method+" "+r.path))
			}
			if !r.rule.auditsItself && !r.rule.bookkeeping {
				chain = append(chain, a.auditImpersonated)
			}
		case socket:
			chain = nil
		case authorized:
			if r.rule.action == "" || r.rule.kind == "" {
				return fmt.Errorf("httpapi: route %s %s is authorized but names no action and object", r.method, r.path)
			}
			// A change is recorded before anyone sees it: by its workflow.
			if r.method != fiber.MethodGet && !r.rule.records && !r.rule.bookkeeping && !r.rule.sensitive {
				return fmt.Errorf("httpapi: route %s %s changes something but its workflow does not record it", r.method, r.path)
			}
			chain = []fiber.Handler{a.authenticate, a.checkOrigin, a.checkCSRF}
			if !r.rule.bookkeeping {
				chain = append(chain, a.refuseWhilePaused(r.rule.kind+"."+r.rule.action))
			}
			chain = append(chain, a.authorize(r.rule))
		default:
			return fmt.Errorf("httpapi: route %s %s declares no access rule", r.method, r.path)
		}
		app.Add(r.method, r.path, append(chain, r.handler)...)
	}
	return nil
}

// recoverPanic turns a panic into a logged 500 that leaks nothing.
func (a *API) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("panic serving request", "method", c.Method(), "path", c.Path(), "panic", r)
			err = standin.Errorf(standin.EInternal, "internal error")
		}
	}()
	return c.Next()
}

// textAddress refuses API requests whose path or query string, decoded,
// is not UTF-8 text: nothing the API knows is named that way, and such
// bytes must not reach the database, which refuses them.
func textAddress(c *fiber.Ctx) error {
	if !strings.HasPrefix(c.Path(), "/api/") {
		return c.Next()
	}
	valid := utf8.ValidString(c.Path())
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		valid = valid && utf8.Valid(k) && utf8.Valid(v)
	})
	if !valid {
		return standin.Errorf(standin.EInvalid, "The address has characters that are not valid text.")
	}
	return c.Next()
}

// securityHeaders sets the headers every response carries.
func securityHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	if len(c.Path()) >= 5 && c.Path()[:5] == "/api/" {
		c.Set(fiber.HeaderCacheControl, "no-store")
	}
	return c.Next()
}

func (a *API) about(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"name": "Standin", "demo": a.cfg.Demo, "time_zone": a.cfg.TimeZone})
}

func (a *API) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (a *API) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := a.cfg.DB.Ready(ctx); err != nil {
		if standin.ErrorCode(err) == standin.EUnavailable {
			return err
		}
		return &standin.Error{Code: standin.EUnavailable, Message: "The database is not reachable.", Cause: err}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// proxyHeader is the header naming the client when proxies are trusted.
func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return fiber.HeaderXForwardedFor
}
