package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"standin/server/standin"
)

// HashVersion labels the canonical encoding below. It is the first field
// of every hashed message, so a future encoding can be told apart from
// this one.
const HashVersion = "standin-audit-v1"

// TimeLayout is how an event's time appears in the hashed message and in
// exports: UTC, always three fractional digits. Stored times keep exactly
// milliseconds (BSON dates do), so a stored event re-hashes identically.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// ComputeHash returns the hash an event must carry given its PrevHash and
// content: the lowercase hex SHA-256 of a sequence of netstrings, each
// written as the decimal byte length of a UTF-8 string, ":", the string
// and ",". In order:
//
//	HashVersion, prev_hash, id, seq, time, type,
//	actor.id, actor.name, subject.id, subject.name, impersonation_id,
//	action, object, project, outcome, reason, ip, user_agent,
//	the number of projects, then each project in stored order.
//
// seq and the project count are decimal without leading zeros, time is
// formatted with TimeLayout after conversion to UTC and truncation to the
// millisecond. The first event's prev_hash is the empty string. For
// example the message of an event whose fields are all empty except seq 1
// and type "auth.login" at the Unix epoch starts
// "16:standin-audit-v1,0:,0:,1:1,24:1970-01-01T00:00:00.000Z,10:auth.login,".
//
// Anyone holding a JSON Lines export can recompute every hash and the
// links between them with nothing but this description.
func ComputeHash(e *standin.Event) string {
	h := sha256.New()
	buf := make([]byte, 0, 512)
	add := func(s string) {
		buf = strconv.AppendInt(buf, int64(len(s)), 10)
		buf = append(buf, ':')
		buf = append(buf, s...)
		buf = append(buf, ',')
	}
	add(HashVersion)
	add(e.PrevHash)
	add(e.ID)
	add(strconv.FormatInt(e.Seq, 10))
	add(formatTime(e.Time))
	add(e.Type)
	add(e.Actor.ID)
	add(e.Actor.Name)
	add(e.Subject.ID)
	add(e.Subject.Name)
	add(e.ImpersonationID)
	add(e.Action)
	add(e.Object)
	add(e.Project)
	add(e.Outcome)
	add(e.Reason)
	add(e.IP)
	add(e.UserAgent)
	add(strconv.Itoa(len(e.Projects)))
	for _, p := range e.Projects {
		add(p)
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// formatTime renders t the way it is hashed and exported.
func formatTime(t time.Time) string {
	return StoredTime(t).Format(TimeLayout)
}

// StoredTime is t as the database keeps it: UTC, whole milliseconds, no
// monotonic clock reading.
func StoredTime(t time.Time) time.Time {
	return t.Round(0).UTC().Truncate(time.Millisecond)
}
