package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"standin/server"
	"standin/server/dbtest"
)

// lockedBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Every start with the demo on says, on lines of its own, where to open
// the console and an account to sign in with; the facility's time zone is
// published for the console to state.
func TestStartAnnouncesAddressAndDemoAccount(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("Europe/Berlin", 3600)
	var out lockedBuffer
	db := dbtest.MustOpen(t)
	srv := mustRun(t, server.Config{MongoURI: dbtest.MustServer(t).URI, Database: db.Name(), Demo: server.DemoOn,
		Announce: &out, Location: berlin})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != "Standin is ready: open "+srv.URL ||
		!strings.HasPrefix(lines[1], `Demo: sign in as support@example.org with the password "`) {
		t.Fatalf("the start announced %q, want the address to open and a demo account", lines)
	}
	about := newClient(t, srv.URL).do(http.MethodGet, "/api/v1/about", nil).JSON(t)
	if about["time_zone"] != "Europe/Berlin" {
		t.Errorf("about: %v, want time_zone Europe/Berlin", about)
	}
	// The user's notification gives its time in the facility's zone.
	admin, ben := newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	ben.mustLogin("ben@example.org")
	r := startImpersonation(admin, userID(t, admin, "ben@example.org"), "printer")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	until, err := time.Parse(time.RFC3339, r.JSON(t)["expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	notes := items(t, ben.do(http.MethodGet, "/api/v1/notifications", nil))
	want := "until " + until.In(berlin).Format("15:04") + " Europe/Berlin"
	if len(notes) == 0 || !strings.Contains(notes[0]["body"].(string), want) {
		t.Errorf("Ben's notification: %v, want %q", notes, want)
	}
}
