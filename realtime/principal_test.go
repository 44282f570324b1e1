package realtime_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

func TestImpersonationOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		topic  string
		wantID string
		wantOK bool
	}{
		{"OK", realtime.ImpersonationTopic("65f0c2a1-9b1e.x_y"), "65f0c2a1-9b1e.x_y", true},
		{"OKLongest", "impersonation:" + strings.Repeat("a", 64), strings.Repeat("a", 64), true},
		{"ErrNoID", "impersonation:", "", false},
		{"ErrSlash", "impersonation:a/b", "", false},
		{"ErrTooLong", "impersonation:" + strings.Repeat("a", 65), "", false},
		{"ErrOtherTopic", realtime.TopicActivity, "", false},
		{"ErrEmpty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := realtime.ImpersonationOf(tt.topic)
			if id != tt.wantID || ok != tt.wantOK {
				t.Fatalf("ImpersonationOf(%q) = %q, %v; want %q, %v", tt.topic, id, ok, tt.wantID, tt.wantOK)
			}
		})
	}
}

// TestCookie: the hub reads the session token from the cookie Config
// names, and from no other.
func TestCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{Cookie: "console_session"})
	token := e.sessions.add("s1", "ada", time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	ws, _, err := e.dial(ctx, token, dialOptions{cookie: "console_session"})
	if err != nil {
		t.Fatalf("dial with the configured cookie: %v", err)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	ws, resp, err := e.dial(ctx, token, dialOptions{})
	if err == nil {
		ws.CloseNow()
		t.Fatal("the default cookie opened a socket on a hub configured with another")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with the default cookie: %v %+v, want 401", err, resp)
	}
}

// valueSessions authenticates every token as one principal carrying an
// application value.
type valueSessions struct{ p *realtime.Principal }

func (s valueSessions) Authenticate(context.Context, string) (*realtime.Principal, error) {
	if s.p == nil {
		return nil, errors.New("the session store failed")
	}
	return s.p, nil
}

// TestPrincipalValue: what Sessions attaches to a principal reaches the
// Authorizer and the Backlog untouched.
func TestPrincipalValue(t *testing.T) {
	t.Parallel()
	type appPrincipal struct{ name string }
	app := &appPrincipal{name: "Ada"}
	var mu sync.Mutex
	var seen []any
	record := func(p *realtime.Principal) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p.Value)
	}
	authz := &testAuthorizer{
		subscribe: func(p *realtime.Principal, topic string) error { record(p); return nil },
		receive:   func(p *realtime.Principal, topic string, ev realtime.Event) bool { record(p); return true },
	}
	backlog := &testBacklog{events: map[string][]realtime.Event{realtime.TopicActivity: seqEvents(1, 1)}}
	e := newEnv(t, realtime.Config{
		Sessions:   valueSessions{&realtime.Principal{SessionID: "s1", UserID: "ada", Value: app}},
		Authorizer: authz, Backlog: backlog,
	})
	c := e.mustConnect(t, "any", dialOptions{})
	c.sendLine(`{"type":"subscribe","topic":"activity","after_seq":0}`)
	c.expect(msg{Type: "subscribed", Topic: "activity"})
	c.expect(msg{Type: "event", Topic: "activity", Seq: 1})

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("the Authorizer was asked %d times, want 2", len(seen))
	}
	for _, v := range seen {
		if v != app {
			t.Fatalf("the Authorizer saw %v, want the application's principal", v)
		}
	}
}

// TestIncompletePrincipal: a principal without a session or a person is
// a fault of the session store, answered with 500.
func TestIncompletePrincipal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		p    *realtime.Principal
	}{
		{"ErrNoSession", &realtime.Principal{UserID: "ada"}},
		{"ErrNoUser", &realtime.Principal{SessionID: "s1"}},
		{"ErrFault", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, realtime.Config{Sessions: valueSessions{tt.p}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ws, resp, err := e.dial(ctx, "any", dialOptions{})
			if err == nil {
				ws.CloseNow()
				t.Fatal("the upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("dial: %v %+v, want 500", err, resp)
			}
			if code, _ := readErrorBody(t, resp.Body); code != realtime.EInternal {
				t.Fatalf("error code %q, want %q", code, realtime.EInternal)
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	wrapped := &realtime.Error{Code: realtime.EUnavailable, Message: "The store is down.", Cause: errors.New("dial tcp")}
	tests := []struct {
		name        string
		err         error
		wantCode    string
		wantMessage string
	}{
		{"OKNil", nil, "", ""},
		{"OKHubError", realtime.Errorf(realtime.EForbidden, "No."), realtime.EForbidden, "No."},
		{"OKWrapped", errors.Join(errors.New("context"), wrapped), realtime.EUnavailable, "The store is down."},
		{"OKForeign", errors.New("boom"), realtime.EInternal, "An internal error occurred."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := realtime.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			if got := realtime.ErrorMessage(tt.err); got != tt.wantMessage {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if !errors.Is(wrapped, wrapped.Cause) {
		t.Error("an Error does not unwrap to its cause")
	}
}
