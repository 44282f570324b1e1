package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("syslog: client closed")

// flushSize is how many framed bytes Send gathers before writing them, so
// that a batch of small records costs few writes and a large batch bounded
// memory.
const flushSize = 64 << 10

// probeWait is how long Send waits to learn whether the receiver has closed
// an idle connection: long enough for the kernel to report a FIN or RST it
// already holds, short enough not to matter per batch.
const probeWait = time.Millisecond

// Client sends batches of Messages to one receiver over one connection,
// opened on the first Send and again on the Send after a failure.
//
// A Client is for one goroutine at a time: Send and Close must not run
// concurrently. To stop a Send in progress, cancel its context.
type Client struct {
	cfg    Config // with defaults
	cfgErr error
	tls    *tls.Config
	conn   net.Conn // what Send writes to: raw, or TLS over raw
	raw    net.Conn // the TCP connection
	closed bool
	frame  []byte // one formatted record, reused
	buf    []byte // framed records waiting to be written, reused
}

// New returns a Client for cfg. It does not connect; a cfg that fails
// Validate makes every Send return that error.
func New(cfg Config) *Client {
	c := &Client{cfg: cfg.withDefaults(), cfgErr: cfg.Validate()}
	if cfg.TLS != nil {
		c.tls = cfg.TLS.Clone()
		if c.tls.ServerName == "" {
			if host, _, err := net.SplitHostPort(cfg.Address); err == nil {
				c.tls.ServerName = host
			}
		}
	}
	return c
}

// Send writes msgs, in order, each framed as "LEN SP SYSLOG-MSG" (RFC 6587
// §3.4.1, RFC 5425 §4.3), connecting first when there is no connection or
// the receiver has closed it.
//
// Every message is validated before anything is written: an invalid one
// fails the whole batch with an error wrapping ErrInvalid and its index,
// and leaves the connection as it was.
//
// Connecting is bounded by DialTimeout and each write by WriteTimeout, and
// both stop when ctx ends (the error then wraps ctx's error). On any
// connection error Send closes the connection and returns the error wrapped
// with the address; part of the batch may have been delivered, so the caller
// resends the whole batch and a later Send reconnects.
//
// After Close, Send returns ErrClosed.
func (c *Client) Send(ctx context.Context, msgs []Message) error {
	if c.closed {
		return ErrClosed
	}
	if c.cfgErr != nil {
		return fmt.Errorf("syslog: config: %w", c.cfgErr)
	}
	for i, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("syslog: message %d of %d: %w", i, len(msgs), err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("syslog: sending to %s: %w", c.cfg.Address, err)
	}
	if c.conn != nil && !c.alive() {
		c.drop()
	}
	if c.conn == nil {
		conn, raw, err := c.dial(ctx)
		if err != nil {
			return err
		}
		c.conn, c.raw = conn, raw
	}

	// A cancelled ctx ends a blocked write by moving its deadline to the
	// past; write sets the deadline before it looks at ctx, so the two
	// cannot undo each other.
	conn := c.conn
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired // so that it cannot move the next Send's deadlines
		}
	}()

	buf := c.buf[:0]
	for i, m := range msgs {
		c.frame = appendFormat(c.frame[:0], m, c.cfg)
		buf = strconv.AppendInt(buf, int64(len(c.frame)), 10)
		buf = append(buf, ' ')
		buf = append(buf, c.frame...)
		if len(buf) >= flushSize || i == len(msgs)-1 {
			if err := c.write(ctx, buf); err != nil {
				c.drop()
				return err
			}
			buf = buf[:0]
		}
	}
	if cap(buf) <= 4*flushSize {
		c.buf = buf
	}
	if cap(c.frame) > 4*flushSize {
		c.frame = nil
	}
	return nil
}

// write writes b within WriteTimeout and ctx's deadline.
func (c *Client) write(ctx context.Context, b []byte) error {
	deadline := time.Now().Add(c.cfg.WriteTimeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	if err := c.conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("syslog: sending to %s: setting the write deadline: %w", c.cfg.Address, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("syslog: sending to %s: %w", c.cfg.Address, err)
	}
	if _, err := c.conn.Write(b); err != nil {
		ctxErr := ctx.Err()
		if ctxErr == nil && ctxDeadline && errors.Is(err, os.ErrDeadlineExceeded) {
			// ctx's own timer may fire a moment after the connection's.
			ctxErr = context.DeadlineExceeded
		}
		if ctxErr != nil {
			return fmt.Errorf("syslog: sending to %s: %w (%w)", c.cfg.Address, ctxErr, err)
		}
		return fmt.Errorf("syslog: sending to %s: %w", c.cfg.Address, err)
	}
	return nil
}

// dial opens the connection, with the TLS handshake when configured, and
// returns it with the TCP connection under it.
func (c *Client) dial(ctx context.Context) (conn, raw net.Conn, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	dial := c.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err = dial(ctx, "tcp", c.cfg.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("syslog: connecting to %s: %w", c.cfg.Address, err)
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("syslog: connecting to %s: Dial returned no connection", c.cfg.Address)
	}
	if c.tls == nil {
		return raw, raw, nil
	}
	tc := tls.Client(raw, c.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, nil, fmt.Errorf("syslog: TLS handshake with %s: %w", c.cfg.Address, err)
	}
	return tc, raw, nil
}

// alive reports whether the receiver has kept the connection open. A syslog
// receiver never writes, so a read that does not time out at once means a
// FIN, a TLS close_notify or a reset: writing then would put the batch into
// a socket nobody reads.
func (c *Client) alive() bool {
	if err := c.conn.SetReadDeadline(time.Now().Add(probeWait)); err != nil {
		return false
	}
	var b [512]byte
	_, err := c.conn.Read(b[:])
	if err == nil {
		// Bytes a receiver should not send; the connection still works.
		return c.conn.SetReadDeadline(time.Time{}) == nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return c.conn.SetReadDeadline(time.Time{}) == nil
}

// drop closes the connection, if any, so that the next Send reconnects. It
// closes the TCP connection under TLS directly: a TLS close would first
// write close_notify, which can block for seconds on the very connection
// that just failed.
func (c *Client) drop() {
	if c.raw != nil {
		_ = c.raw.Close()
	}
	c.conn, c.raw = nil, nil
}

// Close closes the connection, if any. Later Sends return ErrClosed. Over
// TLS it first sends close_notify, which crypto/tls bounds to 5 seconds when
// the receiver does not read.
func (c *Client) Close() error {
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.raw = nil, nil
	if err != nil {
		return fmt.Errorf("syslog: closing the connection to %s: %w", c.cfg.Address, err)
	}
	return nil
}
