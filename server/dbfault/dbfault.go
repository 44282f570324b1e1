// Package dbfault says what a MongoDB driver error means for the console
// when it is the database's fault rather than the request's: the database
// cannot be reached, or it is reachable but refuses to store anything (its
// disk is full, read-only or failing; it is stepping down or shutting
// down). Either way a request that needed the database cannot be served
// now and may be tried again later, so the stores translate both into
// standin.EUnavailable (HTTP 503), not into an internal error.
//
// It is shared by every package that translates driver errors (the
// stores and the audit log), so they agree on what a database fault is.
package dbfault

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// Unreachable reports an error that says the database could not be
// reached or did not answer in time, as opposed to one it answered with.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	_, selection := errors.AsType[topology.ServerSelectionError](err)
	var pool driver.RetryablePoolError // another operation just failed on the network
	cleared := errors.As(err, &pool) && pool.Retryable()
	return selection || cleared || mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, mongo.ErrClientDisconnected)
}

// refusingCodes are MongoDB's error codes for a server that takes no
// writes now: nothing was written, and the same write may succeed later
// (on a new primary, or once the disk has room).
var refusingCodes = []int{
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
	14031, // OutOfDiskSpace
}

// ferretInternal is FerretDB's InternalError code, under which it reports
// what its SQLite storage answered.
const ferretInternal = 1

// sqliteResult finds the SQLite result code FerretDB puts at the end of
// such a message, as in "… disk I/O error (778)".
var sqliteResult = regexp.MustCompile(`\((\d+)\)\s*$`)

// SQLite primary result codes (the low byte of an extended code) that say
// the database files cannot be written.
const (
	sqliteReadOnly = 8  // SQLITE_READONLY: "attempt to write a readonly database"
	sqliteIOErr    = 10 // SQLITE_IOERR: "disk I/O error"
	sqliteFull     = 13 // SQLITE_FULL: "database or disk is full"
	sqliteCantOpen = 14 // SQLITE_CANTOPEN: "unable to open database file"
)

// WriteRefused reports an error the database answered with because it
// cannot store anything now: MongoDB out of disk space, not primary or
// shutting down, or FerretDB whose SQLite files are read-only, full or
// failing. The operation was not applied.
func WriteRefused(err error) bool {
	se, ok := errors.AsType[mongo.ServerError](err)
	if !ok {
		return false
	}
	for _, code := range refusingCodes {
		if se.HasErrorCode(code) {
			return true
		}
	}
	for _, msg := range internalMessages(err) {
		if sqliteRefused(msg) || ferretInterrupted(msg) {
			return true
		}
	}
	return false
}

// ferretInterrupted reports FerretDB's answer when it stops while an
// operation runs: the operation's context ends inside its transaction,
// which rolls back, as MongoDB's InterruptedAtShutdown.
func ferretInterrupted(msg string) bool {
	return strings.HasSuffix(strings.TrimSpace(msg), "fsql.(*DB).InTransaction] context canceled")
}

// internalMessages returns the messages of the FerretDB internal errors
// err carries, at the top level or per write.
func internalMessages(err error) []string {
	var msgs []string
	if ce, ok := errors.AsType[mongo.CommandError](err); ok && ce.Code == ferretInternal {
		msgs = append(msgs, ce.Message)
	}
	if we, ok := errors.AsType[mongo.WriteException](err); ok {
		for _, e := range we.WriteErrors {
			if e.Code == ferretInternal {
				msgs = append(msgs, e.Message)
			}
		}
	}
	if be, ok := errors.AsType[mongo.BulkWriteException](err); ok {
		for _, e := range be.WriteErrors {
			if e.Code == ferretInternal {
				msgs = append(msgs, e.Message)
			}
		}
	}
	return msgs
}

// sqliteRefused reports a message ending in an SQLite result code that
// says the files cannot be written.
func sqliteRefused(msg string) bool {
	m := sqliteResult.FindStringSubmatch(msg)
	if m == nil {
		return false
	}
	code, err := strconv.Atoi(m[1])
	if err != nil {
		return false
	}
	switch code & 0xff {
	case sqliteReadOnly, sqliteIOErr, sqliteFull, sqliteCantOpen:
		return true
	}
	return false
}
