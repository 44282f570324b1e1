package presence_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"standin/server/presence"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type recorder struct {
	changes []string
	states  []presence.State
}

func (r *recorder) onChange(s presence.State, c presence.Change) {
	r.changes = append(r.changes, fmt.Sprintf("%s %s %s", c.Kind, c.Viewer.ID, c.User.ID))
	r.states = append(r.states, s)
}

func (r *recorder) take() []string {
	out := r.changes
	r.changes = nil
	return out
}

var (
	ada  = presence.Person{ID: "ada", Name: "Ada"}
	sam  = presence.Person{ID: "sam", Name: "Sam"}
	ben  = presence.Person{ID: "ben", Name: "Ben"}
	cleo = presence.Person{ID: "cleo", Name: "Cleo"}
)

func viewers(s presence.State) []string {
	var out []string
	for _, v := range s.Viewers {
		out = append(out, v.Viewer.ID+">"+v.User.ID)
	}
	return out
}

func TestTracker(t *testing.T) {
	clk := &clock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	tr := presence.New(presence.Config{TTL: time.Minute, Now: clk.Now, OnChange: rec.onChange})

	check := func(t *testing.T, want ...string) {
		t.Helper()
		if got := rec.take(); !slices.Equal(got, want) {
			t.Fatalf("changes %q, want %q", got, want)
		}
	}

	t.Run("JoinOnce", func(t *testing.T) {
		tr.View("tab1", ada, ben)
		tr.View("tab1", ada, ben) // a renewal
		tr.View("tab2", ada, ben) // a second page on the same user
		tr.View("tab1", sam, ben) // another agent's page of the same name
		check(t, "join ada ben", "join sam ben")
		if got := viewers(tr.State()); !slices.Equal(got, []string{"ada>ben", "sam>ben"}) {
			t.Fatalf("viewers %v", got)
		}
	})

	t.Run("LeaveWhenTheLastPageCloses", func(t *testing.T) {
		tr.Leave("ada", "tab1")
		check(t)
		tr.Leave("ada", "tab2")
		check(t, "leave ada ben")
		tr.Leave("ada", "tab2") // already gone
		tr.Leave("ben", "tab1") // not Ben's page: Sam's stays
		check(t)
	})

	t.Run("MovingPage", func(t *testing.T) {
		tr.View("tab1", sam, cleo)
		check(t, "leave sam ben", "join sam cleo")
	})

	t.Run("SweepEndsStaleViews", func(t *testing.T) {
		tr.View("tab9", ada, cleo)
		check(t, "join ada cleo")
		clk.now = clk.now.Add(40 * time.Second)
		tr.View("tab9", ada, cleo) // renewed; Sam's is not
		clk.now = clk.now.Add(30 * time.Second)
		tr.Sweep()
		check(t, "leave sam cleo")
		if got := viewers(tr.State()); !slices.Equal(got, []string{"ada>cleo"}) {
			t.Fatalf("viewers %v", got)
		}
	})

	t.Run("Holds", func(t *testing.T) {
		tr.Hold(presence.Hold{ImpersonationID: "i1", Actor: ada, User: ben})
		tr.Hold(presence.Hold{ImpersonationID: "i1", Actor: ada, User: ben})
		check(t, "hold ada ben")
		if s := tr.State(); len(s.Holds) != 1 || s.Holds[0].User != ben {
			t.Fatalf("holds %+v", s.Holds)
		}
		tr.Release("i1")
		tr.Release("i1")
		check(t, "release ada ben")
		if s := tr.State(); len(s.Holds) != 0 {
			t.Fatalf("holds %+v", s.Holds)
		}
	})

	t.Run("VersionsIncrease", func(t *testing.T) {
		clk.now = clk.now.Add(-time.Hour) // even when the clock steps back
		tr.View("a", sam, ben)
		tr.View("b", cleo, ben)
		rec.take()
		for i := 1; i < len(rec.states); i++ {
			if rec.states[i].Version <= rec.states[i-1].Version {
				t.Fatalf("version %d after %d", rec.states[i].Version, rec.states[i-1].Version)
			}
		}
		if last := rec.states[len(rec.states)-1]; tr.State().Version != last.Version {
			t.Fatalf("state at %d, last change at %d", tr.State().Version, last.Version)
		}
	})
}
