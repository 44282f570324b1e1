// Package httpapi is the console's HTTP surface: the JSON API under /api/v1,
// health checks, the embedded UI and the door to /ws, all on one Fiber app.
// Every route declares who may call it in one routes table; a route that
// declares nothing stops the server from starting.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"standin/server/standin"
	"standin/server/upgrade"
)

// Users is the account storage the API reads.
type Users interface {
	UserByID(ctx context.Context, id string) (*standin.User, error)
	UserByEmail(ctx context.Context, email string) (*standin.User, error)
}

// Sessions starts, resolves and ends sign-in sessions (package session).
type Sessions interface {
	Start(ctx context.Context, u *standin.User, ip, userAgent string) (string, *standin.Session, error)
	Authenticate(ctx context.Context, token string) (*standin.Principal, error)
	End(ctx context.Context, id string) error
	Deadline(s *standin.Session) time.Time
}

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config wires the API. Zero values of the optional fields are the
// documented defaults.
type Config struct {
	Users    Users
	Sessions Sessions
	DB       Pinger
	Logger   *slog.Logger

	// WebSocket serves /ws (net/http, upgraded through package upgrade).
	// Nil answers /ws with 404.
	WebSocket http.Handler
	// UI is the console's static files, index.html at the root. Nil serves
	// no UI.
	UI fs.FS
	// SecureCookies marks the session cookie Secure even on plain HTTP, for
	// a server behind a TLS-terminating proxy. Requests that arrive over
	// TLS always get Secure cookies.
	SecureCookies bool
	// BodyLimit caps request bodies in bytes (default 1 MiB).
	BodyLimit int
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// API holds the handlers' dependencies.
type API struct {
	cfg       Config
	log       *slog.Logger
	byAccount *loginLimiter
	byAddress *loginLimiter
}

// access says who may call a route.
type access int

const (
	undeclared access = iota // a route must never keep this
	public                   // anyone, no session needed
	signedIn                 // any valid session
)

// route is one line of the routes table: method, path, who may call it,
// handler.
type route struct {
	method  string
	path    string
	access  access
	handler fiber.Handler
}

func (a *API) routes() []route {
	return []route{
		{fiber.MethodGet, "/healthz", public, a.healthz},
		{fiber.MethodGet, "/readyz", public, a.readyz},
		{fiber.MethodPost, "/api/v1/auth/login", public, a.login},
		{fiber.MethodPost, "/api/v1/auth/logout", signedIn, a.logout},
		{fiber.MethodGet, "/api/v1/session", signedIn, a.session},
	}
}

// New builds the Fiber app. It fails if a route declares no access rule.
func New(cfg Config) (*fiber.App, error) {
	if cfg.Users == nil || cfg.Sessions == nil || cfg.DB == nil {
		return nil, errors.New("httpapi: Users, Sessions and DB are required")
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
	a := &API{
		cfg:       cfg,
		log:       cfg.Logger,
		byAccount: newLoginLimiter(5, 15*time.Minute),
		byAddress: newLoginLimiter(30, 15*time.Minute),
	}

	app := fiber.New(fiber.Config{
		AppName:               "standin",
		ErrorHandler:          errorHandler(cfg.Logger),
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		DisableStartupMessage: true,
	})
	app.Use(a.recoverPanic, securityHeaders)
	if err := a.mount(app, a.routes()); err != nil {
		return nil, err
	}
	if cfg.WebSocket != nil {
		app.Get("/ws", upgrade.Handler(cfg.WebSocket))
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

func (a *API) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (a *API) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := a.cfg.DB.Ping(ctx); err != nil {
		return &standin.Error{Code: standin.EUnavailable, Message: "The database is not reachable.", Cause: err}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}
