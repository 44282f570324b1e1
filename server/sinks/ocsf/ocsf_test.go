package ocsf

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"standin/server/standin"
)

// baseRequired are the attributes OCSF 1.3.0 marks required in every
// event class (base_event: activity_id, category_uid, class_uid,
// metadata, severity_id, time, type_uid), with those required in the
// objects they hold (metadata: product, version; product: vendor_name).
var baseRequired = []string{
	"activity_id", "category_uid", "class_uid", "metadata", "metadata.version",
	"metadata.product", "metadata.product.vendor_name", "severity_id", "time", "type_uid",
}

// classRequired are the attributes each class used here adds as required
// in OCSF 1.3.0 (https://schema.ocsf.io/1.3.0/classes/...), with those
// required in the objects they hold.
var classRequired = map[int][]string{
	// authentication: user, "the subject (user/role or account) to authenticate".
	classAuthentication: {"user"},
	// account_change: user, the account changed.
	classAccountChange: {"user"},
	// api_activity: actor, api, src_endpoint; api: operation.
	classAPIActivity: {"actor", "api", "api.operation", "src_endpoint"},
	// detection_finding (finding): finding_info; finding_info: uid, and
	// title, required in the releases before 1.3 and always written.
	classDetectionFinding: {"finding_info", "finding_info.uid", "finding_info.title"},
}

// atLeastOne are the OCSF 1.3.0 constraints "at least one of" on the
// objects written: an object present must hold one of its attributes.
var atLeastOne = map[string][]string{
	"user":         {"uid", "name", "account"},
	"user_result":  {"uid", "name", "account"},
	"actor":        {"user", "process", "session", "app_name", "app_uid", "invoked_by"},
	"actor.user":   {"uid", "name", "account"},
	"src_endpoint": {"ip", "name", "hostname", "uid", "instance_uid", "interface_uid", "svc_name"},
}

// classAtLeastOne are class-level constraints: Authentication names the
// service or the endpoint authenticated to.
var classAtLeastOne = map[int][]string{
	classAuthentication: {"service", "dst_endpoint"},
}

// every lists the event types of docs/AUDIT.md, the ones announced
// (alerts, sinks) and one no release has written, with the class and
// activity each must map to and a typical action, object and outcome.
var every = []struct {
	typ                     string
	class, activity         int
	action, object, outcome string
	self                    bool // the actor is the subject
	session                 bool // written inside an impersonation
}{
	{"auth.login", classAuthentication, 1, "session.start", "", "signed_in", true, false},
	{"auth.logout", classAuthentication, 2, "session.end", "", "signed_out", true, false},
	{"impersonation.started", classAuthentication, 1, "impersonation.start", "ticket:T-7", "started", false, true},
	{"impersonation.denied", classAuthentication, 1, "impersonation.start", "", "denied", false, false},
	{"impersonation.ended", classAuthentication, 2, "impersonation.end", "ended_by:u-agent Sam Agent (203.0.113.7)", "ended_by_actor", false, true},
	{"impersonation.paused", classAuthentication, 99, "impersonation.moderation", "moderation:imp-1:2", "paused", false, true},
	{"impersonation.resumed", classAuthentication, 99, "impersonation.moderation", "moderation:imp-1:1", "resumed", false, true},
	{"action.allowed", classAPIActivity, apiRead, "resource.list", "GET /api/v1/resources", "allowed", false, true},
	{"action.denied", classAPIActivity, apiCreate, "booking.create", "resource:r-1 2026-05-02T09:00:00Z/2026-05-02T10:00:00Z", "denied", false, true},
	{"booking.created", classAPIActivity, apiCreate, "booking.create", "booking:b-1", "created", false, true},
	{"booking.cancelled", classAPIActivity, apiDelete, "booking.cancel", "booking:b-1", "cancelled", false, true},
	{"policy.changed", classAccountChange, 7, "policy.update", "p, support, *, booking, create", "added", true, false},
	{"user.suspended", classAccountChange, 5, "user.suspend", "user:u-user", "suspended", false, false},
	{"user.renamed", classAccountChange, 99, "profile.rename", "user:u-user", "renamed", false, true},
	{"request.created", classAPIActivity, apiCreate, "impersonation.request", "request:imp-1", "approval", false, false},
	{"request.approved", classAPIActivity, apiUpdate, "impersonation.request", "request:imp-1", "approved", false, false},
	{"request.denied", classAPIActivity, apiUpdate, "impersonation.request", "request:imp-1", "denied", false, false},
	{"request.expired", classAPIActivity, apiUpdate, "impersonation.request", "request:imp-1", "expired", false, false},
	{"request.cancelled", classAPIActivity, apiUpdate, "impersonation.request", "request:imp-1", "cancelled", false, false},
	{"consent.granted", classAccountChange, 7, "consent.grant", "grant:g-1", "granted", true, false},
	{"consent.withdrawn", classAccountChange, 8, "consent.withdraw", "grant:g-1", "withdrawn", true, false},
	{"field.revealed", classAPIActivity, apiRead, "personal.reveal", "field:phone", "revealed", false, true},
	{"settings.changed", classAPIActivity, apiUpdate, "settings.update", "settings:impersonation", "changed", true, false},
	{"sink.created", classAPIActivity, apiCreate, "sink.create", "sink:s-1", "created", true, false},
	{"sink.changed", classAPIActivity, apiUpdate, "sink.update", "sink:s-1", "changed", true, false},
	{"sink.removed", classAPIActivity, apiDelete, "sink.remove", "sink:s-1", "removed", true, false},
	{"sink.tested", classAPIActivity, 99, "sink.test", "sink:s-1", "tested", true, false},
	{"audit.refused", classAPIActivity, 99, "booking.created", "", "refused", false, false},
	{"alert.raised", classDetectionFinding, 1, "alert.raise", "alert:a-1", "raised", false, false},
	{"alert.acknowledged", classDetectionFinding, 2, "alert.acknowledge", "alert:a-1", "acknowledged", false, false},
	{"thing.happened", classAPIActivity, 99, "thing.do", "thing:1", "done", false, false},
}

var (
	agent    = standin.EventUser{ID: "u-agent", Name: "Sam Agent"}
	target   = standin.EventUser{ID: "u-user", Name: "Ben User"}
	at       = time.Date(2026, 5, 1, 9, 0, 0, 123_000_000, time.UTC)
	build142 = Product{Name: "Standin", Vendor: "Standin", Version: "1.4.2"}
)

// sample is a fully written event of the given kind, each field a value
// found nowhere else.
func sample(typ, action, object, outcome string, self, session bool) *standin.Event {
	e := &standin.Event{
		ID: "65f0c0ffee00000000000042", Seq: 4242, Time: at, Type: typ,
		Actor: agent, Subject: target, Action: action, Object: object, Project: "p-lab",
		Outcome: outcome, Reason: "reason-" + typ, IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (test)",
		Projects: []string{"p-lab", "p-other"}, PrevHash: strings.Repeat("a", 64), Hash: strings.Repeat("b", 64),
	}
	if self {
		e.Subject = agent
	}
	if session || strings.HasPrefix(typ, "request.") {
		e.ImpersonationID = "imp-1"
	}
	switch typ {
	case "user.suspended":
		e.Reason = target.Name
	case "user.renamed":
		e.Reason = `Renamed from "Ben User" to "Benjamin \"Ben\" User".`
	}
	return e
}

// MustDecode encodes e and decodes the result, failing on invalid JSON.
func MustDecode(t *testing.T, e *standin.Event, p Product) map[string]any {
	t.Helper()
	b, err := Encode(e, p)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	if bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("trailing newline")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode: %v\n%s", err, b)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value: %s", b)
	}
	return m
}

// lookup reads a dotted path, where a number indexes an array
// ("resources.0.name"); a present null is absent.
func lookup(m map[string]any, path string) (any, bool) {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
		if v == nil {
			return nil, false
		}
	}
	return v, true
}

func MustInt(t *testing.T, m map[string]any, path string) int64 {
	t.Helper()
	v, ok := lookup(m, path)
	if !ok {
		t.Fatalf("%s missing", path)
	}
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%s = %v (%T), want a number", path, v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%s = %v, want an integer", path, n)
	}
	return i
}

func MustString(t *testing.T, m map[string]any, path string) string {
	t.Helper()
	v, ok := lookup(m, path)
	if !ok {
		t.Fatalf("%s missing", path)
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s = %v (%T), want a string", path, v, v)
	}
	return s
}

// present says whether a required attribute holds something: not an
// empty string, object or array.
func present(v any) bool {
	switch v := v.(type) {
	case string:
		return v != ""
	case map[string]any:
		return len(v) > 0
	case []any:
		return len(v) > 0
	}
	return v != nil
}

func TestEncodeEveryType(t *testing.T) {
	t.Parallel()
	for _, c := range every {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			e := sample(c.typ, c.action, c.object, c.outcome, c.self, c.session)
			m := MustDecode(t, e, build142)

			class := int(MustInt(t, m, "class_uid"))
			for _, path := range append(slices.Clone(baseRequired), classRequired[class]...) {
				if v, ok := lookup(m, path); !ok || !present(v) {
					t.Errorf("required %s missing from class %d", path, class)
				}
			}
			for obj, attrs := range atLeastOne {
				v, ok := lookup(m, obj)
				if !ok {
					continue
				}
				if !slices.ContainsFunc(attrs, func(a string) bool { x, ok := lookup(v.(map[string]any), a); return ok && present(x) }) {
					t.Errorf("%s holds none of %v: %v", obj, attrs, v)
				}
			}
			if attrs := classAtLeastOne[class]; attrs != nil && !slices.ContainsFunc(attrs, func(a string) bool { _, ok := lookup(m, a); return ok }) {
				t.Errorf("class %d holds none of %v", class, attrs)
			}

			if class != c.class {
				t.Errorf("class_uid = %d, want %d", class, c.class)
			}
			activity := MustInt(t, m, "activity_id")
			if activity != int64(c.activity) {
				t.Errorf("activity_id = %d, want %d", activity, c.activity)
			}
			if got, want := MustInt(t, m, "type_uid"), int64(class)*100+activity; got != want {
				t.Errorf("type_uid = %d, want class_uid*100 + activity_id = %d", got, want)
			}
			if got, want := MustInt(t, m, "category_uid"), int64(class/1000); got != want {
				t.Errorf("category_uid = %d, want %d", got, want)
			}
			for _, name := range []string{"activity_name", "category_name", "class_name", "type_name", "severity", "status", "message"} {
				if MustString(t, m, name) == "" {
					t.Errorf("%s is empty", name)
				}
			}
			if activity == activityOther && MustString(t, m, "activity_name") == "Other" {
				t.Errorf("activity 99 should carry Standin's word, not %q", "Other")
			}
			if !strings.HasPrefix(MustString(t, m, "type_name"), MustString(t, m, "class_name")+": ") {
				t.Errorf("type_name %q does not start with the class name", MustString(t, m, "type_name"))
			}
			if got := MustString(t, m, "metadata.version"); got != "1.3.0" {
				t.Errorf("metadata.version = %q", got)
			}
			if got := MustString(t, m, "metadata.uid"); got != e.ID {
				t.Errorf("metadata.uid = %q, want the event's id", got)
			}
			if got := MustInt(t, m, "metadata.sequence"); got != e.Seq {
				t.Errorf("metadata.sequence = %d, want %d", got, e.Seq)
			}
			if got := MustString(t, m, "metadata.log_name"); got != "audit" {
				t.Errorf("metadata.log_name = %q", got)
			}
			if got := MustString(t, m, "metadata.event_code"); got != c.typ {
				t.Errorf("metadata.event_code = %q, want the Standin type", got)
			}
			if got := MustInt(t, m, "time"); got != at.UnixMilli() {
				t.Errorf("time = %d, want %d", got, at.UnixMilli())
			}
			if class == classAPIActivity {
				if got := MustString(t, m, "api.operation"); got != c.action {
					t.Errorf("api.operation = %q, want the action %q", got, c.action)
				}
			}
			if c.object != "" && (class == classAPIActivity || class == classDetectionFinding) {
				if got := MustString(t, m, "resources.0.name"); got != c.object {
					t.Errorf("resources[0].name = %q, want the object", got)
				}
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, typ, outcome string
		want               int64
	}{
		{"LoginSucceeds", "auth.login", "signed_in", statusSuccess},
		{"ImpersonationRefused", "impersonation.denied", "denied", statusFailure},
		{"ActionRefused", "action.denied", "denied", statusFailure},
		{"ActionFailed", "action.allowed", "failed", statusFailure},
		{"ActionAllowed", "action.allowed", "allowed", statusSuccess},
		{"RequestRefused", "request.denied", "denied", statusFailure},
		{"AuditRefused", "audit.refused", "refused", statusFailure},
		{"EndedByRevocation", "impersonation.ended", "revoked", statusSuccess},
		{"RequestExpired", "request.expired", "expired", statusSuccess},
		{"NoOutcome", "thing.happened", "", statusUnknown},
		{"AlertRaisedIsNew", "alert.raised", "raised", findingNew},
		{"AlertAcknowledgedIsInProgress", "alert.acknowledged", "acknowledged", findingInProgress},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := sample(c.typ, "x.do", "x:1", c.outcome, false, false)
			m := MustDecode(t, e, build142)
			if got := MustInt(t, m, "status_id"); got != c.want {
				t.Fatalf("status_id = %d, want %d", got, c.want)
			}
			if c.outcome != "" && MustString(t, m, "status_code") != c.outcome {
				t.Errorf("status_code = %q, want the outcome", MustString(t, m, "status_code"))
			}
			if MustString(t, m, "status_detail") != e.Reason {
				t.Errorf("status_detail = %q, want the reason", MustString(t, m, "status_detail"))
			}
			failure := c.want == statusFailure && !strings.HasPrefix(c.typ, "alert.")
			if sev := MustInt(t, m, "severity_id"); failure && sev < severityLow {
				t.Errorf("severity_id = %d for a refusal, want at least Low", sev)
			}
		})
	}
}

func TestImpersonation(t *testing.T) {
	t.Parallel()
	t.Run("StartIsLogonAsTheUser", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("impersonation.started", "impersonation.start", "ticket:T-7", "started", false, true), build142)
		for path, want := range map[string]string{
			"actor.user.uid": agent.ID, "actor.user.name": agent.Name, "user.uid": target.ID, "user.name": target.Name,
			"session.uid": "imp-1", "actor.session.uid": "imp-1", "logon_type": "Impersonation", "metadata.correlation_uid": "imp-1",
		} {
			if got := MustString(t, m, path); got != want {
				t.Errorf("%s = %q, want %q", path, got, want)
			}
		}
		if got := MustInt(t, m, "logon_type_id"); got != 99 {
			t.Errorf("logon_type_id = %d, want 99 (Other)", got)
		}
		if _, ok := lookup(m, "actor.invoked_by"); ok {
			t.Errorf("actor.invoked_by is deprecated in 1.3 and names an application")
		}
	})
	t.Run("ActionNamesAgentAndUser", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("action.denied", "booking.create", "resource:r-1 x/y", "denied", false, true), build142)
		if got := MustString(t, m, "actor.user.uid"); got != agent.ID {
			t.Errorf("actor.user.uid = %q, want the agent", got)
		}
		if got := MustString(t, m, "actor.session.uid"); got != "imp-1" {
			t.Errorf("actor.session.uid = %q, want the impersonation", got)
		}
		u := subjectResource(t, m)
		if u["uid"] != target.ID || u["name"] != target.Name {
			t.Errorf("subject resource = %v, want the impersonated user", u)
		}
		if labels := labelsOf(u); !slices.Contains(labels, "subject") || !slices.Contains(labels, "impersonated") {
			t.Errorf("subject resource labels = %v, want subject and impersonated", labels)
		}
		if _, ok := lookup(m, "user"); ok {
			t.Errorf("API Activity has no user attribute in OCSF 1.3")
		}
	})
	t.Run("AccountChangeUnderImpersonation", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("user.renamed", "profile.rename", "user:u-user", "renamed", false, true), build142)
		if MustString(t, m, "actor.user.uid") != agent.ID || MustString(t, m, "user.uid") != target.ID {
			t.Errorf("actor %q user %q, want the agent renaming the impersonated user", MustString(t, m, "actor.user.uid"), MustString(t, m, "user.uid"))
		}
		if got := MustString(t, m, "user_result.name"); got != `Benjamin "Ben" User` {
			t.Errorf("user_result.name = %q, want the new name", got)
		}
		if got := MustString(t, m, "user.name"); got != target.Name {
			t.Errorf("user.name = %q, want the name before", got)
		}
	})
	t.Run("RequestIsNotYetASession", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("request.created", "impersonation.request", "request:imp-1", "approval", false, false), build142)
		if _, ok := lookup(m, "actor.session"); ok {
			t.Errorf("a request is no session yet")
		}
		if got := MustString(t, m, "metadata.correlation_uid"); got != "imp-1" {
			t.Errorf("metadata.correlation_uid = %q, want the request's id, which the session keeps", got)
		}
		if labels := labelsOf(subjectResource(t, m)); slices.Contains(labels, "impersonated") {
			t.Errorf("subject of a request labelled %v", labels)
		}
	})
	t.Run("OwnBookingHasNoSecondUser", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("booking.created", "booking.create", "booking:b-1", "created", true, false), build142)
		for _, r := range m["resources"].([]any) {
			if r.(map[string]any)["type"] == "User" {
				t.Errorf("the actor acting as themselves is named twice: %v", r)
			}
		}
		if _, ok := lookup(m, "actor.session"); ok {
			t.Errorf("no impersonation, no session")
		}
	})
	t.Run("PolicyChangesARole", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("policy.changed", "policy.update", "p, support, *, booking, create", "removed", true, false), build142)
		if MustInt(t, m, "activity_id") != 8 {
			t.Errorf("a removed line is Detach Policy (8), got %d", MustInt(t, m, "activity_id"))
		}
		if MustString(t, m, "user.name") != "support" || MustString(t, m, "user.type") != "Role" {
			t.Errorf("user = %v, want the role", m["user"])
		}
		if MustString(t, m, "policy.data.action") != "create" {
			t.Errorf("policy = %v", m["policy"])
		}
	})
}

func subjectResource(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	rs, _ := m["resources"].([]any)
	for _, r := range rs {
		if r := r.(map[string]any); r["type"] == "User" {
			return r
		}
	}
	t.Fatalf("no User resource in %v", rs)
	return nil
}

func labelsOf(r map[string]any) []string {
	var out []string
	for _, l := range r["labels"].([]any) {
		out = append(out, l.(string))
	}
	return out
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTimeEpochMillis(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CEST", 2*60*60)
	cases := []struct {
		name string
		in   time.Time
		want int64
		orig string
	}{
		{"UTC", time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC), 1777626000000, "2026-05-01T09:00:00.000Z"},
		{"Millis", time.Date(2026, 5, 1, 9, 0, 0, 123_000_000, time.UTC), 1777626000123, "2026-05-01T09:00:00.123Z"},
		{"SubMillisTruncated", time.Date(2026, 5, 1, 9, 0, 0, 123_999_999, time.UTC), 1777626000123, "2026-05-01T09:00:00.123Z"},
		{"OtherZone", time.Date(2026, 5, 1, 11, 0, 0, 5_000_000, paris), 1777626000005, "2026-05-01T09:00:00.005Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := sample("auth.login", "session.start", "", "signed_in", true, false)
			e.Time = c.in
			m := MustDecode(t, e, build142)
			if got := MustInt(t, m, "time"); got != c.want {
				t.Errorf("time = %d, want %d", got, c.want)
			}
			if got := MustString(t, m, "metadata.original_time"); got != c.orig {
				t.Errorf("metadata.original_time = %q, want %q", got, c.orig)
			}
			if got := MustInt(t, m, "timezone_offset"); got != 0 {
				t.Errorf("timezone_offset = %d, want 0: the time is UTC", got)
			}
		})
	}
}

// leaves collects every string and number in v.
func leaves(v any, strs map[string]bool, nums map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			leaves(x, strs, nums)
		}
	case []any:
		for _, x := range v {
			leaves(x, strs, nums)
		}
	case string:
		strs[v] = true
	case json.Number:
		nums[v.String()] = true
	}
}

func TestNoFieldLost(t *testing.T) {
	t.Parallel()
	for _, c := range every {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			e := sample(c.typ, c.action, c.object, c.outcome, c.self, c.session)
			e.ImpersonationID = "imp-1" // every type may carry one
			m := MustDecode(t, e, build142)
			strs, nums := map[string]bool{}, map[string]bool{}
			leaves(m, strs, nums)
			fields := map[string]string{
				"id": e.ID, "type": e.Type, "actor.id": e.Actor.ID, "actor.name": e.Actor.Name,
				"subject.id": e.Subject.ID, "subject.name": e.Subject.Name, "impersonation_id": e.ImpersonationID,
				"action": e.Action, "object": e.Object, "project": e.Project, "outcome": e.Outcome, "reason": e.Reason,
				"ip": e.IP, "user_agent": e.UserAgent, "prev_hash": e.PrevHash, "hash": e.Hash,
			}
			for i, p := range e.Projects {
				fields["projects."+strconv.Itoa(i)] = p
			}
			for name, v := range fields {
				if v != "" && !strs[v] {
					t.Errorf("%s %q is nowhere in the OCSF event", name, v)
				}
			}
			if !nums["4242"] {
				t.Errorf("seq is nowhere in the OCSF event")
			}
			if !nums[strconv.FormatInt(at.UnixMilli(), 10)] {
				t.Errorf("time is nowhere in the OCSF event")
			}
			// The fields OCSF has no attribute for are in unmapped, by name.
			for path, want := range map[string]string{
				"unmapped.impersonation_id": e.ImpersonationID, "unmapped.project": e.Project,
				"unmapped.prev_hash": e.PrevHash, "unmapped.hash": e.Hash,
			} {
				if got := MustString(t, m, path); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			if got := toString(m["unmapped"].(map[string]any)["projects"]); got != `["p-lab","p-other"]` {
				t.Errorf("unmapped.projects = %s", got)
			}
		})
	}
	t.Run("NoProjects", func(t *testing.T) {
		t.Parallel()
		e := sample("auth.login", "session.start", "", "signed_in", true, false)
		e.Projects, e.PrevHash = nil, ""
		m := MustDecode(t, e, build142)
		if got := toString(m["unmapped"].(map[string]any)["projects"]); got != `[]` {
			t.Errorf("unmapped.projects = %s, want []", got)
		}
		if _, ok := m["unmapped"].(map[string]any)["prev_hash"]; !ok {
			t.Errorf("unmapped.prev_hash should be kept, empty, for seq 1")
		}
	})
}

func TestHostileText(t *testing.T) {
	t.Parallel()
	hostile := "quote\" back\\slash </script> &amp; nul\x00 bell\x07 esc\x1b nl\n cr\r tab\t ls\u2028 ps\u2029 del\x7f"
	invalid := "bad\xff\xfeutf8\xc3"
	for _, c := range every {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			e := sample(c.typ, c.action, c.object, c.outcome, false, true)
			e.Actor = standin.EventUser{ID: "u-" + hostile, Name: hostile}
			e.Subject = standin.EventUser{ID: invalid, Name: invalid + hostile}
			e.Action, e.Object, e.Outcome = c.action+hostile, c.object+invalid, c.outcome
			e.Reason = hostile
			e.IP, e.UserAgent = "1.2.3.4\"}, {", hostile+invalid
			e.Projects = []string{hostile, invalid}
			m := MustDecode(t, e, build142)
			if got := MustString(t, m, "status_detail"); got != hostile {
				t.Errorf("status_detail = %q, want the reason as it was", got)
			}
			if got := MustString(t, m, "message"); !strings.Contains(got, hostile) && !strings.Contains(got, "\ufffd") {
				t.Errorf("message lost the text: %q", got)
			}
			if c.class != classDetectionFinding {
				if got := MustString(t, m, "actor.user.name"); got != hostile {
					t.Errorf("actor.user.name = %q", got)
				}
				if _, ok := lookup(m, "src_endpoint.ip"); ok {
					t.Errorf("src_endpoint.ip holds what is not an address")
				}
				if got := MustString(t, m, "src_endpoint.name"); got != e.IP {
					t.Errorf("src_endpoint.name = %q, want the text given as address", got)
				}
			}
			if got := toString(m["unmapped"].(map[string]any)["projects"]); !strings.Contains(got, "\ufffd") {
				t.Errorf("invalid UTF-8 not replaced: %s", got)
			}
		})
	}
}

func TestSource(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, ip, wantIP, wantName string
	}{
		{"IPv4", "203.0.113.7", "203.0.113.7", ""},
		{"IPv6", "2001:db8::1", "2001:db8::1", ""},
		{"NoClientIsStandin", "", "", "Standin"},
		{"NotAnAddress", "unknown", "", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := sample("request.expired", "impersonation.request", "request:imp-1", "expired", false, false)
			e.IP, e.UserAgent = c.ip, ""
			m := MustDecode(t, e, build142)
			ip, _ := lookup(m, "src_endpoint.ip")
			name, _ := lookup(m, "src_endpoint.name")
			if (c.wantIP != "" || ip != nil) && ip != c.wantIP || (c.wantName != "" || name != nil) && name != c.wantName {
				t.Errorf("src_endpoint = %v, want ip %q name %q", m["src_endpoint"], c.wantIP, c.wantName)
			}
			if _, ok := lookup(m, "http_request"); ok {
				t.Errorf("http_request without a user agent or a path: %v", m["http_request"])
			}
		})
	}
	t.Run("ViewNamesMethodAndPath", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("action.allowed", "resource.list", "GET /api/v1/resources", "allowed", false, true), build142)
		if MustString(t, m, "http_request.http_method") != "GET" || MustString(t, m, "http_request.url.path") != "/api/v1/resources" {
			t.Errorf("http_request = %v", m["http_request"])
		}
		if MustString(t, m, "http_request.user_agent") != "Mozilla/5.0 (test)" {
			t.Errorf("http_request.user_agent = %v", m["http_request"])
		}
	})
}

func TestProduct(t *testing.T) {
	t.Parallel()
	t.Run("Given", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("auth.login", "session.start", "", "signed_in", true, false), Product{Name: "Standin", Vendor: "Lab", Version: "2.0.1"})
		if MustString(t, m, "metadata.product.name") != "Standin" || MustString(t, m, "metadata.product.vendor_name") != "Lab" ||
			MustString(t, m, "metadata.product.version") != "2.0.1" {
			t.Errorf("metadata.product = %v", m["metadata"].(map[string]any)["product"])
		}
	})
	t.Run("ZeroIsStandin", func(t *testing.T) {
		t.Parallel()
		m := MustDecode(t, sample("auth.login", "session.start", "", "signed_in", true, false), Product{})
		if MustString(t, m, "metadata.product.name") != "Standin" || MustString(t, m, "metadata.product.vendor_name") != "Standin" {
			t.Errorf("metadata.product = %v", m["metadata"].(map[string]any)["product"])
		}
		if _, ok := lookup(m, "metadata.product.version"); ok {
			t.Errorf("an unknown version is left out")
		}
	})
	t.Run("ErrNoEvent", func(t *testing.T) {
		t.Parallel()
		if _, err := Encode(nil, build142); err == nil {
			t.Fatal("Encode(nil) succeeded")
		}
	})
}

func TestActionActivity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		action, object string
		want           int
	}{
		{"resource.list", "GET /api/v1/resources", apiRead},
		{"booking.create", "resource:r-1 a/b", apiCreate},
		{"profile.rename", "user:u-1", apiUpdate},
		{"booking.cancel", "booking:b-1", apiDelete},
		{"thing.poke", "POST /api/v1/things", apiCreate},
		{"thing.poke", "PATCH /api/v1/things/1", apiUpdate},
		{"thing.poke", "DELETE /api/v1/things/1", apiDelete},
		{"thing.poke", "thing:1", activityOther},
		{"", "", activityOther},
	}
	for _, c := range cases {
		if got := actionActivity(c.action, c.object); got != c.want {
			t.Errorf("actionActivity(%q, %q) = %d, want %d", c.action, c.object, got, c.want)
		}
	}
}

func FuzzEncode(f *testing.F) {
	for _, c := range every {
		f.Add(c.typ, c.action, c.object, c.outcome, "reason", "Sam", "203.0.113.7")
	}
	f.Add("action.allowed", "x.\xff", "GET /\x00", "failed", "\"}", "\u2028", "::1")
	f.Add("action.denied", "", "", "denied", "", "", "")
	f.Add("", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, typ, action, object, outcome, reason, name, ip string) {
		e := &standin.Event{ID: "1", Seq: 1, Time: at, Type: typ, Actor: standin.EventUser{ID: name, Name: name},
			Subject: target, Action: action, Object: object, Outcome: outcome, Reason: reason, IP: ip, UserAgent: name}
		m := MustDecode(t, e, build142)
		if MustInt(t, m, "type_uid") != MustInt(t, m, "class_uid")*100+MustInt(t, m, "activity_id") {
			t.Fatalf("type_uid arithmetic broken: %v", m)
		}
		if MustString(t, m, "activity_name") == "" {
			t.Fatalf("activity_name is empty: %v", m)
		}
	})
}

func TestObjectResource(t *testing.T) {
	t.Parallel()
	cases := []struct {
		object, typ, uid string
	}{
		{"booking:b-1", "booking", "b-1"},
		{"resource:r-1 2026-05-02T09:00:00Z/2026-05-02T10:00:00Z", "resource", "r-1"},
		{"field:phone", "field", "phone"},
		{"GET /api/v1/resources", "", "GET /api/v1/resources"},
		{"p, support, *, booking, create", "", "p, support, *, booking, create"},
	}
	for _, c := range cases {
		r := objectResource(c.object)
		if r.Type != c.typ || r.UID != c.uid || r.Name != c.object {
			t.Errorf("objectResource(%q) = %+v, want type %q uid %q and the object as name", c.object, r, c.typ, c.uid)
		}
	}
}
