package httpapi

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"standin/server/password"
	"standin/server/session"
	"standin/server/standin"
)

// dummyHash is verified against when an account does not exist, so a
// wrong address takes as long as a wrong password.
var dummyHash = func() string {
	h, err := password.Hash("standin-no-such-account", password.Default)
	if err != nil {
		panic(err)
	}
	return h
}()

type userJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Role   string `json:"role"`
	Status string `json:"status"`
}

func toUserJSON(u *standin.User) userJSON {
	return userJSON{ID: u.ID, Name: u.Name, Email: u.Email, Role: string(u.Role), Status: string(u.Status)}
}

type sessionJSON struct {
	User          userJSON `json:"user"`
	Actor         userJSON `json:"actor"`
	Impersonation any      `json:"impersonation"`
	CSRFToken     string   `json:"csrf_token"`
	ExpiresAt     string   `json:"expires_at"`
}

func toSessionJSON(p *standin.Principal) sessionJSON {
	return sessionJSON{
		User:      toUserJSON(p.Subject),
		Actor:     toUserJSON(p.Actor),
		CSRFToken: p.Session.CSRFToken,
		ExpiresAt: p.Session.ExpiresAt.UTC().Format(time.RFC3339),
	}
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (a *API) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	email := standin.NormalizeEmail(req.Email)
	if email == "" || req.Password == "" {
		return standin.Errorf(standin.EInvalid, "Enter your email address and password.")
	}
	now := a.cfg.Now()
	for _, check := range []struct {
		l   *loginLimiter
		key string
	}{{a.byAccount, email}, {a.byAddress, c.IP()}} {
		if blocked, wait := check.l.blocked(check.key, now); blocked {
			return &retryError{
				err:        standin.Errorf(standin.ETooManyRequests, "Too many failed sign-in attempts. Try again in %d minutes.", minutes(wait)),
				retryAfter: strconv.Itoa(int(wait.Seconds()) + 1),
			}
		}
	}

	user, err := a.cfg.Users.UserByEmail(c.UserContext(), email)
	hash := dummyHash
	switch {
	case err == nil:
		hash = user.PasswordHash
	case standin.ErrorCode(err) != standin.ENotFound:
		return err
	}
	verr := password.Verify(req.Password, hash)
	if err != nil || verr != nil || !user.Active() {
		if verr != nil && !errors.Is(verr, password.ErrMismatch) {
			a.log.Error("stored password hash is unreadable", "user", user.ID, "err", verr)
		}
		a.byAccount.fail(email, now)
		a.byAddress.fail(c.IP(), now)
		// One answer for unknown, wrong and suspended, so the reply does
		// not reveal which accounts exist.
		return standin.Errorf(standin.EUnauthenticated, "Wrong email or password.")
	}
	a.byAccount.reset(email)

	// A new sign-in always gets a new session id; the old one, if any, ends.
	if old := c.Cookies(standin.SessionCookie); old != "" {
		if err := a.cfg.Sessions.End(c.UserContext(), session.ID(old)); err != nil {
			return err
		}
	}
	token, s, err := a.cfg.Sessions.Start(c.UserContext(), user, c.IP(), truncate(c.Get(fiber.HeaderUserAgent), 256))
	if err != nil {
		return err
	}
	a.setSessionCookie(c, token, a.cfg.Sessions.Deadline(s))
	a.log.Info("signed in", "user", user.ID, "ip", c.IP())
	return c.JSON(toSessionJSON(&standin.Principal{Actor: user, Subject: user, Session: s}))
}

func (a *API) logout(c *fiber.Ctx) error {
	p := principal(c)
	if err := a.cfg.Sessions.End(c.UserContext(), p.Session.ID); err != nil {
		return err
	}
	a.clearSessionCookie(c)
	a.log.Info("signed out", "user", p.Actor.ID)
	return c.JSON(fiber.Map{"signed_out": true})
}

func (a *API) session(c *fiber.Ctx) error {
	return c.JSON(toSessionJSON(principal(c)))
}

// authenticate resolves the session cookie into the request's principal.
func (a *API) authenticate(c *fiber.Ctx) error {
	token := c.Cookies(standin.SessionCookie)
	p, err := a.cfg.Sessions.Authenticate(c.UserContext(), token)
	if err != nil {
		if token != "" && standin.ErrorCode(err) == standin.EUnauthenticated {
			a.clearSessionCookie(c)
		}
		return err
	}
	c.Locals(principalKey{}, p)
	c.SetUserContext(standin.NewContext(c.UserContext(), p))
	return c.Next()
}

type principalKey struct{}

// principal returns the principal set by authenticate.
func principal(c *fiber.Ctx) *standin.Principal {
	p, _ := c.Locals(principalKey{}).(*standin.Principal)
	if p == nil {
		// Routes that reach here declared signedIn; a missing principal is
		// a wiring fault, and failing loudly beats acting as nobody.
		panic("httpapi: no principal on an authenticated route")
	}
	return p
}

// unsafeMethod reports whether a request may change state.
func unsafeMethod(c *fiber.Ctx) bool {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return false
	}
	return true
}

// checkOrigin refuses state-changing requests that a browser sent from
// another site. Clients that are not browsers send no Origin; for them the
// CSRF token is the guard.
func (a *API) checkOrigin(c *fiber.Ctx) error {
	if !unsafeMethod(c) {
		return c.Next()
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && origin != c.Protocol()+"://"+c.Hostname() {
		return standin.Errorf(standin.ECSRF, "This request came from another site and was refused.")
	}
	if c.Get("Sec-Fetch-Site") == "cross-site" {
		return standin.Errorf(standin.ECSRF, "This request came from another site and was refused.")
	}
	return c.Next()
}

// checkCSRF requires the session's token in X-CSRF-Token on every
// state-changing request authenticated by cookie.
func (a *API) checkCSRF(c *fiber.Ctx) error {
	if !unsafeMethod(c) {
		return c.Next()
	}
	got := c.Get("X-CSRF-Token")
	want := principal(c).Session.CSRFToken
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return standin.Errorf(standin.ECSRF, "The request is missing a valid X-CSRF-Token header. Reload the page and try again.")
	}
	return c.Next()
}

func (a *API) setSessionCookie(c *fiber.Ctx, token string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name:     standin.SessionCookie,
		Value:    token,
		Path:     "/",
		Expires:  expires,
		HTTPOnly: true,
		Secure:   a.cfg.SecureCookies || c.Protocol() == "https",
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

func (a *API) clearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name:     standin.SessionCookie,
		Value:    "",
		Path:     "/",
		Expires:  time.Unix(0, 0),
		MaxAge:   -1,
		HTTPOnly: true,
		Secure:   a.cfg.SecureCookies || c.Protocol() == "https",
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// decodeJSON reads the body into v strictly: one JSON object, no unknown
// fields, no trailing data.
func decodeJSON(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return standin.Errorf(standin.EMalformedJSON, "The request body is empty; a JSON object was expected.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &standin.Error{Code: standin.EMalformedJSON, Message: jsonProblem(err), Cause: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return standin.Errorf(standin.EMalformedJSON, "The request body has data after the JSON object.")
	}
	return nil
}

// jsonProblem describes a decoding error in a sentence.
func jsonProblem(err error) string {
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("The field %q has the wrong type; expected %s.", e.Field, e.Type)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Sprintf("The field %s is not accepted here.", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return "The request body is not valid JSON."
}

func minutes(d time.Duration) int {
	return int(d.Minutes()) + 1
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
