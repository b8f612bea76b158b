//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// feedbackRealserver is lvs-node realserver with its agent and a file
// load source (the test writes the capacity into it).
const feedbackRealserver = `realserver:
  state_dir: %[1]s/%[2]s
  vips: [{address: 10.0.0.100, mode: dr}]
  arp: {ignore: 1, announce: 2}
  agent: {listen: "0.0.0.0:3262"}
  load:
    interval: 200ms
    sources: [{type: file, path: %[1]s/%[2]s.capacity}]
listen:
  metrics: ""
  control: %[1]s/%[2]s.sock
`

const feedbackServices = `  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: wrr
    bind_vip: true
    feedback: {interval: 500ms, stale_after: 3s, port: 3262}
    real_servers:
      - {address: 10.0.0.11, weight: 100}
      - {address: 10.0.0.12, weight: 100}
`

// Timing of feedbackServices and feedbackRealserver.
const (
	fbInterval   = 500 * time.Millisecond
	fbStaleAfter = 3 * time.Second
	fbLoadEvery  = 200 * time.Millisecond
	fbSlack      = time.Second
)

// TestDirectorLoadFeedback: lvs-node realserver reports its load with its
// agent, and the director follows it with real IPVS: a real server
// reporting 25 % reaches about 25 % of its configured weight within 3
// polls; drain brings it to 0 while an open connection keeps working and
// new ones go elsewhere; a killed agent gives it back its configured
// weight after stale_after; the other real server's weight never moves.
func TestDirectorLoadFeedback(t *testing.T) {
	d := newDirectorLab(t)
	web := map[*topo.Host]*webServer{}
	procs := map[*topo.Host]*topo.Proc{}
	cfgs := map[*topo.Host]string{}
	for _, h := range []*topo.Host{d.rs1, d.rs2} {
		capFile := filepath.Join(d.tmp, h.Name+".capacity")
		if err := os.WriteFile(capFile, []byte("100\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfgs[h] = filepath.Join(d.tmp, h.Name+".yaml")
		if err := os.WriteFile(cfgs[h], []byte(fmt.Sprintf(feedbackRealserver, d.tmp, h.Name)), 0o600); err != nil {
			t.Fatal(err)
		}
		procs[h] = h.Start(t, "lvs-node", "realserver", "--config", cfgs[h])
		if !procs[h].WaitOutput("real server ready", 20*time.Second) {
			t.Fatalf("lvs-node realserver on %s:\n%s", h.Name, procs[h].Output())
		}
		web[h] = serveWeb(t, h, 80)
	}
	const vip = "10.0.0.100:80"
	rs1, rs2 := vip+" 10.0.0.11:80", vip+" 10.0.0.12:80"
	w := watchWeights(t, d.dir)
	d.writeConfig(t, feedbackServices)
	proc := d.start(t)
	w.waitWeight(t, rs1, 5*time.Second, "weight 100", weightIs(100))
	w.waitWeight(t, rs2, 5*time.Second, "weight 100", weightIs(100))
	from := time.Now()

	// 25 %: about 25 within 3 polls.
	if err := os.WriteFile(filepath.Join(d.tmp, "rs1.capacity"), []byte("25\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	reached := w.waitWeight(t, rs1, 10*time.Second, "about 25", func(wt int32, present bool) bool { return present && wt >= 23 && wt <= 27 })
	took := reached.Sub(wrote)
	if limit := fbLoadEvery + 3*fbInterval + fbSlack; took > limit {
		t.Errorf("weight about 25 after %v, want within the load interval + 3 polls + slack = %v", took, limit)
	}
	var steps []string
	for _, e := range w.since(rs1, wrote) {
		steps = append(steps, fmt.Sprint(e.weight))
	}
	t.Logf("rs1 reports 25%%: weight 100 -> %s (one change per poll: %d polls after the first that saw it), about 25 %v after the file was written (load read every %v, polls every %v)",
		strings.Join(steps, " -> "), len(steps), took.Round(time.Millisecond), fbLoadEvery, fbInterval)
	st := directorStatus(t, d)
	if r := st.server("web", "10.0.0.11:80"); r.Capacity == nil || *r.Capacity < 0.23 || *r.Capacity > 0.27 || !strings.HasPrefix(r.Reason, "capacity 2") {
		t.Errorf("status of rs1: %+v", r)
	}

	// drain: 0, the open connection keeps working, new ones go to rs2.
	conn, err := openTo(d, "rs1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.close()
	d.rs1.MustRun(t, "lvs-node", "realserver", "drain", "--config", cfgs[d.rs1])
	drained := time.Now()
	at := w.waitWeight(t, rs1, 10*time.Second, "weight 0", weightIs(0))
	conn.roundTrip(t, "rs1 drained")
	for i := range 20 {
		got, err := httpGet(d.client, vip, 3*time.Second)
		if err != nil || got != "rs2" {
			t.Fatalf("new request %d during the drain answered %q, %v; want rs2", i, got, err)
		}
	}
	conn.roundTrip(t, "after 20 new requests during the drain")
	if r := directorStatus(t, d).server("web", "10.0.0.11:80"); r.Reason != "agent: drain" || r.Agent == nil || r.Agent.Admin != "drain" {
		t.Errorf("status during the drain: %+v", r)
	}
	t.Logf("drain: weight 0 after %v; the open connection went on, 20 new requests all went to rs2", at.Sub(drained).Round(time.Millisecond))
	d.rs1.MustRun(t, "lvs-node", "realserver", "ready", "--config", cfgs[d.rs1])
	w.waitWeight(t, rs1, 10*time.Second, "about 25 again", func(wt int32, present bool) bool { return present && wt >= 23 && wt <= 27 })

	// Kill rs1's agent (the VIP stays bound): the configured weight after
	// stale_after, never 0.
	if err := procs[d.rs1].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	back := w.waitWeight(t, rs1, fbStaleAfter+10*time.Second, "weight 100", weightIs(100))
	stale := back.Sub(killed)
	if stale < fbStaleAfter-fbInterval || stale > fbStaleAfter+fbInterval+fbSlack {
		t.Errorf("configured weight %v after the agent died, want stale_after %v (+ one poll and slack)", stale, fbStaleAfter)
	}
	for _, e := range w.since(rs1, killed) {
		if e.weight == 0 {
			t.Errorf("the dead agent took rs1 to weight 0: %+v", w.since(rs1, killed))
		}
	}
	if r := directorStatus(t, d).server("web", "10.0.0.11:80"); r.Agent == nil || !r.Agent.Stale || r.EffectiveWeight != 100 {
		t.Errorf("status with a dead agent: %+v", r)
	}
	t.Logf("agent killed: configured weight back after %v (stale_after %v)", stale.Round(time.Millisecond), fbStaleAfter)

	// rs2 never moved.
	if ev := w.since(rs2, from); len(ev) > 0 {
		t.Errorf("rs2's weight moved: %+v", ev)
	}
	if strings.Contains(proc.Output(), "-r 10.0.0.12:80 -g -w") && strings.Contains(proc.Output(), "why=\"load feedback\"") {
		for _, l := range strings.Split(proc.Output(), "\n") {
			if strings.Contains(l, "-r 10.0.0.12:80") && strings.Contains(l, "load feedback") {
				t.Errorf("rs2 changed by feedback: %s", l)
			}
		}
	}
}

// openTo opens connections to the VIP from the client until one lands
// on the real server named want, and keeps it open.
func openTo(d *directorLab, want string) (*echoConn, error) {
	for range 50 {
		c, err := d.client.Dial("tcp", "10.0.0.100:80", 3*time.Second)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprint(c, "ECHO\n")
		r := bufio.NewReader(c)
		name, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if strings.TrimSpace(name) == want {
			return &echoConn{c: c, r: r}, nil
		}
		c.Close()
	}
	return nil, fmt.Errorf("no connection landed on %s in 50 tries", want)
}
