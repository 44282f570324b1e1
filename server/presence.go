package server

import (
	"encoding/json"
	"log/slog"
	"strings"

	"standin/server/presence"
	"standin/server/standin"
)

// Presence is the same on every node: each change (a page opened on a
// user, renewed or closed; an impersonation taken or released) is sent as
// a signal, and every node's tracker, the sender's included, applies the
// signals in their one order. A node that joins learns the holds from the
// impersonations in force at start-up and the views as pages renew them
// (within presence.DefaultTTL); each node ends views not renewed in time
// by its own clock.

// Kinds of presence signals.
const (
	signalPresencePrefix = "presence."
	signalView           = signalPresencePrefix + "view"
	signalLeave          = signalPresencePrefix + "leave"
	signalHold           = signalPresencePrefix + "hold"
	signalRelease        = signalPresencePrefix + "release"
	signalWatch          = signalPresencePrefix + "watch"
	signalUnwatch        = signalPresencePrefix + "unwatch"
)

// presenceRelay sends presence changes to every node and applies those
// any node sent to the local tracker.
type presenceRelay struct {
	t    *presence.Tracker
	send func(kind string, data []byte)
	log  *slog.Logger
}

// viewSignal is a page viewID of Viewer opened or renewed on User (for
// signalView), or closed (signalLeave, without User).
type viewSignal struct {
	View   string          `json:"view"`
	Viewer presence.Person `json:"viewer"`
	User   presence.Person `json:"user,omitzero"`
}

// View records, on every node, that viewer looks at user on page viewID.
func (r *presenceRelay) View(viewID string, viewer, user *standin.User) {
	r.signal(signalView, viewSignal{View: viewID, Viewer: presence.Person{ID: viewer.ID, Name: viewer.Name},
		User: presence.Person{ID: user.ID, Name: user.Name}})
}

// Leave records, on every node, that the page viewID of viewerID closed.
func (r *presenceRelay) Leave(viewerID, viewID string) {
	r.signal(signalLeave, viewSignal{View: viewID, Viewer: presence.Person{ID: viewerID}})
}

// Hold records, on every node, that imp is in force.
func (r *presenceRelay) Hold(imp *standin.Impersonation) { r.signal(signalHold, presence.HoldOf(imp)) }

// Release records, on every node, that impersonation id ended.
func (r *presenceRelay) Release(id string) { r.signal(signalRelease, id) }

// watchSignal is a moderator's page View watching the moderated session
// Impersonation (signalWatch, sent again to renew it), or closed
// (signalUnwatch).
type watchSignal struct {
	Impersonation string          `json:"impersonation"`
	View          string          `json:"view"`
	Moderator     presence.Person `json:"moderator"`
}

// Watch records, on every node, that moderator watches the session
// impersonationID on page viewID.
func (r *presenceRelay) Watch(impersonationID, viewID string, moderator *standin.User) {
	r.signal(signalWatch, watchSignal{Impersonation: impersonationID, View: viewID,
		Moderator: presence.Person{ID: moderator.ID, Name: moderator.Name}})
}

// Unwatch records, on every node, that the page viewID of moderatorID
// stopped watching the session impersonationID.
func (r *presenceRelay) Unwatch(impersonationID, moderatorID, viewID string) {
	r.signal(signalUnwatch, watchSignal{Impersonation: impersonationID, View: viewID, Moderator: presence.Person{ID: moderatorID}})
}

// Watches reports whether this node knows of the watch of moderatorID's
// page viewID on impersonationID.
func (r *presenceRelay) Watches(impersonationID, moderatorID, viewID string) bool {
	return r.t.Watches(impersonationID, moderatorID, viewID)
}

// Watching lists who watches the session impersonationID, as this node
// knows it.
func (r *presenceRelay) Watching(impersonationID string) []standin.EventUser {
	var out []standin.EventUser
	for _, m := range r.t.Moderators(impersonationID) {
		out = append(out, standin.EventUser{ID: m.ID, Name: m.Name})
	}
	return out
}

func (r *presenceRelay) signal(kind string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		r.log.Error("presence: encoding a change failed", "kind", kind, "err", err)
		return
	}
	r.send(kind, data)
}

// handles reports whether kind is a presence signal.
func (r *presenceRelay) handles(kind string) bool {
	return strings.HasPrefix(kind, signalPresencePrefix)
}

// apply applies a presence signal from any node to the local tracker.
func (r *presenceRelay) apply(kind string, data []byte) {
	var err error
	switch kind {
	case signalView, signalLeave:
		var v viewSignal
		if err = json.Unmarshal(data, &v); err == nil {
			if kind == signalView {
				r.t.View(v.View, v.Viewer, v.User)
			} else {
				r.t.Leave(v.Viewer.ID, v.View)
			}
		}
	case signalHold:
		var h presence.Hold
		if err = json.Unmarshal(data, &h); err == nil {
			r.t.Hold(h)
		}
	case signalWatch, signalUnwatch:
		var w watchSignal
		if err = json.Unmarshal(data, &w); err == nil {
			if kind == signalWatch {
				r.t.Watch(w.Impersonation, w.View, w.Moderator)
			} else {
				r.t.Unwatch(w.Impersonation, w.Moderator.ID, w.View)
			}
		}
	case signalRelease:
		var id string
		if err = json.Unmarshal(data, &id); err == nil {
			r.t.Release(id)
		}
	}
	if err != nil {
		r.log.Error("presence: a change could not be read", "kind", kind, "err", err)
	}
}
