package mongostore_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

// rawDB is db's database through a client of its own, to write documents
// as an earlier version of the store did.
func rawDB(t *testing.T, db *mongostore.DB) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(dbtest.MustServer(t).URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(db.Name())
}

// TestAuditedFlags: a settings version, a request and a vote count once
// marked audited, and only while they are still what was stored; those
// stored before the flags existed count as they did.
func TestAuditedFlags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	raw := rawDB(t, db)
	now := time.Now().UTC().Truncate(time.Millisecond)

	t.Run("SettingsInForceOnceAudited", func(t *testing.T) {
		// Version 1 as the store wrote it before versions were audited.
		if _, err := raw.Collection("settings").InsertOne(ctx, bson.M{"_id": "impersonation/000000000001", "version": int64(1),
			"rules": bson.A{}, "request_minutes": 12, "grace_seconds": 60, "changed_at": now}); err != nil {
			t.Fatal(err)
		}
		v2 := &standin.ImpersonationSettings{Version: 2, RequestMinutes: 20, GraceSeconds: 60, ChangedAt: now, EventID: "0123456789abcdef01234567"}
		if err := db.SaveImpersonationSettings(ctx, v2); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveImpersonationSettings(ctx, v2); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("version 2 again: %v", err)
		}
		in := func(want int64) {
			t.Helper()
			got, err := db.ImpersonationSettings(ctx)
			if err != nil || got.Version != want {
				t.Fatalf("in force: %+v, %v; want version %d", got, err, want)
			}
		}
		in(1)
		un, err := db.UnauditedSettings(ctx)
		if err != nil || len(un) != 1 || un[0].Version != 2 || un[0].EventID != v2.EventID {
			t.Fatalf("unaudited: %+v, %v", un, err)
		}
		// Another change's version 2 is not this one's to mark.
		other := v2.Clone()
		other.EventID = "fedcba9876543210fedcba98"
		if err := db.MarkSettingsAudited(ctx, other); err != nil {
			t.Fatal(err)
		}
		in(1)
		if err := db.MarkSettingsAudited(ctx, v2); err != nil {
			t.Fatal(err)
		}
		in(2)
		if err := db.RemoveImpersonationSettings(ctx, v2); err != nil {
			t.Fatal(err)
		}
		in(2) // audited, it stays
	})

	t.Run("Requests", func(t *testing.T) {
		r := &standin.AccessRequest{ActorID: "a", ActorName: "A", SubjectID: "b", SubjectName: "B", SubjectRole: standin.RoleUser,
			Reason: "x", Minutes: 10, Mode: standin.ModeApproval, Approvals: 2, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		read := func() *standin.AccessRequest {
			t.Helper()
			got, err := db.RequestByID(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if read().Audited {
			t.Fatal("a new request is audited before its event")
		}
		if err := db.MarkRequestAudited(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		pending, err := db.PendingRequests(ctx)
		if err != nil || len(pending) != 1 || !pending[0].Audited || !read().Audited {
			t.Fatalf("after marking it audited: %+v, %v", pending, err)
		}
		if err := db.DeleteRequest(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if !read().Audited {
			t.Fatal("an audited request was removed")
		}

		v := standin.Vote{By: standin.EventUser{ID: "m", Name: "M"}, At: now, EventID: "0123456789abcdef01234567"}
		k, _, err := db.AddVote(ctx, r.ID, v, 2)
		if err != nil || k != 1 {
			t.Fatalf("AddVote = %d, %v", k, err)
		}
		v.K = k
		if got := read().Votes; len(got) != 1 || got[0].Audited || got[0].EventID != v.EventID || got[0].K != 1 {
			t.Fatalf("votes: %+v", got)
		}
		// Dropped, and taken again by the same approver's next approval:
		// the first one's mark and drop leave the second alone.
		if err := db.DropVote(ctx, r.ID, v); err != nil {
			t.Fatal(err)
		}
		again := v
		again.EventID = "fedcba9876543210fedcba98"
		if k, dup, err := db.AddVote(ctx, r.ID, again, 2); err != nil || dup || k != 1 {
			t.Fatalf("approving again: %d, %v, %v", k, dup, err)
		}
		if err := db.MarkVoteAudited(ctx, r.ID, v); err != nil {
			t.Fatal(err)
		}
		if err := db.DropVote(ctx, r.ID, v); err != nil {
			t.Fatal(err)
		}
		if got := read().Votes; len(got) != 1 || got[0].Audited || got[0].EventID != again.EventID {
			t.Fatalf("votes after the first approval's late mark and drop: %+v", got)
		}
		if _, dup, _ := db.AddVote(ctx, r.ID, again, 2); !dup {
			t.Fatal("the approver's mark was dropped with a vote not theirs")
		}
		if err := db.MarkVoteAudited(ctx, r.ID, again); err != nil {
			t.Fatal(err)
		}
		if err := db.DropVote(ctx, r.ID, again); err != nil {
			t.Fatal(err)
		}
		if got := read().Counted(); len(got) != 1 {
			t.Fatalf("counted after dropping an audited vote: %+v", got)
		}

		// A gap before a vote: both are read.
		if _, err := raw.Collection("request_marks").DeleteOne(ctx, bson.M{"_id": r.ID + "/vote/1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Collection("request_marks").InsertOne(ctx, bson.M{"_id": r.ID + "/vote/2", "by_id": "z", "at": now, "audited": false}); err != nil {
			t.Fatal(err)
		}
		got := read()
		if len(got.Votes) != 1 || got.Votes[0].K != 2 || got.Votes[0].Audited {
			t.Fatalf("a vote after a gap, stored before votes were audited, while pending: %+v", got.Votes)
		}
		if ok, err := db.SetOutcome(ctx, r.ID, standin.Outcome{Status: standin.RequestDenied, At: now}); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if got := read(); len(got.Counted()) != 1 {
			t.Fatalf("a vote stored before votes were audited, on a decided request: %+v", got.Votes)
		}
	})

	t.Run("RequestStoredBeforeAuditing", func(t *testing.T) {
		id := bson.NewObjectID()
		if _, err := raw.Collection("impersonation_requests").InsertOne(ctx, bson.M{"_id": id, "actor_id": "a", "actor_name": "A",
			"subject_id": "b", "subject_name": "B", "subject_role": "user", "reason": "x", "minutes": 10, "mode": "consent",
			"created_at": now, "expires_at": now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		got, err := db.RequestByID(ctx, id.Hex())
		if err != nil || !got.Audited {
			t.Fatalf("a request stored before requests were audited: %+v, %v", got, err)
		}
	})
}
