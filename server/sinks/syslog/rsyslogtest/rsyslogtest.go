// Package rsyslogtest runs a real rsyslogd for tests: a private instance with
// its own config, work directory and pid file in t.TempDir(), listening on a
// free 127.0.0.1 port with imtcp, plain or TLS (rsyslog's "ossl" network
// stream driver, from Debian's rsyslog-openssl, with a throwaway CA made
// here). What it receives is kept whole in a file that the test reads.
//
// rsyslogd must be installed (scripts/install-rsyslog); without it Start
// fails the test, since a test that cannot reach a real receiver proves
// nothing.
package rsyslogtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultMaxMessageSize is Options.MaxMessageSize's default. rsyslog's own
// default (8 KiB) would cut the larger records tests send.
const DefaultMaxMessageSize = 64 << 10

// startTimeout bounds how long Start and Restart wait for the port.
const startTimeout = 20 * time.Second

// Options says how the rsyslogd listens. The zero value is plain TCP.
type Options struct {
	// TLS makes the input TLS-only (RFC 5425) with a server certificate for
	// 127.0.0.1 and localhost signed by a CA made for this server.
	TLS bool
	// MaxMessageSize is the largest record kept whole, in bytes;
	// DefaultMaxMessageSize when zero.
	MaxMessageSize int
}

// Server is one running rsyslogd.
type Server struct {
	// Addr is "127.0.0.1:port"; Restart keeps it.
	Addr string
	// CA is the certificate authority that signed the server's certificate
	// when Options.TLS is set, else nil.
	CA *x509.Certificate

	t       testing.TB
	bin     string
	dir     string
	conf    string
	pidFile string
	port    int
	opts    Options
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	waitErr error         // cmd.Wait's result, once exited is closed
}

// Files in the server's directory.
const (
	receivedFile = "received.log" // each record as received, one a line
	fieldsFile   = "fields.log"   // each record as rsyslog parsed it, JSON
	internalFile = "internal.log" // rsyslogd's own messages
	outputFile   = "rsyslogd.out" // rsyslogd's stdout and stderr
	portFile     = "port"         // the port imtcp listens on
)

// Start runs rsyslogd with opts and waits until its port accepts
// connections. The server is stopped on t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := findRsyslogd()
	if err != nil {
		t.Fatal(err)
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	dir := t.TempDir()
	s := &Server{
		t:       t,
		bin:     bin,
		dir:     dir,
		conf:    filepath.Join(dir, "rsyslog.conf"),
		pidFile: filepath.Join(dir, "rsyslogd.pid"),
		opts:    opts,
	}
	if opts.TLS {
		ca, err := writeCerts(dir)
		if err != nil {
			t.Fatalf("rsyslogtest: making the TLS certificates: %v", err)
		}
		s.CA = ca
	}
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// findRsyslogd looks on PATH, then where Debian puts it.
func findRsyslogd() (string, error) {
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p, nil
	}
	const debian = "/usr/sbin/rsyslogd"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", errors.New("rsyslogtest: rsyslogd is not on PATH nor at /usr/sbin/rsyslogd: run scripts/install-rsyslog")
}

// ClientTLS returns a TLS config that trusts only the server's CA, or nil
// for a plain server.
func (s *Server) ClientTLS() *tls.Config {
	if s.CA == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.CA)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// config returns rsyslog.conf for port (0: any free port).
func (s *Server) config(port int) string {
	q := strconv.Quote
	path := func(name string) string { return q(filepath.Join(s.dir, name)) }
	var b strings.Builder
	// maxMessageSize must come before the input module is loaded.
	fmt.Fprintf(&b, "global(workDirectory=%s maxMessageSize=%q", q(s.dir), strconv.Itoa(s.opts.MaxMessageSize))
	if s.opts.TLS {
		fmt.Fprintf(&b, "\n  defaultNetstreamDriver=\"ossl\"\n  defaultNetstreamDriverCAFile=%s\n  defaultNetstreamDriverCertFile=%s\n  defaultNetstreamDriverKeyFile=%s",
			path("ca.pem"), path("server.pem"), path("server-key.pem"))
	}
	b.WriteString(")\n")
	if s.opts.TLS {
		b.WriteString(`module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")` + "\n")
	} else {
		b.WriteString(`module(load="imtcp")` + "\n")
	}
	fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" listenPortFileName=%s ruleset=\"received\")\n", port, path(portFile))
	// rawmsg is the record exactly as framed by the sender; the fields
	// template shows how rsyslog's RFC 5424 parser read it.
	b.WriteString(`template(name="raw" type="string" string="%rawmsg%\n")` + "\n")
	b.WriteString(`template(name="fields" type="string" string="{\"pri\":\"%pri%\",\"timestamp\":\"%timereported:::date-rfc3339%\",\"hostname\":\"%hostname:::json%\",\"appname\":\"%app-name:::json%\",\"procid\":\"%procid:::json%\",\"msgid\":\"%msgid:::json%\",\"sd\":\"%structured-data:::json%\",\"msg\":\"%msg:::json%\"}\n")` + "\n")
	fmt.Fprintf(&b, "ruleset(name=\"received\") {\n  action(type=\"omfile\" file=%s template=\"raw\")\n  action(type=\"omfile\" file=%s template=\"fields\")\n}\n",
		path(receivedFile), path(fieldsFile))
	// rsyslogd's own messages stay apart from what the test sent.
	fmt.Fprintf(&b, "*.* action(type=\"omfile\" file=%s)\n", path(internalFile))
	return b.String()
}

// start runs rsyslogd on s.port (0 the first time) and waits for it.
func (s *Server) start() error {
	if err := os.WriteFile(s.conf, []byte(s.config(s.port)), 0o600); err != nil {
		return fmt.Errorf("rsyslogtest: writing the config: %w", err)
	}
	_ = os.Remove(filepath.Join(s.dir, portFile))
	_ = os.Remove(s.pidFile)
	out, err := os.OpenFile(filepath.Join(s.dir, outputFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("rsyslogtest: opening the output file: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(s.bin, "-n", "-f", s.conf, "-i", s.pidFile)
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rsyslogtest: starting %s: %w", s.bin, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitListening(); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// waitListening waits for the port file, then for a TCP connection to it.
func (s *Server) waitListening() error {
	deadline := time.Now().Add(startTimeout)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-s.exited:
			return fmt.Errorf("rsyslogtest: rsyslogd exited at start (%v)%s", s.waitErr, s.diagnostics())
		default:
		}
		if s.port == 0 {
			b, err := os.ReadFile(filepath.Join(s.dir, portFile))
			if err != nil {
				continue
			}
			port, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || port <= 0 {
				continue
			}
			s.port = port
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			continue
		}
		_ = conn.Close()
		return nil
	}
	return fmt.Errorf("rsyslogtest: rsyslogd did not listen within %v%s", startTimeout, s.diagnostics())
}

// diagnostics returns rsyslogd's output and internal log for a failure.
func (s *Server) diagnostics() string {
	var b strings.Builder
	for _, name := range []string{outputFile, internalFile} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "\n--- %s ---\n%s", name, data)
	}
	if s.opts.TLS {
		b.WriteString("\n(TLS needs rsyslog's ossl driver, package rsyslog-openssl: run scripts/install-rsyslog)")
	}
	return b.String()
}

// Stop stops rsyslogd (SIGTERM, then SIGKILL after 10 s) and waits for it to
// exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.cmd = nil
}

// Restart stops rsyslogd and starts it again on the same port, keeping what
// it received so far. It fails the test if rsyslogd does not come back.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Pause stops rsyslogd's process (SIGSTOP) without closing its sockets, so
// that a sender's writes block once the socket buffers fill; Resume or Stop
// lets it go on.
func (s *Server) Pause() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("rsyslogtest: Pause on a stopped server")
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("rsyslogtest: pausing rsyslogd: %v", err)
	}
}

// Resume continues a paused rsyslogd.
func (s *Server) Resume() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("rsyslogtest: Resume on a stopped server")
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("rsyslogtest: resuming rsyslogd: %v", err)
	}
}

// Lines returns every record received so far, as sent (the SYSLOG-MSG
// without its framing), one per element, in order of arrival. rsyslog
// writes control characters in a record as "#" and three octal digits.
func (s *Server) Lines() []string {
	return readLines(filepath.Join(s.dir, receivedFile))
}

// WaitLines waits until at least n records have arrived and returns them
// all; after timeout it returns what arrived with an error that includes
// rsyslogd's own log.
func (s *Server) WaitLines(n int, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		lines := s.Lines()
		if len(lines) >= n {
			return lines, nil
		}
		if time.Now().After(deadline) {
			return lines, fmt.Errorf("rsyslogtest: %d of %d records arrived within %v%s", len(lines), n, timeout, s.diagnostics())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Record is one received record as rsyslog's parser understood it.
type Record struct {
	PRI            string `json:"pri"`
	Timestamp      string `json:"timestamp"`
	Hostname       string `json:"hostname"`
	AppName        string `json:"appname"`
	ProcID         string `json:"procid"`
	MsgID          string `json:"msgid"`
	StructuredData string `json:"sd"`
	Msg            string `json:"msg"`
}

// WaitRecords is WaitLines for the parsed form of the records.
func (s *Server) WaitRecords(n int, timeout time.Duration) ([]Record, error) {
	deadline := time.Now().Add(timeout)
	for {
		lines := readLines(filepath.Join(s.dir, fieldsFile))
		if len(lines) >= n || time.Now().After(deadline) {
			records := make([]Record, 0, len(lines))
			for i, line := range lines {
				var r Record
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					return records, fmt.Errorf("rsyslogtest: parsed record %d %q: %w", i, line, err)
				}
				records = append(records, r)
			}
			if len(records) < n {
				return records, fmt.Errorf("rsyslogtest: %d of %d parsed records arrived within %v%s", len(records), n, timeout, s.diagnostics())
			}
			return records, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLines returns the complete lines of a file; a missing file has none.
func readLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1] // a line still being written is not yet one
	} else {
		return nil
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// writeCerts writes ca.pem, server.pem and server-key.pem into dir: a CA and
// a server certificate it signed for 127.0.0.1 and localhost, valid for a
// day.
func writeCerts(dir string) (*x509.Certificate, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rsyslogtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	files := []struct {
		name, kind string
		der        []byte
	}{
		{"ca.pem", "CERTIFICATE", caDER},
		{"server.pem", "CERTIFICATE", der},
		{"server-key.pem", "PRIVATE KEY", keyDER},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der})
		if err := os.WriteFile(filepath.Join(dir, f.name), data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return ca, nil
}
