package mongostore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

// committed stands for a commit record that is always written.
func committed(*standin.Booking) error { return nil }

type bookingFixture struct {
	db       *mongostore.DB
	user     *standin.User
	project  *standin.Project
	resource *standin.Resource
	base     time.Time
}

func newBookingFixture(t *testing.T) *bookingFixture {
	t.Helper()
	ctx := context.Background()
	db := mustOpen(t)
	p := &standin.Project{Code: "NEURO", Name: "Neuro"}
	if err := db.EnsureProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	r := &standin.Resource{Name: "Confocal", Kind: "instrument"}
	if err := db.EnsureResource(ctx, r); err != nil {
		t.Fatal(err)
	}
	return &bookingFixture{db: db, user: mustUser(t, db, "ada@example.org"), project: p, resource: r,
		base: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
}

func (f *bookingFixture) booking(startH, endH float64) *standin.Booking {
	return &standin.Booking{
		ResourceID: f.resource.ID, UserID: f.user.ID, ProjectID: f.project.ID,
		Start: f.base.Add(time.Duration(startH * float64(time.Hour))), End: f.base.Add(time.Duration(endH * float64(time.Hour))),
		CreatedBy: f.user.ID, CreatedAt: time.Now(),
	}
}

// mustBook books the fixture's resource from startH to endH hours after
// its base time, committed, or fails the test.
func (f *bookingFixture) mustBook(t *testing.T, startH, endH float64) *standin.Booking {
	t.Helper()
	b := f.booking(startH, endH)
	if err := f.db.CreateBooking(context.Background(), b, committed); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBookings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CreateAndRead", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		b := f.mustBook(t, 0, 2)
		got, err := f.db.BookingByID(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != standin.BookingConfirmed || !got.Start.Equal(b.Start) || !got.End.Equal(b.End) || got.UserID != f.user.ID {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("ErrOverlap", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		if err := f.db.CreateBooking(ctx, f.booking(1, 3), committed); err != nil {
			t.Fatal(err)
		}
		for _, span := range [][2]float64{{0, 1.25}, {2.75, 4}, {1.5, 2}, {0, 5}} {
			if err := f.db.CreateBooking(ctx, f.booking(span[0], span[1]), committed); standin.ErrorCode(err) != standin.EConflict {
				t.Errorf("overlap %v: %v, want conflict", span, err)
			}
		}
		// Adjacent bookings touch but do not overlap.
		for _, span := range [][2]float64{{0, 1}, {3, 4}} {
			if err := f.db.CreateBooking(ctx, f.booking(span[0], span[1]), committed); err != nil {
				t.Errorf("adjacent %v: %v", span, err)
			}
		}
		// A refused booking leaves nothing behind.
		list, _, err := f.db.Bookings(ctx, standin.BookingFilter{ResourceID: f.resource.ID}, standin.Page{})
		if err != nil || len(list) != 3 {
			t.Fatalf("%d bookings, %v; want 3", len(list), err)
		}
	})

	t.Run("ErrNotOnSlots", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		for _, span := range [][2]float64{{0.1, 1}, {0, 1.1}, {1, 1}, {2, 1}} {
			if err := f.db.CreateBooking(ctx, f.booking(span[0], span[1]), committed); standin.ErrorCode(err) != standin.EInvalid {
				t.Errorf("%v: %v, want invalid", span, err)
			}
		}
	})

	t.Run("ConcurrentDoubleBooking", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Different but overlapping spans, all covering 10:00-10:15.
				errs <- f.db.CreateBooking(ctx, f.booking(float64(i%2)*0.25, 1.25+float64(i%3)*0.25), committed)
			}()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch standin.ErrorCode(err) {
			case "":
				ok++
			case standin.EConflict:
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d overlapping bookings succeeded, want exactly 1", ok, n)
		}
	})

	t.Run("CancelFreesTime", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		b := f.mustBook(t, 0, 1)
		got, err := f.db.CancelBooking(ctx, b.ID, f.user.ID, time.Now(), committed)
		if err != nil || got.Status != standin.BookingCancelled || got.CancelledBy != f.user.ID {
			t.Fatalf("cancel: %+v, %v", got, err)
		}
		if _, err := f.db.CancelBooking(ctx, b.ID, f.user.ID, time.Now(), committed); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("second cancel: %v, want conflict", err)
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); err != nil {
			t.Fatalf("rebooking cancelled time: %v", err)
		}
		for _, id := range []string{"000000000000000000000000", "junk"} {
			if _, err := f.db.CancelBooking(ctx, id, f.user.ID, time.Now(), committed); standin.ErrorCode(err) != standin.ENotFound {
				t.Errorf("cancel %q: %v, want not found", id, err)
			}
		}
	})

	t.Run("ListPaging", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		for i := range 5 {
			if err := f.db.CreateBooking(ctx, f.booking(float64(i), float64(i)+1), committed); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		cursor := ""
		pages := 0
		for {
			items, next, err := f.db.Bookings(ctx, standin.BookingFilter{UserID: f.user.ID}, standin.Page{Cursor: cursor, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, b := range items {
				if seen[b.ID] {
					t.Fatalf("booking %s on two pages", b.ID)
				}
				seen[b.ID] = true
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 5 || pages != 3 {
			t.Fatalf("%d bookings over %d pages, want 5 over 3", len(seen), pages)
		}
		if _, _, err := f.db.Bookings(ctx, standin.BookingFilter{}, standin.Page{Cursor: "bogus"}); standin.ErrorCode(err) != standin.EInvalid {
			t.Fatalf("bogus cursor: %v", err)
		}
		other, _, err := f.db.Bookings(ctx, standin.BookingFilter{ProjectID: "000000000000000000000000"}, standin.Page{})
		if err != nil || len(other) != 0 {
			t.Fatalf("other project: %d, %v", len(other), err)
		}
	})
}

func TestSearchUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	for _, e := range []string{"ada@example.org", "ben@example.org", "cleo@example.org", "a.b+c@example.org"} {
		mustUser(t, db, e)
	}
	tests := []struct {
		q    string
		want int
	}{{"", 4}, {"BEN", 1}, {"example", 4}, {"a.b+", 1}, {"zzz", 0}, {".*", 0}}
	for _, tt := range tests {
		got, _, err := db.SearchUsers(ctx, tt.q, standin.Page{})
		if err != nil || len(got) != tt.want {
			t.Errorf("SearchUsers(%q) = %d, %v; want %d", tt.q, len(got), err, tt.want)
		}
	}
}

// The directory is in order of name, page after page, whatever order the
// accounts were created in, with or without a search.
func TestSearchUsersInOrderOfName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	for _, e := range []string{"cleo@example.org", "ada@example.org", "eve@other.org", "ben@example.org", "dan@example.org"} {
		mustUser(t, db, e)
	}
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"", []string{"ada@example.org", "ben@example.org", "cleo@example.org", "dan@example.org", "eve@other.org"}},
		{"example", []string{"ada@example.org", "ben@example.org", "cleo@example.org", "dan@example.org"}},
	} {
		var got []string
		p := standin.Page{Limit: 2}
		for range 10 {
			users, next, err := db.SearchUsers(ctx, tt.q, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				got = append(got, u.Email)
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("SearchUsers(%q) in pages of 2: %v, want %v", tt.q, got, tt.want)
		}
	}
	if _, _, err := db.SearchUsers(ctx, "", standin.Page{Cursor: "not-a-cursor"}); standin.ErrorCode(err) != standin.EInvalid {
		t.Errorf("a forged cursor: %v, want %s", err, standin.EInvalid)
	}
}

func TestBookingCommitRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down := standin.Errorf(standin.EUnavailable, "The audit log is down.")
	failing := func(*standin.Booking) error { return down }

	t.Run("CreateFailsWithoutItsRecord", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), failing); standin.ErrorCode(err) != standin.EUnavailable {
			t.Fatalf("CreateBooking = %v, want the commit's error", err)
		}
		// Nothing remains: not the booking, not its slots.
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); err != nil {
			t.Fatalf("the failed booking left its time taken: %v", err)
		}
		list, _, err := f.db.Bookings(ctx, standin.BookingFilter{}, standin.Page{})
		if err != nil || len(list) != 1 {
			t.Fatalf("%d bookings, %v; want 1", len(list), err)
		}
	})

	t.Run("CancelFailsWithoutItsRecord", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		b := f.mustBook(t, 0, 1)
		if _, err := f.db.CancelBooking(ctx, b.ID, f.user.ID, time.Now(), failing); standin.ErrorCode(err) != standin.EUnavailable {
			t.Fatalf("CancelBooking = %v", err)
		}
		got, err := f.db.BookingByID(ctx, b.ID)
		if err != nil || got.Status != standin.BookingConfirmed || !got.CancelledAt.IsZero() {
			t.Fatalf("the booking is not back as it was: %+v, %v", got, err)
		}
	})

	// A write that fails after its commit record: the request's context
	// ends as the record is written, so the last steps fail. The action
	// stands, the failure is reported, and the repair finishes it at once,
	// whatever the cutoff.
	t.Run("RepairFinishesWhatFailedAfterItsRecord", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		records := map[string]string{}
		var mu sync.Mutex
		// record writes the commit record, then ends the request.
		record := func(typ string, endRequest context.CancelFunc) func(*standin.Booking) error {
			return func(b *standin.Booking) error {
				mu.Lock()
				records[b.ID] = typ
				mu.Unlock()
				endRequest()
				return nil
			}
		}
		isCommitted := func(_ context.Context, typ, id string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return records[id] == typ, nil
		}
		if n, err := f.db.RepairBookings(ctx, time.Hour, isCommitted); err != nil || n != 0 {
			t.Fatalf("the first repair of a new database = %d, %v", n, err)
		}

		cctx, cancel := context.WithCancel(ctx)
		created := f.booking(0, 1)
		if err := f.db.CreateBooking(cctx, created, record(standin.EventBookingCreated, cancel)); err == nil {
			t.Fatal("CreateBooking reported success though confirming failed")
		}
		if _, err := f.db.BookingByID(ctx, created.ID); standin.ErrorCode(err) != standin.ENotFound {
			t.Fatalf("before the repair the booking is %v; want it pending, not visible", err)
		}
		n, err := f.db.RepairBookings(ctx, time.Hour, isCommitted)
		if got, gerr := f.db.BookingByID(ctx, created.ID); err != nil || n != 1 || gerr != nil || got.Status != standin.BookingConfirmed {
			t.Fatalf("after the repair (%d, %v) the booking is %+v, %v; want confirmed", n, err, got, gerr)
		}

		cctx, cancel = context.WithCancel(ctx)
		if _, err := f.db.CancelBooking(cctx, created.ID, f.user.ID, time.Now(), record(standin.EventBookingCancelled, cancel)); err == nil {
			t.Fatal("CancelBooking reported success though finishing failed")
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("before the repair the cancelled time is %v; want still held", err)
		}
		n, err = f.db.RepairBookings(ctx, time.Hour, isCommitted)
		if got, gerr := f.db.BookingByID(ctx, created.ID); err != nil || n != 1 || gerr != nil || got.Status != standin.BookingCancelled {
			t.Fatalf("after the repair (%d, %v) the booking is %+v, %v; want cancelled", n, err, got, gerr)
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); err != nil {
			t.Fatalf("after the repair the cancelled time is still taken: %v", err)
		}
		// Nothing stopped midway since: the repair does not look.
		if n, err := f.db.RepairBookings(ctx, 0, isCommitted); err != nil || n != 0 {
			t.Fatalf("a repair with nothing unfinished = %d, %v", n, err)
		}
	})

	// A commit in doubt (its record may or may not exist) is not undone:
	// the repair decides by the record, once it is known.
	t.Run("InDoubtLeftToTheRepair", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		inDoubt := func(*standin.Booking) error {
			return &standin.Error{Code: standin.EUnavailable, Message: "in doubt", Cause: standin.ErrInDoubt}
		}
		stored, lost := f.booking(0, 1), f.booking(1, 2)
		for _, b := range []*standin.Booking{stored, lost} {
			if err := f.db.CreateBooking(ctx, b, inDoubt); !errors.Is(err, standin.ErrInDoubt) {
				t.Fatalf("CreateBooking = %v, want the commit's error", err)
			}
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("a booking in doubt does not hold its time: %v", err)
		}
		records := func(_ context.Context, typ, id string) (bool, error) {
			return typ == standin.EventBookingCreated && id == stored.ID, nil
		}
		if n, err := f.db.RepairBookings(ctx, 0, records); err != nil || n != 2 {
			t.Fatalf("RepairBookings = %d, %v; want 2", n, err)
		}
		if got, err := f.db.BookingByID(ctx, stored.ID); err != nil || got.Status != standin.BookingConfirmed {
			t.Fatalf("the booking whose record exists: %+v, %v", got, err)
		}
		if _, err := f.db.BookingByID(ctx, lost.ID); standin.ErrorCode(err) != standin.ENotFound {
			t.Fatalf("the booking without its record survived: %v", err)
		}
	})

	// A cancelled booking still marked freeing (the database failed after
	// marking it cancelled) gets its time freed by the repair.
	t.Run("RepairFreesACancelledBookingsTime", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		b := f.mustBook(t, 0, 1)
		oid, _ := bson.ObjectIDFromHex(b.ID)
		if _, err := dbtest.MustDriver(t, f.db).Collection("bookings").UpdateOne(ctx, bson.M{"_id": oid},
			bson.M{"$set": bson.M{"status": "cancelled", "freeing": true}}); err != nil {
			t.Fatal(err)
		}
		never := func(context.Context, string, string) (bool, error) { return false, nil }
		if n, err := f.db.RepairBookings(ctx, time.Hour, never); err != nil || n != 1 {
			t.Fatalf("RepairBookings = %d, %v; want 1", n, err)
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); err != nil {
			t.Fatalf("the cancelled booking's time is still taken: %v", err)
		}
		if n, err := dbtest.MustDriver(t, f.db).Collection("bookings").CountDocuments(ctx, bson.M{"freeing": true}); err != nil || n != 0 {
			t.Fatalf("%d bookings still marked freeing, %v", n, err)
		}
	})

	// Time an earlier version left held by a cancelled booking is freed
	// at start-up.
	t.Run("FreeCancelledSlots", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		b := f.mustBook(t, 0, 1)
		cur, err := dbtest.MustDriver(t, f.db).Collection("booking_slots").Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		var slots []bson.M
		if err := cur.All(ctx, &slots); err != nil || len(slots) != 4 {
			t.Fatalf("%d slots for an hour, %v", len(slots), err)
		}
		if _, err := f.db.CancelBooking(ctx, b.ID, f.user.ID, time.Now(), committed); err != nil {
			t.Fatal(err)
		}
		// As an earlier version could leave it: cancelled, time held.
		held := make([]any, len(slots))
		for i, slot := range slots {
			held[i] = slot
		}
		if _, err := dbtest.MustDriver(t, f.db).Collection("booking_slots").InsertMany(ctx, held); err != nil {
			t.Fatal(err)
		}
		if n, err := f.db.FreeCancelledSlots(ctx); err != nil || n != 4 {
			t.Fatalf("FreeCancelledSlots = %d, %v; want 4", n, err)
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); err != nil {
			t.Fatalf("the cancelled booking's time is still taken: %v", err)
		}
	})

	// A request that reaches its confirmation after the repair removed
	// its booking fails rather than report a booking without its time.
	t.Run("ConfirmAfterRemovalFails", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		removedMeanwhile := func(b *standin.Booking) error {
			oid, _ := bson.ObjectIDFromHex(b.ID)
			_, err := dbtest.MustDriver(t, f.db).Collection("bookings").DeleteOne(ctx, bson.M{"_id": oid})
			return err
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), removedMeanwhile); err == nil {
			t.Fatal("CreateBooking confirmed a booking that was no longer there")
		}
	})

	// A pending booking without its record is left while a request may
	// still be writing it, and the repair keeps looking until it is old
	// enough to remove.
	t.Run("RepairWaitsForTheCutoff", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		b := f.mustBook(t, 0, 1)
		oid, _ := bson.ObjectIDFromHex(b.ID)
		if _, err := dbtest.MustDriver(t, f.db).Collection("bookings").UpdateOne(ctx, bson.M{"_id": oid}, bson.M{"$set": bson.M{"status": "pending"}}); err != nil {
			t.Fatal(err)
		}
		never := func(context.Context, string, string) (bool, error) { return false, nil }
		if n, err := f.db.RepairBookings(ctx, time.Hour, never); err != nil || n != 0 {
			t.Fatalf("a young pending booking was repaired: %d, %v", n, err)
		}
		if n, err := f.db.RepairBookings(ctx, 0, never); err != nil || n != 1 {
			t.Fatalf("the repair did not come back for it: %d, %v", n, err)
		}
		if err := f.db.CreateBooking(ctx, f.booking(0, 1), committed); err != nil {
			t.Fatalf("the removed booking's time is still taken: %v", err)
		}
	})

	t.Run("RepairFollowsTheRecord", func(t *testing.T) {
		t.Parallel()
		f := newBookingFixture(t)
		// Four bookings a crash left half-done: two pending, two being
		// cancelled; one of each has its commit record.
		var ids []string
		for i := range 4 {
			b := f.booking(float64(i), float64(i)+1)
			if err := f.db.CreateBooking(ctx, b, committed); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, b.ID)
		}
		old := time.Now().Add(-time.Hour)
		for i, id := range ids {
			oid, _ := bson.ObjectIDFromHex(id)
			set := bson.M{"status": "pending", "created_at": old}
			if i >= 2 {
				set = bson.M{"status": "cancelling", "cancelled_at": old, "cancelled_by": "x"}
			}
			if _, err := dbtest.MustDriver(t, f.db).Collection("bookings").UpdateOne(ctx, bson.M{"_id": oid}, bson.M{"$set": set}); err != nil {
				t.Fatal(err)
			}
		}
		records := map[string]string{ids[0]: standin.EventBookingCreated, ids[2]: standin.EventBookingCancelled}
		n, err := f.db.RepairBookings(ctx, 0, func(_ context.Context, typ, id string) (bool, error) {
			return records[id] == typ, nil
		})
		if err != nil || n != 4 {
			t.Fatalf("RepairBookings = %d, %v; want 4 repaired", n, err)
		}
		want := map[string]standin.BookingStatus{ids[0]: standin.BookingConfirmed, ids[2]: standin.BookingCancelled, ids[3]: standin.BookingConfirmed}
		for id, status := range want {
			got, err := f.db.BookingByID(ctx, id)
			if err != nil || got.Status != status {
				t.Errorf("booking %s: %+v, %v; want %s", id, got, err, status)
			}
		}
		if _, err := f.db.BookingByID(ctx, ids[1]); standin.ErrorCode(err) != standin.ENotFound {
			t.Errorf("the uncommitted pending booking survived: %v", err)
		}
		// Its time and the cancelled one's are free again.
		for _, span := range [][2]float64{{1, 2}, {2, 3}} {
			if err := f.db.CreateBooking(ctx, f.booking(span[0], span[1]), committed); err != nil {
				t.Errorf("time %v still taken: %v", span, err)
			}
		}
	})
}

// Servers cancelling one booking at once, each on a connection of its own,
// cancel it once: one succeeds, the others are told it is cancelled or
// being cancelled, and one commit record is written.
func TestCancelBookingOnceAcrossServers(t *testing.T) {
	t.Parallel()
	f := newBookingFixture(t)
	const servers, attempts = 3, 4
	conns := make([]*mongostore.DB, servers)
	for i := range conns {
		conns[i] = dbtest.MustConnect(t, f.db, mongostore.Options{})
	}
	for round := range 5 {
		b := f.mustBook(t, float64(round), float64(round)+1)
		var commits, wins atomic.Int64
		record := func(*standin.Booking) error { commits.Add(1); return nil }
		var wg sync.WaitGroup
		for _, db := range conns {
			for range attempts {
				wg.Go(func() {
					_, err := db.CancelBooking(context.Background(), b.ID, f.user.ID, time.Now(), record)
					switch {
					case err == nil:
						wins.Add(1)
					case standin.ErrorCode(err) != standin.EConflict:
						t.Errorf("CancelBooking: %v", err)
					}
				})
			}
		}
		wg.Wait()
		if wins.Load() != 1 || commits.Load() != 1 {
			t.Fatalf("round %d: %d cancellations succeeded with %d commit records, want 1 and 1", round, wins.Load(), commits.Load())
		}
	}
}
