package livefeed_test

import (
	"os"
	"testing"

	"standin/server/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
