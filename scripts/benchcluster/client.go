package main

import (
	"io"
	"net/http"
	"strconv"

	"standin/scripts/internal/apiclient"
)

// tagPrefix starts the User-Agent of every audited action the benchmark
// takes; the number after it identifies the action in its audit event,
// which records the User-Agent.
const tagPrefix = "benchcluster/"

// client is a signed-in browser-like HTTP client of one node.
type client struct {
	*apiclient.Client
	action string // the path act requests
}

// signIn signs email in on the node at base with the demo password.
func signIn(base, email string) (*client, error) {
	c, err := apiclient.SignIn(base, email)
	if err != nil {
		return nil, err
	}
	return &client{Client: c}, nil
}

// impersonate starts impersonating the user email.
func (c *client) impersonate(email string) error {
	return c.Impersonate(email, "cluster benchmark")
}

// act is one action under impersonation, GET c.action, one audited
// decision, tagged with the number tag. It returns the HTTP status, or an error when no
// answer came.
func (c *client) act(tag int64) (int, error) {
	req, err := http.NewRequest(http.MethodGet, c.Base+c.action, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", tagPrefix+strconv.FormatInt(tag, 10))
	res, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}
