package server

import (
	"slices"
	"testing"
)

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	loopback := []string{"localhost", "127.0.0.1", "::1"}
	tests := []struct {
		name      string
		addr, url string
		allowed   []string
		origin    string
		wantErr   bool
	}{
		{"LoopbackDefault", "localhost:8080", "", loopback, "", false},
		{"LoopbackIP", "127.0.0.1:0", "", loopback, "", false},
		{"LoopbackWithPublicURL", "127.0.0.1:8080", "https://standin.example.org", append(slices.Clone(loopback), "standin.example.org"), "https://standin.example.org", false},
		{"AnyInterfaceAnyHost", "0.0.0.0:8080", "", nil, "", false},
		{"AnyInterfaceWithPublicURL", ":8080", "http://localhost:8080", loopback, "http://localhost:8080", false},
		{"ErrBadPublicURL", "localhost:8080", "ftp://x", nil, "", true},
		{"ErrBadAddr", "nonsense", "", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			allowed, origin, err := Config{Addr: tt.addr, PublicURL: tt.url}.hostPolicy()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !slices.Equal(allowed, tt.allowed) || origin != tt.origin {
				t.Fatalf("got %v %q, want %v %q", allowed, origin, tt.allowed, tt.origin)
			}
		})
	}
}

func TestDemoEnabled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  Config
		want bool
	}{
		{Config{}, true},
		{Config{MongoURI: "mongodb://db"}, false},
		{Config{MongoURI: "mongodb://db", Demo: DemoOn}, true},
		{Config{Demo: DemoOff}, false},
	} {
		if got := tt.cfg.demoEnabled(); got != tt.want {
			t.Errorf("%+v: demoEnabled = %v, want %v", tt.cfg, got, tt.want)
		}
	}
}
