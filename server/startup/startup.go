// Package startup answers on the console's address while the console
// starts: the address is taken at once, a browser sees a page saying what
// is being done and since when, API clients get 503 with a clear code, and
// when the console is ready the listener is handed over to it without
// refusing a single connection.
package startup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server answers "starting" on a listener until Handoff.
type Server struct {
	ln    net.Listener
	log   *slog.Logger
	began time.Time
	step  atomic.Pointer[string]

	http    *http.Server
	served  chan struct{}  // closed when http.Serve has returned
	open    sync.WaitGroup // the starting server's connections
	early   *feed          // connections for the starting answers
	console *feed          // connections for the console, after Handoff
	current atomic.Pointer[feed]
}

// Serve starts answering on ln. The first step reads "Starting".
func Serve(ln net.Listener, log *slog.Logger) *Server {
	s := &Server{ln: ln, log: log, began: time.Now(), served: make(chan struct{})}
	first := "Starting"
	s.step.Store(&first)
	s.early = newFeed(ln.Addr(), nil)
	s.console = newFeed(ln.Addr(), ln)
	s.current.Store(s.early)
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.open.Done()
			}
		},
	}
	// One answer per connection: the connection a request came on never
	// outlives the starting answers, so a request after the handoff is
	// always the console's.
	s.http.SetKeepAlivesEnabled(false)
	go s.accept()
	go func() {
		defer close(s.served)
		_ = s.http.Serve(s.early) // returns once early is closed
	}()
	return s
}

// Step says what start-up is doing now, in words a person reads on the
// starting page ("Reading the audit log").
func (s *Server) Step(step string) { s.step.Store(&step) }

// Handoff stops the starting answers and returns the listener the console
// serves on: every connection accepted from now on goes to it. Call
// Finish after the console serves.
func (s *Server) Handoff() net.Listener {
	s.current.Store(s.console)
	s.early.close(net.ErrClosed)
	<-s.served
	return s.console
}

// Finish waits, within ctx, for the starting answers still being written,
// then closes any connection left (one that never sent a request).
func (s *Server) Finish(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.open.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		_ = s.http.Close()
		<-done
		return fmt.Errorf("finish the starting answers: %w", ctx.Err())
	}
}

// Abort stops answering and closes the listener; for a start-up that
// failed before Handoff.
func (s *Server) Abort() {
	s.current.Store(s.console)
	s.early.close(net.ErrClosed)
	_ = s.console.Close()
	_ = s.http.Close()
	<-s.served
}

// accept is the listener's one accept loop: it gives each connection to
// the current feed, to the console's once the starting one has closed.
func (s *Server) accept() {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.early.close(err)
				s.console.close(err)
				return
			}
			// Out of descriptors and the like: wait and try again, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accepting a connection failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		for f := s.current.Load(); !f.deliver(c); {
			next := s.current.Load()
			if next == f {
				_ = c.Close() // no one serves any more: stopped or aborted
				break
			}
			f = next // handed off meanwhile
		}
	}
}

// feed is a net.Listener whose connections come from the accept loop.
type feed struct {
	addr  net.Addr
	conns chan net.Conn // unbuffered: a connection is handed over or refused, never left inside
	done  chan struct{}
	once  sync.Once
	err   error
	owner net.Listener // closed with the feed, when set
}

func newFeed(addr net.Addr, owner net.Listener) *feed {
	return &feed{addr: addr, conns: make(chan net.Conn), done: make(chan struct{}), owner: owner}
}

// deliver hands c to the feed's Accept; false when the feed has closed.
func (f *feed) deliver(c net.Conn) bool {
	select {
	case f.conns <- c:
		return true
	case <-f.done:
		return false
	}
}

func (f *feed) close(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.done)
	})
}

func (f *feed) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.done:
		return nil, f.err
	}
}

// Close stops the feed and, for the console's, the listener under it.
func (f *feed) Close() error {
	f.close(net.ErrClosed)
	if f.owner != nil {
		if err := f.owner.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}

func (f *feed) Addr() net.Addr { return f.addr }

// ServeHTTP answers every request while the console starts: the health
// check says the process is alive, everything else says it is starting.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	step, since := *s.step.Load(), time.Since(s.began)
	if r.URL.Path == "/healthz" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "starting", "step": step})
		return
	}
	h.Set("Retry-After", "2")
	page := (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		!strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/ws" && r.URL.Path != "/readyz"
	if !page {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{
			"code":    "unavailable",
			"message": fmt.Sprintf("Standin is starting (%s, %s so far). Try again in a moment.", lowerFirst(step), words(since)),
		}})
		return
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src '"+styleHash+"'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method == http.MethodHead {
		return
	}
	if err := pageTemplate.Execute(w, pageData{Step: step, Since: words(since), Style: template.CSS(style)}); err != nil {
		s.log.Debug("writing the starting page", "err", err)
	}
}

// lowerFirst puts a step's first letter in lower case, to use it in a
// sentence.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// words says a duration as a person would: "4 s", "2 min 5 s".
func words(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
}

type pageData struct {
	Step, Since string
	Style       template.CSS
}

// style is the page's only styling, allowed by its hash in the page's
// Content-Security-Policy.
const style = `
body{margin:0;min-height:100vh;display:grid;place-items:center;font:16px/1.5 system-ui,sans-serif;color:#1f2933;background:#f5f7fa}
main{text-align:center;padding:2rem;max-width:28rem}
h1{font-size:1.25rem;margin:1rem 0 .25rem}
p{margin:.25rem 0;color:#52606d}
.spinner{width:2.5rem;height:2.5rem;margin:auto;border-radius:50%;border:.25rem solid #d9e2ec;border-top-color:#3e63dd;animation:spin 1s linear infinite}
@keyframes spin{to{transform:rotate(360deg)}}
@media (prefers-reduced-motion:reduce){.spinner{animation-duration:4s}}
`

var styleHash = func() string {
	sum := sha256.Sum256([]byte(style))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

var pageTemplate = template.Must(template.New("starting").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="2">
<title>Starting · Standin</title>
<style>{{.Style}}</style>
</head>
<body>
<main role="status" aria-live="polite">
<div class="spinner" aria-hidden="true"></div>
<h1>Standin is starting</h1>
<p id="step">{{.Step}}…</p>
<p>Started {{.Since}} ago. This page opens the console by itself when it is ready.</p>
</main>
</body>
</html>
`))
