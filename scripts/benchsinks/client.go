package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"standin/scripts/internal/apiclient"
)

// action is what each audited request GETs: while impersonating, a view
// of the user's profile is audited by its outcome, one action.allowed
// event committed before the answer leaves (as scripts/benchcluster
// acts).
const action = "/api/v1/profile"

// people are the console's signed-in sessions: an admin, who adds and
// removes the sinks and reads the log's head, and a support agent
// impersonating a user, who takes the audited actions.
type people struct {
	admin, agent *apiclient.Client
}

// signInPeople signs the admin and the agent in on the console at base;
// the agent starts impersonating Cleo.
func signInPeople(base string) (*people, error) {
	admin, err := apiclient.SignIn(base, "admin@example.org")
	if err != nil {
		return nil, err
	}
	agent, err := apiclient.SignIn(base, "support@example.org")
	if err != nil {
		return nil, err
	}
	if err := agent.Impersonate("cleo@example.org", "audit sink benchmark"); err != nil {
		return nil, err
	}
	return &people{admin: admin, agent: agent}, nil
}

// act takes one audited action as the agent: its HTTP status, or an
// error when no answer came.
func (p *people) act() (int, error) {
	res, err := p.agent.HTTP.Get(p.agent.Base + action)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// sink is a sink the admin added.
type sink struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// addSink adds a webhook sink of every event to address, in the audit
// log's own JSON; with history it starts from the first event of the
// log, without from its own creation.
func (p *people) addSink(name, address string, history bool) (*sink, error) {
	var s sink
	err := p.admin.Call(http.MethodPost, "/api/v1/sinks", map[string]any{
		"name": name, "kind": "webhook", "url": address, "format": "standin", "history": history,
	}, &s)
	if err != nil {
		return nil, fmt.Errorf("adding sink %q: %w", name, err)
	}
	if s.ID == "" || s.Secret == "" {
		return nil, fmt.Errorf("adding sink %q: no id or secret in the answer", name)
	}
	return &s, nil
}

// removeSink removes sink id.
func (p *people) removeSink(id string) error {
	if err := p.admin.Call(http.MethodDelete, "/api/v1/sinks/"+url.PathEscape(id), nil, nil); err != nil {
		return fmt.Errorf("removing sink %s: %w", id, err)
	}
	return nil
}

// sinkHealth is how a sink's delivery stands, as the console reports it.
type sinkHealth struct {
	DeliveredSeq int64  `json:"delivered_seq"`
	Failures     int    `json:"failures"`
	LastError    string `json:"last_error"`
}

// health reads sink id's health.
func (p *people) health(id string) (sinkHealth, error) {
	var s struct {
		Health *sinkHealth `json:"health"`
	}
	if err := p.admin.Call(http.MethodGet, "/api/v1/sinks/"+url.PathEscape(id), nil, &s); err != nil {
		return sinkHealth{}, err
	}
	if s.Health == nil {
		return sinkHealth{}, nil
	}
	return *s.Health, nil
}
