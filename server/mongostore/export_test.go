package mongostore

// Reopened returns a new Segments on s's database, as a server started
// afresh opens it: nothing read yet.
func (s *Segments) Reopened() *Segments {
	return &Segments{db: s.db, size: s.size, chunk: s.chunk, copies: copies{recent: newRing(s.db, colRecentPrefix)}, newest: -1}
}
