package standin

import (
	"crypto/x509"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// A sink receives the audit log as it grows: a security team's SIEM, by
// an HTTP webhook or syslog.
type SinkKind string

// Sink kinds.
const (
	// SinkWebhook posts batches of records, one JSON document a line, to
	// an HTTPS (or, where allowed, HTTP) address, signed with the sink's
	// secret.
	SinkWebhook SinkKind = "webhook"
	// SinkSyslog writes RFC 5424 messages over TCP, optionally TLS.
	SinkSyslog SinkKind = "syslog"
)

// SinkFormat is how a sink's records are written.
type SinkFormat string

// Sink formats.
const (
	// FormatStandin is the audit log's own JSON, as the JSON Lines
	// export writes it (with the chain's fields).
	FormatStandin SinkFormat = "standin"
	// FormatOCSF is the Open Cybersecurity Schema Framework, 1.3.
	FormatOCSF SinkFormat = "ocsf"
)

// Bounds of a sink's settings.
const (
	MaxSinks       = 20
	MaxSinkName    = 100
	MaxSinkFilters = 50
	MinSecretBytes = 16
	MaxSecretBytes = 256
)

// Sink is one destination of the audit log.
type Sink struct {
	ID   string
	Name string
	Kind SinkKind
	// URL is a webhook's address.
	URL string
	// Address is a syslog server's host:port; TLS says whether to speak
	// TLS to it.
	Address string
	TLS     bool
	// CA, when set, is the PEM of the certificate authorities the sink's
	// TLS certificate must chain to, instead of the system's: a SIEM
	// with a certificate of its organization's own authority.
	CA     string
	Format SinkFormat
	// Types and Projects filter the events sent: none means all. An
	// event is sent when its type is among Types and it concerns one of
	// Projects.
	Types    []string
	Projects []string
	// Secret signs a webhook's batches. It is kept on the server and
	// never shown after the sink is created.
	Secret string
	// FromSeq: events after it are sent (the log's head when the sink
	// was created, unless it asked for history).
	FromSeq   int64
	Enabled   bool
	CreatedAt time.Time
	CreatedBy EventUser
	ChangedAt time.Time
	ChangedBy EventUser
}

// Wants reports whether the sink sends e.
func (s *Sink) Wants(e *Event) bool {
	if len(s.Types) > 0 && !slices.Contains(s.Types, e.Type) {
		return false
	}
	if len(s.Projects) == 0 {
		return true
	}
	for _, p := range s.Projects {
		if slices.Contains(e.Projects, p) || e.Project == p {
			return true
		}
	}
	return false
}

// Destination names where the sink delivers, for people and for the
// allowlist: the webhook's URL, or syslog's address.
func (s *Sink) Destination() string {
	if s.Kind == SinkWebhook {
		return s.URL
	}
	scheme := "tcp"
	if s.TLS {
		scheme = "tls"
	}
	return scheme + "://" + s.Address
}

// HostPort is the host and port the sink connects to.
func (s *Sink) HostPort() (host, port string, err error) {
	if s.Kind == SinkSyslog {
		return net.SplitHostPort(s.Address)
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return "", "", err
	}
	port = u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return u.Hostname(), port, nil
}

// Check validates and normalizes a sink's settings: a name, a known kind
// and format, a destination of the kind's shape, filters of known
// projects (projects lists them), and a webhook's secret.
func (s *Sink) Check(projects []string) error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" {
		return Errorf(EInvalid, "Give the sink a name, such as the SIEM it feeds.")
	}
	if problem := TextProblem(s.Name, MaxSinkName); problem != "" {
		return Errorf(EInvalid, "The name %s", problem)
	}
	if s.Format == "" {
		s.Format = FormatStandin
	}
	if s.Format != FormatStandin && s.Format != FormatOCSF {
		return Errorf(EInvalid, "The format is %q or %q.", FormatStandin, FormatOCSF)
	}
	switch s.Kind {
	case SinkWebhook:
		u, err := url.Parse(strings.TrimSpace(s.URL))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return Errorf(EInvalid, "A webhook's url is an http or https address, without a user or a fragment.")
		}
		if len(s.URL) > 2000 {
			return Errorf(EInvalid, "The url is too long (at most 2000 characters).")
		}
		s.URL, s.Address, s.TLS = u.String(), "", u.Scheme == "https"
		if n := len(s.Secret); n < MinSecretBytes || n > MaxSecretBytes {
			return Errorf(EInvalid, "A webhook's secret has %d to %d characters.", MinSecretBytes, MaxSecretBytes)
		}
	case SinkSyslog:
		host, port, err := net.SplitHostPort(strings.TrimSpace(s.Address))
		if err != nil || host == "" || port == "" || len(s.Address) > 300 {
			return Errorf(EInvalid, "A syslog sink's address is host:port, such as siem.example.org:6514.")
		}
		s.Address, s.URL, s.Secret = net.JoinHostPort(host, port), "", ""
	default:
		return Errorf(EInvalid, "The kind is %q or %q.", SinkWebhook, SinkSyslog)
	}
	if s.CA != "" {
		if len(s.CA) > 64<<10 {
			return Errorf(EInvalid, "The certificate authority is too large (at most 64 KiB of PEM).")
		}
		if !s.TLS {
			return Errorf(EInvalid, "A certificate authority is for a sink that speaks TLS (https, or syslog with tls).")
		}
		if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM([]byte(s.CA)) {
			return Errorf(EInvalid, "The certificate authority is not a PEM certificate.")
		}
	}
	if len(s.Types) > MaxSinkFilters || len(s.Projects) > MaxSinkFilters {
		return Errorf(EInvalid, "A filter lists at most %d types and %d projects.", MaxSinkFilters, MaxSinkFilters)
	}
	for _, t := range s.Types {
		if !slices.Contains(EventTypes(), t) {
			return Errorf(EInvalid, "%q is not an event type.", clip(t))
		}
	}
	for _, p := range s.Projects {
		if !slices.Contains(projects, p) {
			return Errorf(EInvalid, "%q is not a project.", clip(p))
		}
	}
	slices.Sort(s.Types)
	s.Types = slices.Compact(s.Types)
	slices.Sort(s.Projects)
	s.Projects = slices.Compact(s.Projects)
	return nil
}

// SinkHealth is how a sink's delivery stands.
type SinkHealth struct {
	SinkID string
	// Delivered is the seq of the newest event the sink acknowledged
	// (with every one before it), and DeliveredAt when.
	Delivered   int64
	DeliveredAt time.Time
	// LastError is the newest failure, cleared by the next success;
	// Failures counts failures in a row.
	LastError   string
	LastErrorAt time.Time
	Failures    int
	// Checkpoint is the seq of the newest signed checkpoint sent.
	Checkpoint int64
}
