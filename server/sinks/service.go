package sinks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"standin/server/standin"
)

// AdminStore keeps the sinks for the admins' changes.
type AdminStore interface {
	Store
	CreateSink(ctx context.Context, s *standin.Sink) error
	SaveSink(ctx context.Context, s *standin.Sink) error
	DeleteSink(ctx context.Context, id string) error
	// CreateSinkAs stores s again under its own id (a removal undone).
	CreateSinkAs(ctx context.Context, s *standin.Sink) error
}

// Audit appends events; they are committed when it returns nil.
type Audit interface {
	Append(ctx context.Context, evs ...*standin.Event) error
}

// ServiceConfig configures a Service. Store, Audit and Projects are
// required.
type ServiceConfig struct {
	Store AdminStore
	Audit Audit
	// Projects lists the ids of the facility's projects, for filters.
	Projects func(ctx context.Context) ([]string, error)
	// Allow says where sinks may connect (nil: any public address).
	Allow *Allowlist
	// Timeout bounds a test send (DefaultTimeout).
	Timeout time.Duration
	Now     func() time.Time
}

// Service is how admins add, change, test and remove sinks; every change
// is audited.
type Service struct {
	cfg ServiceConfig
}

// NewService returns a Service.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Allow == nil {
		cfg.Allow = &Allowlist{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

// Allowlist is where sinks may deliver, for people.
func (s *Service) Allowlist() string { return s.cfg.Allow.String() }

// View is a sink as admins see it: never its secret, with its health.
type View struct {
	Sink   *standin.Sink
	Health *standin.SinkHealth
}

// shown strips what is never shown again.
func shown(sk *standin.Sink) *standin.Sink {
	c := *sk
	c.Secret = ""
	return &c
}

// List returns every sink with its health.
func (s *Service) List(ctx context.Context) ([]View, error) {
	all, err := s.cfg.Store.Sinks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(all))
	for _, sk := range all {
		h, err := s.cfg.Store.SinkHealth(ctx, sk.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, View{Sink: shown(sk), Health: h})
	}
	return out, nil
}

// Get returns sink id with its health. ENotFound when there is none.
func (s *Service) Get(ctx context.Context, id string) (*View, error) {
	sk, err := s.cfg.Store.SinkByID(ctx, id)
	if err != nil {
		return nil, err
	}
	h, err := s.cfg.Store.SinkHealth(ctx, id)
	if err != nil {
		return nil, err
	}
	return &View{Sink: shown(sk), Health: h}, nil
}

// check validates in and its destination.
func (s *Service) check(ctx context.Context, in *standin.Sink) error {
	projects, err := s.cfg.Projects(ctx)
	if err != nil {
		return err
	}
	if err := in.Check(projects); err != nil {
		return err
	}
	host, _, err := in.HostPort()
	if err != nil {
		return standin.Errorf(standin.EInvalid, "The destination cannot be read.")
	}
	return s.cfg.Allow.CheckHost(host)
}

// newSecret returns a random webhook secret.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a sink secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Create adds a sink from in (a webhook without a secret gets a new one),
// audited as sink.created. It sends the events from its own creation on,
// or the whole log when history is set. The sink returned carries its
// secret: the only time it is shown.
func (s *Service) Create(ctx context.Context, p *standin.Principal, in *standin.Sink, history bool, o standin.Origin) (*standin.Sink, error) {
	sk := *in
	sk.ID = ""
	if sk.Kind == standin.SinkWebhook && sk.Secret == "" {
		secret, err := newSecret()
		if err != nil {
			return nil, err
		}
		sk.Secret = secret
	}
	if err := s.check(ctx, &sk); err != nil {
		return nil, err
	}
	all, err := s.cfg.Store.Sinks(ctx)
	if err != nil {
		return nil, err
	}
	if len(all) >= standin.MaxSinks {
		return nil, standin.Errorf(standin.EConflict, "There are %d sinks already, the most this server keeps; remove one first.", len(all))
	}
	now := s.cfg.Now().UTC()
	by := standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name}
	// Stored disabled until its creation is in the log: its start is
	// that event.
	sk.Enabled, sk.CreatedAt, sk.CreatedBy, sk.ChangedAt, sk.ChangedBy = false, now, by, now, by
	if err := s.cfg.Store.CreateSink(ctx, &sk); err != nil {
		return nil, err
	}
	ev := s.event(standin.EventSinkCreated, p, &sk, "created", describe(&sk), o)
	if err := s.cfg.Audit.Append(ctx, ev); err != nil {
		s.undo(sk.ID)
		return nil, err
	}
	sk.Enabled = true
	if !history {
		sk.FromSeq = ev.Seq - 1
	}
	if err := s.cfg.Store.SaveSink(ctx, &sk); err != nil {
		return nil, err
	}
	return &sk, nil
}

// undo removes a sink whose creation could not be audited.
func (s *Service) undo(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.cfg.Store.DeleteSink(ctx, id)
}

// Update changes sink id to in's settings, keeping its secret unless in
// brings a new one, audited as sink.changed with what changed.
func (s *Service) Update(ctx context.Context, p *standin.Principal, id string, in *standin.Sink, o standin.Origin) (*standin.Sink, error) {
	old, err := s.cfg.Store.SinkByID(ctx, id)
	if err != nil {
		return nil, err
	}
	next := *in
	next.ID, next.FromSeq, next.CreatedAt, next.CreatedBy = old.ID, old.FromSeq, old.CreatedAt, old.CreatedBy
	if next.Secret == "" {
		next.Secret = old.Secret
	}
	if err := s.check(ctx, &next); err != nil {
		return nil, err
	}
	changes := changed(old, &next)
	if changes == "" {
		return shown(old), nil
	}
	next.ChangedAt, next.ChangedBy = s.cfg.Now().UTC(), standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name}
	if err := s.cfg.Store.SaveSink(ctx, &next); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Append(ctx, s.event(standin.EventSinkChanged, p, &next, "changed", changes, o)); err != nil {
		if rerr := s.cfg.Store.SaveSink(context.WithoutCancel(ctx), old); rerr != nil {
			return nil, fmt.Errorf("%w (and the change could not be undone: %v)", err, rerr)
		}
		return nil, err
	}
	return shown(&next), nil
}

// Delete removes sink id, audited as sink.removed.
func (s *Service) Delete(ctx context.Context, p *standin.Principal, id string, o standin.Origin) error {
	old, err := s.cfg.Store.SinkByID(ctx, id)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteSink(ctx, id); err != nil {
		return err
	}
	if err := s.cfg.Audit.Append(ctx, s.event(standin.EventSinkRemoved, p, old, "removed", describe(old), o)); err != nil {
		if rerr := s.cfg.Store.CreateSinkAs(context.WithoutCancel(ctx), old); rerr != nil {
			return fmt.Errorf("%w (and the sink could not be put back: %v)", err, rerr)
		}
		return err
	}
	return nil
}

// Test sends sink id one test record now, outside its stream (seq 0, type
// sink.tested), and says whether it was acknowledged; audited as
// sink.tested with the outcome.
func (s *Service) Test(ctx context.Context, p *standin.Principal, id string, o standin.Origin) error {
	sk, err := s.cfg.Store.SinkByID(ctx, id)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	probe := &standin.Event{ID: "test-" + fmt.Sprint(now.UnixNano()), Time: now, Type: standin.EventSinkTested,
		Actor: standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name}, Subject: standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name},
		Action: "sink.test", Object: "sink:" + sk.ID, Outcome: "test", Reason: "A test record: it is not part of the audit log."}
	sendErr := func() error {
		data, err := encode(sk.Format, probe)
		if err != nil {
			return err
		}
		tr, err := newTransport(sk, s.cfg.Allow, s.cfg.Timeout, s.cfg.Now)
		if err != nil {
			return err
		}
		defer tr.Close()
		tctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		return tr.Send(tctx, []record{{event: probe, data: data}})
	}()
	outcome, reason := "delivered", "The test record was acknowledged."
	if sendErr != nil {
		outcome, reason = "failed", sendErr.Error()
	}
	if err := s.cfg.Audit.Append(ctx, s.event(standin.EventSinkTested, p, sk, outcome, reason, o)); err != nil {
		return err
	}
	if sendErr != nil {
		return &standin.Error{Code: standin.EConflict, Message: "The sink did not acknowledge the test record.", Reason: sendErr.Error(), Cause: sendErr}
	}
	return nil
}

func (s *Service) event(typ string, p *standin.Principal, sk *standin.Sink, outcome, reason string, o standin.Origin) *standin.Event {
	action := map[string]string{standin.EventSinkCreated: "sink.create", standin.EventSinkChanged: "sink.update",
		standin.EventSinkRemoved: "sink.remove", standin.EventSinkTested: "sink.test"}[typ]
	return p.EventOf(typ, o).Concerning(action, "sink:"+sk.ID, "", outcome, reason)
}

// describe says in words what a sink sends where.
func describe(sk *standin.Sink) string {
	what := "every event"
	if len(sk.Types) > 0 {
		what = strings.Join(sk.Types, ", ")
	}
	if len(sk.Projects) > 0 {
		what += " of projects " + strings.Join(sk.Projects, ", ")
	}
	state := ""
	if !sk.Enabled {
		state = " (paused)"
	}
	return fmt.Sprintf("%q: %s to %s as %s%s", sk.Name, what, sk.Destination(), sk.Format, state)
}

// changed says in words what differs between two settings of a sink, ""
// when nothing does.
func changed(old, next *standin.Sink) string {
	var parts []string
	add := func(what, a, b string) {
		if a != b {
			parts = append(parts, fmt.Sprintf("%s %s → %s", what, a, b))
		}
	}
	add("name", old.Name, next.Name)
	add("destination", old.Destination(), next.Destination())
	add("format", string(old.Format), string(next.Format))
	if old.CA != next.CA {
		parts = append(parts, "certificate authority changed")
	}
	add("types", strings.Join(old.Types, ","), strings.Join(next.Types, ","))
	add("projects", strings.Join(old.Projects, ","), strings.Join(next.Projects, ","))
	add("enabled", fmt.Sprint(old.Enabled), fmt.Sprint(next.Enabled))
	if old.Secret != next.Secret {
		parts = append(parts, "a new secret")
	}
	return strings.Join(parts, "; ")
}
