package audit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"standin/server/standin"
)

// refuseOversized stores, in place of evs, one audit.refused event for
// each of them that carries more than standin.MaxEventBytes, and returns
// EInvalid: no input can make the log hold a larger event, and the
// attempt is on record by its sizes alone. It returns nil when every
// event is within the bound. If the refusals cannot be stored, that
// error is returned instead (the caller fails closed either way).
func (l *Log) refuseOversized(ctx context.Context, evs []*standin.Event) error {
	var refusals []*standin.Event
	largest := 0
	for _, e := range evs {
		if n := e.TextBytes(); n > standin.MaxEventBytes {
			refusals = append(refusals, refusal(e))
			largest = max(largest, n)
		}
	}
	if refusals == nil {
		return nil
	}
	if err := l.Append(ctx, refusals...); err != nil {
		return err
	}
	return standin.Errorf(standin.EInvalid,
		"The request carries more than can be recorded for one action (%d bytes; at most %d). Nothing was done.",
		largest, standin.MaxEventBytes)
}

// refusal is the audit.refused event that stands in for e: who, when and
// what kind of event, with the size of each field instead of its content.
// Ids keep their place only when they have an id's shape; names and the
// user agent are cut short.
func refusal(e *standin.Event) *standin.Event {
	r := &standin.Event{
		Type:      standin.EventAuditRefused,
		Time:      e.Time,
		Actor:     standin.EventUser{ID: idOrEmpty(e.Actor.ID), Name: clip(e.Actor.Name, 200)},
		Subject:   standin.EventUser{ID: idOrEmpty(e.Subject.ID), Name: clip(e.Subject.Name, 200)},
		Action:    clip(e.Type, 64),
		Outcome:   "refused",
		Reason:    fmt.Sprintf("An event of %d bytes was refused (at most %d): %s.", e.TextBytes(), standin.MaxEventBytes, sizes(e)),
		IP:        clip(e.IP, 64),
		UserAgent: clip(e.UserAgent, 256),
	}
	r.ImpersonationID = idOrEmpty(e.ImpersonationID)
	for _, p := range e.Projects {
		if standin.ValidID(p) && len(r.Projects) < 16 {
			r.Projects = append(r.Projects, p)
		}
	}
	return r
}

// sizes names e's largest fields with their sizes in bytes, largest first.
func sizes(e *standin.Event) string {
	type field struct {
		name string
		n    int
	}
	projects := 0
	for _, p := range e.Projects {
		projects += len(p)
	}
	fields := []field{
		{"id", len(e.ID)}, {"type", len(e.Type)}, {"actor.id", len(e.Actor.ID)}, {"actor.name", len(e.Actor.Name)},
		{"subject.id", len(e.Subject.ID)}, {"subject.name", len(e.Subject.Name)},
		{"impersonation_id", len(e.ImpersonationID)}, {"action", len(e.Action)}, {"object", len(e.Object)},
		{"project", len(e.Project)}, {"outcome", len(e.Outcome)}, {"reason", len(e.Reason)}, {"ip", len(e.IP)},
		{"user_agent", len(e.UserAgent)}, {"projects", projects},
	}
	slices.SortStableFunc(fields, func(a, b field) int { return cmp.Compare(b.n, a.n) })
	var parts []string
	for _, f := range fields[:4] {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d bytes", f.name, f.n))
		}
	}
	return strings.Join(parts, ", ")
}

func idOrEmpty(id string) string {
	if standin.ValidID(id) {
		return id
	}
	return ""
}

// clip cuts s to at most n bytes and marks the cut; a character split by
// the cut is dropped whole.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
