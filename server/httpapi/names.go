package httpapi

import (
	"context"
	"time"

	"standin/server/standin"
)

// names maps ids to what people call things, for replies.
type names struct {
	projects  map[string]string // id → code
	resources map[string]string // id → name
	trainings map[string]string // id → name
	project   map[string]*standin.Project
}

func (a *API) names(ctx context.Context) (names, error) {
	n := names{projects: map[string]string{}, resources: map[string]string{}, trainings: map[string]string{}, project: map[string]*standin.Project{}}
	projects, err := a.cfg.Facility.Projects(ctx)
	if err != nil {
		return n, err
	}
	for _, p := range projects {
		n.projects[p.ID], n.project[p.ID] = p.Code, p
	}
	resources, err := a.cfg.Facility.Resources(ctx)
	if err != nil {
		return n, err
	}
	for _, r := range resources {
		n.resources[r.ID] = r.Name
	}
	trainings, err := a.cfg.Facility.Trainings(ctx)
	if err != nil {
		return n, err
	}
	for _, t := range trainings {
		n.trainings[t.ID] = t.Name
	}
	return n, nil
}

func (n names) userDetail(u *standin.User, now time.Time) userDetailJSON {
	d := userDetailJSON{userJSON: toUserJSON(u), Projects: []membershipJSON{}, Trainings: []trainingJSON{}}
	for _, m := range u.Memberships {
		mj := membershipJSON{ProjectID: m.ProjectID, Role: string(m.Role)}
		if p := n.project[m.ProjectID]; p != nil {
			mj.Code, mj.Name = p.Code, p.Name
		}
		d.Projects = append(d.Projects, mj)
	}
	for _, t := range u.Trainings {
		d.Trainings = append(d.Trainings, trainingJSON{
			TrainingID: t.TrainingID, Name: n.trainings[t.TrainingID],
			CompletedAt: standin.FormatTime(t.CompletedAt), ExpiresAt: standin.FormatTime(t.ExpiresAt), Valid: t.ValidAt(now),
		})
	}
	return d
}
