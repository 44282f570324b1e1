// Command benchaudit measures the audit log on a large log in the embedded
// database, configured as the server configures it there: the newest
// -window events kept in memory and walks read in stored order.
//
// It builds a log of -events events (or reuses one in -data), then
// measures:
//
//   - build: appends in batches of 500 through the audit log's group
//     commit, events a second, and beside it the floor, the same events
//     inserted by the store alone, in slices between the build's;
//   - open: opening the log, which reads the whole collection once to fill
//     the window (the server's start-up cost);
//   - window queries: pages of 50 answered from memory, -queries times each:
//     by type, a subject within a manager's projects, ten pages in a row
//     with the cursor, and an after_seq catch-up;
//   - past the window: one page whose matches lie only in events older than
//     the window, which the database must answer; on FerretDB a full read
//     of the collection;
//   - export: the whole log as JSON Lines, and beside it the floor, the
//     same documents streamed raw from the database with nothing decoded;
//   - verify: the whole chain re-hashed.
//
// Usage: go run ./scripts/benchaudit [-events 1000000] [-out results.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/cpuprofile"
	"standin/scripts/internal/hostload"
	"standin/server/audit"
	"standin/server/embeddeddb"
	"standin/server/mongostore"
	"standin/server/standin"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchaudit:", err)
		os.Exit(1)
	}
}

// result is one scenario.
type result = benchresult.Result

type bench struct {
	ctx       context.Context
	db        *mongostore.DB
	store     audit.Store // the store the server would keep the log in
	segmented bool
	uri       string // the database's address, for the raw read
	events    int
	window    int
	queries   int
	results   []result
}

func run() error {
	events := flag.Int("events", 1_000_000, "events in the log")
	window := flag.Int("window", 100_000, "events kept in memory, as the server keeps on the embedded database")
	queries := flag.Int("queries", 100, "repetitions of each window query")
	dataDir := flag.String("data", "", "keep the database in this directory and reuse a log already built there (default: a temporary directory)")
	skip := flag.String("skip", "", "comma-separated scenarios to leave out: past-window, deep-pages, export, verify")
	out := flag.String("out", "", "also write the results as JSON to this file")
	buildOnly := flag.Bool("build-only", false, "only build the log in -data (and measure the build and its floor), then exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the build (with -build-only) or of the deep pages (without) to `file`")
	flag.Parse()
	if *events < *window || *window < 1 || *queries < 1 {
		return errors.New("-events must be at least -window, both and -queries positive")
	}
	dir := *dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "standin-benchaudit")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	var built []result
	if !*buildOnly {
		// The build runs in a process of its own, so that what this one
		// measures from the open on (its RSS above all) is what a server
		// starting on a log of this length holds, not what the build left.
		var err error
		if built, err = buildApart(dir, *events, *window); err != nil {
			return err
		}
	}
	ctx := context.Background()
	edb, err := embeddeddb.Start(ctx, dir, "", slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("start embedded database: %w", err)
	}
	defer edb.Close()
	db, err := mongostore.Open(ctx, edb.URI(), "benchaudit", mongostore.Options{AppendOnly: true})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close(context.WithoutCancel(ctx))

	store, segmented, err := db.AuditLog(ctx)
	if err != nil {
		return fmt.Errorf("open the audit log's store: %w", err)
	}
	b := &bench{ctx: ctx, db: db, store: store, segmented: segmented, uri: edb.URI(), events: *events, window: *window, queries: *queries, results: built}
	loadStart := hostload.Loadavg()
	if *buildOnly {
		stopProfile, err := cpuprofile.Start(*cpuProfile)
		if err != nil {
			return err
		}
		err = b.build()
		stopProfile()
		if err != nil {
			return err
		}
		return benchresult.Write(*out, benchresult.Report{Program: "benchaudit", Machine: hostload.Machine(), LoadBefore: loadStart,
			LoadAfter: hostload.Loadavg(), Results: b.results})
	}
	fmt.Printf("standin audit log: %d events, window %d; %s; load average %s\n", *events, *window, hostload.Machine(), loadStart)
	l, err := b.open()
	if err != nil {
		return err
	}
	defer l.Close(context.WithoutCancel(ctx))
	if err := b.windowQueries(l); err != nil {
		return err
	}
	skipped := func(name string) bool { return slices.Contains(strings.Split(*skip, ","), name) }
	if !skipped("past-window") {
		if err := b.pastWindow(l); err != nil {
			return err
		}
	}
	if !skipped("deep-pages") {
		stopProfile, err := cpuprofile.Start(*cpuProfile)
		if err != nil {
			return err
		}
		err = b.deepPages(l)
		stopProfile()
		if err != nil {
			return err
		}
	}
	if !skipped("export") {
		if err := b.export(l); err != nil {
			return err
		}
	}
	if !skipped("verify") {
		if err := b.verify(l); err != nil {
			return err
		}
	}
	if *out != "" {
		return benchresult.Write(*out, benchresult.Report{Program: "benchaudit", Machine: hostload.Machine(),
			LoadBefore: loadStart, LoadAfter: hostload.Loadavg(), Results: b.results})
	}
	return nil
}

// buildApart runs this program with -build-only on dir and returns the
// results it measured.
func buildApart(dir string, events, window int) ([]result, error) {
	out := filepath.Join(dir, "build-results.json")
	cmd := exec.Command(os.Args[0], "-build-only", "-data", dir, "-out", out,
		"-events", strconv.Itoa(events), "-window", strconv.Itoa(window))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build the log: %w", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var rep benchresult.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("read the build's results: %w", err)
	}
	return rep.Results, nil
}

// record adds a scenario's one run and prints it.
func (b *bench) record(scenario, description, loadBefore string, standinRun, floorRun map[string]float64) {
	r := result{Scenario: scenario, Params: map[string]int{"events": b.events, "window": b.window},
		Description: description, LoadBefore: loadBefore, LoadAfter: hostload.Loadavg(),
		Runs: map[string][]benchresult.Sample{"standin": {standinRun}}}
	if floorRun != nil {
		r.Runs["floor"] = []benchresult.Sample{floorRun}
	}
	b.results = append(b.results, r)
	fmt.Printf("\n== %s: %s (load average %s → %s)\n", scenario, description, r.LoadBefore, r.LoadAfter)
	for _, k := range slices.Sorted(maps.Keys(standinRun)) {
		line := fmt.Sprintf("   %-28s %14.3f", k, standinRun[k])
		if v, ok := floorRun[k]; ok {
			line += fmt.Sprintf("   floor %14.3f", v)
		}
		fmt.Println(line)
	}
}

// types are the event types of the generated log, in turn.
var types = []string{standin.EventLogin, standin.EventActionAllowed, standin.EventActionDenied, standin.EventImpersonationStarted}

// event is the i-th event of the generated log: 50 actors, 97 subjects,
// 10 projects, events of about the size the server writes. Subject "old"
// appears only among the first 1,000 events, beyond any window.
func event(i int) *standin.Event {
	subject := fmt.Sprintf("u%d", i%97)
	if i < 1000 && i%10 == 0 {
		subject = "old"
	}
	return &standin.Event{
		Type: types[i%4], Actor: standin.EventUser{ID: fmt.Sprintf("u%d", i%50), Name: "Actor Name"},
		Subject: standin.EventUser{ID: subject, Name: "Subject Name"},
		Action:  "booking.create", Object: fmt.Sprintf("booking/%d", i), Outcome: "allowed",
		Reason: "member of the project with the required trainings", IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (bench)",
		Project: fmt.Sprintf("p%d", i%10), Projects: []string{fmt.Sprintf("p%d", i%10), fmt.Sprintf("p%d", (i+3)%10)},
	}
}

// build appends events until the log holds b.events, and measures the
// floor in the same stretch of time: after every buildSlice events it waits
// for the sealer to catch up (counted as the build's time), then inserts
// floorSlice events into the floor's database, so that a machine whose speed
// drifts during the build slows both alike.
func (b *bench) build() error {
	// As the server writes it: on segments, with the window it delivers
	// to and the sealing of chunks that follows, which the appends pay for.
	w, err := audit.Open(b.ctx, b.store, b.serverConfig())
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer w.Close(context.WithoutCancel(b.ctx))
	have := int(w.Head())
	if have > b.events {
		return fmt.Errorf("the log in -data holds %d events, more than -events", have)
	}
	if have == b.events {
		fmt.Printf("reusing a log of %d events\n", have)
		return nil
	}
	fl, err := b.openFloor()
	if err != nil {
		return err
	}
	defer fl.close()
	// Slices small enough that the floor is measured throughout the build,
	// with the floor's share of the time about a tenth of the build's.
	buildSlice := max((b.events-have)/20, 500)
	floorSlice := min(max(buildSlice/10, 500), 5_000)
	load := hostload.Loadavg()
	var took time.Duration
	last := time.Now()
	for i := have; i < b.events; {
		start := time.Now()
		for end := min(i+buildSlice, b.events); i < end; {
			var evs []*standin.Event
			for ; i < end && len(evs) < 500; i++ {
				evs = append(evs, event(i))
			}
			if err := w.Append(b.ctx, evs...); err != nil {
				return fmt.Errorf("append: %w", err)
			}
		}
		if _, err := b.waitSealed(w); err != nil {
			return err
		}
		took += time.Since(start)
		if err := fl.insert(b.ctx, floorSlice); err != nil {
			return err
		}
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "built %d of %d events\n", i, b.events)
		}
	}
	b.record("build", "appends in batches of 500 through group commit, on FerretDB without secondary indexes, "+
		"each chunk sealed; measured in slices of a twentieth of the log, the floor's slices between them", load,
		map[string]float64{"events": float64(b.events - have), "seconds": took.Seconds(), "events_per_s": float64(b.events-have) / took.Seconds()}, nil)
	b.record("insert_floor", fmt.Sprintf("%d events inserted by the store alone in batches of 500, in slices of %d between the build's: the floor of appends", fl.n, floorSlice), load,
		map[string]float64{"events": float64(fl.n), "seconds": fl.took.Seconds(), "events_per_s": float64(fl.n) / fl.took.Seconds()}, nil)
	return nil
}

// open opens the log as the server does on the embedded database.
func (b *bench) open() (*audit.Log, error) {
	load := hostload.Loadavg()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	l, err := audit.Open(b.ctx, b.store, b.serverConfig())
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	d := time.Since(start)
	// The window fills in the background after Open; the queries below
	// measure it full.
	want := min(b.window, int(l.Head()))
	for l.Status().InMemory < want {
		time.Sleep(10 * time.Millisecond)
	}
	filled := time.Since(start)
	sealed, err := b.waitSealed(l)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	how := fmt.Sprintf("one read of the collection keeps the newest %d events", b.window)
	if b.segmented {
		how = fmt.Sprintf("a page of the newest %d events from the newest segments; the window grows to %d", b.serverConfig().WindowFill, b.window)
	}
	b.record("open", "opening the log as the server does: "+how, load,
		map[string]float64{"seconds": d.Seconds(), "events_per_s": float64(l.Head()) / d.Seconds(),
			"window_full_seconds": filled.Seconds(),
			"sealed_seconds":      sealed.Seconds(),
			"window_heap_mib":     float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20),
			"rss_mib":             hostload.RSSMiB()}, nil)
	return l, nil
}

// waitSealed waits until every complete chunk of the log is sealed, on a
// store that seals them, and returns how long after the call it was.
func (b *bench) waitSealed(l *audit.Log) (time.Duration, error) {
	start := time.Now()
	s, ok := b.store.(audit.Sealer)
	if !ok {
		return 0, nil
	}
	for {
		left, err := s.Unsealed(b.ctx, l.Head(), 1)
		if err != nil {
			return 0, fmt.Errorf("sealed chunks: %w", err)
		}
		if len(left) == 0 {
			return time.Since(start), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serverConfig is the audit log's configuration as the server sets it on
// the embedded database it runs.
func (b *bench) serverConfig() audit.Config {
	cfg := audit.Config{NoIndexes: true, Alone: true, Window: b.window}
	if b.segmented {
		cfg.WindowFill = 2 * mongostore.SegmentSize
	} else {
		cfg.StoredOrder = true
	}
	return cfg
}

// floor is the floor the build's appends compare with: the same events
// inserted by the store alone, in batches of 500, into a database of their
// own: no hashing, no chain, no group commit, no sealing.
type floor struct {
	db    *mongostore.DB
	store audit.Store
	n     int           // events inserted
	took  time.Duration // time inserting them
}

// openFloor makes the floor's database afresh: a run reusing -data finds
// the last run's floor there.
func (b *bench) openFloor() (*floor, error) {
	c, err := mongo.Connect(options.Client().ApplyURI(b.uri))
	if err != nil {
		return nil, err
	}
	// (FerretDB fails to make a database again at once after dropping one
	// that did not exist.)
	names, err := c.ListDatabaseNames(b.ctx, bson.D{{Key: "name", Value: "benchaudit_floor"}})
	if err == nil && len(names) > 0 {
		err = c.Database("benchaudit_floor").Drop(b.ctx)
	}
	_ = c.Disconnect(context.WithoutCancel(b.ctx))
	if err != nil {
		return nil, fmt.Errorf("drop the floor's database: %w", err)
	}
	db, err := mongostore.Open(b.ctx, b.uri, "benchaudit_floor", mongostore.Options{AppendOnly: true})
	if err != nil {
		return nil, err
	}
	store, _, err := db.AuditLog(b.ctx)
	if err != nil {
		_ = db.Close(context.WithoutCancel(b.ctx))
		return nil, err
	}
	return &floor{db: db, store: store}, nil
}

// insert inserts the floor's next n events and adds their time.
func (f *floor) insert(ctx context.Context, n int) error {
	start := time.Now()
	for end := f.n + n; f.n < end; {
		var evs []*standin.Event
		for ; f.n < end && len(evs) < 500; f.n++ {
			e := event(f.n)
			e.Seq, e.ID, e.Time, e.Hash = int64(f.n+1), fmt.Sprintf("%024x", f.n), time.Now().UTC(), fmt.Sprintf("%064x", f.n)
			evs = append(evs, e)
		}
		if err := f.store.Insert(ctx, evs); err != nil {
			return fmt.Errorf("insert floor: %w", err)
		}
	}
	f.took += time.Since(start)
	return nil
}

func (f *floor) close() { _ = f.db.Close(context.Background()) }

// windowQueries measures pages answered from memory.
func (b *bench) windowQueries(l *audit.Log) error {
	// Subject u7 in projects p1 or p2 is about one event in 250, so the
	// window holds window/250 of them: the paging case reads as many
	// pages (up to ten) as stay within it, and is left out below one.
	pages := min(10, b.window/250/50-1)
	for _, tc := range []struct {
		name  string
		f     standin.EventFilter
		pages int
	}{
		{"type", standin.EventFilter{Type: standin.EventActionDenied}, 1},
		{"subject_in_projects", standin.EventFilter{SubjectID: "u7", Projects: []string{"p1", "p2"}}, 1},
		{"subject_in_projects_pages", standin.EventFilter{SubjectID: "u7", Projects: []string{"p1", "p2"}}, pages},
		{"after_seq_catch_up", standin.EventFilter{AfterSeq: int64(b.events - 100)}, 1},
	} {
		if tc.pages < 1 {
			continue
		}
		load := hostload.Loadavg()
		lat := make([]time.Duration, 0, b.queries)
		for range b.queries {
			start := time.Now()
			cursor := ""
			for range tc.pages {
				page, next, err := l.Query(b.ctx, tc.f, standin.Page{Limit: 50, Cursor: cursor})
				if err != nil {
					return fmt.Errorf("query %s: %w", tc.name, err)
				}
				if len(page) == 0 {
					return fmt.Errorf("query %s: empty page", tc.name)
				}
				cursor = next
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.record("window_query_"+tc.name, fmt.Sprintf("%d page(s) of 50, %d times, answered from memory", tc.pages, b.queries), load,
			map[string]float64{"p50_ms": ms(lat[len(lat)/2]), "p99_ms": ms(lat[min(len(lat)*99/100, len(lat)-1)]), "max_ms": ms(lat[len(lat)-1])}, nil)
	}
	return nil
}

// pastWindow measures one page the window cannot answer.
func (b *bench) pastWindow(l *audit.Log) error {
	load := hostload.Loadavg()
	start := time.Now()
	page, _, err := l.Query(b.ctx, standin.EventFilter{SubjectID: "old"}, standin.Page{Limit: 50})
	if err != nil {
		return fmt.Errorf("query past the window: %w", err)
	}
	d := time.Since(start)
	if len(page) != 50 {
		return fmt.Errorf("query past the window: %d events, want 50", len(page))
	}
	b.record("past_window_query", "one page of 50 whose matches are all older than the window: the database answers it", load,
		map[string]float64{"seconds": d.Seconds(), "events_read_per_s": float64(b.events) / d.Seconds()}, nil)
	return nil
}

// deepPages measures pages of 50 below random cursors older than the
// window, for each kind of filter the Activity panel sends.
func (b *bench) deepPages(l *audit.Log) error {
	if b.events <= b.window+100 {
		return nil
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	loadAll := hostload.Loadavg()
	for _, tc := range []struct {
		name string
		f    standin.EventFilter
	}{
		{"none", standin.EventFilter{}},
		{"type", standin.EventFilter{Type: standin.EventActionDenied}},
		{"actor", standin.EventFilter{ActorID: "u7"}},
		{"subject_in_projects", standin.EventFilter{SubjectID: "u7", Projects: []string{"p1", "p2"}}},
		{"project", standin.EventFilter{Project: "p4"}},
		{"unknown_actor", standin.EventFilter{ActorID: "nobody"}},
	} {
		load := hostload.Loadavg()
		lat := make([]time.Duration, 0, b.queries)
		for range b.queries {
			cursor := strconv.Itoa(1 + rng.IntN(b.events-b.window))
			start := time.Now()
			if _, _, err := l.Query(b.ctx, tc.f, standin.Page{Limit: 50, Cursor: cursor}); err != nil {
				return fmt.Errorf("deep page %s: %w", tc.name, err)
			}
			lat = append(lat, time.Since(start))
		}
		all = append(all, lat...)
		slices.Sort(lat)
		b.record("deep_page_"+tc.name, fmt.Sprintf("a page of 50 below a random cursor older than the window, %d times", b.queries), load,
			map[string]float64{"p50_ms": ms(lat[len(lat)/2]), "p99_ms": ms(lat[min(len(lat)*99/100, len(lat)-1)]), "max_ms": ms(lat[len(lat)-1])}, nil)
	}
	slices.Sort(all)
	b.record("deep_page_any", "every deep page above together", loadAll,
		map[string]float64{"p50_ms": ms(all[len(all)/2]), "p99_ms": ms(all[min(len(all)*99/100, len(all)-1)]), "max_ms": ms(all[len(all)-1])}, nil)
	return nil
}

// export measures the whole log exported as JSON Lines, and the raw
// stream of the same documents from the database.
func (b *bench) export(l *audit.Log) error {
	load := hostload.Loadavg()
	var n countingWriter
	start := time.Now()
	if err := l.Export(b.ctx, standin.EventFilter{}, audit.FormatJSONL, &n); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	d := time.Since(start)
	if n.lines != int64(b.events) {
		return fmt.Errorf("export: %d lines, want %d", n.lines, b.events)
	}
	standinRun := map[string]float64{"seconds": d.Seconds(), "events_per_s": float64(b.events) / d.Seconds(),
		"mib_per_s": float64(n.bytes) / (1 << 20) / d.Seconds()}

	docs, bytes, fd, err := b.rawRead()
	if err != nil {
		return fmt.Errorf("raw read: %w", err)
	}
	floorRun := map[string]float64{"seconds": fd.Seconds(), "events_per_s": float64(docs) / fd.Seconds(),
		"mib_per_s": float64(bytes) / (1 << 20) / fd.Seconds()}
	b.record("export", "the whole log as JSON Lines; floor: the same documents read raw from the database", load, standinRun, floorRun)
	return nil
}

// rawRead reads every document of the events collection through a
// driver client of its own, decoding nothing: the floor an export
// compares with. d is the time the read took, connecting left out.
func (b *bench) rawRead() (docs, bytes int64, d time.Duration, err error) {
	client, err := mongo.Connect(options.Client().ApplyURI(b.uri))
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(b.ctx)) }()
	db := client.Database(b.db.Name())
	names, err := db.ListCollectionNames(b.ctx, bson.D{})
	if err != nil {
		return 0, 0, 0, err
	}
	slices.Sort(names)
	start := time.Now()
	for _, name := range names {
		if name != "events" && !strings.HasPrefix(name, "events_") {
			continue
		}
		if err := readAll(b.ctx, db.Collection(name), &docs, &bytes); err != nil {
			return 0, 0, 0, err
		}
	}
	return docs, bytes, time.Since(start), nil
}

// readAll reads every document of coll raw, counting them and their bytes.
func readAll(ctx context.Context, coll *mongo.Collection, docs, bytes *int64) error {
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(ctx) {
		*docs++
		*bytes += int64(len(cur.Current))
	}
	return cur.Err()
}

// verify measures re-hashing the whole chain.
func (b *bench) verify(l *audit.Log) error {
	load := hostload.Loadavg()
	start := time.Now()
	v, err := l.Verify(b.ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	d := time.Since(start)
	if !v.OK || v.Checked != int64(b.events) {
		return fmt.Errorf("verify: %+v", v)
	}
	b.record("verify", "the whole chain read and re-hashed", load,
		map[string]float64{"seconds": d.Seconds(), "events_per_s": float64(b.events) / d.Seconds()}, nil)
	return nil
}

// countingWriter counts bytes and lines written to it.
type countingWriter struct{ bytes, lines int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	for _, c := range p {
		if c == '\n' {
			w.lines++
		}
	}
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
