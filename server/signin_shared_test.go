package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"standin/server"
	"standin/server/dbtest"
	"standin/server/loginlimit"
)

// answer is what a sign-in was answered, as far as the limits show.
type answer struct {
	status     int
	retryAfter string
}

// signInAnswers makes the sign-ins of attempts in turn, the i-th through
// clients[i%len(clients)], and returns their answers.
func signInAnswers(clients []*client, attempts []string) []answer {
	answers := make([]answer, len(attempts))
	for i, email := range attempts {
		r := clients[i%len(clients)].signIn(email, "wrong")
		answers[i] = answer{r.Status, r.Header.Get("Retry-After")}
	}
	return answers
}

// sharedAttempts is a run of wrong passwords from one address: at a real
// account past its threshold, then at made-up emails past the address's.
func sharedAttempts(policy loginlimit.Policy) []string {
	var attempts []string
	for range policy.AccountFree + 2 {
		attempts = append(attempts, "owner@example.org")
	}
	for i := range policy.AddressFree + 2 {
		attempts = append(attempts, fmt.Sprintf("nobody-%d@example.net", i))
	}
	return attempts
}

// TestSignInLimitsShared: wrong passwords from one address spread across
// two servers on one database wait exactly as on one server: the limits
// are counted in the database, not once per server.
func TestSignInLimitsShared(t *testing.T) {
	t.Parallel()
	// A stopped clock, so that each answer's wait is exact; a low address
	// threshold keeps the run short.
	stopped := time.Now()
	policy := loginlimit.Policy{AddressFree: 10}.WithDefaults()
	attempts := sharedAttempts(policy)

	db := dbtest.MustOpen(t)
	cfg := server.Config{
		MongoURI: dbtest.MustServer(t).URI, Database: db.Name(), Demo: server.DemoOn,
		AuditKeyFile: mustAuditKey(t), SignInLimits: policy, Clock: func() time.Time { return stopped },
	}
	first := mustRun(t, cfg)
	cfg.Demo = server.DemoOff
	second := mustRun(t, cfg)
	spread := signInAnswers([]*client{newClientFrom(t, first.URL, "127.0.0.8"), newClientFrom(t, second.URL, "127.0.0.8")}, attempts)

	alone := mustRun(t, server.Config{DataDir: t.TempDir(), SignInLimits: policy, Clock: func() time.Time { return stopped }})
	want := signInAnswers([]*client{newClientFrom(t, alone.URL, "127.0.0.8")}, attempts)

	refused := 0
	for i := range attempts {
		if spread[i] != want[i] {
			t.Errorf("attempt %d (%s): two servers answer %d Retry-After %q, one server %d %q",
				i+1, attempts[i], spread[i].status, spread[i].retryAfter, want[i].status, want[i].retryAfter)
		}
		if want[i].status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("one server refused none of %d attempts: the run tests nothing", len(attempts))
	}
	t.Logf("result: attempts refused for waits, on one server and across two=%d of %d", refused, len(attempts))
}
