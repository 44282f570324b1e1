// Command standin runs the Standin support console.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "time/tzdata" // time zones on hosts and images without zoneinfo

	"standin/balancer"
	"standin/server"
	"standin/server/audit"
	"standin/server/embeddeddb"
	"standin/server/sinks"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 {
		switch args[0] {
		case "audit-key":
			return auditKey(args[1:], os.Getenv, os.Stdout)
		case "database":
			return database(ctx, args[1:], os.Getenv, os.Stdout)
		case "balance":
			return balance(ctx, args[1:], os.Stdout)
		}
	}
	cfg, err := parseConfig(args, os.Getenv)
	if err != nil {
		return err
	}
	cfg.Announce = os.Stdout
	return server.Run(ctx, cfg)
}

// parseConfig reads flags, falling back to environment variables, falling
// back to the defaults of server.Config.
func parseConfig(args []string, getenv func(string) string) (server.Config, error) {
	fs := flag.NewFlagSet("standin", flag.ContinueOnError)
	addr := fs.String("addr", getenv("STANDIN_ADDR"), "listen address (env STANDIN_ADDR, default localhost:8080)")
	dataDir := fs.String("data-dir", getenv("STANDIN_DATA_DIR"), "embedded database directory (env STANDIN_DATA_DIR, default ./data)")
	uri := fs.String("mongodb-uri", getenv("MONGODB_URI"), "MongoDB connection string; empty runs the embedded database (env MONGODB_URI)")
	demo := fs.String("demo", getenv("STANDIN_DEMO"), "seed the demo facility: true, false or empty for auto (env STANDIN_DEMO)")
	demoPassword := fs.String("demo-password", getenv("STANDIN_DEMO_PASSWORD"), "demo accounts' password (env STANDIN_DEMO_PASSWORD, default demo)")
	tz := fs.String("tz", getenv("STANDIN_TZ"), "facility time zone (env STANDIN_TZ, default UTC)")
	publicURL := fs.String("public-url", getenv("STANDIN_PUBLIC_URL"), "the URL people open, when not the listen address (env STANDIN_PUBLIC_URL)")
	secure := fs.String("secure-cookies", getenv("STANDIN_SECURE_COOKIES"), "mark cookies Secure behind a TLS proxy (env STANDIN_SECURE_COOKIES)")
	proxies := fs.String("trusted-proxies", getenv("STANDIN_TRUSTED_PROXIES"), "comma-separated addresses or CIDR ranges of load balancers whose X-Forwarded-For names the client (env STANDIN_TRUSTED_PROXIES)")
	keyFile := fs.String("audit-key-file", getenv("STANDIN_AUDIT_KEY_FILE"), "the key that signs the audit log's checkpoints (env STANDIN_AUDIT_KEY_FILE, default audit.key in the data directory; required with MONGODB_URI)")
	window := fs.String("audit-window", getenv("STANDIN_AUDIT_WINDOW"), "newest audit events kept in memory on the embedded database (env STANDIN_AUDIT_WINDOW, default 100000)")
	sinkAllow := fs.String("sink-allow", getenv("STANDIN_SINK_ALLOW"), "where audit sinks may deliver: host patterns, addresses and networks, comma-separated (env STANDIN_SINK_ALLOW, default any public address)")
	logLevel := fs.String("log-level", getenv("STANDIN_LOG_LEVEL"), "debug, info, warn or error (env STANDIN_LOG_LEVEL, default info)")
	perSession := fs.String("sockets-per-session", getenv("STANDIN_SOCKETS_PER_SESSION"), "live connections one sign-in session may hold (env STANDIN_SOCKETS_PER_SESSION, default 32)")
	perUser := fs.String("sockets-per-user", getenv("STANDIN_SOCKETS_PER_USER"), "live connections one person may hold (env STANDIN_SOCKETS_PER_USER, default 128)")
	maxSockets := fs.String("max-sockets", getenv("STANDIN_MAX_SOCKETS"), "live connections on this server (env STANDIN_MAX_SOCKETS, default: what the open files limit allows)")
	if err := fs.Parse(args); err != nil {
		return server.Config{}, err
	}

	cfg := server.Config{Addr: *addr, DataDir: *dataDir, MongoURI: *uri, DemoPassword: *demoPassword, PublicURL: *publicURL}
	cfg.AuditKeyFile = *keyFile
	switch *demo {
	case "":
	default:
		on, err := strconv.ParseBool(*demo)
		if err != nil {
			return cfg, fmt.Errorf("STANDIN_DEMO / -demo: %q is not true or false", *demo)
		}
		cfg.Demo = server.DemoOff
		if on {
			cfg.Demo = server.DemoOn
		}
	}
	if *tz != "" {
		loc, err := time.LoadLocation(*tz)
		if err != nil {
			return cfg, fmt.Errorf("STANDIN_TZ / -tz: %w", err)
		}
		cfg.Location = loc
	}
	if *secure != "" {
		on, err := strconv.ParseBool(*secure)
		if err != nil {
			return cfg, fmt.Errorf("STANDIN_SECURE_COOKIES / -secure-cookies: %q is not true or false", *secure)
		}
		cfg.SecureCookies = on
	}
	trusted, err := parseProxies(*proxies)
	if err != nil {
		return cfg, err
	}
	cfg.TrustedProxies = trusted
	if _, err := sinks.ParseAllowlist(*sinkAllow); err != nil {
		return cfg, fmt.Errorf("STANDIN_SINK_ALLOW / -sink-allow: %w", err)
	}
	cfg.SinkAllow = *sinkAllow
	if *window != "" {
		n, err := strconv.Atoi(*window)
		if err != nil || n < 1000 {
			return cfg, fmt.Errorf("STANDIN_AUDIT_WINDOW / -audit-window: %q is not a number of events of at least 1000", *window)
		}
		cfg.AuditWindow = n
	}
	for _, n := range []struct {
		value, name string
		into        *int
	}{
		{*perSession, "STANDIN_SOCKETS_PER_SESSION / -sockets-per-session", &cfg.MaxSocketsPerSession},
		{*perUser, "STANDIN_SOCKETS_PER_USER / -sockets-per-user", &cfg.MaxSocketsPerUser},
		{*maxSockets, "STANDIN_MAX_SOCKETS / -max-sockets", &cfg.MaxSockets},
	} {
		if n.value == "" {
			continue
		}
		v, err := strconv.Atoi(n.value)
		if err != nil || v < 1 {
			return cfg, fmt.Errorf("%s: %q is not a positive number", n.name, n.value)
		}
		*n.into = v
	}
	var level slog.Level
	if *logLevel != "" {
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return cfg, errors.New("STANDIN_LOG_LEVEL / -log-level: use debug, info, warn or error")
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

// auditKey is "standin audit-key -out FILE": it creates the key that signs
// the audit log's checkpoints, readable by its owner only, for servers
// that share a database (MONGODB_URI), which must all have a copy of the
// same key and do not create one. An existing key file is left as it is.
// Either way it prints the key's id and public key.
func auditKey(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("standin audit-key", flag.ContinueOnError)
	path := fs.String("out", getenv("STANDIN_AUDIT_KEY_FILE"), "the key file to create (env STANDIN_AUDIT_KEY_FILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() > 0 {
		return errors.New("audit-key: name the key file to create with -out FILE")
	}
	key, created, err := audit.LoadKey(*path, true, nil)
	if err != nil {
		return fmt.Errorf("audit-key: %w", err)
	}
	what := "exists, left as it is"
	if created {
		what = "created"
	}
	pub := key.Public()
	_, err = fmt.Fprintf(out, "%s: %s\nkey id: %s\npublic key (ed25519, base64): %s\n%s", *path, what, pub.KeyID, pub.PublicKey, pub.PEM)
	return err
}

// database is "standin database -addr HOST:PORT -data-dir DIR": it runs
// the embedded database alone, until interrupted, for consoles that share
// it by MONGODB_URI (several nodes on one machine). It prints the URI to
// give them once the database answers.
func database(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("standin database", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:27017", "the address the database listens on")
	dataDir := fs.String("data-dir", getenv("STANDIN_DATA_DIR"), "the database's files (env STANDIN_DATA_DIR, default ./data)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("database: unexpected argument %q", fs.Arg(0))
	}
	if *dataDir == "" {
		*dataDir = "data"
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if host, _, err := net.SplitHostPort(*addr); err == nil && !loopback(host) {
		log.Warn("the embedded database has no sign-in: anyone who reaches this address reads and writes everything", "addr", *addr)
	}
	db, err := embeddeddb.Start(ctx, *dataDir, *addr, log)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer db.Close()
	if _, err := fmt.Fprintf(out, "database ready: MONGODB_URI=%s\n", db.URI()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// balance is "standin balance -addr HOST:PORT -backend URL ...": a load
// balancer for consoles that share a database, until interrupted. Each
// console runs with STANDIN_PUBLIC_URL set to the balancer's URL, which it
// prints once it listens.
func balance(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("standin balance", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "the address the balancer listens on")
	var backends []string
	fs.Func("backend", "a console's URL, http://HOST:PORT (repeat for each)", func(s string) error {
		backends = append(backends, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("balance: unexpected argument %q", fs.Arg(0))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b, err := balancer.New(balancer.Config{Backends: backends, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("balance: %w", err)
	}
	if _, err := fmt.Fprintf(out, "balancer ready: URL=http://%s\n", ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	return b.Serve(ctx, ln)
}

// loopback reports whether host names this machine only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseProxies reads a comma-separated list of IP addresses and CIDR
// ranges.
func parseProxies(list string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(item); err != nil && net.ParseIP(item) == nil {
			return nil, fmt.Errorf("STANDIN_TRUSTED_PROXIES / -trusted-proxies: %q is neither an IP address nor a CIDR range", item)
		}
		out = append(out, item)
	}
	return out, nil
}
