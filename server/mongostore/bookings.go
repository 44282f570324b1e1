package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/standin"
)

const (
	colBookings = "bookings"
	// colSlots holds one document per booked slot of a resource, keyed by
	// resource and slot start. Its _id uniqueness is what refuses an
	// overlapping booking atomically, on MongoDB and FerretDB alike, with
	// no transaction and no read-then-write race.
	colSlots = "booking_slots"
)

type bookingDoc struct {
	ID              bson.ObjectID `bson:"_id"`
	ResourceID      bson.ObjectID `bson:"resource_id"`
	UserID          bson.ObjectID `bson:"user_id"`
	ProjectID       bson.ObjectID `bson:"project_id"`
	Start           time.Time     `bson:"start"`
	End             time.Time     `bson:"end"`
	Status          string        `bson:"status"`
	CreatedBy       string        `bson:"created_by"`
	ImpersonationID string        `bson:"impersonation_id,omitempty"`
	CreatedAt       time.Time     `bson:"created_at"`
	CancelledAt     *time.Time    `bson:"cancelled_at,omitempty"`
	CancelledBy     string        `bson:"cancelled_by,omitempty"`
}

type slotDoc struct {
	ID        string        `bson:"_id"`
	BookingID bson.ObjectID `bson:"booking_id"`
}

func (d *bookingDoc) domain() *standin.Booking {
	status := standin.BookingStatus(d.Status)
	if status == standin.BookingCancelling {
		status = standin.BookingConfirmed // until the cancellation is committed
	}
	b := &standin.Booking{
		ID: d.ID.Hex(), ResourceID: d.ResourceID.Hex(), UserID: d.UserID.Hex(), ProjectID: d.ProjectID.Hex(),
		Start: d.Start, End: d.End, Status: status,
		CreatedBy: d.CreatedBy, ImpersonationID: d.ImpersonationID, CreatedAt: d.CreatedAt, CancelledBy: d.CancelledBy,
	}
	if d.CancelledAt != nil {
		b.CancelledAt = *d.CancelledAt
	}
	return b
}

// slotIDs lists the slot keys a booking occupies.
func slotIDs(resourceID string, start, end time.Time) []any {
	var ids []any
	for t := start; t.Before(end); t = t.Add(standin.BookingSlot) {
		ids = append(ids, slotDoc{ID: resourceID + "@" + strconv.FormatInt(t.Unix(), 10)})
	}
	return ids
}

// CreateBooking stores b as confirmed and sets its ID and Status. It
// returns EInvalid for times standin.ValidateBookingSpan refuses, and
// EConflict when the resource is booked for any part of the time, however
// many requests race for it.
//
// The booking is written pending, then its slots are claimed, then commit
// is called (it writes the audit event, the commit record), then it is
// confirmed. A failure before commit returns removes what was written and
// returns the error, unless commit's error is standin.ErrInDoubt: then the
// booking is left pending. A failure after it returns the error too, though the
// booking stands: the caller knows its commit succeeded. Whatever a failure
// or a crash leaves pending, RepairBookings confirms if its commit record
// exists and removes otherwise.
func (db *DB) CreateBooking(ctx context.Context, b *standin.Booking, commit func(*standin.Booking) error) error {
	// The slots below are exact only for times on slot boundaries.
	if err := standin.ValidateBookingSpan(b.Start, b.End); err != nil {
		return err
	}
	d := bookingDoc{
		ID: bson.NewObjectID(), Start: b.Start.UTC(), End: b.End.UTC(), Status: string(standin.BookingPending),
		CreatedBy: b.CreatedBy, ImpersonationID: b.ImpersonationID, CreatedAt: b.CreatedAt.UTC(),
	}
	var err error
	if d.ResourceID, err = objectID(b.ResourceID, "resource"); err != nil {
		return err
	}
	if d.UserID, err = objectID(b.UserID, "user"); err != nil {
		return err
	}
	if d.ProjectID, err = objectID(b.ProjectID, "project"); err != nil {
		return err
	}
	if _, err := db.db.Collection(colBookings).InsertOne(ctx, d); err != nil {
		// The insert may have landed before the failure.
		db.unfinished.Store(true)
		return translate(err, "create booking")
	}
	// From here on, a failure must not leave a pending booking or claims
	// behind; the clean-up runs even if the request was cancelled, and
	// what it cannot remove is left to RepairBookings.
	undo := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := db.removePending(cctx, d.ID); err != nil {
			db.unfinished.Store(true)
		}
	}
	slots := slotIDs(d.ResourceID.Hex(), d.Start, d.End)
	for i := range slots {
		s := slots[i].(slotDoc)
		s.BookingID = d.ID
		slots[i] = s
	}
	if _, err := db.db.Collection(colSlots).InsertMany(ctx, slots, options.InsertMany().SetOrdered(true)); err != nil {
		undo()
		if mongo.IsDuplicateKeyError(err) {
			return standin.Errorf(standin.EConflict, "The resource is already booked for part of that time.")
		}
		return translate(err, "claim booking slots")
	}
	b.ID, b.Status = d.ID.Hex(), standin.BookingPending
	if err := commit(b); err != nil {
		if errors.Is(err, standin.ErrInDoubt) {
			// The record may exist: RepairBookings decides by it.
			db.unfinished.Store(true)
			return err
		}
		undo()
		return err
	}
	confirmed, err := db.confirmPending(ctx, d.ID)
	if err == nil && !confirmed {
		err = translate(fmt.Errorf("confirm booking %s: it is no longer pending", d.ID.Hex()), "confirm booking")
	}
	if err != nil {
		db.unfinished.Store(true)
		return err
	}
	b.Status = standin.BookingConfirmed
	return nil
}

// BookingByID returns a booking, or ENotFound. Pending bookings are not
// visible.
func (db *DB) BookingByID(ctx context.Context, id string) (*standin.Booking, error) {
	var d bookingDoc
	visible := bson.M{"status": bson.M{"$in": bson.A{
		string(standin.BookingConfirmed), string(standin.BookingCancelling), string(standin.BookingCancelled)}}}
	if err := db.findByID(ctx, colBookings, "booking", id, visible, &d); err != nil {
		return nil, err
	}
	return d.domain(), nil
}

// CancelBooking marks a confirmed booking cancelled by whom, at at, and
// frees its time. It returns ENotFound for an unknown booking and
// EConflict for one already cancelled or being cancelled.
//
// The booking is marked cancelling, then commit writes the commit record,
// then its time is freed and it is marked cancelled. A failure before
// commit returns puts it back, unless commit's error is
// standin.ErrInDoubt: then it is left cancelling. A failure after it returns the error
// though the cancellation stands (the caller knows its commit succeeded),
// and leaves the booking cancelling: RepairBookings finishes it, as it
// finishes or reverts what a crash leaves cancelling.
func (db *DB) CancelBooking(ctx context.Context, id, by string, at time.Time, commit func(*standin.Booking) error) (*standin.Booking, error) {
	oid, err := objectID(id, "booking")
	if err != nil {
		return nil, err
	}
	at = at.UTC()
	if err := db.claimCancel(ctx, oid); err != nil {
		return nil, err
	}
	var d bookingDoc
	err = db.db.Collection(colBookings).FindOneAndUpdate(ctx,
		bson.M{"_id": oid, "status": string(standin.BookingConfirmed)},
		bson.M{"$set": bson.M{"status": string(standin.BookingCancelling), "cancelled_at": at, "cancelled_by": by}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		db.releaseCancel(ctx, oid)
		if _, ferr := db.BookingByID(ctx, id); ferr != nil {
			return nil, ferr
		}
		return nil, standin.Errorf(standin.EConflict, "That booking is already cancelled.")
	}
	if err != nil {
		// The update may have landed before the failure.
		db.unfinished.Store(true)
		return nil, translate(err, "cancel booking")
	}
	if cerr := commit(d.domain()); cerr != nil {
		if errors.Is(cerr, standin.ErrInDoubt) {
			// The record may exist: RepairBookings decides by it.
			db.unfinished.Store(true)
			return nil, cerr
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := db.restoreCancelling(rctx, oid); err != nil {
			db.unfinished.Store(true)
		}
		return nil, cerr
	}
	if err := db.finishCancel(ctx, oid); err != nil {
		db.unfinished.Store(true)
		return nil, err
	}
	d.Status = string(standin.BookingCancelled)
	return d.domain(), nil
}

// finishCancel marks a booking whose cancellation is committed cancelled,
// then frees its time. Until its time is free the booking is marked
// freeing, so that RepairBookings finds it if freeing fails: a booking
// listed as confirmed always holds its time, and a cancelled one holds it
// only until the repair.
func (db *DB) finishCancel(ctx context.Context, id bson.ObjectID) error {
	if _, err := db.db.Collection(colBookings).UpdateOne(ctx, bson.M{"_id": id, "status": string(standin.BookingCancelling)},
		bson.M{"$set": bson.M{"status": string(standin.BookingCancelled), "freeing": true}}); err != nil {
		return translate(err, "cancel booking")
	}
	return db.freeSlots(ctx, id)
}

// freeSlots frees a cancelled booking's time and clears its freeing mark.
func (db *DB) freeSlots(ctx context.Context, id bson.ObjectID) error {
	if _, err := db.db.Collection(colSlots).DeleteMany(ctx, bson.M{"booking_id": id}); err != nil {
		return translate(err, "free booking slots")
	}
	_, err := db.db.Collection(colBookings).UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$unset": bson.M{"freeing": ""}})
	return translate(err, "free booking slots")
}

// FreeCancelledSlots frees the time still held by cancelled bookings, as
// an earlier version left it when the database failed between marking a
// booking cancelled and freeing its time. The server runs it at start-up;
// it returns how many slots it freed.
func (db *DB) FreeCancelledSlots(ctx context.Context) (int64, error) {
	cur, err := db.db.Collection(colBookings).Find(ctx, bson.M{"status": string(standin.BookingCancelled)},
		options.Find().SetProjection(bson.M{"_id": 1}))
	if err != nil {
		return 0, translate(err, "find cancelled bookings")
	}
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return 0, translate(err, "find cancelled bookings")
	}
	var freed int64
	for chunk := range slices.Chunk(docs, 1000) {
		ids := make(bson.A, len(chunk))
		for i, d := range chunk {
			ids[i] = d.ID
		}
		res, err := db.db.Collection(colSlots).DeleteMany(ctx, bson.M{"booking_id": bson.M{"$in": ids}})
		if err != nil {
			return freed, translate(err, "free cancelled bookings' slots")
		}
		freed += res.DeletedCount
	}
	return freed, nil
}

// Bookings lists bookings matching f, newest first, one page at a time.
func (db *DB) Bookings(ctx context.Context, f standin.BookingFilter, p standin.Page) ([]*standin.Booking, string, error) {
	// A booking being cancelled stays listed (as confirmed) until its
	// cancellation is committed.
	filter := bson.M{"status": bson.M{"$in": bson.A{string(standin.BookingConfirmed), string(standin.BookingCancelling), string(standin.BookingCancelled)}}}
	for key, id := range map[string]string{"user_id": f.UserID, "project_id": f.ProjectID, "resource_id": f.ResourceID} {
		if id == "" {
			continue
		}
		oid, err := objectID(id, "record")
		if err != nil {
			return nil, "", nil // an id that cannot exist matches nothing
		}
		filter[key] = oid
	}
	switch f.Status {
	case "":
	case standin.BookingConfirmed:
		filter["status"] = bson.M{"$in": bson.A{string(standin.BookingConfirmed), string(standin.BookingCancelling)}}
	default:
		filter["status"] = string(f.Status)
	}
	docs, next, err := page(ctx, db, colBookings, filter, p, func(d *bookingDoc) bson.ObjectID { return d.ID })
	if err != nil {
		return nil, "", err
	}
	out := make([]*standin.Booking, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, next, nil
}

// RepairBookings finishes booking writes that stopped between their
// steps (a database failure, a crash), using committed to ask whether an
// audit event (the commit record) of a type exists for a booking. A
// pending booking is confirmed if its creation was committed; one without
// a commit record is removed with its time once RepairBookings has seen it
// half-written for olderThan. A cancelling booking is cancelled, its time
// freed, if its cancellation was committed; one without a record is
// restored after olderThan likewise. A cancelled booking still freeing
// its time has it freed. olderThan must exceed the longest any request
// may still be writing a booking.
//
// It looks only when a write of this DB stopped midway or, once, for
// what an earlier process left; otherwise it returns 0 at once. It
// returns how many bookings it changed.
func (db *DB) RepairBookings(ctx context.Context, olderThan time.Duration, committed func(ctx context.Context, eventType, bookingID string) (bool, error)) (int, error) {
	if !db.unfinished.Swap(false) {
		return 0, nil
	}
	changed, left, err := db.repairBookings(ctx, olderThan, committed)
	if err != nil || left {
		db.unfinished.Store(true) // the next call tries again
	}
	return changed, err
}

func (db *DB) repairBookings(ctx context.Context, olderThan time.Duration, committed func(ctx context.Context, eventType, bookingID string) (bool, error)) (changed int, left bool, err error) {
	cur, err := db.db.Collection(colBookings).Find(ctx, bson.M{"$or": bson.A{
		bson.M{"status": bson.M{"$in": bson.A{string(standin.BookingPending), string(standin.BookingCancelling)}}},
		bson.M{"freeing": true},
	}})
	if err != nil {
		return 0, false, translate(err, "find bookings to repair")
	}
	var docs []bookingDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, false, translate(err, "find bookings to repair")
	}
	old := db.ageOf(docs, olderThan)
	for _, d := range docs {
		switch standin.BookingStatus(d.Status) {
		case standin.BookingCancelled:
			err = db.freeSlots(ctx, d.ID)
		case standin.BookingPending:
			ok, cerr := committed(ctx, standin.EventBookingCreated, d.ID.Hex())
			switch {
			case cerr != nil:
				return changed, true, cerr
			case ok:
				_, err = db.confirmPending(ctx, d.ID) // a live request may have confirmed it already
			case !old[d.ID]:
				left = true // perhaps still being written by a live request
				continue
			default:
				err = db.removePending(ctx, d.ID)
			}
		case standin.BookingCancelling:
			ok, cerr := committed(ctx, standin.EventBookingCancelled, d.ID.Hex())
			switch {
			case cerr != nil:
				return changed, true, cerr
			case ok:
				err = db.finishCancel(ctx, d.ID)
			case !old[d.ID]:
				left = true
				continue
			default:
				err = db.restoreCancelling(ctx, d.ID)
			}
		}
		if err != nil {
			return changed, true, err
		}
		changed++
	}
	return changed, left, nil
}

// confirmPending marks a pending booking confirmed; false when it is no
// longer pending.
func (db *DB) confirmPending(ctx context.Context, id bson.ObjectID) (bool, error) {
	res, err := db.db.Collection(colBookings).UpdateOne(ctx, bson.M{"_id": id, "status": string(standin.BookingPending)},
		bson.M{"$set": bson.M{"status": string(standin.BookingConfirmed)}})
	if err != nil {
		return false, translate(err, "confirm booking")
	}
	return res.MatchedCount == 1, nil
}

// removePending removes a pending booking, then its time. The booking
// goes first: a request that still confirms it then finds it gone and
// fails, rather than confirm a booking whose time was freed.
func (db *DB) removePending(ctx context.Context, id bson.ObjectID) error {
	res, err := db.db.Collection(colBookings).DeleteOne(ctx, bson.M{"_id": id, "status": string(standin.BookingPending)})
	if err == nil && res.DeletedCount == 1 {
		_, err = db.db.Collection(colSlots).DeleteMany(ctx, bson.M{"booking_id": id})
	}
	return translate(err, "remove pending booking")
}

// restoreCancelling puts a booking whose cancellation was not committed
// back as confirmed, and gives up the right to cancel it.
func (db *DB) restoreCancelling(ctx context.Context, id bson.ObjectID) error {
	_, err := db.db.Collection(colBookings).UpdateOne(ctx, bson.M{"_id": id, "status": string(standin.BookingCancelling)},
		bson.M{"$set": bson.M{"status": string(standin.BookingConfirmed)}, "$unset": bson.M{"cancelled_at": "", "cancelled_by": ""}})
	if err != nil {
		return translate(err, "restore booking")
	}
	db.releaseCancel(ctx, id)
	return nil
}

// staleCancelClaim is how old a claim to cancel a booking that is still
// confirmed must be to count as left by a process that died between
// claiming and marking the booking.
const staleCancelClaim = 2 * time.Minute

// cancelClaim is the claim to cancel booking id.
func cancelClaim(id bson.ObjectID) string { return "cancel:" + id.Hex() }

// claimCancel takes the right to cancel booking id, by a unique insert:
// of servers cancelling the same booking at once, on either database, one
// goes on (marking a booking cancelling is a conditional update, which
// FerretDB does not make exact across connections). The claim stays once
// the booking is cancelled, and is given up when the cancellation is
// not. A claim left by a process that died before marking the booking is
// taken over once stale. Errors: EConflict while another holds it.
func (db *DB) claimCancel(ctx context.Context, id bson.ObjectID) error {
	claims := db.db.Collection(colClaims)
	for try := 0; ; try++ {
		now := time.Now().UTC()
		_, err := claims.InsertOne(ctx, bson.M{"_id": cancelClaim(id), "at": now})
		if err == nil {
			return nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return translate(err, "cancel booking")
		}
		var c struct {
			At time.Time `bson:"at"`
		}
		ferr := claims.FindOne(ctx, bson.M{"_id": cancelClaim(id)}).Decode(&c)
		if ferr != nil && !errors.Is(ferr, mongo.ErrNoDocuments) {
			return translate(ferr, "cancel booking")
		}
		var b bookingDoc
		berr := db.db.Collection(colBookings).FindOne(ctx, bson.M{"_id": id}).Decode(&b)
		stale := ferr == nil && now.Sub(c.At) > staleCancelClaim && berr == nil && b.Status == string(standin.BookingConfirmed)
		if try > 0 || (ferr == nil && !stale) {
			if berr == nil && b.Status == string(standin.BookingCancelled) {
				return standin.Errorf(standin.EConflict, "That booking is already cancelled.")
			}
			return standin.Errorf(standin.EConflict, "That booking is being cancelled.")
		}
		if stale {
			if _, err := claims.DeleteOne(ctx, bson.M{"_id": cancelClaim(id), "at": c.At}); err != nil {
				return translate(err, "cancel booking")
			}
		}
	}
}

// releaseCancel gives up the right to cancel booking id. A claim that
// cannot be removed now is taken over once stale.
func (db *DB) releaseCancel(ctx context.Context, id bson.ObjectID) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = db.db.Collection(colClaims).DeleteOne(rctx, bson.M{"_id": cancelClaim(id)})
}

// ageOf notes when each of docs was first seen half-written and reports
// those seen for at least olderThan; it forgets bookings no longer among
// them.
func (db *DB) ageOf(docs []bookingDoc, olderThan time.Duration) map[bson.ObjectID]bool {
	h := &db.halfWritten
	h.Lock()
	defer h.Unlock()
	now := time.Now()
	seen := make(map[bson.ObjectID]time.Time, len(docs))
	old := make(map[bson.ObjectID]bool, len(docs))
	for _, d := range docs {
		first, ok := h.seen[d.ID]
		if !ok {
			first = now
		}
		seen[d.ID] = first
		old[d.ID] = now.Sub(first) >= olderThan
	}
	h.seen = seen
	return old
}

// page reads one page of col matching filter, newest first by _id, and
// returns the cursor of the next page ("" on the last). Paging by _id keeps
// FerretDB on its one fast path and uses the _id index on MongoDB.
func page[T any](ctx context.Context, db *DB, col string, filter bson.M, p standin.Page, id func(*T) bson.ObjectID) ([]T, string, error) {
	limit := p.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if p.Cursor != "" {
		after, err := bson.ObjectIDFromHex(p.Cursor)
		if err != nil {
			return nil, "", standin.Errorf(standin.EInvalid, "The cursor %q is not one this server gave out.", p.Cursor)
		}
		filter["_id"] = bson.M{"$lt": after}
	}
	cur, err := db.db.Collection(col).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, "", translate(err, "list "+col)
	}
	var docs []T
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", translate(err, "list "+col)
	}
	next := ""
	if len(docs) > limit {
		docs = docs[:limit]
		next = id(&docs[limit-1]).Hex()
	}
	return docs, next, nil
}
