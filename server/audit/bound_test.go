package audit_test

import (
	"strings"
	"testing"

	"standin/server/audit"
	"standin/server/standin"
)

func TestOversizedEventIsRefused(t *testing.T) {
	t.Parallel()
	l := mustLog(t, mustDB(t), audit.Config{})
	mustAppend(t, l, login("ada"))

	const actorID = "65a1b2c3d4e5f60718293a4b"
	huge := strings.Repeat("x", 900_000)
	denied := &standin.Event{
		Type:    standin.EventImpersonationDenied,
		Actor:   standin.EventUser{ID: actorID, Name: "Ada Lovelace"},
		Subject: standin.EventUser{ID: huge},
		Action:  "impersonation.start", Outcome: "denied", Reason: "no right",
		IP: "127.0.0.1", UserAgent: "test",
	}
	within := login("ben") // a call's events stand or fall together
	err := l.Append(t.Context(), within, denied)
	wantCode(t, err, standin.EInvalid)

	got := all(t, l)
	if len(got) != 2 {
		t.Fatalf("%d events stored, want the first login and one refusal: %+v", len(got), got)
	}
	r := got[1]
	if r.Type != standin.EventAuditRefused || r.Action != standin.EventImpersonationDenied || r.Outcome != "refused" {
		t.Fatalf("stored %s/%s/%s, want an audit.refused of an impersonation.denied", r.Type, r.Action, r.Outcome)
	}
	if r.Actor.ID != actorID || r.Subject.ID != "" {
		t.Errorf("refusal names actor %q subject %q: the actor's id stays, an id of no id's shape goes", r.Actor.ID, r.Subject.ID)
	}
	if !strings.Contains(r.Reason, "subject.id 900000 bytes") {
		t.Errorf("refusal reason %q does not give the field's size", r.Reason)
	}
	if n := r.TextBytes(); n > 2048 {
		t.Errorf("the refusal itself carries %d bytes", n)
	}
	mustVerify(t, l, 2)

	t.Run("AtTheBound", func(t *testing.T) {
		e := login("cleo")
		e.Reason = strings.Repeat("y", standin.MaxEventBytes-e.TextBytes())
		mustAppend(t, l, e)
		e2 := login("cleo")
		e2.Reason = strings.Repeat("y", standin.MaxEventBytes-e2.TextBytes()+1)
		wantCode(t, l.Append(t.Context(), e2), standin.EInvalid)
	})
}
