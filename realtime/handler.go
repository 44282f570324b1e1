package realtime

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

var _ http.Handler = (*Hub)(nil)

// ServeHTTP upgrades a request authenticated by the Config.Cookie cookie
// to a WebSocket. It returns once the socket is open and serves it
// on a goroutine of its own until it closes; Shutdown waits for it.
//
// Before upgrading it answers with {"error":{"code":C,"message":M}}:
// 503 EUnavailable while shutting down, when Sessions is unavailable or
// when the hub holds all the sockets it may (SocketLimit), 401
// EUnauthenticated without a valid session, and 500 EInternal on a fault. websocket.Accept answers a
// foreign Origin with 403 and a request that is not a WebSocket handshake
// with 426. A socket past its session's or its person's cap is upgraded
// and closed at once with StatusTooManySockets, which a browser can read
// where it cannot read an HTTP status.
//
// The request's context is never used: behind Fiber it is never cancelled,
// and after the upgrade it no longer describes the connection.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		writeError(w, http.StatusServiceUnavailable, EUnavailable, "The server is shutting down; reconnect in a moment.")
		return
	}
	defer h.handlers.Done()

	cookie, err := r.Cookie(h.cfg.Cookie)
	if err != nil || cookie.Value == "" {
		writeError(w, http.StatusUnauthorized, EUnauthenticated, "Sign in to open a live connection.")
		return
	}
	// Kept to re-check the session when it expires; never logged.
	token := strings.Clone(cookie.Value)
	remote := strings.Clone(r.RemoteAddr)

	p, err := h.authenticate(token)
	switch code := ErrorCode(err); {
	case err == nil && (p == nil || p.SessionID == "" || p.UserID == ""):
		h.log.Error("realtime: session store returned an incomplete principal", "remote", remote)
		writeError(w, http.StatusInternalServerError, EInternal, "An internal error occurred.")
		return
	case err == nil:
	case code == EUnauthenticated:
		writeError(w, http.StatusUnauthorized, code, ErrorMessage(err))
		return
	case code == EUnavailable:
		h.log.Warn("realtime: session store unavailable", "err", err, "remote", remote)
		writeError(w, http.StatusServiceUnavailable, code, ErrorMessage(err))
		return
	default:
		h.log.Error("realtime: authenticating a socket failed", "err", err, "remote", remote)
		writeError(w, http.StatusInternalServerError, EInternal, "An internal error occurred.")
		return
	}

	place, v := h.admit(p.SessionID, p.UserID)
	if v == hubFull {
		writeError(w, http.StatusServiceUnavailable, EUnavailable,
			"The server holds as many live connections as it can; try again in a moment.")
		return
	}
	rec := &hijackRecorder{ResponseWriter: w}
	ws, err := websocket.Accept(rec, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.OriginPatterns})
	if err != nil {
		// Accept has answered the request already.
		h.release(place)
		h.log.Debug("realtime: upgrade refused", "err", err, "remote", remote, "user", p.UserID)
		return
	}
	// The socket gets a fresh goroutine rather than keeping this one, so
	// that what the HTTP server holds for the request can be collected.
	// It joins the handlers Shutdown waits for while this call still
	// counts among them.
	if v != admitted {
		reason := ReasonTooManyForSession
		if v == userFull {
			reason = ReasonTooManyForUser
		}
		h.log.Debug("realtime: socket over its cap refused", "reason", reason, "remote", remote, "user", p.UserID)
		h.handlers.Add(1)
		go func() {
			defer h.handlers.Done()
			defer h.release(place)
			h.refuse(ws, rec.conn, reason)
		}()
		return
	}
	c := newConn(h, ws, rec.conn, p, token, remote)
	if !h.register(c) {
		ws.Close(websocket.StatusGoingAway, ReasonShutdown)
		h.release(place)
		return
	}
	h.handlers.Add(1)
	go func() {
		defer h.handlers.Done()
		defer h.release(place)
		c.serve()
	}()
}

// readBufferSize sizes the buffer a socket reads client frames through.
// Clients send only short subscribe and unsubscribe lines and pongs, so it
// is far smaller than the HTTP server's, which an idle socket would
// otherwise hold for its whole life; a longer frame just takes more reads.
const readBufferSize = 512

// hijackRecorder keeps the connection websocket.Accept hijacks, so that
// Shutdown can drop a socket whose close handshake outlives its deadline:
// coder/websocket's CloseNow waits for a handshake in progress. It also
// gives the socket a reader of readBufferSize when the HTTP server's holds
// no bytes of it yet; clients wait for the upgrade before they send.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.conn = conn
	if err == nil && brw.Reader.Buffered() == 0 {
		brw = bufio.NewReadWriter(bufio.NewReaderSize(conn, readBufferSize), brw.Writer)
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *hijackRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authenticate looks the token up under the hub's context.
func (h *Hub) authenticate(token string) (*Principal, error) {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.AuthTimeout)
	defer cancel()
	return h.cfg.Sessions.Authenticate(ctx, token)
}

// errorBody is the API's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var body errorBody
	body.Error.Code = code
	body.Error.Message = message
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
