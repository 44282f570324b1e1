// Package balancer is a small HTTP load balancer for several Standin
// consoles on one database: it spreads requests round-robin over the
// backends whose health check passes, proxies WebSocket upgrades, and takes
// a backend out at once when a connection to it fails.
//
// It is built on net/http/httputil.ReverseProxy and knows nothing of the
// console: a backend is ready when GET /readyz answers 200. Requests keep
// their Host header, so backends check Host and Origin against the address
// people open (the balancer's); X-Forwarded-For and X-Forwarded-Proto say
// whom and how the balancer served.
package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// Defaults of Config's zero values.
const (
	DefaultHealthPath  = "/readyz"
	DefaultHealthEvery = 500 * time.Millisecond
)

// Config says where to send requests. Zero values are the defaults.
type Config struct {
	// Backends are the base URLs (scheme://host:port) requests go to.
	Backends []string
	// HealthPath is the path a backend answers 200 on while it serves
	// (default /readyz).
	HealthPath string
	// HealthEvery is how often every backend is checked (default 500ms).
	HealthEvery time.Duration
	// Transport carries requests to backends (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Logger receives backends going up and down and proxy errors
	// (default: slog.Default()).
	Logger *slog.Logger
}

// Balancer is an http.Handler that proxies to the healthy backends. Its
// health checks run while Run or Serve runs; until the first check a
// backend counts as down.
type Balancer struct {
	backends []*backend
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
	health   *http.Client
	path     string
	every    time.Duration
	log      *slog.Logger
}

// backend is one console, up or down.
type backend struct {
	url *url.URL
	up  atomic.Bool
}

// Backend is what the balancer knows of one backend.
type Backend struct {
	URL string
	Up  bool
}

// New returns a balancer over cfg.Backends. It fails when there are none
// or one is not an absolute http(s) URL without a path.
func New(cfg Config) (*Balancer, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("balancer: no backends")
	}
	b := &Balancer{path: cfg.HealthPath, every: cfg.HealthEvery, log: cfg.Logger}
	if b.path == "" {
		b.path = DefaultHealthPath
	}
	if b.every <= 0 {
		b.every = DefaultHealthEvery
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	for _, raw := range cfg.Backends {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("balancer: backend %q: want http(s)://host:port", raw)
		}
		b.backends = append(b.backends, &backend{url: &url.URL{Scheme: u.Scheme, Host: u.Host}})
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	b.health = &http.Client{
		Transport: transport,
		Timeout:   2 * time.Second,
		// A health check answers itself; a redirect is not ready.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	b.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    &picker{b: b, next: transport},
		ErrorHandler: b.proxyError,
		ErrorLog:     slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
	}
	return b, nil
}

// rewrite sets the forwarding headers and keeps the Host the client sent;
// picker chooses the backend.
func rewrite(pr *httputil.ProxyRequest) {
	pr.SetXForwarded()
	pr.Out.Host = pr.In.Host
}

// ServeHTTP proxies the request to a healthy backend, or answers 503 when
// there is none, 502 when the backends it tried failed.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.proxy.ServeHTTP(w, r)
}

// Backends says which backends are up now, in the order configured.
func (b *Balancer) Backends() []Backend {
	out := make([]Backend, len(b.backends))
	for i, be := range b.backends {
		out[i] = Backend{URL: be.url.String(), Up: be.up.Load()}
	}
	return out
}

// errNoBackend is the error when no backend is up (or left to try).
var errNoBackend = errors.New("no backend is ready")

// proxyError answers a request that reached no backend: 503 when none was
// up, 502 when the one tried failed. A client that went away gets nothing.
func (b *Balancer) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	status, msg := http.StatusBadGateway, "The console did not answer. Try again in a moment."
	if errors.Is(err, errNoBackend) {
		status, msg = http.StatusServiceUnavailable, "No console is ready. Try again in a moment."
	} else {
		b.log.Warn("proxying", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":"unavailable","message":%q}}`+"\n", msg)
}

// pick returns the next backend that is up and not in tried, round-robin,
// or nil.
func (b *Balancer) pick(tried []*backend) *backend {
	n := len(b.backends)
	start := b.next.Add(1) - 1
	for i := range n {
		be := b.backends[(start+uint64(i))%uint64(n)]
		if be.up.Load() && !contains(tried, be) {
			return be
		}
	}
	return nil
}

func contains(list []*backend, be *backend) bool {
	for _, x := range list {
		if x == be {
			return true
		}
	}
	return false
}

// markDown takes a backend out until a health check passes again.
func (b *Balancer) markDown(be *backend, err error) {
	if be.up.Swap(false) {
		b.log.Warn("backend down", "backend", be.url.String(), "err", err)
	}
}

// markUp puts a backend back in.
func (b *Balancer) markUp(be *backend) {
	if !be.up.Swap(true) {
		b.log.Info("backend up", "backend", be.url.String())
	}
}

// checkAll checks every backend once, at the same time, and returns when
// all have answered or timed out.
func (b *Balancer) checkAll(ctx context.Context) {
	done := make(chan struct{}, len(b.backends))
	for _, be := range b.backends {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := b.check(ctx, be); err != nil {
				if ctx.Err() == nil {
					b.markDown(be, err)
				}
				return
			}
			b.markUp(be)
		}()
	}
	for range b.backends {
		<-done
	}
}

// check asks one backend whether it is ready.
func (b *Balancer) check(ctx context.Context, be *backend) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, be.url.JoinPath(b.path).String(), nil)
	if err != nil {
		return err
	}
	res, err := b.health.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s", res.Status)
	}
	return nil
}

// Run checks the backends at once and then every HealthEvery, until ctx
// ends.
func (b *Balancer) Run(ctx context.Context) {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		b.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
