package httpapi

import (
	"context"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"standin/server/audit"
	"standin/server/sinks"
	"standin/server/standin"
)

// Sinks are the audit log's outside sinks (sinks.Service).
type Sinks interface {
	List(ctx context.Context) ([]sinks.View, error)
	Get(ctx context.Context, id string) (*sinks.View, error)
	Create(ctx context.Context, p *standin.Principal, in *standin.Sink, history bool, o standin.Origin) (*standin.Sink, error)
	Update(ctx context.Context, p *standin.Principal, id string, in *standin.Sink, o standin.Origin) (*standin.Sink, error)
	Delete(ctx context.Context, p *standin.Principal, id string, o standin.Origin) error
	Test(ctx context.Context, p *standin.Principal, id string, o standin.Origin) error
	Allowlist() string
}

// sinkJSON is a sink as admins see it: never its secret but on creation.
type sinkJSON struct {
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Kind      string           `json:"kind"`
	URL       string           `json:"url,omitempty"`
	Address   string           `json:"address,omitempty"`
	TLS       bool             `json:"tls"`
	CA        string           `json:"ca,omitempty"`
	Format    string           `json:"format"`
	Types     []string         `json:"types"`
	Projects  []string         `json:"projects"`
	Enabled   bool             `json:"enabled"`
	FromSeq   int64            `json:"from_seq"`
	CreatedAt string           `json:"created_at"`
	CreatedBy audit.UserJSON   `json:"created_by"`
	ChangedAt string           `json:"changed_at"`
	ChangedBy audit.UserJSON   `json:"changed_by"`
	Secret    string           `json:"secret,omitempty"`
	Health    sinks.HealthJSON `json:"health"`
}

func toSinkJSON(s *standin.Sink, h *standin.SinkHealth) sinkJSON {
	j := sinkJSON{ID: s.ID, Name: s.Name, Kind: string(s.Kind), URL: s.URL, Address: s.Address, TLS: s.TLS, CA: s.CA, Format: string(s.Format),
		Types: s.Types, Projects: s.Projects, Enabled: s.Enabled, FromSeq: s.FromSeq,
		CreatedAt: standin.FormatTime(s.CreatedAt), CreatedBy: audit.UserJSON(s.CreatedBy),
		ChangedAt: standin.FormatTime(s.ChangedAt), ChangedBy: audit.UserJSON(s.ChangedBy),
		Health: sinks.HealthView(s.ID, h, s.FromSeq)}
	if j.Types == nil {
		j.Types = []string{}
	}
	if j.Projects == nil {
		j.Projects = []string{}
	}
	return j
}

// sinkRequest is what an admin sends to add or change a sink.
type sinkRequest struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	URL      string   `json:"url"`
	Address  string   `json:"address"`
	TLS      bool     `json:"tls"`
	CA       string   `json:"ca"`
	Format   string   `json:"format"`
	Types    []string `json:"types"`
	Projects []string `json:"projects"`
	Secret   string   `json:"secret"`
	Enabled  *bool    `json:"enabled"`
	// History, on creation, sends the whole log first.
	History bool `json:"history"`
}

func (r sinkRequest) sink() *standin.Sink {
	s := &standin.Sink{Name: r.Name, Kind: standin.SinkKind(r.Kind), URL: r.URL, Address: r.Address, TLS: r.TLS, CA: r.CA,
		Format: standin.SinkFormat(r.Format), Types: r.Types, Projects: r.Projects, Secret: r.Secret, Enabled: true}
	if r.Enabled != nil {
		s.Enabled = *r.Enabled
	}
	return s
}

// listSinks answers GET /sinks: every sink with its health, and where
// sinks may deliver.
func (a *API) listSinks(c *fiber.Ctx) error {
	views, err := a.cfg.Sinks.List(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]sinkJSON, 0, len(views))
	for _, v := range views {
		items = append(items, toSinkJSON(v.Sink, v.Health))
	}
	return c.JSON(fiber.Map{"items": items, "allowed": a.cfg.Sinks.Allowlist(), "event_types": standin.EventTypes()})
}

func (a *API) getSink(c *fiber.Ctx) error {
	v, err := a.cfg.Sinks.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toSinkJSON(v.Sink, v.Health))
}

// createSink answers POST /sinks with the new sink, its secret shown
// this once.
func (a *API) createSink(c *fiber.Ctx) error {
	var req sinkRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	s, err := a.cfg.Sinks.Create(c.UserContext(), principal(c), req.sink(), req.History, a.origin(c))
	if err != nil {
		return err
	}
	j := toSinkJSON(s, nil)
	j.Secret = s.Secret
	return c.Status(http.StatusCreated).JSON(j)
}

func (a *API) updateSink(c *fiber.Ctx) error {
	var req sinkRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	s, err := a.cfg.Sinks.Update(c.UserContext(), principal(c), c.Params("id"), req.sink(), a.origin(c))
	if err != nil {
		return err
	}
	v, err := a.cfg.Sinks.Get(c.UserContext(), s.ID)
	if err != nil {
		return err
	}
	return c.JSON(toSinkJSON(v.Sink, v.Health))
}

func (a *API) deleteSink(c *fiber.Ctx) error {
	if err := a.cfg.Sinks.Delete(c.UserContext(), principal(c), c.Params("id"), a.origin(c)); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// testSink answers POST /sinks/{id}/test: 200 when the sink acknowledged
// a test record, 409 with why when it did not.
func (a *API) testSink(c *fiber.Ctx) error {
	if err := a.cfg.Sinks.Test(c.UserContext(), principal(c), c.Params("id"), a.origin(c)); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"delivered": true})
}
