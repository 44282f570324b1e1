package httpapi

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLoginLimiter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	t.Run("ParallelReservationsStopAtTheLimit", func(t *testing.T) {
		t.Parallel()
		l := newLoginLimiter(5, time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, _ := l.reserve("k", now); ok {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if granted != 5 {
			t.Fatalf("%d of 50 parallel attempts granted, want 5", granted)
		}
	})

	t.Run("ReleaseGivesBack", func(t *testing.T) {
		t.Parallel()
		l := newLoginLimiter(2, time.Minute)
		for range 10 {
			if ok, _ := l.reserve("k", now); !ok {
				t.Fatal("a released attempt was not given back")
			}
			l.release("k")
		}
	})

	t.Run("WindowPasses", func(t *testing.T) {
		t.Parallel()
		l := newLoginLimiter(1, time.Minute)
		l.reserve("k", now)
		ok, wait := l.reserve("k", now.Add(10*time.Second))
		if ok || wait != 50*time.Second {
			t.Fatalf("reserve = %v, %v; want blocked for 50s", ok, wait)
		}
		if ok, _ := l.reserve("k", now.Add(time.Minute)); !ok {
			t.Fatal("still blocked after the window")
		}
	})

	t.Run("BoundedKeys", func(t *testing.T) {
		t.Parallel()
		l := newLoginLimiter(1, time.Minute)
		l.maxKeys = 10
		for i := range 10 {
			if ok, _ := l.reserve(fmt.Sprint(i), now); !ok {
				t.Fatalf("key %d refused below the cap", i)
			}
		}
		if ok, _ := l.reserve("one-too-many", now); ok {
			t.Fatal("the map grew past its cap")
		}
		if ok, _ := l.reserve("later", now.Add(time.Minute)); !ok {
			t.Fatal("expired keys were not collected")
		}
	})
}

func TestAddressKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.9":          "203.0.113.9",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::/64",
		"not-an-ip":            "not-an-ip",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}
