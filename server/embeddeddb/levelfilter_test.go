package embeddeddb

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestLevelFilterWritesWhatItsHandlerWould: attributes and groups added
// to the filtered logger come out as the handler alone writes them, in
// their order, and records below the level are dropped.
func TestLevelFilterWritesWhatItsHandlerWould(t *testing.T) {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	var got, want bytes.Buffer
	filtered := slog.New(&levelFilter{min: slog.LevelWarn, next: slog.NewTextHandler(&got, opts)})
	direct := slog.New(slog.NewTextHandler(&want, opts))

	for _, l := range []*slog.Logger{filtered, direct} {
		conn := l.With("conn", "127.0.0.1:5000").WithGroup("cmd").With("name", "insert", "n", 3).WithGroup("").With()
		conn.Warn("slow", "ms", 12)
		conn.WithGroup("sqlite").Error("failed", "code", 10)
		l.With("other", true).Warn("top")
	}
	filtered.With("conn", "x").Info("dropped")
	filtered.Debug("dropped")

	strip := func(b []byte) string { // times differ
		var out bytes.Buffer
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			_, rest, _ := bytes.Cut(line, []byte(" level="))
			out.Write(rest)
			out.WriteByte('\n')
		}
		return out.String()
	}
	if g, w := strip(got.Bytes()), strip(want.Bytes()); g != w {
		t.Fatalf("filtered logger wrote\n%s\nthe handler alone writes\n%s", g, w)
	}
	if n := bytes.Count(got.Bytes(), []byte("\n")); n != 3 {
		t.Fatalf("%d records written, want the 3 at warn or above:\n%s", n, got.Bytes())
	}
}

// BenchmarkLevelFilterWith measures what FerretDB pays to derive a logger
// for a command that logs nothing.
func BenchmarkLevelFilterWith(b *testing.B) {
	l := slog.New(&levelFilter{min: slog.LevelWarn, next: slog.NewTextHandler(&bytes.Buffer{}, nil)})
	for b.Loop() {
		l.With("conn", "127.0.0.1:5000", "op", "insert").WithGroup("cmd").Info("dropped")
	}
}
