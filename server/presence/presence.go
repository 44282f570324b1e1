// Package presence knows which support staff are looking at which user and
// who holds an impersonation, so that agents see each other before they
// step on each other's work.
//
// A view is one open page of the console showing one user, named by an id
// the page chooses. Pages renew their views while they stay open; a view not
// renewed within the Tracker's TTL is gone, so a closed laptop leaves no
// ghost behind. Every change moves the state to a new, higher Version and is
// reported with the whole new State, so a client never has to merge.
package presence

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"standin/server/standin"
)

// DefaultTTL is how long a view lasts without being renewed.
const DefaultTTL = 60 * time.Second

// DefaultWatchTTL is how long a moderator's watch of a session lasts
// without being renewed: a moderated session pauses within it of its
// moderator's page going away unseen (a closed laptop, a dead network).
const DefaultWatchTTL = 15 * time.Second

// Person names someone.
type Person struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Viewer is one person looking at one user, on one or more pages.
type Viewer struct {
	Viewer Person    `json:"viewer"`
	User   Person    `json:"user"`
	Since  time.Time `json:"since"`
}

// Hold is an impersonation in force: Actor acts as User.
type Hold struct {
	ImpersonationID string    `json:"impersonation_id"`
	Actor           Person    `json:"actor"`
	User            Person    `json:"user"`
	ExpiresAt       time.Time `json:"expires_at,omitzero"`
	// Moderated sessions run only while a moderator watches them;
	// Moderators are those watching now, sorted by name.
	Moderated  bool     `json:"moderated,omitempty"`
	Moderators []Person `json:"moderators,omitempty"`
}

// Change is what made the state move: Kind is "join" or "leave" (a viewer
// started or stopped looking at a user), or "hold" or "release" (an
// impersonation started or ended). Viewer is the agent.
type Change struct {
	Kind   string `json:"kind"`
	Viewer Person `json:"viewer"`
	User   Person `json:"user"`
}

// Change kinds.
const (
	Join    = "join"
	Leave   = "leave"
	Take    = "hold"
	Release = "release"
	// Moderate and Unmoderate: a moderator (Viewer) started or stopped
	// watching the session on User.
	Moderate   = "moderate"
	Unmoderate = "unmoderate"
)

// State is everything the tracker knows at one Version, viewers and holds
// sorted by user name, then by agent name.
type State struct {
	Version int64    `json:"seq"`
	Viewers []Viewer `json:"viewers"`
	Holds   []Hold   `json:"holds"`
}

// Config configures a Tracker. Zero values select the defaults.
type Config struct {
	// TTL is how long a view lasts without renewal (DefaultTTL).
	TTL time.Duration
	// WatchTTL is how long a moderator's watch lasts without renewal
	// (DefaultWatchTTL).
	WatchTTL time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
	// OnChange is told of every change with the state it led to, in
	// Version order and never concurrently. It runs with the tracker
	// locked, so it must not block or call back into the Tracker.
	OnChange func(State, Change)
}

// Tracker holds the presence state. Its methods are safe for concurrent use.
type Tracker struct {
	cfg Config

	mu      sync.Mutex
	version int64
	views   map[viewKey]*view
	holds   map[string]Hold // by impersonation id
	watches map[watchKey]*watch
}

type viewKey struct{ viewerID, viewID string }

// watchKey is one page of a moderator watching one session.
type watchKey struct{ impersonationID, moderatorID, viewID string }

type watch struct {
	moderator Person
	seen      time.Time
}

type view struct {
	viewer, user Person
	since, seen  time.Time
}

// New returns an empty tracker.
func New(cfg Config) *Tracker {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WatchTTL <= 0 {
		cfg.WatchTTL = DefaultWatchTTL
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(State, Change) {}
	}
	return &Tracker{cfg: cfg, views: make(map[viewKey]*view), holds: make(map[string]Hold), watches: make(map[watchKey]*watch)}
}

// View records that viewer is looking at user on the page viewID, or
// renews that view. A page that turns to another user moves its view.
func (t *Tracker) View(viewID string, viewer, user Person) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	k := viewKey{viewer.ID, viewID}
	if v, ok := t.views[k]; ok {
		v.seen = now
		if v.user.ID == user.ID {
			return
		}
		old := v.user
		delete(t.views, k)
		if !t.looking(viewer.ID, old.ID) {
			t.changed(Change{Kind: Leave, Viewer: viewer, User: old})
		}
	}
	joined := !t.looking(viewer.ID, user.ID)
	t.views[k] = &view{viewer: viewer, user: user, since: now, seen: now}
	if joined {
		t.changed(Change{Kind: Join, Viewer: viewer, User: user})
	}
}

// Leave ends viewer's view viewID, if there is one.
func (t *Tracker) Leave(viewerID, viewID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := viewKey{viewerID, viewID}
	if v, ok := t.views[k]; ok {
		delete(t.views, k)
		if !t.looking(viewerID, v.user.ID) {
			t.changed(Change{Kind: Leave, Viewer: v.viewer, User: v.user})
		}
	}
}

// Sweep ends the views not renewed within the TTL. The server calls it
// periodically.
func (t *Tracker) Sweep() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	cutoff := now.Add(-t.cfg.TTL)
	for k, v := range t.views {
		if v.seen.Before(cutoff) {
			delete(t.views, k)
			if !t.looking(v.viewer.ID, v.user.ID) {
				t.changed(Change{Kind: Leave, Viewer: v.viewer, User: v.user})
			}
		}
	}
	cutoff = now.Add(-t.cfg.WatchTTL)
	for k, w := range t.watches {
		if w.seen.Before(cutoff) {
			t.unwatch(k)
		}
	}
}

// Watch records that moderator watches the moderated session
// impersonationID live on the page viewID, or renews that watch. A
// session that is not in force, or not moderated, is not watched.
func (t *Tracker) Watch(impersonationID, viewID string, moderator Person) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.holds[impersonationID]
	if !ok || !h.Moderated {
		return
	}
	k := watchKey{impersonationID, moderator.ID, viewID}
	if w, ok := t.watches[k]; ok {
		w.seen = t.cfg.Now()
		return
	}
	joined := !t.watching(impersonationID, moderator.ID)
	t.watches[k] = &watch{moderator: moderator, seen: t.cfg.Now()}
	if joined {
		t.changed(Change{Kind: Moderate, Viewer: moderator, User: h.User})
	}
}

// Watches reports whether moderatorID's page viewID watches
// impersonationID.
func (t *Tracker) Watches(impersonationID, moderatorID, viewID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.watches[watchKey{impersonationID, moderatorID, viewID}]
	return ok
}

// Unwatch ends moderatorID's watch of impersonationID on page viewID.
func (t *Tracker) Unwatch(impersonationID, moderatorID, viewID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unwatch(watchKey{impersonationID, moderatorID, viewID})
}

// unwatch ends a watch. Call with mu held.
func (t *Tracker) unwatch(k watchKey) {
	w, ok := t.watches[k]
	if !ok {
		return
	}
	delete(t.watches, k)
	if !t.watching(k.impersonationID, k.moderatorID) {
		t.changed(Change{Kind: Unmoderate, Viewer: w.moderator, User: t.holds[k.impersonationID].User})
	}
}

// watching reports whether moderatorID watches impersonationID on some
// page. Call with mu held.
func (t *Tracker) watching(impersonationID, moderatorID string) bool {
	for k := range t.watches {
		if k.impersonationID == impersonationID && k.moderatorID == moderatorID {
			return true
		}
	}
	return false
}

// Moderators lists who watches the session impersonationID now, sorted
// by name: none for a session nobody moderates.
func (t *Tracker) Moderators(impersonationID string) []Person {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.moderators(impersonationID)
}

func (t *Tracker) moderators(impersonationID string) []Person {
	var out []Person
	seen := map[string]bool{}
	for k, w := range t.watches {
		if k.impersonationID == impersonationID && !seen[k.moderatorID] {
			seen[k.moderatorID] = true
			out = append(out, w.moderator)
		}
	}
	slices.SortFunc(out, func(a, b Person) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

// Hold records an impersonation in force.
func (t *Tracker) Hold(h Hold) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.holds[h.ImpersonationID]; ok {
		return
	}
	t.holds[h.ImpersonationID] = h
	t.changed(Change{Kind: Take, Viewer: h.Actor, User: h.User})
}

// Release records that an impersonation ended.
func (t *Tracker) Release(impersonationID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.holds[impersonationID]
	if !ok {
		return
	}
	delete(t.holds, impersonationID)
	for k := range t.watches {
		if k.impersonationID == impersonationID {
			delete(t.watches, k)
		}
	}
	t.changed(Change{Kind: Release, Viewer: h.Actor, User: h.User})
}

// State returns the current state.
func (t *Tracker) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state()
}

// looking reports whether viewerID has a page open on userID. Call with
// mu held.
func (t *Tracker) looking(viewerID, userID string) bool {
	for k, v := range t.views {
		if k.viewerID == viewerID && v.user.ID == userID {
			return true
		}
	}
	return false
}

// changed moves to a new version and reports it. Versions follow the
// clock (microseconds) so that they keep increasing across restarts of
// the server, which starts with an empty state. Call with mu held.
func (t *Tracker) changed(c Change) {
	t.version = max(t.version+1, t.cfg.Now().UnixMicro())
	t.cfg.OnChange(t.state(), c)
}

func (t *Tracker) state() State {
	s := State{Version: t.version, Viewers: []Viewer{}, Holds: []Hold{}}
	seen := make(map[[2]string]int)
	for _, v := range t.views {
		pair := [2]string{v.viewer.ID, v.user.ID}
		if i, ok := seen[pair]; ok {
			if v.since.Before(s.Viewers[i].Since) {
				s.Viewers[i].Since = v.since
			}
			continue
		}
		seen[pair] = len(s.Viewers)
		s.Viewers = append(s.Viewers, Viewer{Viewer: v.viewer, User: v.user, Since: v.since.UTC()})
	}
	for _, h := range t.holds {
		h.Moderators = t.moderators(h.ImpersonationID)
		s.Holds = append(s.Holds, h)
	}
	slices.SortFunc(s.Viewers, func(a, b Viewer) int {
		return cmp.Or(cmp.Compare(a.User.Name, b.User.Name), cmp.Compare(a.User.ID, b.User.ID),
			cmp.Compare(a.Viewer.Name, b.Viewer.Name), cmp.Compare(a.Viewer.ID, b.Viewer.ID))
	})
	slices.SortFunc(s.Holds, func(a, b Hold) int {
		return cmp.Or(cmp.Compare(a.User.Name, b.User.Name), cmp.Compare(a.ImpersonationID, b.ImpersonationID))
	})
	return s
}

// HoldOf returns the hold of an impersonation in force.
func HoldOf(imp *standin.Impersonation) Hold {
	return Hold{
		ImpersonationID: imp.ID,
		Actor:           Person{ID: imp.ActorID, Name: imp.ActorName},
		User:            Person{ID: imp.SubjectID, Name: imp.SubjectName},
		ExpiresAt:       imp.ExpiresAt.UTC(),
		Moderated:       imp.Moderated,
	}
}
