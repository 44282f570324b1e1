package balancer

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// picker is the proxy's transport: it sends each request to the next
// backend that is up, takes out a backend whose connection fails, and
// tries the request on another when that cannot do twice what the client
// asked once.
type picker struct {
	b    *Balancer
	next http.RoundTripper
}

// RoundTrip sends req to a healthy backend. A failed attempt is tried again
// on another backend when no connection was made (nothing reached the
// backend: refused, unreachable), or when the request is idempotent and has
// no body to send again; otherwise the error is returned and the client
// gets 502. With no backend up it returns errNoBackend.
func (p *picker) RoundTrip(req *http.Request) (*http.Response, error) {
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		// The transport closes the body even when it never read it; a
		// retry after a refused connection sends the same, unread body.
		body = keepOpen{req.Body}
	}
	var tried []*backend
	var lastErr error
	for {
		be := p.b.pick(tried)
		if be == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, errNoBackend
		}
		tried = append(tried, be)
		var connected atomic.Bool
		trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }}
		out := req.Clone(httptrace.WithClientTrace(req.Context(), trace))
		out.URL.Scheme, out.URL.Host = be.url.Scheme, be.url.Host
		out.Body = body
		res, err := p.next.RoundTrip(out)
		if err == nil {
			return res, nil
		}
		if req.Context().Err() != nil {
			// The client went away: the backend is not to blame.
			return nil, err
		}
		p.b.markDown(be, err)
		lastErr = err
		if connected.Load() && (body != nil || !idempotent(req.Method)) {
			return nil, err
		}
	}
}

// keepOpen is a request body whose Close is left to the server that
// received it, so that an attempt that failed does not close it for the
// next.
type keepOpen struct{ io.Reader }

func (keepOpen) Close() error { return nil }

// idempotent reports whether sending a request twice has the effect of
// sending it once (RFC 9110, section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
