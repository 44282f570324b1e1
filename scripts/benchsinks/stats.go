package main

import (
	"time"
)

// delivery is what a receiver got of the events after one seq up to
// another: the range a measurement appended.
type delivery struct {
	events     int // seqs of the range received
	missing    int // seqs of the range not received
	duplicates int // records of the range received again (at least once allows it)
	// first is when the first record of the range arrived, last when
	// the range's last seq did (zero when it did not).
	first, last time.Time
	// lags are, for each seq of the range, its first arrival less its
	// event's time: from the log's append to the receiver.
	lags []time.Duration
}

// summarize reads recs, in the order they arrived, for the seqs after
// after up to last.
func summarize(recs []received, after, last int64) delivery {
	var d delivery
	seen := make(map[int64]bool)
	for _, r := range recs {
		if r.seq <= after || r.seq > last {
			continue
		}
		if seen[r.seq] {
			d.duplicates++
			continue
		}
		seen[r.seq] = true
		d.events++
		if d.first.IsZero() || r.at.Before(d.first) {
			d.first = r.at
		}
		if r.seq == last {
			d.last = r.at
		}
		d.lags = append(d.lags, r.at.Sub(r.event))
	}
	d.missing = int(last-after) - d.events
	return d
}

// perSecond is the events received a second, from the first record's
// arrival to the last seq's; 0 when that span is empty.
func (d delivery) perSecond() float64 {
	span := d.last.Sub(d.first)
	if d.last.IsZero() || span <= 0 {
		return 0
	}
	return float64(d.events) / span.Seconds()
}
