package startup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func get(t *testing.T, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return res.StatusCode, res.Header, string(body)
}

func TestStartingAnswers(t *testing.T) {
	ln := listen(t)
	s := Serve(ln, slog.New(slog.DiscardHandler))
	t.Cleanup(s.Abort)
	s.Step("Reading the audit log")
	base := "http://" + ln.Addr().String()
	c := &http.Client{Timeout: 10 * time.Second}

	t.Run("Health", func(t *testing.T) {
		status, _, body := get(t, c, base+"/healthz")
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK || got["status"] != "starting" || got["step"] != "Reading the audit log" {
			t.Fatalf("/healthz: %d %s", status, body)
		}
	})

	t.Run("APIAndReadiness", func(t *testing.T) {
		for _, path := range []string{"/readyz", "/api/v1/session", "/ws"} {
			status, h, body := get(t, c, base+path)
			var got struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusServiceUnavailable ||
				got.Error.Code != "unavailable" || !strings.Contains(got.Error.Message, "Standin is starting (reading the audit log, ") {
				t.Fatalf("%s: %d %s", path, status, body)
			}
			if h.Get("Retry-After") == "" || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: headers %v", path, h)
			}
		}
		res, err := c.Post(base+"/api/v1/auth/login", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a sign-in while starting: %d", res.StatusCode)
		}
	})

	t.Run("Page", func(t *testing.T) {
		status, h, body := get(t, c, base+"/")
		if status != http.StatusServiceUnavailable || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Fatalf("/: %d %v", status, h)
		}
		for _, want := range []string{"Standin is starting", "Reading the audit log…", "Started 0 s ago.", `http-equiv="refresh"`, `role="status"`} {
			if !strings.Contains(body, want) {
				t.Fatalf("the page lacks %q:\n%s", want, body)
			}
		}
		// The page's one style element is allowed by its hash, and
		// nothing else is: no script, no other source.
		_, after, _ := strings.Cut(body, "<style>")
		css, _, ok := strings.Cut(after, "</style>")
		if !ok {
			t.Fatalf("no style element:\n%s", body)
		}
		sum := sha256.Sum256([]byte(css))
		want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, want) || !strings.Contains(csp, "default-src 'none'") {
			t.Fatalf("Content-Security-Policy %q does not allow the page's style (%s) alone", csp, want)
		}
	})
}

// TestHandoff: while the console takes over, clients that keep calling
// are answered by one or the other, never refused; afterwards only the
// console answers, on the same address and the same keep-alive client.
func TestHandoff(t *testing.T) {
	ln := listen(t)
	s := Serve(ln, slog.New(slog.DiscardHandler))
	base := "http://" + ln.Addr().String()
	keepAlive := &http.Client{Timeout: 10 * time.Second}
	if status, _, _ := get(t, keepAlive, base+"/"); status != http.StatusServiceUnavailable {
		t.Fatalf("before the handoff: %d", status)
	}

	var starting, console, failed atomic.Int64
	stop := make(chan struct{})
	var callers sync.WaitGroup
	for range 8 {
		callers.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.Get(base + "/api/v1/session")
				if err != nil {
					t.Errorf("a call during the handoff failed: %v", err)
					failed.Add(1)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusServiceUnavailable:
					starting.Add(1)
				case http.StatusOK:
					console.Add(1)
				default:
					t.Errorf("a call during the handoff: %d", res.StatusCode)
				}
			}
		})
	}
	for starting.Load() < 20 {
		time.Sleep(time.Millisecond)
	}

	consoleLn := s.Handoff()
	if consoleLn.Addr().String() != ln.Addr().String() {
		t.Fatalf("the console listens on %s, want %s", consoleLn.Addr(), ln.Addr())
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "console") })}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(consoleLn) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}

	for console.Load() < 20 && failed.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	callers.Wait()
	t.Logf("result: answered starting=%d console=%d refused=%d", starting.Load(), console.Load(), failed.Load())

	if status, _, body := get(t, keepAlive, base+"/"); status != http.StatusOK || body != "console" {
		t.Fatalf("after the handoff, the keep-alive client got %d %q", status, body)
	}

	// Closing the console closes the address.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("the console's Serve returned %v", err)
	}
	if conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Fatal("the address still accepts connections after the console closed")
	}
}

func TestAbort(t *testing.T) {
	ln := listen(t)
	s := Serve(ln, slog.New(slog.DiscardHandler))
	s.Abort()
	if conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Fatal("the address still accepts connections after Abort")
	}
}

func TestWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond: "0 s",
		4 * time.Second:        "4 s",
		125 * time.Second:      "2 min 5 s",
		time.Hour:              "60 min 0 s",
	} {
		if got := words(d); got != want {
			t.Errorf("words(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestFinishClosesSilentConnections: a connection that never sends a
// request (a browser's preconnect) does not hold the handoff up past
// Finish's deadline; it is closed, and the browser opens another.
func TestFinishClosesSilentConnections(t *testing.T) {
	ln := listen(t)
	s := Serve(ln, slog.New(slog.DiscardHandler))
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The connection is the starting server's once it answers something
	// on another one.
	if status, _, _ := get(t, &http.Client{Timeout: 10 * time.Second}, "http://"+ln.Addr().String()+"/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz: %d", status)
	}
	consoleLn := s.Handoff()
	defer consoleLn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Finish(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Finish with a silent connection open: %v", err)
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the silent connection read %d bytes, %v; want it closed", n, err)
	}
}

// TestConnectionWithNoOneServing: a connection accepted when the starting
// answers have stopped and no console took over is closed, not held, and
// the accept loop goes on (to see the listener close).
func TestConnectionWithNoOneServing(t *testing.T) {
	// A feed is a listener the test hands connections to.
	ln := newFeed(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	s := Serve(ln, slog.New(slog.DiscardHandler))
	defer s.Abort()
	s.early.close(net.ErrClosed) // stopped, and never handed off
	client, server := net.Pipe()
	defer client.Close()
	if !ln.deliver(server) {
		t.Fatal("the accept loop did not take the connection")
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the connection read %d bytes, %v; want it closed", n, err)
	}
	client2, server2 := net.Pipe()
	defer client2.Close()
	taken := make(chan bool, 1)
	go func() { taken <- ln.deliver(server2) }()
	select {
	case ok := <-taken:
		if !ok {
			t.Fatal("the listener closed before the next connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the accept loop did not come back for the next connection")
	}
}
