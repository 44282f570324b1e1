package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"standin/server/audit"
	"standin/server/httpapi"
)

// openAnchor loads the audit key and opens the anchor in the data
// directory. On the embedded database a missing key is created, unless
// checkpoints signed by a lost key are there; with MONGODB_URI every
// server must be given the same key, so a missing one stops the start.
func openAnchor(cfg Config, log *slog.Logger) (*audit.Anchor, error) {
	create := cfg.MongoURI == ""
	if create {
		if _, err := os.Stat(cfg.AuditKeyFile); errors.Is(err, fs.ErrNotExist) {
			cps := filepath.Join(cfg.DataDir, audit.CheckpointFile)
			if _, err := os.Stat(cps); err == nil {
				return nil, fmt.Errorf("the audit key %s is missing, but %s holds checkpoints signed with it: "+
					"restore the key file (STANDIN_AUDIT_KEY_FILE), or move the checkpoint file away to start a new anchor", cfg.AuditKeyFile, cps)
			}
		}
	}
	key, created, err := audit.LoadKey(cfg.AuditKeyFile, create, log)
	if errors.Is(err, audit.ErrNoKey) {
		return nil, fmt.Errorf("the audit key %s does not exist: with MONGODB_URI set, every server signs the audit log's checkpoints "+
			"with the same key, so none is created; create one once (standin audit-key -out FILE, or "+
			"openssl genpkey -algorithm ed25519 -out FILE), give each server a copy readable by it alone, "+
			"and name it with STANDIN_AUDIT_KEY_FILE (-audit-key-file)", cfg.AuditKeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("STANDIN_AUDIT_KEY_FILE: %w", err)
	}
	if created {
		log.Warn("audit key created: it signs the audit log's checkpoints; keep a copy of it apart from the data directory",
			"file", cfg.AuditKeyFile, "key_id", key.ID())
	} else {
		log.Info("audit key loaded", "file", cfg.AuditKeyFile, "key_id", key.ID())
	}
	return audit.OpenAnchor(audit.AnchorConfig{Key: key, Dir: cfg.DataDir, Logger: log})
}

// auditLog presents the audit log to the HTTP API in its terms.
type auditLog struct{ *audit.Log }

// Verify walks the chain and adds what the log knows of itself.
func (l auditLog) Verify(ctx context.Context) (httpapi.ChainStatus, error) {
	v, err := l.Log.Verify(ctx)
	if err != nil {
		return httpapi.ChainStatus{}, err
	}
	st := l.Status()
	out := httpapi.ChainStatus{
		ChainCheck:  chainCheck(v),
		Head:        v.Head,
		Checkpoints: v.Checkpoints,
		Anchor:      chainAnchor(v.Anchor),
		Startup:     chainCheck(st.Startup),
		Background: httpapi.ChainBackground{
			State: st.Background.State, Started: st.Background.Started, Finished: st.Background.Finished,
			Error: st.Background.Err,
		},
		AnchorError: st.AnchorError,
		KeyID:       st.Key.KeyID,
	}
	if st.Background.State == audit.BackgroundDone {
		c := chainCheck(st.Background.Result)
		out.Background.Result = &c
	}
	return out, nil
}

// PublicKey returns the key checkpoints are signed with.
func (l auditLog) PublicKey() (httpapi.AuditKey, bool) {
	k, ok := l.Log.PublicKey()
	return httpapi.AuditKey(k), ok
}

func chainCheck(v audit.Verification) httpapi.ChainCheck {
	return httpapi.ChainCheck{OK: v.OK, Checked: v.Checked, BrokenAt: v.BrokenAt, Code: v.Code, Problem: v.Problem}
}

func chainAnchor(c *audit.Checkpoint) *httpapi.ChainAnchor {
	if c == nil {
		return nil
	}
	return &httpapi.ChainAnchor{Kind: c.Kind, Seq: c.Seq, Hash: c.Hash, Time: c.Time}
}
