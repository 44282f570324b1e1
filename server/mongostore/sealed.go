package mongostore

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unique"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"standin/server/audit"
	"standin/server/standin"
)

// Sealed chunks of a segmented log (audit.Sealer). A chunk is a quarter
// of a segment: its events once more, compressed into one document of
// "sealed_<segment>" keyed by the chunk's number as text, with a summary
// of what they hold. The summaries are also kept alone, one document per
// chunk in "seals", which a server reads once (about 2 KB per chunk) to
// know, in memory, which chunks a page's filter may find anything in.
//
// On FerretDB, reading one chunk by its key from a collection of four
// costs a query and the decoding of some 40 KB, a few milliseconds,
// where the events of a segment cost a decoding of each of them, some
// 150 ms. A page deep in the log reads the chunks whose summaries may
// match, newest first, until it has its events.
const (
	chunksPerSegment = 4
	colSealedPrefix  = "sealed_"
	colSeals         = "seals"
	// chunkCacheSize is how many decoded chunks a store keeps for the
	// pages that follow (a few MB).
	chunkCacheSize = 32
)

// chunkSummary says what one sealed chunk holds: enough to tell that a
// filter matches none of its events without reading them.
type chunkSummary struct {
	Chunk int64     `bson:"chunk"`
	First time.Time `bson:"first"` // the earliest event's time
	Last  time.Time `bson:"last"`  // the latest event's time
	// The distinct values of the fields filters select on, sorted.
	Types          []string `bson:"types"`
	Actors         []string `bson:"actors"`
	Subjects       []string `bson:"subjects"`
	Impersonations []string `bson:"impersonations"`
	Project        []string `bson:"project"`  // the events' Project
	Projects       []string `bson:"projects"` // the events' Projects, together
}

// sealDoc is a summary alone, in "seals".
type sealDoc struct {
	ID      string       `bson:"_id"`
	Summary chunkSummary `bson:",inline"`
}

// sealedDoc is a sealed chunk: its events, the BSON of each as the
// segment stores it, one after another, compressed (DEFLATE). Its summary
// is in "seals" only: every field of a document costs FerretDB time to
// read, and a page that reads the chunk knows the summary already.
type sealedDoc struct {
	ID     string `bson:"_id"`
	Events []byte `bson:"events"`
}

func chunkKey(chunk int64) string { return fmt.Sprintf("%012d", chunk) }

func (s *Segments) sealedColl(seg int64) *mongo.Collection {
	return s.db.Collection(fmt.Sprintf("%s%012d", colSealedPrefix, seg))
}

// ChunkSize is how many consecutive seqs a sealed chunk holds: a quarter
// of a segment.
func (s *Segments) ChunkSize() int64 { return s.chunk }

// summarize returns the summary of chunk's events.
func summarize(chunk int64, evs []*standin.Event) chunkSummary {
	sum := chunkSummary{Chunk: chunk}
	for i, e := range evs {
		if i == 0 || e.Time.Before(sum.First) {
			sum.First = e.Time
		}
		if i == 0 || e.Time.After(sum.Last) {
			sum.Last = e.Time
		}
		sum.Types = append(sum.Types, e.Type)
		sum.Actors = append(sum.Actors, e.Actor.ID)
		sum.Subjects = append(sum.Subjects, e.Subject.ID)
		sum.Impersonations = append(sum.Impersonations, e.ImpersonationID)
		sum.Project = append(sum.Project, e.Project)
		sum.Projects = append(sum.Projects, e.Projects...)
	}
	for _, set := range sum.sets() {
		slices.Sort(*set)
		*set = slices.Clip(slices.Compact(*set))
	}
	return sum
}

// sets returns the summary's sets of values.
func (c *chunkSummary) sets() []*[]string {
	return []*[]string{&c.Types, &c.Actors, &c.Subjects, &c.Impersonations, &c.Project, &c.Projects}
}

// intern makes the summary's values share their bytes with every other
// summary's: the same people, sessions and projects recur in thousands of
// chunks, which the server keeps in memory.
func (c *chunkSummary) intern() {
	for _, set := range c.sets() {
		for i, v := range *set {
			(*set)[i] = unique.Make(v).Value()
		}
		*set = slices.Clip(*set)
	}
}

// mayMatch reports whether f (but for AfterSeq) may select an event of
// the chunk: false only when none of them can match.
func (c *chunkSummary) mayMatch(f standin.EventFilter) bool {
	has := func(set []string, v string) bool {
		_, ok := slices.BinarySearch(set, v)
		return ok
	}
	switch {
	case f.Type != "" && !has(c.Types, f.Type),
		f.ActorID != "" && !has(c.Actors, f.ActorID),
		f.SubjectID != "" && !has(c.Subjects, f.SubjectID),
		f.ImpersonationID != "" && !has(c.Impersonations, f.ImpersonationID),
		f.Project != "" && !has(c.Project, f.Project) && !has(c.Projects, f.Project),
		!f.Since.IsZero() && c.Last.Before(audit.StoredTime(f.Since)),
		!f.Until.IsZero() && !c.First.Before(audit.StoredTime(f.Until)):
		return false
	}
	if f.Projects != nil {
		return slices.ContainsFunc(f.Projects, func(p string) bool { return has(c.Projects, p) })
	}
	return true
}

// Seal keeps each of chunks, every event of one chunk in seq order, as
// its sealed chunk: first the chunks, in one insert per segment, then
// their summaries in "seals", in one insert. A chunk or summary stored
// already (sealed by another server, of the same events) is kept as it is.
//
// Errors: EInvalid when a chunk's events are not one chunk's; EUnavailable
// when the database cannot be reached.
func (s *Segments) Seal(ctx context.Context, chunks [][]*standin.Event) error {
	bySegment := make(map[int64][]any)
	var segs []int64
	var sums []*chunkSummary
	var summaries []any
	for _, evs := range chunks {
		if len(evs) == 0 || int64(len(evs)) != s.chunk || (evs[0].Seq-1)%s.chunk != 0 {
			return standin.Errorf(standin.EInvalid, "A sealed chunk holds the %d events from a multiple of %d on.", s.chunk, s.chunk)
		}
		chunk := (evs[0].Seq - 1) / s.chunk
		for i, e := range evs {
			if e.Seq != evs[0].Seq+int64(i) {
				return standin.Errorf(standin.EInvalid, "Event %d is not the event %d of chunk %d.", e.Seq, i+1, chunk)
			}
		}
		data, err := packEvents(&s.packers, evs)
		if err != nil {
			return fmt.Errorf("seal audit chunk %d: %w", chunk, err)
		}
		seg := chunk / chunksPerSegment
		if bySegment[seg] == nil {
			segs = append(segs, seg)
		}
		bySegment[seg] = append(bySegment[seg], sealedDoc{ID: chunkKey(chunk), Events: data})
		sum := summarize(chunk, evs)
		sums, summaries = append(sums, &sum), append(summaries, sealDoc{ID: chunkKey(chunk), Summary: sum})
	}
	if len(sums) == 0 {
		return nil
	}
	unordered := options.InsertMany().SetOrdered(false)
	for _, seg := range segs {
		if _, err := s.sealedColl(seg).InsertMany(ctx, bySegment[seg], unordered); err != nil && !onlyDuplicates(err) {
			return eventsError(err, "seal audit chunks")
		}
	}
	if _, err := s.db.Collection(colSeals).InsertMany(ctx, summaries, unordered); err != nil && !onlyDuplicates(err) {
		return eventsError(err, "record sealed audit chunks")
	}
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	for _, sum := range sums {
		sum.intern()
		if s.seals != nil {
			s.seals[sum.Chunk] = sum
		}
	}
	return nil
}

// packEvents returns the BSON of each event as a segment stores it, one
// after another, compressed with a compressor from pool (each holds some
// hundreds of kilobytes of state, which would otherwise be made per chunk).
func packEvents(pool *sync.Pool, evs []*standin.Event) ([]byte, error) {
	var buf bytes.Buffer
	w, _ := pool.Get().(*flate.Writer)
	if w == nil {
		var err error
		if w, err = flate.NewWriter(&buf, flate.BestSpeed); err != nil {
			return nil, err
		}
	} else {
		w.Reset(&buf)
	}
	defer pool.Put(w)
	for _, e := range evs {
		raw, err := bson.Marshal(toEventDoc(e))
		if err != nil {
			return nil, fmt.Errorf("encode event %d: %w", e.Seq, err)
		}
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unpackChunk inflates what packEvents made into a chunk ready for pages:
// each event's document, and the fields filters read of it.
func unpackChunk(data []byte) (docs []bson.Raw, keys []*standin.Event, err error) {
	// Events compress about sixfold: room for that saves the copies of
	// a buffer grown step by step.
	out := bytes.NewBuffer(make([]byte, 0, 8*len(data)))
	if _, err := out.ReadFrom(flate.NewReader(bytes.NewReader(data))); err != nil {
		return nil, nil, fmt.Errorf("inflate: %w", err)
	}
	raw := out.Bytes()
	docs, keys = make([]bson.Raw, 0, 256), make([]*standin.Event, 0, 256)
	for len(raw) > 0 {
		doc, rest, ok := bsoncore.ReadDocument(raw)
		if !ok {
			return nil, nil, errors.New("a document is cut short")
		}
		key, ok := filterKey(bson.Raw(doc))
		if !ok {
			return nil, nil, fmt.Errorf("event %d of the chunk cannot be read", len(docs)+1)
		}
		docs, keys = append(docs, bson.Raw(doc)), append(keys, key)
		raw = rest
	}
	return docs, keys, nil
}

// filterKey reads of an event's document the fields filters select on
// (see audit.Matcher), in one pass, without decoding the rest.
func filterKey(doc bson.Raw) (*standin.Event, bool) {
	if len(doc) < 5 {
		return nil, false
	}
	e := &standin.Event{}
	const want = 1<<8 - 1
	seen := 0
	for rest := bsoncore.Document(doc[4 : len(doc)-1]); len(rest) > 0; {
		el, r, ok := bsoncore.ReadElement(rest)
		if !ok {
			return nil, false
		}
		rest = r
		v := el.Value()
		switch string(el.KeyBytes()) {
		case "_id":
			e.Seq, ok = v.AsInt64OK()
			seen |= 1
		case "type":
			e.Type, ok = v.StringValueOK()
			seen |= 2
		case "actor":
			e.Actor.ID, ok = userID(v)
			seen |= 4
		case "subject":
			e.Subject.ID, ok = userID(v)
			seen |= 8
		case "impersonation_id":
			e.ImpersonationID, ok = v.StringValueOK()
			seen |= 16
		case "project":
			e.Project, ok = v.StringValueOK()
			seen |= 32
		case "time":
			var t time.Time
			t, ok = v.TimeOK()
			e.Time = t.UTC()
			seen |= 64
		case "projects":
			e.Projects, ok = stringArray(v)
			seen |= 128
		}
		if !ok {
			return nil, false
		}
	}
	return e, seen == want
}

// userID reads the id of a person an event names.
func userID(v bsoncore.Value) (string, bool) {
	d, ok := v.DocumentOK()
	if !ok {
		return "", false
	}
	return d.Lookup("id").StringValueOK()
}

// stringArray reads an array of strings.
func stringArray(v bsoncore.Value) ([]string, bool) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, false
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, false
	}
	out := make([]string, len(vals))
	for i, x := range vals {
		if out[i], ok = x.StringValueOK(); !ok {
			return nil, false
		}
	}
	return out, true
}

// loadSeals reads the summaries in "seals" once; later calls return at
// once. Until it has, a page reads segments as if nothing were sealed.
func (s *Segments) loadSeals(ctx context.Context) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.sealMu.Lock()
	loaded := s.seals != nil
	s.sealMu.Unlock()
	if loaded {
		return nil
	}
	seals := make(map[int64]*chunkSummary)
	err := eachRaw(ctx, s.db.Collection(colSeals), bson.D{}, options.Find().SetBatchSize(1000), func(raw bson.Raw) error {
		var d sealDoc
		if err := bson.Unmarshal(raw, &d); err != nil || d.ID != chunkKey(d.Summary.Chunk) {
			return nil // not a summary this store wrote: the chunk reads as unsealed
		}
		d.Summary.intern()
		seals[d.Summary.Chunk] = &d.Summary
		return nil
	})
	if err != nil {
		return eventsError(err, "read sealed audit chunks")
	}
	s.sealMu.Lock()
	for k, v := range s.seals { // sealed meanwhile
		seals[k] = v
	}
	s.seals = seals
	s.sealMu.Unlock()
	return nil
}

// Unsealed returns up to max chunks, newest first, wholly at or below head
// and not sealed. The first call reads which chunks are sealed.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Segments) Unsealed(ctx context.Context, head int64, max int) ([]int64, error) {
	if err := s.loadSeals(ctx); err != nil {
		return nil, err
	}
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	var out []int64
	for k := head/s.chunk - 1; k >= 0 && len(out) < max; k-- {
		if s.seals[k] == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

// sealedSegment returns the summaries of seg's chunks, in order, when
// every one of them is sealed and known.
func (s *Segments) sealedSegment(seg int64) ([]*chunkSummary, bool) {
	if s.size%chunksPerSegment != 0 {
		return nil, false
	}
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if s.seals == nil {
		return nil, false
	}
	sums := make([]*chunkSummary, chunksPerSegment)
	for i := range sums {
		if sums[i] = s.seals[seg*chunksPerSegment+int64(i)]; sums[i] == nil {
			return nil, false
		}
	}
	return sums, true
}

// readChunk returns a sealed chunk, unpacked, from the cache or the
// database. It is shared and never changed: callers decode what they
// hand on.
func (s *Segments) readChunk(ctx context.Context, chunk int64) (*cachedChunk, error) {
	c, ok := s.cache.get(chunk)
	if !ok {
		if err := s.fetchChunks(ctx, []int64{chunk}); err != nil {
			return nil, err
		}
		if c, ok = s.cache.get(chunk); !ok {
			return nil, fmt.Errorf("read sealed audit chunk %d: %w: it is not stored", chunk, errChunkUnusable)
		}
	}
	if err := c.unpack(); err != nil {
		return nil, fmt.Errorf("read sealed audit chunk %d: %w: %w", chunk, errChunkUnusable, err)
	}
	return c, nil
}

// errChunkUnusable: a chunk "seals" names is not stored, or cannot be
// read. It is a copy: its segment's events answer instead.
var errChunkUnusable = errors.New("the sealed chunk cannot be used")

// fetchChunks reads the chunks of one segment that the cache lacks, in
// one query, into the cache, packed: each query costs FerretDB about a
// millisecond whatever it returns, and a chunk is unpacked only if a page
// looks into it.
func (s *Segments) fetchChunks(ctx context.Context, chunks []int64) error {
	var keys []string
	for _, k := range chunks {
		if _, ok := s.cache.get(k); !ok {
			keys = append(keys, chunkKey(k))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	filter := bson.D{{Key: "_id", Value: keys[0]}} // the lone equality FerretDB filters in SQLite
	if len(keys) > 1 {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}
	}
	err := eachRaw(ctx, s.sealedColl(chunks[0]/chunksPerSegment), filter, nil, func(raw bson.Raw) error {
		var d sealedDoc
		if err := bson.Unmarshal(raw, &d); err != nil {
			return nil // not a chunk this store wrote: pages say it is missing
		}
		k, err := strconv.ParseInt(d.ID, 10, 64)
		if err == nil {
			s.cache.put(k, &cachedChunk{packed: d.Events})
		}
		return nil
	})
	if err != nil {
		return eventsError(err, "read sealed audit chunks")
	}
	return nil
}

// pageSealed adds to out, up to limit, the events of a wholly sealed
// segment that m selects and that lie between after and before (each 0
// for no bound): newest first, or oldest first when asc.
func (s *Segments) pageSealed(ctx context.Context, sums []*chunkSummary, f standin.EventFilter, m *audit.Matcher,
	after, before int64, asc bool, limit int, out []*standin.Event) ([]*standin.Event, error) {
	var want []*chunkSummary
	for i := range sums {
		sum := sums[len(sums)-1-i]
		if asc {
			sum = sums[i]
		}
		first, last := sum.Chunk*s.chunk+1, (sum.Chunk+1)*s.chunk
		if (before > 0 && first >= before) || last <= after || !sum.mayMatch(f) {
			continue
		}
		want = append(want, sum)
	}
	if len(want) > 1 {
		ks := make([]int64, len(want))
		for i, sum := range want {
			ks[i] = sum.Chunk
		}
		if err := s.fetchChunks(ctx, ks); err != nil {
			return nil, err
		}
	}
	for _, sum := range want {
		c, err := s.readChunk(ctx, sum.Chunk)
		if err != nil {
			return nil, err
		}
		for j := range c.keys {
			if !asc {
				j = len(c.keys) - 1 - j
			}
			if k := c.keys[j]; (before > 0 && k.Seq >= before) || k.Seq <= after || !m.Match(k) {
				continue
			}
			st := decodeEvent(c.raw[j])
			if st.Foreign != "" || st.Damaged != "" {
				return nil, fmt.Errorf("read sealed audit chunk %d: %w: event %d: %s", sum.Chunk, errChunkUnusable, st.Seq, st.Damaged)
			}
			if out = append(out, st.Event); len(out) >= limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// chunkCache keeps the newest-used decoded chunks.
type chunkCache struct {
	mu    sync.Mutex
	clock int64
	items map[int64]*cachedChunk
}

// cachedChunk is a sealed chunk read for pages: as stored, and once a
// page looks into it, each event's document and the fields filters read
// of it (keys[i] is raw[i]'s).
type cachedChunk struct {
	packed []byte
	once   sync.Once
	err    error
	raw    []bson.Raw
	keys   []*standin.Event
	used   int64 // guarded by the cache's mutex
}

// unpack unpacks the chunk once; every call returns its error.
func (c *cachedChunk) unpack() error {
	c.once.Do(func() {
		c.raw, c.keys, c.err = unpackChunk(c.packed)
		c.packed = nil
	})
	return c.err
}

func (c *chunkCache) get(chunk int64) (*cachedChunk, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.items[chunk]
	if it == nil {
		return nil, false
	}
	c.clock++
	it.used = c.clock
	return it, true
}

func (c *chunkCache) put(chunk int64, it *cachedChunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = make(map[int64]*cachedChunk)
	}
	if len(c.items) >= chunkCacheSize {
		oldest := int64(-1)
		for k, it := range c.items {
			if oldest < 0 || it.used < c.items[oldest].used {
				oldest = k
			}
		}
		delete(c.items, oldest)
	}
	c.clock++
	it.used = c.clock
	c.items[chunk] = it
}
