package sinks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"standin/server/audit"
	"standin/server/sinks/ocsf"
	"standin/server/standin"
)

// record is one event as a sink receives it.
type record struct {
	event *standin.Event
	data  []byte // the event in the sink's format
}

// encode writes e in format.
func encode(format standin.SinkFormat, e *standin.Event) ([]byte, error) {
	switch format {
	case standin.FormatStandin:
		return json.Marshal(audit.EventJSON(e))
	case standin.FormatOCSF:
		return ocsf.Encode(e, ocsf.Product{Name: "Standin", Vendor: "Standin"})
	}
	return nil, fmt.Errorf("sink format %q is not known", format)
}

// transport carries batches of records to one sink.
type transport interface {
	// Send delivers recs, in order; nil means the sink acknowledged
	// them all.
	Send(ctx context.Context, recs []record) error
	Close() error
}

// Headers of a webhook's batches.
const (
	// HeaderTimestamp carries when the batch was signed, in Unix
	// seconds.
	HeaderTimestamp = "X-Standin-Timestamp"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256, keyed
	// with the sink's secret, of the timestamp, a ".", and the body.
	HeaderSignature = "X-Standin-Signature"
	// HeaderSeqs carries the first and last seq of the batch ("41-57").
	HeaderSeqs = "X-Standin-Seqs"
	// ContentType is a batch's body: one JSON document a line.
	ContentType = "application/x-ndjson"
)

// Sign returns the signature of body sent at t with secret, as
// HeaderSignature carries it: what a receiver computes to check a batch.
func Sign(secret string, t time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhook posts batches to an HTTP address.
type webhook struct {
	url, secret string
	client      *http.Client
	now         func() time.Time
}

func newWebhook(s *standin.Sink, allow *Allowlist, timeout time.Duration, now func() time.Time) *webhook {
	host, _, _ := s.HostPort()
	tr := &http.Transport{
		DialContext:         allow.DialContext,
		TLSClientConfig:     tlsConfig(s, host),
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        2,
		IdleConnTimeout:     time.Minute,
		// A sink's address is checked on every connection; a proxy
		// from the environment would bypass that.
		Proxy: nil,
	}
	return &webhook{url: s.URL, secret: s.Secret, now: now, client: &http.Client{
		Transport: tr, Timeout: timeout,
		// A redirect could lead anywhere: the allowlist names where to go.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (w *webhook) Send(ctx context.Context, recs []record) error {
	var body bytes.Buffer
	for _, r := range recs {
		body.Write(r.data)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	t := w.now()
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "Standin audit sink")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(t.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(w.secret, t, body.Bytes()))
	if len(recs) > 0 {
		req.Header.Set(HeaderSeqs, fmt.Sprintf("%d-%d", recs[0].event.Seq, recs[len(recs)-1].event.Seq))
	}
	res, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook post: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", res.Status)
	}
	return nil
}

func (w *webhook) Close() error {
	w.client.CloseIdleConnections()
	return nil
}
