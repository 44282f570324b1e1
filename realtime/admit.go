package realtime

import (
	"math"
	"net"
	"time"

	"github.com/coder/websocket"
)

// verdict is what admit decides for an authenticated upgrade.
type verdict int

const (
	admitted    verdict = iota
	hubFull             // refused before upgrading, with 503
	sessionFull         // upgraded and closed at once with StatusTooManySockets
	userFull            // likewise
)

// slot is an admitted socket's place in the hub's counts, from before its
// upgrade until its connection is closed.
type slot struct {
	sessionID string
	userID    string
	counted   bool // in the session's and the user's counts: a socket that stays
}

// fullWarnEvery bounds how often the hub logs that it refuses sockets for
// its bound: a client retrying in a loop must not flood the logs.
const fullWarnEvery = time.Minute

// admit takes a place for a socket of sessionID opened by userID. A socket
// past the hub's bound gets none (hubFull); one past its session's or
// user's cap gets a place only in the total, which it holds while it is
// being closed.
func (h *Hub) admit(sessionID, userID string) (slot, verdict) {
	bound := h.SocketLimit()
	h.mu.Lock()
	if h.open >= bound {
		open := h.open
		warn := time.Since(h.fullWarned) >= fullWarnEvery
		if warn {
			h.fullWarned = time.Now()
		}
		h.mu.Unlock()
		if warn {
			h.log.Warn("realtime: refusing new sockets: the hub holds as many as the process can afford",
				"sockets", open, "limit", bound)
		}
		return slot{}, hubFull
	}
	h.open++
	s := slot{sessionID: sessionID, userID: userID}
	v := admitted
	switch {
	case h.bySession[sessionID] >= h.cfg.MaxSocketsPerSession:
		v = sessionFull
	case h.byUser[userID] >= h.cfg.MaxSocketsPerUser:
		v = userFull
	default:
		h.bySession[sessionID]++
		h.byUser[userID]++
		s.counted = true
	}
	h.mu.Unlock()
	return s, v
}

// release gives back the place of a socket whose connection is closed, or
// that was never upgraded.
func (h *Hub) release(s slot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open--
	if !s.counted {
		return
	}
	if h.bySession[s.sessionID]--; h.bySession[s.sessionID] <= 0 {
		delete(h.bySession, s.sessionID)
	}
	if h.byUser[s.userID]--; h.byUser[s.userID] <= 0 {
		delete(h.byUser, s.userID)
	}
}

// SocketLimit returns the most sockets the hub accepts now: MaxSockets,
// and never more than the process's file descriptor limit less
// ReservedFiles. math.MaxInt means no bound.
func (h *Hub) SocketLimit() int {
	bound := math.MaxInt
	if h.cfg.MaxSockets > 0 {
		bound = h.cfg.MaxSockets
	}
	if files, ok := fileLimit(); ok {
		bound = min(bound, socketsWithin(files, h.cfg.ReservedFiles))
	}
	return bound
}

// socketsWithin is how many sockets a limit of files file descriptors
// leaves room for when reserve of them are kept for the rest of the
// process; reserve <= 0 keeps DefaultReservedFiles, or half the limit when
// that is less.
func socketsWithin(files, reserve int) int {
	if reserve <= 0 {
		reserve = min(DefaultReservedFiles, files/2)
	}
	return max(files-reserve, 0)
}

// refuseGrace bounds how long a socket refused for a cap waits for the
// client to answer its close frame before the connection is dropped, so a
// refused socket holds its file descriptor only briefly whatever the
// client does.
const refuseGrace = time.Second

// refuse closes a socket past its session's or user's cap with
// StatusTooManySockets and reason.
func (h *Hub) refuse(ws *websocket.Conn, netConn net.Conn, reason string) {
	drop := time.AfterFunc(refuseGrace, func() {
		if netConn != nil {
			netConn.Close()
		}
	})
	defer drop.Stop()
	if err := ws.Close(StatusTooManySockets, reason); err != nil {
		h.log.Debug("realtime: close handshake of a refused socket incomplete", "err", err)
	}
}
