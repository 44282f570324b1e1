// Package apiclient is the benchmark programs' HTTP client of the console:
// a signed-in, browser-like session (its own cookies and CSRF token) that
// calls the JSON API.
package apiclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"time"
)

// Client is a signed-in session on the console at Base. Its cookies are
// its own: a cookie jar does not tell loopback ports apart.
type Client struct {
	Base string
	HTTP *http.Client
	CSRF string
}

// SignIn signs email in at base with the demo password.
func SignIn(base, email string) (*Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &Client{Base: base, HTTP: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if err := c.Call(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": "demo"}, nil); err != nil {
		return nil, fmt.Errorf("sign in %s on %s: %w", email, base, err)
	}
	return c, c.Refresh()
}

// Refresh reads the session's CSRF token, which changes with the session.
func (c *Client) Refresh() error {
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	if err := c.Call(http.MethodGet, "/api/v1/session", nil, &s); err != nil {
		return err
	}
	c.CSRF = s.CSRF
	return nil
}

// Call makes a request with body as JSON (if not nil) and decodes a JSON
// answer into out (if not nil); any status from 300 is an error.
func (c *Client) Call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", c.CSRF)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Impersonate starts impersonating the user email, for reason, for two
// hours.
func (c *Client) Impersonate(email, reason string) error {
	var users struct {
		Items []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"items"`
	}
	if err := c.Call(http.MethodGet, "/api/v1/users?q="+email, nil, &users); err != nil {
		return err
	}
	for _, u := range users.Items {
		if u.Email == email {
			if err := c.Call(http.MethodPost, "/api/v1/impersonations",
				map[string]any{"user_id": u.ID, "reason": reason, "minutes": 120}, nil); err != nil {
				return fmt.Errorf("impersonating %s: %w", email, err)
			}
			return c.Refresh()
		}
	}
	return fmt.Errorf("no user %s", email)
}

// Head is the seq of the newest audit event.
func (c *Client) Head() (int64, error) {
	var page struct {
		Items []struct {
			Seq int64 `json:"seq"`
		} `json:"items"`
	}
	if err := c.Call(http.MethodGet, "/api/v1/activity?limit=1", nil, &page); err != nil {
		return 0, err
	}
	if len(page.Items) == 0 {
		return 0, nil
	}
	return page.Items[0].Seq, nil
}
