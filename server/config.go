package server

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"standin/server/loginlimit"
	"standin/server/password"
)

// SessionCookie is the name of the cookie that carries a session token,
// read by the HTTP API and the WebSocket endpoint alike.
const SessionCookie = "standin_session"

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
	// PublicURL is the address people open when it is not the listen
	// address (a proxy, a container's published port, a DNS name), such as
	// "https://standin.example.org". The server answers requests for its
	// host, and on a loopback address only for loopback names and it.
	PublicURL string
	// SecureCookies marks cookies Secure on plain HTTP too, for a server
	// behind a TLS-terminating proxy.
	SecureCookies bool
	// TrustedProxies are the addresses (IPs or CIDR ranges) of the load
	// balancers in front of the server. A request from one of them is
	// taken to come from the address its X-Forwarded-For names, for
	// sign-in limits and audit events alike; the balancer must set that
	// header to the client's address, not append to what the client sent.
	// Empty: the header is ignored and the connection's address counts.
	TrustedProxies []string
	// SinkAllow says where the audit log's sinks may deliver: host name
	// patterns, addresses and networks, comma-separated (see
	// sinks.Allowlist). Empty: any public address, never an inside one.
	SinkAllow string
	// AuditWindow is how many of the newest audit events the server keeps
	// in memory (default 100,000, about 0.75 KB each). Activity pages,
	// live replays and start-up repair within it are answered from
	// memory; older pages are read from the database. Opening the log
	// reads one page of the newest events into it (on the embedded
	// database's segments the newest 2,048, whatever the log's length),
	// the rest is read in the background, and then it follows the log,
	// whoever appends. A log kept in one collection on the embedded
	// database (made before segments) is read whole at opening instead.
	AuditWindow int
	// SignInLimits is when sign-in attempts wait and for how long; zero
	// fields are package loginlimit's defaults.
	SignInLimits loginlimit.Policy
	// MaxSocketsPerSession bounds the live connections (/ws) one sign-in
	// session holds open on this server at once (default 32, one a tab);
	// MaxSocketsPerUser those of one person across their sessions
	// (default 128). A socket past either is closed at once with close code
	// 4029 (realtime.StatusTooManySockets).
	MaxSocketsPerSession int
	MaxSocketsPerUser    int
	// MaxSockets bounds all live connections on this server (default: as
	// many as the file descriptor limit allows after keeping 1024, or half
	// the limit if less, for HTTP and the database). Past it /ws answers
	// 503 unavailable. It never goes past the file descriptor bound.
	MaxSockets int
	// AuditKeyFile is the Ed25519 key that signs the audit log's
	// checkpoints, a PKCS #8 PEM file (default DataDir/audit.key). On
	// the embedded database it is created, readable by its owner only,
	// on first start; with MongoURI it must exist, and every server
	// sharing the database must have a copy of the same key. The anchor's
	// own files (the signed head and checkpoints) are kept in DataDir.
	AuditKeyFile string
	// PasswordCost is the Argon2id cost (default password.Default).
	PasswordCost password.Params
	// FollowEvery is how often the server probes the database for what
	// other servers sharing it committed and signalled (default 50 ms):
	// the delay of live delivery from one node to another. Each probe is
	// a small read; a server alone on its embedded database probes once a
	// second whatever this says.
	FollowEvery time.Duration
	// ShutdownTimeout bounds graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// Clock is the time source for sessions, impersonations and decisions
	// (default time.Now); tests move it to expire things.
	Clock func() time.Time
	// VerifyWait is how long GET /api/v1/activity/verify waits for the
	// verification of the whole log before answering 202 with how far it
	// has got (default 3s); the Activity panel then shows its progress.
	VerifyWait time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// Announce, if set, receives a few plain lines once the console is
	// ready: the address to open and, with the demo on, an account to sign
	// in with. The command writes them to standard output.
	Announce io.Writer
	// OnListen, if set, is called with the bound address once the console
	// is ready and serves; tests that listen on port 0 use it.
	OnListen func(addr net.Addr)
	// OnStarting, if set, is called as start-up moves on to each step
	// ("Reading the audit log"), with the address already answering that
	// the console is starting. Start-up waits for it to return.
	OnStarting func(addr net.Addr, step string)
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "localhost:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.AuditKeyFile == "" {
		c.AuditKeyFile = filepath.Join(c.DataDir, "audit.key")
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
	if c.AuditWindow <= 0 {
		c.AuditWindow = defaultAuditWindow
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
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// demoEnabled resolves DemoAuto: on for the embedded database only.
// followEvery is FollowEvery or its default.
func (c Config) followEvery() time.Duration {
	if c.FollowEvery > 0 {
		return c.FollowEvery
	}
	return defaultFollowEvery
}

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

// hostPolicy derives which Host names the server answers to and the public
// origin browsers use. A server on loopback answers only loopback names
// (and the public URL's host), which defeats DNS rebinding; a server on
// another address answers any name unless PublicURL narrows it.
func (c Config) hostPolicy() (allowed []string, origin string, err error) {
	listenHost, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen address %q: %w", c.Addr, err)
	}
	var publicHost string
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", fmt.Errorf("public URL %q: want http(s)://host[:port]", c.PublicURL)
		}
		publicHost, origin = strings.ToLower(u.Hostname()), u.Scheme+"://"+u.Host
	}
	loopback := listenHost == "localhost"
	if ip := net.ParseIP(listenHost); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if loopback || publicHost != "" {
		allowed = []string{"localhost", "127.0.0.1", "::1"}
		if publicHost != "" && !slices.Contains(allowed, publicHost) {
			allowed = append(allowed, publicHost)
		}
	}
	return allowed, origin, nil
}
