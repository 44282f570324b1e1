package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.yaml.in/yaml/v3"
)

// composeFile is what TestCompose reads of docker-compose.yml.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Networks    map[string]struct {
		IPv4 string `yaml:"ipv4_address"`
	} `yaml:"networks"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// mounts returns the service's volumes as target → source, and the
// targets mounted read-only.
func (s composeService) mounts() (map[string]string, map[string]bool) {
	m, ro := map[string]string{}, map[string]bool{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			m[parts[1]] = parts[0]
			ro[parts[1]] = len(parts) == 3 && parts[2] == "ro"
		}
	}
	return m, ro
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f
}

// The Compose file cannot run here (no Docker); its structure is checked
// instead: three console nodes on a three-member replica set with majority
// reads and writes, one audit key, the demo on the first node only, and
// nginx in front of the three.
func TestCompose(t *testing.T) {
	t.Parallel()
	f := readCompose(t)
	var nodes, mongos []string
	for name, s := range f.Services {
		if s.Environment["MONGODB_URI"] != "" {
			nodes = append(nodes, name)
		}
		if slices.Contains(s.Command, "--replSet") {
			mongos = append(mongos, name)
		}
	}
	slices.Sort(nodes)
	slices.Sort(mongos)
	if len(nodes) != 3 || len(mongos) != 3 {
		t.Fatalf("console nodes %v, MongoDB members %v: want three of each", nodes, mongos)
	}
	t.Run("ReplicaSet", func(t *testing.T) { checkReplicaSet(t, f, mongos) })
	t.Run("Nodes", func(t *testing.T) { checkNodes(t, f, nodes, mongos) })
	t.Run("Balancer", func(t *testing.T) { checkBalancer(t, f, nodes) })
}

// checkReplicaSet: every member runs in rs0, and the set is initiated
// with the three.
func checkReplicaSet(t *testing.T, f composeFile, mongos []string) {
	var init string
	for _, name := range mongos {
		s := f.Services[name]
		if i := slices.Index(s.Command, "--replSet"); i+1 >= len(s.Command) || s.Command[i+1] != "rs0" || !strings.HasPrefix(s.Image, "mongo:8.0") {
			t.Errorf("%s: %s %v, want mongo:8.0 --replSet rs0", name, s.Image, s.Command)
		}
		if test := strings.Join(s.Healthcheck.Test, " "); strings.Contains(test, "rs.initiate(") {
			init = test
		}
	}
	if !regexp.MustCompile(`rs\.initiate\(\{\s*_id:\s*'rs0'`).MatchString(init) {
		t.Fatalf("no member's health check initiates rs0: %q", init)
	}
	var members []string
	for _, m := range regexp.MustCompile(`host:\s*'([^':]+):27017'`).FindAllStringSubmatch(init, -1) {
		members = append(members, m[1])
	}
	slices.Sort(members)
	if !slices.Equal(members, mongos) {
		t.Errorf("the set is initiated with %v, want %v", members, mongos)
	}
	if !strings.Contains(init, "m.state === 1") {
		t.Errorf("the health check does not wait for a primary: %q", init)
	}
}

// checkNodes: each node names every member, the replica set and majority
// concerns (as the Go driver reads them), mounts the one audit key
// read-only and a data directory of its own; only the first seeds the
// demo.
func checkNodes(t *testing.T, f composeFile, nodes, mongos []string) {
	keyMounts, _ := f.Services["audit-key"].mounts()
	keyCommand := strings.Join(f.Services["audit-key"].Command, " ")
	dataVolumes := map[string]bool{}
	demo := 0
	for _, name := range nodes {
		env := f.Services[name].Environment
		mounts, ro := f.Services[name].mounts()
		opts := options.Client().ApplyURI(env["MONGODB_URI"])
		if err := opts.Validate(); err != nil {
			t.Fatalf("%s: MONGODB_URI: %v", name, err)
		}
		var hosts []string
		for _, h := range opts.Hosts {
			hosts = append(hosts, strings.TrimSuffix(h, ":27017"))
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, mongos) || opts.ReplicaSet == nil || *opts.ReplicaSet != "rs0" ||
			opts.WriteConcern == nil || opts.WriteConcern.W != "majority" || opts.ReadConcern == nil || opts.ReadConcern.Level != "majority" {
			t.Errorf("%s: MONGODB_URI %q: want every member, replicaSet=rs0, w=majority, readConcernLevel=majority", name, env["MONGODB_URI"])
		}
		key := env["STANDIN_AUDIT_KEY_FILE"]
		keyDir := key[:strings.LastIndex(key, "/")]
		if key == "" || mounts[keyDir] != keyMounts[keyDir] || mounts[keyDir] == "" || !ro[keyDir] || !strings.Contains(keyCommand, "-out "+key) {
			t.Errorf("%s: audit key %q: want the file audit-key creates (%s), mounted read-only", name, key, keyCommand)
		}
		data := mounts["/data"]
		if data == "" || dataVolumes[data] {
			t.Errorf("%s: /data on %q: want a volume of its own", name, data)
		}
		dataVolumes[data] = true
		if env["STANDIN_DEMO"] == "true" {
			demo++
			if name != nodes[0] {
				t.Errorf("%s seeds the demo, want only %s", name, nodes[0])
			}
		}
		if lb := f.Services["balancer"].Networks["default"].IPv4; lb == "" || env["STANDIN_TRUSTED_PROXIES"] != lb {
			t.Errorf("%s: STANDIN_TRUSTED_PROXIES %q, want the balancer's fixed address %q", name, env["STANDIN_TRUSTED_PROXIES"], lb)
		}
		if env["STANDIN_PUBLIC_URL"] != "http://localhost:8080" {
			t.Errorf("%s: STANDIN_PUBLIC_URL %q, want the balancer's http://localhost:8080", name, env["STANDIN_PUBLIC_URL"])
		}
	}
	if demo != 1 {
		t.Errorf("%d nodes seed the demo, want 1", demo)
	}
}

// checkBalancer: nginx publishes the console's port, and its
// configuration spreads requests over the three nodes with the WebSocket
// upgrade, the Host and the forwarding headers.
func checkBalancer(t *testing.T, f composeFile, nodes []string) {
	lb, ok := f.Services["balancer"]
	mounts, _ := lb.mounts()
	if !ok || !strings.HasPrefix(lb.Image, "nginx:") || mounts["/etc/nginx/nginx.conf"] != "./deploy/nginx.conf" || !slices.Contains(lb.Ports, "127.0.0.1:8080:8080") {
		t.Fatalf("balancer: %+v: want nginx with deploy/nginx.conf, on 127.0.0.1:8080", lb)
	}
	raw, err := os.ReadFile("deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := parseNginx(string(raw))
	if err != nil {
		t.Fatalf("deploy/nginx.conf: %v", err)
	}
	httpBlock := find(conf, "http")
	location := find(find(httpBlock, "server"), "location")
	target, _ := strings.CutPrefix(arg(location, "proxy_pass"), "http://")
	var servers []string
	for _, d := range find(httpBlock, "upstream", target) {
		if d.args[0] == "server" {
			servers = append(servers, d.args[1])
		}
	}
	var want []string
	for _, name := range nodes {
		_, port, _ := strings.Cut(f.Services[name].Environment["STANDIN_ADDR"], ":")
		want = append(want, name+":"+port)
	}
	slices.Sort(servers)
	if !slices.Equal(servers, want) {
		t.Errorf("upstream %q lists %v, want %v", target, servers, want)
	}
	headers := map[string]string{}
	for _, d := range location {
		if d.args[0] == "proxy_set_header" && len(d.args) == 3 {
			headers[d.args[1]] = d.args[2]
		}
	}
	wantHeaders := map[string]string{
		"Host": "$http_host", "Upgrade": "$http_upgrade", "Connection": "$connection_upgrade",
		"X-Forwarded-For": "$remote_addr", "X-Forwarded-Proto": "$scheme",
	}
	for k, v := range wantHeaders {
		if headers[k] != v {
			t.Errorf("proxy_set_header %s %q, want %q", k, headers[k], v)
		}
	}
	if arg(location, "proxy_http_version") != "1.1" || find(httpBlock, "map", "$http_upgrade", "$connection_upgrade") == nil {
		t.Error("WebSocket upgrades need proxy_http_version 1.1 and map $http_upgrade $connection_upgrade")
	}
}

// nginxDirective is one directive of an nginx configuration, with its
// block when it has one.
type nginxDirective struct {
	args  []string
	block []*nginxDirective
}

// find returns the block of the first directive whose arguments start
// with args.
func find(list []*nginxDirective, args ...string) []*nginxDirective {
	for _, d := range list {
		if len(d.args) >= len(args) && slices.Equal(d.args[:len(args)], args) {
			return d.block
		}
	}
	return nil
}

// arg returns the first argument of the directive called name.
func arg(list []*nginxDirective, name string) string {
	for _, d := range list {
		if d.args[0] == name && len(d.args) > 1 {
			return d.args[1]
		}
	}
	return ""
}

// nginxToken splits an nginx configuration into words, quoted strings
// and the characters ; { }, leaving comments out.
var nginxToken = regexp.MustCompile(`#[^\n]*|'[^']*'|"[^"]*"|[;{}]|[^\s;{}'"#]+`)

// parseNginx reads an nginx configuration into its directives.
func parseNginx(src string) ([]*nginxDirective, error) {
	var tokens []string
	for _, tok := range nginxToken.FindAllString(src, -1) {
		if !strings.HasPrefix(tok, "#") {
			tokens = append(tokens, strings.Trim(tok, `'"`))
		}
	}
	list, rest, err := parseBlock(tokens)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected %q", rest[0])
	}
	return list, err
}

// parseBlock reads directives until a closing brace or the end and
// returns what follows.
func parseBlock(tokens []string) ([]*nginxDirective, []string, error) {
	var list []*nginxDirective
	var args []string
	for len(tokens) > 0 {
		tok := tokens[0]
		tokens = tokens[1:]
		switch tok {
		case ";":
			if len(args) > 0 {
				list = append(list, &nginxDirective{args: args})
			}
			args = nil
		case "{":
			block, rest, err := parseBlock(tokens)
			if err != nil {
				return nil, nil, err
			}
			if len(rest) == 0 || rest[0] != "}" || len(args) == 0 {
				return nil, nil, fmt.Errorf("unbalanced block after %q", args)
			}
			list = append(list, &nginxDirective{args: args, block: block})
			args, tokens = nil, rest[1:]
		case "}":
			return list, append([]string{tok}, tokens...), nil
		default:
			args = append(args, tok)
		}
	}
	if len(args) > 0 {
		return nil, nil, fmt.Errorf("%q does not end with ;", args)
	}
	return list, nil, nil
}

// The nginx reader finds nested blocks and leaves comments and quotes out.
func TestParseNginx(t *testing.T) {
	t.Parallel()
	conf, err := parseNginx("a 1; # x { ;\nb { c 'd e' \"f\"; map $x $y { default u; '' ''; } }\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(conf) != 2 || arg(conf, "a") != "1" || arg(find(conf, "b"), "c") != "d e" || len(find(find(conf, "b"), "map", "$x")) != 2 {
		t.Fatalf("parsed %v", conf)
	}
	for _, bad := range []string{"a {", "a }", "a 1", "{ b; }"} {
		if _, err := parseNginx(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
