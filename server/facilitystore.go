package server

import (
	"context"

	"standin/server/catalog"
	"standin/server/mongostore"
	"standin/server/standin"
)

// facilityStore is the requests' database with the facility's catalog
// (projects, resources, trainings) answered from memory by a
// catalog.Cache; everything else (users, bookings, impersonations) is read
// from the database as it is.
type facilityStore struct {
	*mongostore.DB
	catalog *catalog.Cache
}

func newFacilityStore(db *mongostore.DB) facilityStore {
	return facilityStore{DB: db, catalog: catalog.New(db, catalog.DefaultTTL, nil)}
}

func (f facilityStore) Projects(ctx context.Context) ([]*standin.Project, error) {
	return f.catalog.Projects(ctx)
}

func (f facilityStore) ProjectByID(ctx context.Context, id string) (*standin.Project, error) {
	return f.catalog.ProjectByID(ctx, id)
}

func (f facilityStore) Resources(ctx context.Context) ([]*standin.Resource, error) {
	return f.catalog.Resources(ctx)
}

func (f facilityStore) ResourceByID(ctx context.Context, id string) (*standin.Resource, error) {
	return f.catalog.ResourceByID(ctx, id)
}

func (f facilityStore) Trainings(ctx context.Context) ([]*standin.Training, error) {
	return f.catalog.Trainings(ctx)
}
