//go:build !unix

package embeddeddb

import (
	"errors"
	"os"
)

// errLocked is tryLock's error when another open file holds the lock.
var errLocked = errors.New("locked by another")

// tryLock fails: without a file lock two servers could open the same
// database files, so the embedded database does not start.
func tryLock(*os.File) error {
	return errors.New("this system offers no file lock to guard the data directory; use MONGODB_URI")
}
