package httpapi

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"standin/server/accounts"
	"standin/server/standin"
)

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
	User          userJSON           `json:"user"`
	Actor         userJSON           `json:"actor"`
	Impersonation *impersonationJSON `json:"impersonation"`
	CSRFToken     string             `json:"csrf_token"`
	ExpiresAt     string             `json:"expires_at"`
}

func toSessionJSON(p *standin.Principal) sessionJSON {
	s := sessionJSON{
		User:      toUserJSON(p.Subject),
		Actor:     toUserJSON(p.Actor),
		CSRFToken: p.Session.CSRFToken,
		ExpiresAt: p.Session.ExpiresAt.UTC().Format(time.RFC3339),
	}
	if p.Impersonation != nil {
		imp := toImpersonationJSON(p.Impersonation)
		s.Impersonation = &imp
	}
	return s
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
	in, err := a.cfg.Accounts.SignIn(c.UserContext(), accounts.Credentials{
		Email: req.Email, Password: req.Password, Replaces: c.Cookies(a.cfg.SessionCookie), Origin: a.origin(c),
	})
	if w, ok := errors.AsType[*accounts.WaitError](err); ok {
		return tooManyAttempts(w.Wait)
	}
	if err != nil {
		return err
	}
	a.setSessionCookie(c, in.Token, a.cfg.Sessions.Deadline(in.Session))
	return c.JSON(toSessionJSON(&standin.Principal{Actor: in.User, Subject: in.User, Session: in.Session}))
}

func (a *API) logout(c *fiber.Ctx) error {
	if err := a.cfg.Accounts.SignOut(c.UserContext(), principal(c), a.origin(c)); err != nil {
		return err
	}
	a.clearSessionCookie(c)
	return c.JSON(fiber.Map{"signed_out": true})
}

func (a *API) session(c *fiber.Ctx) error {
	p := principal(c)
	s := toSessionJSON(p)
	if s.Impersonation != nil {
		if err := a.withModeration(c, p.Impersonation, s.Impersonation); err != nil {
			return err
		}
	}
	return c.JSON(s)
}

// authenticate resolves the session cookie into the request's principal.
func (a *API) authenticate(c *fiber.Ctx) error {
	token := c.Cookies(a.cfg.SessionCookie)
	p, err := a.cfg.Accounts.Authenticate(c.UserContext(), token)
	if err != nil {
		// The cookie is left alone: a token refused here may just have
		// been rotated by a concurrent request of another tab (an
		// impersonation starting or ending), whose Set-Cookie an erasing
		// answer arriving later would undo, signing the person out. A
		// stale token authenticates nothing; sign-in replaces it.
		return err
	}
	if p.Session.RotatePending {
		// Someone else ended this session's impersonation: the identity
		// changed, so the token does too, as when the actor ends it.
		newToken, s, err := a.cfg.Sessions.Rotate(c.UserContext(), p.Session, "")
		if err != nil {
			return err
		}
		a.setSessionCookie(c, newToken, a.cfg.Sessions.Deadline(s))
		p.Session = s
	}
	c.SetUserContext(standin.NewContext(c.UserContext(), p))
	return c.Next()
}

// principal returns the principal set by authenticate.
func principal(c *fiber.Ctx) *standin.Principal {
	p := standin.PrincipalFrom(c.UserContext())
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
// another site: the Origin's host must be the Host the request was sent to
// (the scheme may differ behind a TLS proxy) or the configured public
// origin. Clients that are not browsers send no Origin; for them the CSRF
// token is the guard.
func (a *API) checkOrigin(c *fiber.Ctx) error {
	if !unsafeMethod(c) {
		return c.Next()
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !a.sameOrigin(origin, string(c.Request().Host())) {
		return standin.Errorf(standin.ECSRF, "This request came from another site and was refused.")
	}
	if c.Get("Sec-Fetch-Site") == "cross-site" {
		return standin.Errorf(standin.ECSRF, "This request came from another site and was refused.")
	}
	return c.Next()
}

func (a *API) sameOrigin(origin, host string) bool {
	if a.cfg.PublicOrigin != "" && strings.EqualFold(origin, a.cfg.PublicOrigin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// checkHost refuses requests for host names the server does not serve.
func (a *API) checkHost(c *fiber.Ctx) error {
	if len(a.cfg.AllowedHosts) == 0 {
		return c.Next()
	}
	host := string(c.Request().Host())
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(strings.ToLower(host), "[]")
	for _, allowed := range a.cfg.AllowedHosts {
		if host == allowed {
			return c.Next()
		}
	}
	return standin.Errorf(standin.EForbidden, "This server does not answer to the host name %q. Set STANDIN_PUBLIC_URL to serve it.", host)
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
	a.writeSessionCookie(c, token, expires, 0)
}

func (a *API) clearSessionCookie(c *fiber.Ctx) {
	a.writeSessionCookie(c, "", time.Unix(0, 0), -1)
}

// writeSessionCookie is the one place the session cookie's attributes are
// set: HttpOnly, SameSite=Lax, and Secure over TLS or when configured.
func (a *API) writeSessionCookie(c *fiber.Ctx, value string, expires time.Time, maxAge int) {
	c.Cookie(&fiber.Cookie{
		Name:     a.cfg.SessionCookie,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		MaxAge:   maxAge,
		HTTPOnly: true,
		Secure:   a.cfg.SecureCookies || c.Protocol() == "https",
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// decodeJSON reads the body into v strictly: one JSON object, no unknown
// fields, no trailing data.
func decodeJSON(c *fiber.Ctx, v any) error {
	if err := requireJSON(c); err != nil {
		return err
	}
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

// requireJSON refuses bodies not declared as JSON. Besides clarity, it
// makes a browser preflight any cross-site attempt to send one.
func requireJSON(c *fiber.Ctx) error {
	if !c.Is("json") {
		return standin.Errorf(standin.EMediaType, "Send the request body as JSON (Content-Type: application/json).")
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
