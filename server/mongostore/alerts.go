package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/standin"
)

const (
	// colAlerts holds the raised alerts, _id the condition they name:
	// an alert is raised by the one insert of its id.
	colAlerts = "alerts"
)

type alertDoc struct {
	ID              string    `bson:"_id"`
	Rule            string    `bson:"rule"`
	Words           string    `bson:"words"`
	ActorID         string    `bson:"actor_id"`
	ActorName       string    `bson:"actor_name"`
	SubjectID       string    `bson:"subject_id"`
	SubjectName     string    `bson:"subject_name"`
	ImpersonationID string    `bson:"impersonation_id,omitempty"`
	Projects        []string  `bson:"projects"`
	RaisedAt        time.Time `bson:"raised_at"`
	Seq             int64     `bson:"seq"`
	AckedAt         time.Time `bson:"acked_at"`
	AckedByID       string    `bson:"acked_by_id,omitempty"`
	AckedByName     string    `bson:"acked_by_name,omitempty"`
	AckNote         string    `bson:"ack_note,omitempty"`
}

func (d *alertDoc) domain() *standin.Alert {
	return &standin.Alert{ID: d.ID, Rule: d.Rule, Words: d.Words, Actor: standin.EventUser{ID: d.ActorID, Name: d.ActorName},
		Subject: standin.EventUser{ID: d.SubjectID, Name: d.SubjectName}, ImpersonationID: d.ImpersonationID, Projects: d.Projects,
		RaisedAt: d.RaisedAt, Seq: d.Seq, AckedAt: d.AckedAt, AckedBy: standin.EventUser{ID: d.AckedByID, Name: d.AckedByName}, AckNote: d.AckNote}
}

// RaiseAlert stores a once: true for the one caller whose insert of its
// ID succeeded, false when it was raised before.
func (db *DB) RaiseAlert(ctx context.Context, a *standin.Alert) (bool, error) {
	d := alertDoc{ID: a.ID, Rule: a.Rule, Words: a.Words, ActorID: a.Actor.ID, ActorName: a.Actor.Name, SubjectID: a.Subject.ID,
		SubjectName: a.Subject.Name, ImpersonationID: a.ImpersonationID, Projects: a.Projects, RaisedAt: a.RaisedAt.UTC()}
	if d.Projects == nil {
		d.Projects = []string{}
	}
	return db.insertOnce(ctx, colAlerts, d, "raise alert")
}

// MarkAlertWritten records the seq of a's alert.raised event.
func (db *DB) MarkAlertWritten(ctx context.Context, id string, seq int64) error {
	_, err := db.db.Collection(colAlerts).UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$set": bson.M{"seq": seq}})
	return translate(err, "mark alert written")
}

// DropAlert removes an alert whose event could not be written, so that
// its condition raises it again.
func (db *DB) DropAlert(ctx context.Context, id string) error {
	_, err := db.db.Collection(colAlerts).DeleteOne(ctx, bson.M{"_id": id, "seq": 0})
	return translate(err, "drop alert")
}

// AlertByID returns alert id. ENotFound when there is none.
func (db *DB) AlertByID(ctx context.Context, id string) (*standin.Alert, error) {
	var d alertDoc
	err := db.db.Collection(colAlerts).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, standin.Errorf(standin.ENotFound, "There is no such alert.")
	}
	if err != nil {
		return nil, translate(err, "read alert")
	}
	return d.domain(), nil
}

// AckAlert records that by acknowledged alert id with note. The claim
// of the acknowledgment is the caller's (Claim); this stores it.
func (db *DB) AckAlert(ctx context.Context, id string, by standin.EventUser, at time.Time, note string) error {
	_, err := db.db.Collection(colAlerts).UpdateOne(ctx, bson.M{"_id": id},
		bson.M{"$set": bson.M{"acked_at": at.UTC(), "acked_by_id": by.ID, "acked_by_name": by.Name, "ack_note": note}})
	return translate(err, "acknowledge alert")
}

// Alerts lists the newest alerts first, at most limit.
func (db *DB) Alerts(ctx context.Context, limit int) ([]*standin.Alert, error) {
	cur, err := db.db.Collection(colAlerts).Find(ctx, bson.M{},
		options.Find().SetSort(bson.D{{Key: "raised_at", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, translate(err, "list alerts")
	}
	var docs []alertDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list alerts")
	}
	out := make([]*standin.Alert, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, nil
}
