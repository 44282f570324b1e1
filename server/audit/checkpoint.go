package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// CheckpointVersion labels the signed message of a checkpoint. It is the
// first field of the message, so a future encoding can be told apart.
const CheckpointVersion = "standin-audit-checkpoint-v1"

// Kinds of checkpoint: what the server was doing when it signed one.
const (
	// KindHead is the head after a commit: the head file holds the
	// newest, and one every CheckpointEvery or CheckpointEvents is kept
	// in the checkpoint file.
	KindHead = "head"
	// KindStart is the head a server found in the database when it
	// started, signed before it appended anything.
	KindStart = "start"
	// KindStop is the head when a server stopped cleanly, signed after
	// its last append.
	KindStop = "stop"
)

// Checkpoint is a signed statement about the chain: at Time, the event
// with seq Seq (the newest the signer knew of) had hash Hash. Checkpoints
// chain like the events: Prev is the Digest of the checkpoint before it
// ("" for the first), so removing or reordering one is seen as well.
//
// The fields are kept as they are signed (Time as TimeLayout text), so
// a checkpoint read from a file or an export verifies without any
// conversion. Signature is the standard base64 of the Ed25519 signature
// of Message.
type Checkpoint struct {
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	Prev      string `json:"prev"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// Message returns the bytes a checkpoint's signature covers: netstrings
// (as in ComputeHash) of version, kind, seq (decimal), hash, time, prev
// and key_id, in that order.
func (c *Checkpoint) Message() []byte {
	buf := make([]byte, 0, 256)
	for _, s := range []string{c.Version, c.Kind, strconv.FormatInt(c.Seq, 10), c.Hash, c.Time, c.Prev, c.KeyID} {
		buf = appendNetstring(buf, s)
	}
	return buf
}

// Digest identifies a signed checkpoint, for the next one's Prev: the
// lowercase hex SHA-256 of Message followed by the netstring of
// Signature (its base64 text).
func (c *Checkpoint) Digest() string {
	sum := sha256.Sum256(appendNetstring(c.Message(), c.Signature))
	return hex.EncodeToString(sum[:])
}

// Verify checks that c is a well-formed checkpoint signed by pub.
func (c *Checkpoint) Verify(pub ed25519.PublicKey) error {
	switch {
	case c.Version != CheckpointVersion:
		return fmt.Errorf("unknown checkpoint version %q", c.Version)
	case c.Kind != KindHead && c.Kind != KindStart && c.Kind != KindStop:
		return fmt.Errorf("unknown checkpoint kind %q", c.Kind)
	case c.Seq < 0:
		return errors.New("negative seq")
	}
	if _, err := time.Parse(TimeLayout, c.Time); err != nil {
		return fmt.Errorf("malformed time %q", c.Time)
	}
	if c.KeyID != KeyID(pub) {
		return fmt.Errorf("signed by key %q, not by this log's key %q", c.KeyID, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.Message(), sig) {
		return errors.New("the signature does not match")
	}
	return nil
}

// signedAt returns c's time, for messages to people.
func (c *Checkpoint) signedAt() string {
	t, err := time.Parse(TimeLayout, c.Time)
	if err != nil {
		return c.Time
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}

// KeyID names a public key: the first 16 hex digits of the SHA-256 of
// its 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

func appendNetstring(buf []byte, s string) []byte {
	buf = strconv.AppendInt(buf, int64(len(s)), 10)
	buf = append(buf, ':')
	buf = append(buf, s...)
	return append(buf, ',')
}
