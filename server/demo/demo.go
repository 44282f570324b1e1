// Package demo seeds the demo facility of PRODUCT.md section 9: seven
// accounts, two projects, two trainings and two resources with their rules.
package demo

import (
	"context"
	"fmt"
	"time"

	"standin/server/password"
	"standin/server/standin"
)

// Store is what seeding needs from storage. Every Ensure method creates the
// record unless one with the same natural key exists, and sets its ID.
type Store interface {
	Marked(ctx context.Context, key string) (bool, error)
	Mark(ctx context.Context, key string) error
	EnsureTraining(ctx context.Context, t *standin.Training) error
	EnsureProject(ctx context.Context, p *standin.Project) error
	EnsureResource(ctx context.Context, r *standin.Resource) error
	EnsureUser(ctx context.Context, u *standin.User) error
	CountUsers(ctx context.Context) (int64, error)
}

// Markers: startedKey records that seeding began, doneKey that it
// finished, so a restart never seeds again (even after demo data changed)
// and a seed interrupted half-way is completed.
const (
	startedKey = "demo_seeding"
	doneKey    = "demo_seeded"
)

// Seed creates the demo facility in an empty database, with plain as every
// account's password, and reports whether it seeded. A database that has
// accounts of its own is never seeded: demo accounts with a known password
// do not belong there. Each step is idempotent and the done marker is
// written last, so a seed interrupted half-way is completed by the next
// start.
func Seed(ctx context.Context, s Store, plain string, cost password.Params, now time.Time) (bool, error) {
	begun, err := begin(ctx, s)
	if err != nil || !begun {
		return false, err
	}
	if err := seed(ctx, s, plain, cost, now); err != nil {
		return false, fmt.Errorf("seed demo: %w", err)
	}
	return true, nil
}

// begin decides whether to seed: not when seeding finished before, nor in
// a database with accounts of its own; it marks the start, so that a seed
// interrupted half-way is completed next time.
func begin(ctx context.Context, s Store) (bool, error) {
	done, err := s.Marked(ctx, doneKey)
	if err != nil {
		return false, fmt.Errorf("seed demo: %w", err)
	}
	if done {
		return false, nil
	}
	started, err := s.Marked(ctx, startedKey)
	if err != nil {
		return false, fmt.Errorf("seed demo: %w", err)
	}
	if started {
		return true, nil
	}
	n, err := s.CountUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("seed demo: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	if err := s.Mark(ctx, startedKey); err != nil {
		return false, fmt.Errorf("seed demo: %w", err)
	}
	return true, nil
}

// seed writes the facility, each step idempotent, and the done marker
// last.
func seed(ctx context.Context, s Store, plain string, cost password.Params, now time.Time) error {
	const year = 365 * 24 * time.Hour
	laser := &standin.Training{Name: "Laser Safety", ValidFor: 2 * year}
	confocalBasics := &standin.Training{Name: "Confocal Basics", ValidFor: 2 * year}
	neuro := &standin.Project{Code: "NEURO", Name: "Neuro Imaging"}
	cell := &standin.Project{Code: "CELL", Name: "Cell Biology"}
	for _, t := range []*standin.Training{laser, confocalBasics} {
		if err := s.EnsureTraining(ctx, t); err != nil {
			return err
		}
	}
	for _, p := range []*standin.Project{neuro, cell} {
		if err := s.EnsureProject(ctx, p); err != nil {
			return err
		}
	}
	for _, r := range resources(laser, confocalBasics, neuro, cell) {
		if err := s.EnsureResource(ctx, r); err != nil {
			return err
		}
	}
	for _, u := range users(laser, confocalBasics, neuro, cell, now) {
		hash, err := password.Hash(plain, cost)
		if err != nil {
			return err
		}
		u.PasswordHash, u.Status = hash, standin.StatusActive
		if err := s.EnsureUser(ctx, u); err != nil {
			return err
		}
	}
	return s.Mark(ctx, doneKey)
}

// resources are the demo's instruments: the confocal needs both trainings,
// NEURO and weekday hours, four hours at most; the cytometer is CELL's.
func resources(laser, confocalBasics *standin.Training, neuro, cell *standin.Project) []*standin.Resource {
	var weekdays []standin.WeeklyWindow
	for d := time.Monday; d <= time.Friday; d++ {
		weekdays = append(weekdays, standin.WeeklyWindow{Day: d, StartMinute: 8 * 60, EndMinute: 20 * 60})
	}
	return []*standin.Resource{
		{
			Name: "Confocal LSM 900", Kind: "instrument",
			RequiredTrainings: []string{laser.ID, confocalBasics.ID},
			Rule:              standin.AccessRule{Projects: []string{neuro.ID}, MaxHours: 4, Windows: weekdays},
		},
		{
			Name: "Flow Cytometer", Kind: "instrument",
			Rule: standin.AccessRule{Projects: []string{cell.ID}},
		},
	}
}

// users are the demo's seven accounts of PRODUCT.md section 9, their
// trainings completed two months before now.
func users(laser, confocalBasics *standin.Training, neuro, cell *standin.Project, now time.Time) []*standin.User {
	completed := now.AddDate(0, -2, 0).UTC().Truncate(24 * time.Hour)
	record := func(t *standin.Training) standin.TrainingRecord {
		return standin.TrainingRecord{TrainingID: t.ID, CompletedAt: completed, ExpiresAt: completed.Add(t.ValidFor)}
	}
	return []*standin.User{
		{Name: "Olivia Owner", Email: "owner@example.org", Role: standin.RoleOwner},
		{Name: "Adrian Admin", Email: "admin@example.org", Role: standin.RoleAdmin},
		{Name: "Sam Support", Email: "support@example.org", Role: standin.RoleSupport},
		{Name: "Maya Manager", Email: "manager@example.org", Role: standin.RoleManager,
			Memberships: []standin.Membership{{ProjectID: neuro.ID, Role: standin.ProjectLead}}},
		{Name: "Ada Lovelace", Email: "ada@example.org", Role: standin.RoleUser,
			Memberships: []standin.Membership{{ProjectID: neuro.ID, Role: standin.ProjectMember}},
			Trainings:   []standin.TrainingRecord{record(laser), record(confocalBasics)},
			Personal:    standin.PersonalData{Phone: "+44 20 7946 0018", EmergencyContact: "Mary Somerville, +44 20 7946 0533", DateOfBirth: "1990-12-10"}},
		{Name: "Ben Okafor", Email: "ben@example.org", Role: standin.RoleUser,
			Memberships: []standin.Membership{{ProjectID: neuro.ID, Role: standin.ProjectMember}},
			Trainings:   []standin.TrainingRecord{record(laser)},
			Personal:    standin.PersonalData{Phone: "+44 20 7946 0742", EmergencyContact: "Ngozi Okafor, +44 20 7946 0391", DateOfBirth: "1994-03-17"}},
		{Name: "Cleo Park", Email: "cleo@example.org", Role: standin.RoleUser,
			Memberships: []standin.Membership{{ProjectID: cell.ID, Role: standin.ProjectMember}},
			Personal:    standin.PersonalData{Phone: "+44 20 7946 0265", EmergencyContact: "Jun Park, +44 20 7946 0877", DateOfBirth: "1988-07-02"}},
	}
}
