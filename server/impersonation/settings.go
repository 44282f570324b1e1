package impersonation

import (
	"context"

	"standin/server/standin"
)

// SettingsStore keeps the versions of the impersonation settings.
type SettingsStore interface {
	// ImpersonationSettings returns the newest audited version, or the
	// defaults.
	ImpersonationSettings(ctx context.Context) (*standin.ImpersonationSettings, error)
	// UnauditedSettings lists the versions not marked audited.
	UnauditedSettings(ctx context.Context) ([]*standin.ImpersonationSettings, error)
	// SaveImpersonationSettings stores the next version, unaudited;
	// EConflict when it exists already.
	SaveImpersonationSettings(ctx context.Context, s *standin.ImpersonationSettings) error
	MarkSettingsAudited(ctx context.Context, s *standin.ImpersonationSettings) error
	// RemoveImpersonationSettings removes an unaudited version, so that
	// the next change may take its number.
	RemoveImpersonationSettings(ctx context.Context, s *standin.ImpersonationSettings) error
}

// Settings returns the impersonation settings in force: the newest
// version whose settings.changed event is in the audit log. Every start
// reads them afresh, so a change applies on every server at once.
func (s *Service) Settings(ctx context.Context) (*standin.ImpersonationSettings, error) {
	return s.store.ImpersonationSettings(ctx)
}

// ChangeSettings replaces the impersonation settings with next, which was
// made from version next.Version; projects are the facility's project
// ids, which "project:" scopes may name. The change is audited as
// settings.changed, saying what changed.
//
// The rule: a version is stored unaudited, with the id of its event, and
// is in force only once that event is in the log and the version marked
// audited; the settings in force are the newest audited version. A
// change is made from the version in force and takes the next number,
// by a unique insert. So a version whose event could not be written is
// never applied: its call removes it, and one a crash (or an append in
// doubt) left behind holds its number, refusing other changes as a
// change in progress does, until ExpireRequests settles it by the log
// once decideGrace has passed: marked audited, and in force, if its
// event is there; removed if not, and its number is free again.
//
// Errors: EInvalid when next is malformed (see
// standin.ImpersonationSettings.Normalize) or names a mode this server
// cannot run; EConflict when someone changed the settings since
// next.Version, or is changing them.
func (s *Service) ChangeSettings(ctx context.Context, p *standin.Principal, next *standin.ImpersonationSettings, projects []string, o standin.Origin) (*standin.ImpersonationSettings, error) {
	cur, err := s.store.ImpersonationSettings(ctx)
	if err != nil {
		return nil, err
	}
	if next.Version != cur.Version {
		return nil, standin.Errorf(standin.EConflict, "Someone changed the impersonation settings meanwhile (version %d, not %d); load them again and redo the change.", cur.Version, next.Version)
	}
	next = next.Clone()
	if err := next.Normalize(projects); err != nil {
		return nil, err
	}
	next.Version = cur.Version + 1
	next.ChangedAt = s.cfg.Now().UTC()
	next.ChangedBy = standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name}
	next.EventID = newEventID()
	if err := s.store.SaveImpersonationSettings(ctx, next); err != nil {
		return nil, err
	}
	ev := p.EventOf(standin.EventSettingsChanged, o)
	ev.ID = next.EventID
	ev.Action, ev.Object, ev.Outcome = "settings.update", "settings:impersonation", "changed"
	ev.Reason = next.Changes(cur)
	if err := s.audit.Append(ctx, ev); err != nil {
		if !inDoubt(err) {
			if rerr := s.store.RemoveImpersonationSettings(context.WithoutCancel(ctx), next); rerr != nil {
				s.cfg.Logger.Error("an unaudited settings change could not be undone", "version", next.Version, "err", rerr)
			}
		}
		return nil, err
	}
	if err := s.store.MarkSettingsAudited(context.WithoutCancel(ctx), next); err != nil {
		// Recorded, it stands: the sweep finds its event and puts it in
		// force.
		s.cfg.Logger.Warn("a recorded settings change is in force once the sweep finds its event", "version", next.Version, "err", err)
	}
	s.cfg.Logger.Info("impersonation settings changed", "version", next.Version, "by", p.Actor.ID)
	return next, nil
}

// settleSettings settles the versions of the settings left unaudited
// past decideGrace (see ChangeSettings) by the log.
func (s *Service) settleSettings(ctx context.Context) error {
	all, err := s.store.UnauditedSettings(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	for _, v := range all {
		if now.Sub(v.ChangedAt) <= decideGrace {
			// Its own call is still auditing it.
			continue
		}
		found, err := s.written(ctx, standin.EventFilter{Type: standin.EventSettingsChanged, ActorID: v.ChangedBy.ID}, func(e *standin.Event) bool {
			return v.EventID != "" && e.ID == v.EventID
		})
		if err != nil {
			return err
		}
		if found {
			err = s.store.MarkSettingsAudited(ctx, v)
		} else {
			err = s.store.RemoveImpersonationSettings(ctx, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
