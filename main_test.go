package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"standin/server"
	"standin/server/mongostore"
	"standin/server/standin"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	t.Run("Defaults", func(t *testing.T) {
		cfg, err := parseConfig(nil, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != "" || cfg.MongoURI != "" || cfg.Demo != server.DemoAuto || cfg.Location != nil || cfg.SecureCookies || cfg.AuditWindow != 0 || cfg.AuditKeyFile != "" {
			t.Fatalf("unexpected non-defaults: %+v", cfg)
		}
	})
	t.Run("Environment", func(t *testing.T) {
		cfg, err := parseConfig(nil, env(map[string]string{
			"STANDIN_ADDR": "0.0.0.0:9000", "STANDIN_DATA_DIR": "/tmp/x", "MONGODB_URI": "mongodb://db:27017",
			"STANDIN_DEMO": "true", "STANDIN_DEMO_PASSWORD": "pw", "STANDIN_TZ": "Europe/Berlin", "STANDIN_SECURE_COOKIES": "1",
			"STANDIN_AUDIT_WINDOW": "250000", "STANDIN_AUDIT_KEY_FILE": "/keys/audit.key",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != "0.0.0.0:9000" || cfg.DataDir != "/tmp/x" || cfg.MongoURI != "mongodb://db:27017" ||
			cfg.Demo != server.DemoOn || cfg.DemoPassword != "pw" || cfg.Location.String() != "Europe/Berlin" || !cfg.SecureCookies ||
			cfg.AuditWindow != 250000 || cfg.AuditKeyFile != "/keys/audit.key" {
			t.Fatalf("%+v", cfg)
		}
	})
	t.Run("SocketCaps", func(t *testing.T) {
		cfg, err := parseConfig([]string{"-max-sockets", "5000"}, env(map[string]string{
			"STANDIN_SOCKETS_PER_SESSION": "8", "STANDIN_SOCKETS_PER_USER": "40", "STANDIN_MAX_SOCKETS": "7",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MaxSocketsPerSession != 8 || cfg.MaxSocketsPerUser != 40 || cfg.MaxSockets != 5000 {
			t.Fatalf("%+v", cfg)
		}
	})
	t.Run("TrustedProxies", func(t *testing.T) {
		cfg, err := parseConfig(nil, env(map[string]string{"STANDIN_TRUSTED_PROXIES": " 127.0.0.1, 10.0.0.0/8 ,"}))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.TrustedProxies, []string{"127.0.0.1", "10.0.0.0/8"}) {
			t.Fatalf("%q", cfg.TrustedProxies)
		}
	})
	t.Run("FlagsOverrideEnvironment", func(t *testing.T) {
		cfg, err := parseConfig([]string{"-addr", "127.0.0.1:1", "-demo=false", "-tz", "UTC"},
			env(map[string]string{"STANDIN_ADDR": "0.0.0.0:9000", "STANDIN_DEMO": "true"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != "127.0.0.1:1" || cfg.Demo != server.DemoOff || cfg.Location != time.UTC {
			t.Fatalf("%+v", cfg)
		}
	})
	for name, e := range map[string]map[string]string{
		"ErrDemo":        {"STANDIN_DEMO": "maybe"},
		"ErrTZ":          {"STANDIN_TZ": "Mars/Olympus"},
		"ErrSecure":      {"STANDIN_SECURE_COOKIES": "sometimes"},
		"ErrLogLevel":    {"STANDIN_LOG_LEVEL": "loud"},
		"ErrWindow":      {"STANDIN_AUDIT_WINDOW": "lots"},
		"ErrSmallWindow": {"STANDIN_AUDIT_WINDOW": "10"},
		"ErrPerSession":  {"STANDIN_SOCKETS_PER_SESSION": "0"},
		"ErrPerUser":     {"STANDIN_SOCKETS_PER_USER": "many"},
		"ErrMaxSockets":  {"STANDIN_MAX_SOCKETS": "-5"},
		"ErrProxies":     {"STANDIN_TRUSTED_PROXIES": "balancer.local"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseConfig(nil, env(e)); err == nil {
				t.Fatalf("%v accepted", e)
			}
		})
	}
	t.Run("ErrUnknownFlag", func(t *testing.T) {
		if _, err := parseConfig([]string{"-nope"}, env(nil)); err == nil {
			t.Fatal("unknown flag accepted")
		}
	})
}

// "standin audit-key" creates a key file once, readable by its owner
// only, prints its public half, and leaves an existing one alone.
func TestAuditKeyCommand(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.key")
	var out bytes.Buffer
	if err := auditKey([]string{"-out", path}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(out.String(), "created") || !strings.Contains(out.String(), "BEGIN PUBLIC KEY") || strings.Contains(out.String(), "PRIVATE") {
		t.Fatalf("printed %q", out.String())
	}
	out.Reset()
	if err := auditKey(nil, func(k string) string { return map[string]string{"STANDIN_AUDIT_KEY_FILE": path}[k] }, &out); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if !bytes.Equal(raw, again) || !strings.Contains(out.String(), "left as it is") {
		t.Fatalf("an existing key was changed or not reported: %q", out.String())
	}
	if err := auditKey(nil, func(string) string { return "" }, &out); err == nil {
		t.Fatal("no file named, accepted")
	}
}

// "standin database" runs the embedded database alone: consoles join it by
// the URI it prints, a second one on the same data directory is refused,
// and what was written outlives it.
func TestDatabaseCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := func(string) string { return "" }
	start := func() (uri string, stop func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		r, w := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- database(ctx, []string{"-addr", "127.0.0.1:0", "-data-dir", dir}, env, w) }()
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			cancel()
			t.Fatalf("database printed nothing: %v (%v)", err, <-done)
		}
		uri, ok := strings.CutPrefix(strings.TrimSpace(line), "database ready: MONGODB_URI=")
		if !ok {
			t.Fatalf("printed %q", line)
		}
		return uri, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("database stopped with %v", err)
			}
		}
	}

	uri, stop := start()
	ctx := context.Background()
	db, err := mongostore.Open(ctx, uri, "standin", mongostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureProject(ctx, &standin.Project{Code: "NEURO", Name: "Neuro Imaging"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := database(ctx, []string{"-addr", "127.0.0.1:0", "-data-dir", dir}, env, io.Discard); err == nil {
		t.Fatal("a second database on the same data directory started")
	}
	stop()

	uri, stop = start()
	defer stop()
	db, err = mongostore.Open(ctx, uri, "standin", mongostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	projects, err := db.Projects(ctx)
	if err != nil || len(projects) != 1 || projects[0].Code != "NEURO" {
		t.Fatalf("after a restart: %v, %v", projects, err)
	}
	if err := database(ctx, []string{"-data-dir", dir, "extra"}, env, io.Discard); err == nil {
		t.Fatal("an unexpected argument was accepted")
	}
}

// "standin balance" proxies to the backends it is given, prints its URL
// once it listens, stops when interrupted, and refuses a command line
// without backends or with a malformed one.
func TestBalanceCommand(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s %s", r.Host, r.URL.Path)
	}))
	defer backend.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- balance(ctx, []string{"-addr", "127.0.0.1:0", "-backend", backend.URL}, w) }()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("balance printed nothing: %v (%v)", err, <-done)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "balancer ready: URL=")
	if !ok {
		t.Fatalf("printed %q", line)
	}
	// The backend counts as up after its first health check.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if want := "backend saw " + strings.TrimPrefix(url, "http://") + " /x"; res.StatusCode == http.StatusOK && string(body) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("through the balancer: %d %q", res.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("balance stopped with %v", err)
	}

	for name, args := range map[string][]string{
		"ErrNoBackend":  {"-addr", "127.0.0.1:0"},
		"ErrBadBackend": {"-backend", "localhost:8081"},
		"ErrArgument":   {"-backend", backend.URL, "extra"},
		"ErrAddr":       {"-addr", "nowhere", "-backend", backend.URL},
	} {
		t.Run(name, func(t *testing.T) {
			if err := balance(context.Background(), args, io.Discard); err == nil {
				t.Fatalf("%q accepted", args)
			}
		})
	}
}
