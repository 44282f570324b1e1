package loginlimit_test

import (
	"testing"

	"standin/server/loginlimit"
	"standin/server/loginlimit/storetest"
)

// TestMemoryStore holds the memory store to what every store must do.
func TestMemoryStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) loginlimit.Store { return loginlimit.NewMemory(0) })
}
