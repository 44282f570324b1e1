package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"standin/server/dbfault"
	"standin/server/standin"
)

// eventDoc is the stored shape of an event. Every field is always present,
// so documents have one shape whatever the event says.
type eventDoc struct {
	Seq             int64     `bson:"_id"`
	ID              string    `bson:"id"`
	SeqField        int64     `bson:"seq"`
	Time            time.Time `bson:"time"`
	Type            string    `bson:"type"`
	Actor           userDoc   `bson:"actor"`
	Subject         userDoc   `bson:"subject"`
	ImpersonationID string    `bson:"impersonation_id"`
	Action          string    `bson:"action"`
	Object          string    `bson:"object"`
	Project         string    `bson:"project"`
	Outcome         string    `bson:"outcome"`
	Reason          string    `bson:"reason"`
	IP              string    `bson:"ip"`
	UserAgent       string    `bson:"user_agent"`
	Projects        []string  `bson:"projects"`
	PrevHash        string    `bson:"prev_hash"`
	Hash            string    `bson:"hash"`

	// Damaged, set only when reading, says what of a stored document
	// could not be decoded ("" for a sound one); see decodeEvent.
	Damaged string `bson:"-"`
}

type userDoc struct {
	ID   string `bson:"id"`
	Name string `bson:"name"`
}

func toDoc(e *standin.Event) *eventDoc {
	projects := e.Projects
	if projects == nil {
		projects = []string{} // an empty array, not null, so $in and shape stay uniform
	}
	return &eventDoc{
		Seq: e.Seq, ID: e.ID, SeqField: e.Seq, Time: e.Time, Type: e.Type,
		Actor:           userDoc{ID: e.Actor.ID, Name: e.Actor.Name},
		Subject:         userDoc{ID: e.Subject.ID, Name: e.Subject.Name},
		ImpersonationID: e.ImpersonationID, Action: e.Action, Object: e.Object, Project: e.Project,
		Outcome: e.Outcome, Reason: e.Reason, IP: e.IP, UserAgent: e.UserAgent,
		Projects: projects, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

// event converts a stored document. Seq comes from the seq field, which
// is what the hash covers; Verify separately checks it equals _id.
func (d *eventDoc) event() *standin.Event {
	return &standin.Event{
		ID: d.ID, Seq: d.SeqField, Time: d.Time.UTC(), Type: d.Type,
		Actor:           standin.EventUser{ID: d.Actor.ID, Name: d.Actor.Name},
		Subject:         standin.EventUser{ID: d.Subject.ID, Name: d.Subject.Name},
		ImpersonationID: d.ImpersonationID, Action: d.Action, Object: d.Object, Project: d.Project,
		Outcome: d.Outcome, Reason: d.Reason, IP: d.IP, UserAgent: d.UserAgent,
		Projects: d.Projects, PrevHash: d.PrevHash, Hash: d.Hash,
	}
}

// clone copies e so that a receiver may keep it while its author goes on
// using the original.
func clone(e *standin.Event) *standin.Event {
	c := *e
	c.Projects = slices.Clone(e.Projects)
	return &c
}

// translate turns a driver error into a coded domain error keeping the
// original as its cause; what names the operation for logs. A database
// that cannot be reached, does not answer in time, or refuses to store
// anything (dbfault.WriteRefused: its disk full or read-only) is
// EUnavailable; other faults stay uncoded and so are internal errors.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*standin.Error](err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if unreachable(err) || dbfault.WriteRefused(err) {
		return unavailable(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unavailable wraps cause as the error callers turn into a 503.
// inDoubt is the error of an append whose events may or may not be
// stored; it wraps standin.ErrInDoubt.
func inDoubt(cause error) *standin.Error {
	return &standin.Error{
		Code:    standin.EUnavailable,
		Message: "The audit log failed while recording the action, and whether it was recorded is not known yet. Check again in a minute.",
		Cause:   fmt.Errorf("%w: %w", cause, standin.ErrInDoubt),
	}
}

func unavailable(cause error) *standin.Error {
	return &standin.Error{
		Code:    standin.EUnavailable,
		Message: "The audit log is unavailable, so the action was not performed. Try again shortly.",
		Cause:   cause,
	}
}

// unreachable reports an error that says the database could not be
// reached or did not answer in time, as opposed to one it answered with.
func unreachable(err error) bool {
	_, selection := errors.AsType[topology.ServerSelectionError](err)
	var pool driver.RetryablePoolError // another operation just failed on the network
	cleared := errors.As(err, &pool) && pool.Retryable()
	return selection || cleared || mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, mongo.ErrClientDisconnected)
}
