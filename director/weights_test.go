package director

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSorryServerAndQuorum: the desired table of one service with three
// real servers as health, drains and the quorum rules change it, read as
// ipvsadm lines.
func TestSorryServerAndQuorum(t *testing.T) {
	const base = `virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    health_check: {type: tcp}
%s    real_servers:
      - {address: 10.0.0.11, weight: 10}
      - {address: 10.0.0.12, weight: 20, health_check: {on_failure: remove}}
      - {address: 10.0.0.13, weight: 30}
`
	rs := func(i int) ServerRef {
		return ServerRef{Service: "web", Addr: netip.MustParseAddr(fmt.Sprintf("10.0.0.1%d", i)), Port: 80}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	down := func(min int) Health {
		return Health{State: Down, Reason: "HTTP 503 after 3 checks", Since: t0.Add(time.Duration(min) * time.Minute)}
	}
	up := Health{State: Up}
	for _, tc := range []struct {
		name   string
		blocks string
		health map[int]Health
		drain  []int
		want   string // destinations, one "addr:port weight" each; sorry last
		state  serviceState
	}{
		{"all pending", "", nil, nil, "11:80 0, 13:80 0", serviceState{}},
		{"all up", "", map[int]Health{1: up, 2: up, 3: up}, nil, "11:80 10, 12:80 20, 13:80 30", serviceState{}},
		{"one down, quiesce and remove", "", map[int]Health{1: down(1), 2: down(1), 3: up}, nil, "11:80 0, 13:80 30", serviceState{}},
		{"sorry while every server is down", "    sorry_server: {address: 10.0.0.250}\n",
			map[int]Health{1: down(1), 2: down(2), 3: down(3)}, nil, "11:80 0, 13:80 0, 250:80 1",
			serviceState{Serving: 0, Need: 1, Sorry: true}},
		{"sorry while the rest is drained", "    sorry_server: {address: 10.0.0.250}\n",
			map[int]Health{1: down(1), 2: up, 3: up}, []int{2, 3}, "11:80 0, 12:80 0, 13:80 0, 250:80 1",
			serviceState{Serving: 0, Need: 1, Sorry: true}},
		{"sorry leaves when one is back", "    sorry_server: {address: 10.0.0.250}\n",
			map[int]Health{1: down(1), 2: down(2), 3: up}, nil, "11:80 0, 13:80 30",
			serviceState{Serving: 1, Need: 1, Met: true}},
		{"quorum with sorry: the last server is quiesced", "    sorry_server: {address: 10.0.0.250}\n    quorum: {min_up: 2}\n",
			map[int]Health{1: down(1), 2: down(2), 3: up}, nil, "11:80 0, 13:80 0, 250:80 1",
			serviceState{Serving: 1, Need: 2, Sorry: true}},
		{"quorum alone keeps the server that failed last", "    quorum: {min_up: 2}\n",
			map[int]Health{1: down(5), 2: down(1), 3: up}, nil, "11:80 10, 13:80 30",
			serviceState{Serving: 1, Need: 2, Kept: 1}},
		{"quorum keeps a removed server", "    quorum: {min_up: 2}\n",
			map[int]Health{1: down(1), 2: down(5), 3: up}, nil, "11:80 0, 12:80 20, 13:80 30",
			serviceState{Serving: 1, Need: 2, Kept: 1}},
		{"quorum never keeps a drained or pending server", "    quorum: {min_up: 3}\n",
			map[int]Health{1: down(1), 3: up}, []int{1}, "11:80 0, 13:80 30",
			serviceState{Serving: 1, Need: 3}},
		{"quorum met", "    quorum: {min_up: 2}\n", map[int]Health{1: up, 2: down(1), 3: up}, nil, "11:80 10, 13:80 30",
			serviceState{Serving: 2, Need: 2, Met: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := ParseConfig("d.yaml", []byte(fmt.Sprintf(base, tc.blocks)))
			if err != nil {
				t.Fatal(err)
			}
			in := NewInputs()
			for i, h := range tc.health {
				in.Health[rs(i)] = h
			}
			for _, i := range tc.drain {
				in.Override[rs(i)] = Override{Drain: true}
			}
			p, err := Desired(cfg, nil, in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range p.Table.Services[0].Dests {
				got = append(got, fmt.Sprintf("%s:%d %d", strings.TrimPrefix(d.Addr.String(), "10.0.0."), d.Port, d.Weight))
			}
			if g := strings.Join(got, ", "); g != tc.want {
				t.Errorf("destinations %s, want %s", g, tc.want)
			}
			w := cfg.VirtualServices[0].weights(in)
			if s := w.state(); tc.state != (serviceState{}) && s != tc.state {
				t.Errorf("state %+v, want %+v", s, tc.state)
			}
		})
	}
}

// TestSorryServerWithoutRealServers: a service with no real server at all
// serves the sorry server.
func TestSorryServerWithoutRealServers(t *testing.T) {
	cfg, _, err := ParseConfig("d.yaml", []byte(`virtual_services:
  - name: web
    vip: 10.0.0.100
    port: 80
    sorry_server: {address: 10.0.0.250, forwarding: tun}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Desired(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatTable(p.Table); !strings.Contains(got, "-a -t 10.0.0.100:80 -r 10.0.0.250:80 -i -w 1") {
		t.Errorf("table:\n%s", got)
	}
}
