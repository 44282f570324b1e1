package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Key is the audit log's Ed25519 signing key. It signs checkpoints; only
// its public half is ever shown (String and LogValue name it by KeyID).
type Key struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string
}

// PublicKey is the public half of a Key as the API and exports publish it.
type PublicKey struct {
	// Algorithm is always "ed25519".
	Algorithm string `json:"algorithm"`
	// KeyID is KeyID of the key, as checkpoints name it.
	KeyID string `json:"key_id"`
	// PublicKey is the standard base64 of the key's 32 bytes.
	PublicKey string `json:"public_key"`
	// PEM is the key as a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo),
	// for openssl and other tools.
	PEM string `json:"pem"`
}

// NewKey generates a key.
func NewKey() (*Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	return &Key{priv: priv, pub: pub, id: KeyID(pub)}, nil
}

// ErrNoKey is wrapped by LoadKey's error when the key file does not exist
// and may not be created.
var ErrNoKey = errors.New("the audit key file does not exist")

// LoadKey reads the key file at path: a PEM "PRIVATE KEY" block holding
// an Ed25519 key in PKCS #8, as `openssl genpkey -algorithm ed25519`
// writes it. When the file does not exist and create is true, it writes
// a new key there, readable by its owner only (0600), and reports
// created; otherwise the error wraps ErrNoKey. A key file others may
// read is used, with a warning to logger.
func LoadKey(path string, create bool, logger *slog.Logger) (key *Key, created bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, false, fmt.Errorf("audit key %s: %w", path, ErrNoKey)
		}
		key, err = CreateKey(path)
		return key, err == nil, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("read audit key: %w", err)
	}
	key, err = ParseKey(raw)
	if err != nil {
		return nil, false, fmt.Errorf("audit key %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && logger != nil {
		logger.Warn("the audit key file can be read by others than its owner; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	return key, false, nil
}

// CreateKey writes a new key to path, which must not exist yet, with
// permissions 0600, and returns it.
func CreateKey(path string) (*Key, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key.priv)
	if err != nil {
		return nil, fmt.Errorf("encode audit key: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create audit key: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create audit key: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("create audit key: %w", err)
	}
	syncDir(filepath.Dir(path))
	return key, nil
}

// ParseKey reads a PEM "PRIVATE KEY" block holding an Ed25519 key.
func ParseKey(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New(`not a PEM "PRIVATE KEY" block (create one with: openssl genpkey -algorithm ed25519)`)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Key{priv: priv, pub: pub, id: KeyID(pub)}, nil
}

// ID returns KeyID of the key.
func (k *Key) ID() string { return k.id }

// Public returns the public half of the key as it is published.
func (k *Key) Public() PublicKey {
	der, _ := x509.MarshalPKIXPublicKey(k.pub) // cannot fail for an Ed25519 key
	return PublicKey{
		Algorithm: "ed25519",
		KeyID:     k.id,
		PublicKey: base64.StdEncoding.EncodeToString(k.pub),
		PEM:       string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}
}

// String names the key without revealing it.
func (k *Key) String() string { return "audit key " + k.id }

// GoString names the key without revealing it, for %#v.
func (k *Key) GoString() string { return "audit.Key(" + k.id + ")" }

// LogValue names the key in logs without revealing it.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// sign fills in c's version and key and signs it.
func (k *Key) sign(c *Checkpoint) {
	c.Version, c.KeyID = CheckpointVersion, k.id
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, c.Message()))
}

// syncDir makes a rename or a creation in dir durable, where the system
// allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
