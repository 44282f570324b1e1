package bookings

import (
	"context"

	"standin/server/standin"
)

// Repair completes or undoes, by their commit records in the audit log,
// the bookings and cancellations whose writes stopped midway (a database
// failure, a crash): one whose record exists is finished, one without it
// is undone once Repair has seen it half-written for RepairAge. It looks
// only after a write stopped midway, or once for what an earlier process
// left; otherwise it returns at once. Its errors are the store's or the
// audit log's (EUnavailable); what it could not finish it tries again on
// the next call.
func (s *Service) Repair(ctx context.Context) error {
	settled := false
	n, err := s.store.RepairBookings(ctx, RepairAge, func(ctx context.Context, typ, bookingID string) (bool, error) {
		if !settled {
			// A booking whose commit was in doubt is decided by its
			// record: the log first finds out whether the records in
			// doubt were stored.
			if err := s.audit.Settle(ctx); err != nil {
				return false, err
			}
			settled = true
		}
		_, err := s.audit.ByObject(ctx, typ, object(bookingID))
		if standin.ErrorCode(err) == standin.ENotFound {
			return false, nil
		}
		return err == nil, err
	})
	if n > 0 {
		s.log.Warn("bookings left half-written were completed or undone by their commit records", "count", n)
	}
	return err
}

// Recover finishes, at start-up, what an earlier process left: it
// repairs as Repair does, then frees the time that cancelled bookings
// still hold, as an earlier version could leave it. Its errors are the
// store's or the audit log's.
func (s *Service) Recover(ctx context.Context) error {
	if err := s.Repair(ctx); err != nil {
		return err
	}
	n, err := s.store.FreeCancelledSlots(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Warn("freed the time cancelled bookings still held", "slots", n)
	}
	return nil
}
