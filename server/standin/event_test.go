package standin

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

func TestEventOf(t *testing.T) {
	actor := &User{ID: "u-sam", Name: "Sam"}
	ben := &User{ID: "u-ben", Name: "Ben", Memberships: []Membership{{ProjectID: "p-a"}, {ProjectID: "p-b"}}}
	imp := &Impersonation{ID: "i-1"}

	t.Run("Impersonating", func(t *testing.T) {
		p := &Principal{Actor: actor, Subject: ben, Impersonation: imp}
		e := p.EventOf(EventActionAllowed, Origin{IP: "10.0.0.1", UserAgent: "ua"}).
			Concerning("booking.create", "resource:r-1", "p-b", "allowed", "member")
		if e.Actor.ID != "u-sam" || e.Subject.ID != "u-ben" || e.ImpersonationID != "i-1" {
			t.Fatalf("who: %+v %+v %q", e.Actor, e.Subject, e.ImpersonationID)
		}
		if e.IP != "10.0.0.1" || e.UserAgent != "ua" || e.Action != "booking.create" || e.Object != "resource:r-1" ||
			e.Project != "p-b" || e.Outcome != "allowed" || e.Reason != "member" {
			t.Fatalf("fields: %+v", e)
		}
		if want := []string{"p-b", "p-a"}; !slices.Equal(e.Projects, want) {
			t.Fatalf("Projects = %v, want %v: the event's project first, each once", e.Projects, want)
		}
		if got := ben.ProjectIDs(); !slices.Equal(got, []string{"p-a", "p-b"}) {
			t.Fatalf("building an event changed the user's projects: %v", got)
		}
	})
	t.Run("EachProjectOnce", func(t *testing.T) {
		lead := &User{ID: "u-maya", Memberships: []Membership{{ProjectID: "p-a"}, {ProjectID: "p-b"}, {ProjectID: "p-a", Role: ProjectLead}}}
		e := (&Principal{Actor: lead, Subject: lead}).EventOf(EventLogin, Origin{})
		if want := []string{"p-a", "p-b"}; !slices.Equal(e.Projects, want) {
			t.Fatalf("Projects = %v, want %v", e.Projects, want)
		}
	})
	t.Run("DecisionEvent", func(t *testing.T) {
		if e := (&Principal{Actor: ben, Subject: ben}).DecisionEvent("a", "o", "", Decision{Allowed: true}, Origin{}); e != nil {
			t.Fatalf("a decision outside impersonation is audited: %+v", e)
		}
		p := &Principal{Actor: actor, Subject: ben, Impersonation: imp}
		e := p.DecisionEvent("booking.create", "resource:r", "p-a", Decision{Reason: "needs Confocal Basics"}, Origin{})
		if e == nil || e.Type != EventActionDenied || e.Outcome != "denied" || e.Reason != "needs Confocal Basics" || e.ImpersonationID != "i-1" {
			t.Fatalf("denied decision: %+v", e)
		}
		if e := p.DecisionEvent("a", "o", "", Decision{Allowed: true, Reason: "r"}, Origin{}); e.Type != EventActionAllowed || e.Outcome != "allowed" {
			t.Fatalf("allowed decision: %+v", e)
		}
	})
	t.Run("OwnName", func(t *testing.T) {
		p := &Principal{Actor: ben, Subject: ben}
		e := p.EventOf(EventLogin, Origin{}).Concerning("auth.login", "", "p-x", "ok", "")
		if e.ImpersonationID != "" || e.Actor != e.Subject {
			t.Fatalf("outside impersonation: %+v", e)
		}
		if want := []string{"p-x", "p-a", "p-b"}; !slices.Equal(e.Projects, want) {
			t.Fatalf("Projects = %v, want %v", e.Projects, want)
		}
	})
}

// TestEventTypesListed: every event type constant is in EventTypes, once.
func TestEventTypesListed(t *testing.T) {
	src, err := os.ReadFile("event.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := regexp.MustCompile(`(?m)^\s+Event[A-Za-z]+\s+= "([a-z_.]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(declared) < 20 {
		t.Fatalf("found only %d event type constants", len(declared))
	}
	listed := EventTypes()
	for _, m := range declared {
		if n := slices.Index(listed, m[1]); n < 0 || slices.Index(listed[n+1:], m[1]) >= 0 {
			t.Errorf("%s is not listed exactly once", m[1])
		}
	}
	if len(listed) != len(declared) {
		t.Errorf("EventTypes lists %d types; event.go declares %d", len(listed), len(declared))
	}
}
