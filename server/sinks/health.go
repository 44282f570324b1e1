package sinks

import "standin/server/standin"

// HealthJSON is how a sink's delivery stands, as the API answers it and
// the live topic pushes it.
type HealthJSON struct {
	SinkID       string `json:"sink_id"`
	DeliveredSeq int64  `json:"delivered_seq"`
	DeliveredAt  string `json:"delivered_at,omitempty"`
	Failures     int    `json:"failures"`
	LastError    string `json:"last_error,omitempty"`
	LastErrorAt  string `json:"last_error_at,omitempty"`
	// Checkpoint is the seq of the newest signed checkpoint delivered.
	Checkpoint int64 `json:"checkpoint_seq"`
}

// HealthView is h's JSON form for a sink that starts after fromSeq; h may
// be nil before the sink's first delivery.
func HealthView(sinkID string, h *standin.SinkHealth, fromSeq int64) HealthJSON {
	j := HealthJSON{SinkID: sinkID, DeliveredSeq: fromSeq}
	if h == nil {
		return j
	}
	j.DeliveredSeq = max(h.Delivered, fromSeq)
	j.DeliveredAt = standin.FormatTime(h.DeliveredAt)
	j.Failures, j.LastError, j.Checkpoint = h.Failures, h.LastError, h.Checkpoint
	if h.LastError != "" {
		j.LastErrorAt = standin.FormatTime(h.LastErrorAt)
	}
	return j
}
