package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzAPI sends arbitrary requests to every part of the API as a signed-in
// admin, with a valid CSRF token so that they reach the handlers, and
// checks the answer: never a server error, and every refusal a JSON error
// with a code and a message a person can read. The whole server runs
// (embedded database, audit log, hub), so request bodies, path parameters
// and query strings are all parsed by the code that serves them.
func FuzzAPI(f *testing.F) {
	srv := mustStart(f, "")
	admin := newClient(f, srv.URL)
	admin.mustLogin("admin@example.org")
	// Sign-in and sign-out go without the admin's cookie, so that they
	// reach the handlers (and the sign-in limiter) without ending the
	// session the rest of the run uses.
	anonymous := &http.Client{Timeout: 30 * time.Second}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	for _, seed := range []struct {
		method      uint8
		path, query string
		body        string
	}{
		{0, "users", "q=ada&limit=2", ""},
		{0, "users/000000000000000000000000", "", ""},
		{0, "users/x/access", "resource=r&project=p&start=2026-12-01T09:00:00Z&end=2026-12-01T10:00:00Z", ""},
		{0, "activity", "type=auth.login&actor=a&subject=b&impersonation=c&project=d&after_seq=3&limit=7&cursor=9", ""},
		{0, "activity", "since=2026-01-01T00:00:00Z&until=x", ""},
		{0, "activity/export", "format=csv", ""},
		{0, "activity/export", "format=jsonl&after_seq=2&type=auth.login", ""},
		{0, "activity/verify", "", ""},
		{0, "activity/key", "", ""},
		{0, "resources", "project=NEURO", ""},
		{0, "bookings", "project=x", ""},
		{1, "bookings", "", `{"resource_id":"r","project_id":"p","start":"2026-12-01T09:00:00Z","end":"2026-12-01T10:00:00Z"}`},
		{1, "impersonations", "", `{"user_id":"u","reason":"r","ticket":"t","minutes":5}`},
		{1, "impersonations", "", `{"user_id":"u","reason":"","minutes":-1}`},
		{1, "impersonations", "", `{"user_id":"000000000000000000000000","reason":"r","minutes":9223372036854775807}`},
		{1, "impersonations", "", `{"user_id":"000000000000000000000000","reason":"\u200b\u202e","ticket":"\u0000"}`},
		{1, "impersonations/000000000000000000000000/revoke", "", `{}`},
		{4, "impersonations/current", "", ""},
		{0, "impersonations/x", "", ""},
		{1, "impersonations/x/revoke", "", ""},
		{1, "users/x/suspend", "", ""},
		{3, "profile", "", `{"name":"A","phone":"1"}`},
		{3, "profile", "", `{"name":"\u202eA\u200b"}`},
		{1, "profile/password", "", `{"current":"a","new":"b"}`},
		{2, "presence", "", `{"view_id":"tab","user_id":"u"}`},
		{4, "presence/tab", "", ""},
		{1, "policies", "", `{"role":"r","domain":"*","object":"o","action":"a"}`},
		{4, "policies", "", `{"role":"r","domain":"*","object":"o","action":"a"}`},
		{0, "settings/impersonation", "", ""},
		{2, "settings/impersonation", "", `{"version":0,"rules":[{"scope":"role:user","mode":"consent"}],"request_minutes":10,"grace_seconds":60}`},
		{2, "settings/impersonation", "", `{"version":1,"rules":[{"scope":"project:x","mode":"approval","approvals":99}]}`},
		{2, "settings/impersonation", "", `{"version":-1,"rules":[{"scope":"role:\u202e","mode":"\u0000"}],"request_minutes":9223372036854775807}`},
		{0, "impersonations/requests", "", ""},
		{0, "impersonations/requests/000000000000000000000000", "", ""},
		{1, "impersonations/requests/000000000000000000000000/approve", "", `{"note":"ok"}`},
		{1, "impersonations/requests/x/deny", "", `{"note":"\u202e"}`},
		{1, "impersonations/requests/x/cancel", "", ""},
		{1, "impersonations/000000000000000000000000/start", "", ""},
		{2, "settings/impersonation", "", `{"version":0,"rules":[{"scope":"role:user","mode":"moderated"}],"request_minutes":10,"grace_seconds":9}`},
		{2, "impersonations/000000000000000000000000/moderator", "", `{"view_id":"m-1"}`},
		{2, "impersonations/x/moderator", "", `{"view_id":"\u202e../.."}`},
		{4, "impersonations/000000000000000000000000/moderator/m-1", "", ""},
		{4, "impersonations/x/moderator/%2e%2e", "", ""},
		{0, "consent", "", ""},
		{2, "consent", "", `{"hours":24}`},
		{2, "consent", "", `{"hours":-9223372036854775808}`},
		{4, "consent", "", ""},
		{0, "sinks", "", ""},
		{1, "sinks", "", `{"name":"SIEM","kind":"webhook","url":"https://siem.example.org/in","format":"ocsf","types":["auth.login"]}`},
		{1, "sinks", "", `{"name":"\u202e","kind":"syslog","address":"[::1]:-1","tls":true,"history":true,"secret":"\u0000"}`},
		{2, "sinks/000000000000000000000000", "", `{"name":"x","kind":"webhook","url":"http://169.254.169.254/"}`},
		{4, "sinks/x", "", ""},
		{1, "sinks/000000000000000000000000/test", "", ""},
		{0, "alerts", "", ""},
		{1, "alerts/refusals:x/acknowledge", "", `{"note":"\u202e seen"}`},
		{1, "alerts/%2e%2e/acknowledge", "", `{"note":1}`},
		{0, "notifications", "limit=0&cursor=zz", ""},
		{1, "bookings", "", `{"resource_id":1}`},
		{1, "bookings", "", `[`},
		{1, "auth/login", "", `{"email":"admin@example.org","password":"wrong"}`},
		{1, "auth/login", "", `{"email":"nobody@example.net","password":"x"}`},
	} {
		f.Add(seed.method, seed.path, seed.query, seed.body)
	}

	f.Fuzz(func(t *testing.T, m uint8, path, query, body string) {
		client := admin.http
		if strings.Contains(strings.ToLower(path), "auth") {
			client = anonymous
		}
		url := srv.URL + "/api/v1/" + strings.TrimLeft(path, "/")
		if query != "" {
			url += "?" + query
		}
		req, err := http.NewRequest(methods[int(m)%len(methods)], url, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", admin.csrf)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, url, err)
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s %s: read: %v", req.Method, url, err)
		}
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: %d %s", req.Method, url, body, res.StatusCode, raw)
		}
		if res.StatusCode < 400 {
			return
		}
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s %s %q: %d with body %q, not a JSON error", req.Method, url, body, res.StatusCode, raw)
		}
	})
}
