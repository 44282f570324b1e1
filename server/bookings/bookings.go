// Package bookings owns the booking workflow: the rules a booking request
// must meet, the decision of the resource's own rules, the audit events
// that are each booking's and cancellation's commit record, and the repair
// of bookings whose writes stopped midway. HTTP handlers and background
// jobs call it; it knows nothing of HTTP.
//
// A booking is written pending, its time is claimed, its audit event is
// appended (the commit record: once it is stored the booking stands,
// whatever fails after it), then it is confirmed; a cancellation likewise.
// Whatever a failure or a crash leaves half-written, Repair completes or
// undoes by the commit records in the audit log.
package bookings

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"standin/server/standin"
)

// Deadline bounds the writing of a booking or a cancellation. Its commit
// record is written within it (or, if the audit log had already taken the
// record, within the log's own commit timeout after it), so a booking
// still half-written well after it was begun was abandoned by its caller,
// and Repair may undo it.
const Deadline = 20 * time.Second

// RepairAge is how long Repair must have seen a half-written booking
// without its commit record before it undoes it: well past the longest a
// caller may still be writing it.
const RepairAge = 4 * Deadline

// RepairEvery is how often a running server should call Repair to finish
// the booking writes a database failure stopped midway (Repair looks only
// after one did).
const RepairEvery = 15 * time.Second

// Store keeps resources and bookings (package mongostore). CreateBooking
// and CancelBooking write in steps and call commit to write the commit
// record between them; RepairBookings asks committed whether a booking's
// record of a type exists.
type Store interface {
	ResourceByID(ctx context.Context, id string) (*standin.Resource, error)
	CreateBooking(ctx context.Context, b *standin.Booking, commit func(*standin.Booking) error) error
	CancelBooking(ctx context.Context, id, by string, at time.Time, commit func(*standin.Booking) error) (*standin.Booking, error)
	RepairBookings(ctx context.Context, olderThan time.Duration,
		committed func(ctx context.Context, eventType, bookingID string) (bool, error)) (int, error)
	FreeCancelledSlots(ctx context.Context) (int64, error)
}

// Decider decides whether a principal may book a resource (package
// access): the project's permissions, then the resource's own rules.
type Decider interface {
	Decide(ctx context.Context, p *standin.Principal, action string, obj standin.Object, project string) (standin.Decision, error)
}

// Audit is the audit log (package audit). Append's events are committed
// when it returns nil; Settle learns the fate of appends that failed in
// doubt; ByObject finds an event of a type about an object, or ENotFound.
type Audit interface {
	Append(ctx context.Context, evs ...*standin.Event) error
	Settle(ctx context.Context) error
	ByObject(ctx context.Context, typ, object string) (*standin.Event, error)
}

// Config tunes a Service; zero values are the documented defaults.
type Config struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger reports what was committed but not finished, and repairs
	// (default: discard).
	Logger *slog.Logger
}

// Service runs the booking workflow.
type Service struct {
	store  Store
	access Decider
	audit  Audit
	now    func() time.Time
	log    *slog.Logger
}

// New returns a Service over store, deciding with access and recording
// in audit.
func New(store Store, access Decider, audit Audit, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, access: access, audit: audit, now: cfg.Now, log: cfg.Logger}
}

// Request asks for a booking of a resource in a project, from Start to
// End.
type Request struct {
	ResourceID string
	ProjectID  string
	Start      time.Time
	End        time.Time
}

// Create books req's resource for p's subject, made by p's actor, and
// returns the booking, confirmed, with the resource it books. Its
// booking.created event is its commit record: without it there is no
// booking, and once it is stored the booking stands, whatever fails after
// it (the failure is logged and Repair finishes the write).
//
// It returns EInvalid for times standin.ValidateBookingTimes refuses,
// ENotFound for an unknown resource, EForbidden (with the reason) when p
// may not book the resource in the project then, which it audits as
// action.denied while impersonating, EConflict when the time is taken,
// and EUnavailable when the audit log or the database fails before the
// booking is committed.
func (s *Service) Create(ctx context.Context, p *standin.Principal, req Request, o standin.Origin) (*standin.Booking, *standin.Resource, error) {
	ctx, cancel := context.WithTimeout(ctx, Deadline)
	defer cancel()
	now := s.now()
	if err := standin.ValidateBookingTimes(req.Start, req.End, now); err != nil {
		return nil, nil, err
	}
	resource, err := s.store.ResourceByID(ctx, req.ResourceID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.decide(ctx, p, resource, req, o); err != nil {
		return nil, nil, err
	}
	b := &standin.Booking{
		ResourceID: resource.ID, UserID: p.Subject.ID, ProjectID: req.ProjectID,
		Start: req.Start, End: req.End, CreatedBy: p.Actor.ID, CreatedAt: now,
	}
	if p.Impersonation != nil {
		b.ImpersonationID = p.Impersonation.ID
	}
	committed := false
	err = s.store.CreateBooking(ctx, b, func(b *standin.Booking) error {
		err := s.audit.Append(ctx, p.EventOf(standin.EventBookingCreated, o).Concerning("booking.create", object(b.ID), b.ProjectID, "created",
			fmt.Sprintf("%s, %s to %s", resource.Name, standin.FormatTime(b.Start), standin.FormatTime(b.End))))
		committed = err == nil
		return err
	})
	if err != nil && !committed {
		return nil, nil, err
	}
	if err != nil {
		s.log.Warn("booking committed; the repair finishes its record", "booking", b.ID, "err", err)
		b.Status = standin.BookingConfirmed
	}
	return b, resource, nil
}

// decide asks whether p may book resource as req asks. The caller has
// already decided, and audited, that p may book in the project; a refusal
// by the resource's own rules is audited here while impersonating, before
// it takes effect.
func (s *Service) decide(ctx context.Context, p *standin.Principal, resource *standin.Resource, req Request, o standin.Origin) error {
	dec, err := s.access.Decide(ctx, p, standin.ActCreate,
		standin.Object{Kind: standin.KindBooking, Resource: resource, Start: req.Start, End: req.End}, req.ProjectID)
	if err != nil {
		return err
	}
	if dec.Allowed {
		return nil
	}
	if ev := p.DecisionEvent("booking.create", standin.SlotObject(resource.ID, req.Start, req.End), req.ProjectID, dec, o); ev != nil {
		if err := s.audit.Append(ctx, ev); err != nil {
			return err
		}
	}
	return &standin.Error{Code: standin.EForbidden, Message: "This booking is not allowed.", Reason: dec.Reason}
}

// Cancel cancels b, a confirmed booking the caller has loaded and decided
// p may cancel, by p's actor, and returns it cancelled. Its
// booking.cancelled event is its commit record, as for Create: once it is
// stored the cancellation stands, whatever fails after it.
//
// It returns ENotFound when the booking is gone, EConflict when it is
// already cancelled or being cancelled, and EUnavailable when the audit
// log or the database fails before the cancellation is committed.
func (s *Service) Cancel(ctx context.Context, p *standin.Principal, b *standin.Booking, o standin.Origin) (*standin.Booking, error) {
	ctx, cancel := context.WithTimeout(ctx, Deadline)
	defer cancel()
	committed, now := false, s.now()
	got, err := s.store.CancelBooking(ctx, b.ID, p.Actor.ID, now, func(b *standin.Booking) error {
		err := s.audit.Append(ctx, p.EventOf(standin.EventBookingCancelled, o).Concerning("booking.cancel", object(b.ID), b.ProjectID, "cancelled", ""))
		committed = err == nil
		return err
	})
	if err != nil && !committed {
		return nil, err
	}
	if err != nil {
		s.log.Warn("booking cancellation committed; the repair finishes its record", "booking", b.ID, "err", err)
		cancelled := *b
		cancelled.Status, cancelled.CancelledAt, cancelled.CancelledBy = standin.BookingCancelled, now, p.Actor.ID
		got = &cancelled
	}
	return got, nil
}

// object names a booking in the audit log.
func object(bookingID string) string { return "booking:" + bookingID }
