package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"lobby/internal/linkproto"
)

func TestAgentHubFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    []linkproto.HubSetting
		wantErr string
	}{
		{"defaults apply to plain hubs", []string{"--hub", "https://n1:8443", "--hub", "https://n2:8443,mask=hub2.*,ping=1s,auto=off,secure-only", "--name-mask", "hub*", "--ping", "2s"}, nil,
			[]linkproto.HubSetting{
				{URL: "https://n1:8443", NameMask: "hub*", Ping: linkproto.Duration(2 * time.Second), AutoConnect: true},
				{URL: "https://n2:8443", NameMask: "hub2.*", Ping: linkproto.Duration(time.Second), AutoConnect: false, SecureOnly: true},
			}, ""},
		{"environment lists several", nil, map[string]string{"LOBBY_HUB": "http://a:1 http://b:2"},
			[]linkproto.HubSetting{
				{URL: "http://a:1", Ping: linkproto.Duration(5 * time.Second), AutoConnect: true},
				{URL: "http://b:2", Ping: linkproto.Duration(5 * time.Second), AutoConnect: true},
			}, ""},
		{"bad ping", []string{"--hub", "https://n1,ping=soon"}, nil, nil, `ping="soon" is not a duration`},
		{"unknown setting", []string{"--hub", "https://n1,colour=red"}, nil, nil, `unknown setting "colour"`},
		{"bad auto", []string{"--hub", "https://n1,auto=maybe"}, nil, nil, "use on or off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			m := &AgentMain{Stdout: &out, Stderr: &out, Getenv: func(k string) string { return tt.env[k] }}
			err := m.ParseFlags(append([]string{"--data", t.TempDir()}, tt.args...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Config.Hubs) != len(tt.want) {
				t.Fatalf("hubs = %+v, want %+v", m.Config.Hubs, tt.want)
			}
			for i := range tt.want {
				if m.Config.Hubs[i] != tt.want[i] {
					t.Errorf("hub %d = %+v, want %+v", i, m.Config.Hubs[i], tt.want[i])
				}
			}
		})
	}
}

func TestAgentNeedsAJoinToken(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := runAgent(context.Background(), []string{"--data", t.TempDir(), "--hub", "http://127.0.0.1:1", "--name", "h1"}, &out, &errb, func(string) string { return "" })
	if code != 1 || !strings.Contains(errb.String(), "has not joined a cluster yet: give --join TOKEN") {
		t.Fatalf("exit %d, stderr %q; want 1 and a message asking for --join", code, errb.String())
	}
	errb.Reset()
	code = runAgent(context.Background(), []string{"--data", t.TempDir(), "--hub", "http://127.0.0.1:1", "--name", "h1", "--join", "not-a-token"}, &out, &errb, func(string) string { return "" })
	if code != 1 || !strings.Contains(errb.String(), "join token") || !strings.Contains(errb.String(), "malformed") {
		t.Fatalf("exit %d, stderr %q; want 1 and a message naming the token", code, errb.String())
	}
}
