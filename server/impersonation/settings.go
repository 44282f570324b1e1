package impersonation

import (
	"context"

	"standin/server/standin"
)

// SettingsStore keeps the versions of the impersonation settings.
type SettingsStore interface {
	// ImpersonationSettings returns the newest version, or the defaults.
	ImpersonationSettings(ctx context.Context) (*standin.ImpersonationSettings, error)
	// SaveImpersonationSettings stores the next version; EConflict when
	// it exists already.
	SaveImpersonationSettings(ctx context.Context, s *standin.ImpersonationSettings) error
	RemoveImpersonationSettings(ctx context.Context, version int64) error
}

// Settings returns the impersonation settings in force. Every start reads
// them afresh, so a change applies on every server at once.
func (s *Service) Settings(ctx context.Context) (*standin.ImpersonationSettings, error) {
	return s.store.ImpersonationSettings(ctx)
}

// ChangeSettings replaces the impersonation settings with next, which was
// made from version next.Version; projects are the facility's project
// ids, which "project:" scopes may name. The change is audited as
// settings.changed, saying what changed; unaudited, it does not stand.
//
// Errors: EInvalid when next is malformed (see
// standin.ImpersonationSettings.Normalize) or names a mode this server
// cannot run; EConflict when someone changed the settings since
// next.Version.
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
	for _, r := range next.Rules {
		if r.Mode == standin.ModeModerated {
			return nil, standin.Errorf(standin.EInvalid, "Moderated sessions are not available on this server yet; choose another mode for %s.", r.Scope)
		}
	}
	next.Version = cur.Version + 1
	next.ChangedAt = s.cfg.Now().UTC()
	next.ChangedBy = standin.EventUser{ID: p.Actor.ID, Name: p.Actor.Name}
	if err := s.store.SaveImpersonationSettings(ctx, next); err != nil {
		return nil, err
	}
	ev := p.EventOf(standin.EventSettingsChanged, o)
	ev.Action, ev.Object, ev.Outcome = "settings.update", "settings:impersonation", "changed"
	ev.Reason = next.Changes(cur)
	if err := s.audit.Append(ctx, ev); err != nil {
		if rerr := s.store.RemoveImpersonationSettings(context.WithoutCancel(ctx), next.Version); rerr != nil {
			s.cfg.Logger.Error("an unaudited settings change could not be undone", "version", next.Version, "err", rerr)
		}
		return nil, err
	}
	s.cfg.Logger.Info("impersonation settings changed", "version", next.Version, "by", p.Actor.ID)
	return next, nil
}
