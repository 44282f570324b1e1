package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"standin/server/audit"
)

// openAnchor loads the audit key and opens the anchor in the data
// directory. On the embedded database a missing key is created, unless
// checkpoints signed by a lost key are there; with MONGODB_URI every
// server must be given the same key, so a missing one stops the start.
func openAnchor(cfg Config, log *slog.Logger, sinks ...audit.CheckpointSink) (*audit.Anchor, error) {
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
	return audit.OpenAnchor(audit.AnchorConfig{Key: key, Dir: cfg.DataDir, Logger: log, Sinks: sinks})
}
