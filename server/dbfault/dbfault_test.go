package dbfault_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/dbfault"
)

func TestWriteRefused(t *testing.T) {
	t.Parallel()
	// The messages are FerretDB's own, as it answers when its SQLite files
	// cannot be written.
	ferret := func(msg string) error {
		return fmt.Errorf("insert: %w", mongo.CommandError{Code: 1, Name: "InternalError", Message: msg})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"FerretDiskIOError", ferret("[msg_insert.go:168 handler.(*Handler).MsgInsert] [db.go:167 fsql.(*DB).InTransaction] disk I/O error (778)"), true},
		{"FerretFull", ferret("[db.go:167 fsql.(*DB).InTransaction] database or disk is full (13)"), true},
		{"FerretReadOnly", ferret("[db.go:167 fsql.(*DB).InTransaction] attempt to write a readonly database (8)"), true},
		{"FerretReadOnlyExtended", ferret("attempt to write a readonly database (1032)"), true},
		{"FerretCantOpen", ferret("[opendb.go:57 pool.openDB] unable to open database file (14)"), true},
		{"FerretWriteError", mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 1, Message: "database or disk is full (13)"}}}, true},
		{"FerretBulkWriteError", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Code: 1, Message: "disk I/O error (10)"}}}}, true},
		{"MongoOutOfDiskSpace", mongo.CommandError{Code: 14031, Name: "OutOfDiskSpace", Message: "out of disk space"}, true},
		{"MongoNotWritablePrimary", mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 10107, Message: "not primary"}}}, true},
		{"MongoShutdown", mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}, true},
		// FerretDB stopping: its handler's context ends mid-transaction,
		// which rolls back.
		{"FerretInterrupted", ferret("[msg_insert.go:168 handler.(*Handler).MsgInsert] [db.go:134 fsql.(*DB).InTransaction] context canceled"), true},

		{"Nil", nil, false},
		{"Plain", errors.New("disk I/O error (778)"), false},
		{"Canceled", context.Canceled, false},
		{"DuplicateKey", mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000, Message: "E11000 duplicate key"}}}, false},
		{"FerretConstraint", ferret("[db.go:167 fsql.(*DB).InTransaction] UNIQUE constraint failed (2067)"), false},
		{"FerretBusy", ferret("database is locked (5)"), false},
		{"FerretNoCode", ferret("invalid document"), false},
		{"FerretCanceledMidText", ferret("context canceled while reading; retried"), false},
		{"OtherCodeSameText", mongo.CommandError{Code: 2, Name: "BadValue", Message: "disk I/O error (778)"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := dbfault.WriteRefused(tc.err); got != tc.want {
				t.Fatalf("WriteRefused(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	if !dbfault.Unreachable(fmt.Errorf("find: %w", mongo.ErrClientDisconnected)) {
		t.Error("a disconnected client is not unreachable")
	}
	if !dbfault.Unreachable(context.DeadlineExceeded) {
		t.Error("a deadline is not unreachable")
	}
	for _, err := range []error{nil, errors.New("boom"), mongo.CommandError{Code: 14031}} {
		if dbfault.Unreachable(err) {
			t.Errorf("Unreachable(%v) = true", err)
		}
	}
}
