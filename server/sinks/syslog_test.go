package sinks_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"standin/server/sinks"
	"standin/server/sinks/syslog/rsyslogtest"
	"standin/server/standin"
)

// TestSyslogDelivery: a syslog sink delivers every event to a real
// rsyslogd as RFC 5424 messages, in seq order, each with its seq and
// event id in structured data and the event as JSON; while rsyslogd is
// down the sink waits, and once it is back it catches up.
func TestSyslogDelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs := rsyslogtest.Start(t, rsyslogtest.Options{})
	s := &standin.Sink{Name: "rsyslog", Kind: standin.SinkSyslog, Address: rs.Addr, Format: standin.FormatStandin,
		Enabled: true, CreatedAt: time.Now()}
	if err := f.db.CreateSink(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.run(t)

	first := f.appendEvents(t, 30)
	recs, err := rs.WaitRecords(len(first), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rs.Stop()
	more := f.appendEvents(t, 20)
	time.Sleep(500 * time.Millisecond)
	rs.Restart()
	want := append(first, more...)
	recs, err = rs.WaitRecords(len(want), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	seen := map[int64]bool{}
	for _, r := range recs {
		var seq int64
		rest, ok := strings.CutPrefix(r.StructuredData, "["+sinks.SyslogSD+" seq=\"")
		if _, err := fmt.Sscanf(rest, "%d", &seq); !ok || err != nil || !strings.Contains(rest, ` id="`) {
			t.Fatalf("structured data %q", r.StructuredData)
		}
		var e struct {
			Seq  int64  `json:"seq"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(r.Msg, "\ufeff")), &e); err != nil || e.Seq != seq || e.Type != r.MsgID {
			t.Fatalf("record %+v: %v (seq %d, type %q)", r, err, e.Seq, e.Type)
		}
		if !seen[seq] {
			seqs = append(seqs, seq)
		}
		seen[seq] = true
	}
	if len(seqs) != len(want) {
		t.Fatalf("%d distinct records, want %d", len(seqs), len(want))
	}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("record %d has seq %d, want %d", i, seqs[i], want[i])
		}
	}
}

// TestSyslogDeliveryTLS: a syslog sink speaking TLS to a real rsyslogd
// delivers once it names the authority of rsyslogd's certificate; without
// it, the certificate is refused and the health says why.
func TestSyslogDeliveryTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs := rsyslogtest.Start(t, rsyslogtest.Options{TLS: true})
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rs.CA.Raw}))
	untrusted := &standin.Sink{Name: "rsyslog without its authority", Kind: standin.SinkSyslog, Address: rs.Addr, TLS: true,
		Format: standin.FormatStandin, Enabled: true}
	trusted := &standin.Sink{Name: "rsyslog", Kind: standin.SinkSyslog, Address: rs.Addr, TLS: true, CA: ca,
		Format: standin.FormatOCSF, Enabled: true}
	for _, s := range []*standin.Sink{untrusted, trusted} {
		if err := s.Check(nil); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if err := f.db.CreateSink(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t)
	seqs := f.appendEvents(t, 10)
	recs, err := rs.WaitRecords(len(seqs), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		var e map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(r.Msg, "\ufeff")), &e); err != nil || e["class_uid"] == nil {
			t.Fatalf("an OCSF record over TLS: %v %v", r.Msg, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := f.db.SinkHealth(context.Background(), untrusted.ID)
		if err == nil && h != nil && strings.Contains(h.LastError, "certificate") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink without the authority: %+v %v", h, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(rs.Lines()) != len(recs) {
		t.Fatalf("rsyslogd got %d lines for %d records: the untrusted sink delivered", len(rs.Lines()), len(recs))
	}
}
