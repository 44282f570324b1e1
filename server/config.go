package server

import (
	"log/slog"
	"net"
	"time"

	"standin/server/password"
)

// DemoMode says whether the demo facility is seeded into an empty database.
type DemoMode int

// Demo modes. The zero value, DemoAuto, seeds the embedded database and
// leaves a real MongoDB (MongoURI set) alone.
const (
	DemoAuto DemoMode = iota
	DemoOn
	DemoOff
)

// Config is the server's configuration. Every zero value is a documented
// default, so Config{} runs the embedded database with the demo facility.
type Config struct {
	// Addr is the listen address for HTTP and WebSocket (default
	// "localhost:8080"; ":0" or "127.0.0.1:0" picks a free port).
	Addr string
	// DataDir holds the embedded database's files (default "./data").
	DataDir string
	// MongoURI selects a real MongoDB; empty runs the embedded database.
	MongoURI string
	// Database is the database name (default "standin").
	Database string
	// Demo says whether to seed the demo facility (default DemoAuto).
	Demo DemoMode
	// DemoPassword is every demo account's password (default "demo").
	DemoPassword string
	// Location is the facility's time zone (default UTC).
	Location *time.Location
	// SecureCookies marks cookies Secure on plain HTTP too, for a server
	// behind a TLS-terminating proxy.
	SecureCookies bool
	// PasswordCost is the Argon2id cost (default password.Default).
	PasswordCost password.Params
	// ShutdownTimeout bounds graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// OnListen, if set, is called with the bound address once the server
	// accepts connections; tests that listen on port 0 use it.
	OnListen func(addr net.Addr)
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "localhost:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Database == "" {
		c.Database = "standin"
	}
	if c.DemoPassword == "" {
		c.DemoPassword = "demo"
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.PasswordCost == (password.Params{}) {
		c.PasswordCost = password.Default
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// demoEnabled resolves DemoAuto: on for the embedded database only.
func (c Config) demoEnabled() bool {
	switch c.Demo {
	case DemoOn:
		return true
	case DemoOff:
		return false
	default:
		return c.MongoURI == ""
	}
}
