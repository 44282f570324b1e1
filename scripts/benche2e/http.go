package main

import (
	"net/http"

	"standin/scripts/internal/apiclient"
)

// client is a signed-in browser-like HTTP client.
type client struct {
	*apiclient.Client
}

func signIn(base, email string) (*client, error) {
	c, err := apiclient.SignIn(base, email)
	if err != nil {
		return nil, err
	}
	return &client{c}, nil
}

func (c *client) impersonate(email string) error {
	return c.Impersonate(email, "end-to-end benchmark")
}

// act is one action under impersonation: one audited decision.
func (c *client) act() error {
	return c.Call(http.MethodGet, "/api/v1/resources", nil, nil)
}
