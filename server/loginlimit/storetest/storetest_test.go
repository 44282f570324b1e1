package storetest_test

import (
	"testing"

	"standin/server/loginlimit"
	"standin/server/loginlimit/storetest"
)

// TestRun runs the behaviour tests against the store they were written
// from, the memory store: they hold of it.
func TestRun(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) loginlimit.Store { return loginlimit.NewMemory(0) })
}
