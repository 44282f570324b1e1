// Package upgrade serves net/http handlers that upgrade connections (such as
// WebSocket endpoints built on github.com/coder/websocket) from a Fiber
// application, so the API, the UI and the WebSocket endpoint share one port.
package upgrade

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Handler returns a Fiber handler that runs h, a net/http handler, for the
// request. Responses h writes without hijacking (for example a 401 or 403
// JSON error written before an upgrade) pass through unchanged, and so do
// streamed responses when h flushes.
//
// h may hijack the connection, which websocket.Accept does. fasthttpadaptor
// supports hijacking but never sends the status line and headers written
// before the hijack, which net/http does send; Handler holds back a
// WriteHeader(http.StatusSwitchingProtocols) and writes that response head
// onto the connection when h hijacks it, so the client sees a normal
// "101 Switching Protocols" before the first frame.
//
// The request h receives differs from a net/http one in two ways:
//
//   - r.Context() is the fasthttp request context. It is not cancelled when
//     the client goes away or the connection is hijacked, so handlers must
//     never use it; use a context owned by the server instead.
//   - r's strings may share memory with the fasthttp request, which is
//     reused once the connection closes. Copy (strings.Clone) any value kept
//     beyond the connection's lifetime.
func Handler(h http.Handler) fiber.Handler {
	fh := fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(wrap(w), r)
	}))
	return func(c *fiber.Ctx) error {
		fh(c.Context())
		return nil
	}
}

// wrap returns a writer that implements http.Flusher only when w does, so
// handlers probing for it see the truth.
func wrap(w http.ResponseWriter) http.ResponseWriter {
	hw := &hijackWriter{ResponseWriter: w}
	if f, ok := w.(http.Flusher); ok {
		return &flushHijackWriter{hijackWriter: hw, flusher: f}
	}
	return hw
}

// hijackWriter holds back a 101 status until the connection is hijacked,
// then writes the response head itself.
type hijackWriter struct {
	http.ResponseWriter

	mu       sync.Mutex
	switched bool // WriteHeader(101) was held back
	wrote    bool // a status was passed on to ResponseWriter
	hijacked bool
}

// WriteHeader passes every status through except 101, which is written by
// Hijack, the only way a 101 response can continue.
func (w *hijackWriter) WriteHeader(code int) {
	w.mu.Lock()
	if code == http.StatusSwitchingProtocols && !w.wrote && !w.hijacked {
		w.switched = true
		w.mu.Unlock()
		return
	}
	w.switched = false
	w.wrote = true
	w.mu.Unlock()
	w.ResponseWriter.WriteHeader(code)
}

// Write releases a held-back 101 to the underlying writer first: a body
// after a 101 without a hijack is the handler's choice, not ours to drop.
func (w *hijackWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	held := w.switched
	w.switched = false
	w.wrote = true
	w.mu.Unlock()
	if held {
		w.ResponseWriter.WriteHeader(http.StatusSwitchingProtocols)
	}
	return w.ResponseWriter.Write(p)
}

// Hijack takes over the connection and, when a 101 was held back, sends the
// status line and the headers set so far before returning it.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}

	w.mu.Lock()
	held := w.switched
	w.switched = false
	w.hijacked = true
	w.mu.Unlock()
	if !held {
		return conn, brw, nil
	}

	// The adaptor may already have buffered body bytes written before the
	// hijack; the head must precede them, so it goes straight to the
	// connection and the buffer is flushed after it.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	if err := w.Header().Write(&head); err != nil {
		conn.Close()
		return nil, nil, err
	}
	head.WriteString("\r\n")
	if brw.Writer.Buffered() == 0 {
		_, err = brw.Writer.Write(head.Bytes())
	} else {
		_, err = conn.Write(head.Bytes())
	}
	if err == nil {
		err = brw.Writer.Flush()
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw, nil
}

// Unwrap lets http.ResponseController reach the adaptor's writer.
func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// flushHijackWriter is a hijackWriter over a writer that can flush.
type flushHijackWriter struct {
	*hijackWriter
	flusher http.Flusher
}

// Flush sends a held-back 101 like Write does, then flushes.
func (w *flushHijackWriter) Flush() {
	w.mu.Lock()
	held := w.switched
	w.switched = false
	w.wrote = true
	w.mu.Unlock()
	if held {
		w.ResponseWriter.WriteHeader(http.StatusSwitchingProtocols)
	}
	w.flusher.Flush()
}
