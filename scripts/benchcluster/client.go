package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"time"
)

// tagPrefix starts the User-Agent of every audited action the benchmark
// takes; the number after it identifies the action in its audit event,
// which records the User-Agent.
const tagPrefix = "benchcluster/"

// client is a signed-in browser-like HTTP client of one node. Its
// cookies are its own: a cookie jar does not tell loopback ports apart.
type client struct {
	base   string
	http   *http.Client
	csrf   string
	action string // the path act requests
}

// signIn signs email in on the node at base with the demo password.
func signIn(base, email string) (*client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &client{base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if err := c.call(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": "demo"}, nil); err != nil {
		return nil, fmt.Errorf("sign in %s on %s: %w", email, base, err)
	}
	return c, c.refresh()
}

// refresh reads the session's CSRF token.
func (c *client) refresh() error {
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	if err := c.call(http.MethodGet, "/api/v1/session", nil, &s); err != nil {
		return err
	}
	c.csrf = s.CSRF
	return nil
}

// call makes a request and decodes a JSON answer into out, if not nil;
// any status from 300 is an error.
func (c *client) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.http.Do(req)
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

// impersonate starts impersonating the user email.
func (c *client) impersonate(email string) error {
	var users struct {
		Items []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"items"`
	}
	if err := c.call(http.MethodGet, "/api/v1/users?q="+email, nil, &users); err != nil {
		return err
	}
	for _, u := range users.Items {
		if u.Email == email {
			if err := c.call(http.MethodPost, "/api/v1/impersonations",
				map[string]any{"user_id": u.ID, "reason": "cluster benchmark", "minutes": 120}, nil); err != nil {
				return fmt.Errorf("impersonating %s: %w", email, err)
			}
			return c.refresh()
		}
	}
	return fmt.Errorf("no user %s", email)
}

// act is one action under impersonation, GET c.action, one audited
// decision, tagged with the number tag. It returns the HTTP status, or an error when no
// answer came.
func (c *client) act(tag int64) (int, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+c.action, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", tagPrefix+strconv.FormatInt(tag, 10))
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// head is the seq of the newest event.
func (c *client) head() (int64, error) {
	var page struct {
		Items []struct {
			Seq int64 `json:"seq"`
		} `json:"items"`
	}
	if err := c.call(http.MethodGet, "/api/v1/activity?limit=1", nil, &page); err != nil {
		return 0, err
	}
	if len(page.Items) == 0 {
		return 0, nil
	}
	return page.Items[0].Seq, nil
}
