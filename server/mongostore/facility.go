package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/standin"
)

type projectDoc struct {
	ID   bson.ObjectID `bson:"_id"`
	Code string        `bson:"code"`
	Name string        `bson:"name"`
}

type trainingDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	Name         string        `bson:"name"`
	ValidForDays int           `bson:"valid_for_days"`
}

type resourceDoc struct {
	ID                bson.ObjectID   `bson:"_id"`
	Name              string          `bson:"name"`
	Kind              string          `bson:"kind"`
	RequiredTrainings []bson.ObjectID `bson:"required_trainings"`
	Rule              ruleDoc         `bson:"rule"`
}

type ruleDoc struct {
	Roles    []string        `bson:"roles"`
	Projects []bson.ObjectID `bson:"projects"`
	MaxHours float64         `bson:"max_hours"`
	Windows  []windowDoc     `bson:"windows"`
}

type windowDoc struct {
	Day         int `bson:"day"`
	StartMinute int `bson:"start_minute"`
	EndMinute   int `bson:"end_minute"`
}

func objectIDs(ids []string, what string) ([]bson.ObjectID, error) {
	out := make([]bson.ObjectID, 0, len(ids))
	for _, id := range ids {
		oid, err := objectID(id, what)
		if err != nil {
			return nil, err
		}
		out = append(out, oid)
	}
	return out, nil
}

func hexes(ids []bson.ObjectID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.Hex())
	}
	return out
}

func (d *resourceDoc) domain() *standin.Resource {
	r := &standin.Resource{
		ID:                d.ID.Hex(),
		Name:              d.Name,
		Kind:              d.Kind,
		RequiredTrainings: hexes(d.RequiredTrainings),
		Rule: standin.AccessRule{
			Projects: hexes(d.Rule.Projects),
			MaxHours: d.Rule.MaxHours,
		},
	}
	for _, role := range d.Rule.Roles {
		r.Rule.Roles = append(r.Rule.Roles, standin.Role(role))
	}
	for _, w := range d.Rule.Windows {
		r.Rule.Windows = append(r.Rule.Windows, standin.WeeklyWindow{Day: time.Weekday(w.Day), StartMinute: w.StartMinute, EndMinute: w.EndMinute})
	}
	return r
}

// EnsureProject creates p unless a project with its code exists, and sets
// p.ID to the stored project's id.
func (db *DB) EnsureProject(ctx context.Context, p *standin.Project) error {
	id, err := db.ensure(ctx, colProjects, bson.M{"code": p.Code}, projectDoc{ID: bson.NewObjectID(), Code: p.Code, Name: p.Name})
	if err != nil {
		return fmt.Errorf("ensure project %s: %w", p.Code, err)
	}
	p.ID = id
	return nil
}

// EnsureTraining creates t unless a training with its name exists, and
// sets t.ID to the stored training's id.
func (db *DB) EnsureTraining(ctx context.Context, t *standin.Training) error {
	doc := trainingDoc{ID: bson.NewObjectID(), Name: t.Name, ValidForDays: int(t.ValidFor / (24 * time.Hour))}
	id, err := db.ensure(ctx, colTrainings, bson.M{"name": t.Name}, doc)
	if err != nil {
		return fmt.Errorf("ensure training %s: %w", t.Name, err)
	}
	t.ID = id
	return nil
}

// EnsureResource creates r unless a resource with its name exists, and
// sets r.ID to the stored resource's id.
func (db *DB) EnsureResource(ctx context.Context, r *standin.Resource) error {
	trainings, err := objectIDs(r.RequiredTrainings, "training")
	if err != nil {
		return err
	}
	projects, err := objectIDs(r.Rule.Projects, "project")
	if err != nil {
		return err
	}
	doc := resourceDoc{
		ID:                bson.NewObjectID(),
		Name:              r.Name,
		Kind:              r.Kind,
		RequiredTrainings: trainings,
		Rule:              ruleDoc{Roles: []string{}, Projects: projects, MaxHours: r.Rule.MaxHours, Windows: []windowDoc{}},
	}
	for _, role := range r.Rule.Roles {
		doc.Rule.Roles = append(doc.Rule.Roles, string(role))
	}
	for _, w := range r.Rule.Windows {
		doc.Rule.Windows = append(doc.Rule.Windows, windowDoc{Day: int(w.Day), StartMinute: w.StartMinute, EndMinute: w.EndMinute})
	}
	id, err := db.ensure(ctx, colResources, bson.M{"name": r.Name}, doc)
	if err != nil {
		return fmt.Errorf("ensure resource %s: %w", r.Name, err)
	}
	r.ID = id
	return nil
}

// Projects returns every project, ordered by code.
func (db *DB) Projects(ctx context.Context) ([]*standin.Project, error) {
	cur, err := db.db.Collection(colProjects).Find(ctx, bson.M{})
	if err != nil {
		return nil, translate(err, "list projects")
	}
	var docs []projectDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list projects")
	}
	out := make([]*standin.Project, 0, len(docs))
	for _, d := range docs {
		out = append(out, &standin.Project{ID: d.ID.Hex(), Code: d.Code, Name: d.Name})
	}
	sortBy(out, func(p *standin.Project) string { return p.Code })
	return out, nil
}

// Resources returns every resource, ordered by name.
func (db *DB) Resources(ctx context.Context) ([]*standin.Resource, error) {
	cur, err := db.db.Collection(colResources).Find(ctx, bson.M{})
	if err != nil {
		return nil, translate(err, "list resources")
	}
	var docs []resourceDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list resources")
	}
	out := make([]*standin.Resource, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	sortBy(out, func(r *standin.Resource) string { return r.Name })
	return out, nil
}

// ProjectByID returns a project, or ENotFound.
func (db *DB) ProjectByID(ctx context.Context, id string) (*standin.Project, error) {
	var d projectDoc
	if err := db.findByID(ctx, colProjects, "project", id, nil, &d); err != nil {
		return nil, err
	}
	return &standin.Project{ID: d.ID.Hex(), Code: d.Code, Name: d.Name}, nil
}

// ResourceByID returns a resource, or ENotFound.
func (db *DB) ResourceByID(ctx context.Context, id string) (*standin.Resource, error) {
	var d resourceDoc
	if err := db.findByID(ctx, colResources, "resource", id, nil, &d); err != nil {
		return nil, err
	}
	return d.domain(), nil
}

// Trainings returns every training, ordered by name.
func (db *DB) Trainings(ctx context.Context) ([]*standin.Training, error) {
	cur, err := db.db.Collection(colTrainings).Find(ctx, bson.M{})
	if err != nil {
		return nil, translate(err, "list trainings")
	}
	var docs []trainingDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list trainings")
	}
	out := make([]*standin.Training, 0, len(docs))
	for _, d := range docs {
		out = append(out, &standin.Training{ID: d.ID.Hex(), Name: d.Name, ValidFor: time.Duration(d.ValidForDays) * 24 * time.Hour})
	}
	sortBy(out, func(t *standin.Training) string { return t.Name })
	return out, nil
}
