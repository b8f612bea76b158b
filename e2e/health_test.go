//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

const healthServices = `  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: rr
    bind_vip: true
    health_check: {type: http, path: /health, interval: 500ms, timeout: 300ms, rise: 2, fall: 3}
    sorry_server: {address: 10.2.0.13, port: 8080, forwarding: nat}
    real_servers:
      - {address: 10.0.0.11, weight: 100}
      - {address: 10.0.0.12, weight: 100%s}
`

// Timing of healthServices.
const (
	hcInterval = 500 * time.Millisecond
	hcTimeout  = 300 * time.Millisecond
	hcRise     = 2
	hcFall     = 3
	// hcSlack covers the batch window (100 ms), the kernel write and the
	// emulated VM's slowness.
	hcSlack = time.Second
)

// TestDirectorHealthChecks drives a DR service through its health
// checks with real IPVS and real TCP: new real servers serve only once
// their checks pass; a web server stopped during a stream of requests is
// quiesced within fall x interval + timeout (+ slack) and no request
// started after that fails; started again it is back after rise checks;
// a reload that changes one server's check keeps every state; with every
// server down the sorry server answers, and leaves when one is back; a
// director restarted during a stream fails no request and takes no server
// out.
func TestDirectorHealthChecks(t *testing.T) {
	d := newDirectorLab(t)
	// A new connection whose addresses and ports match an entry IPVS
	// still keeps for a quiesced server (a client port used again) is
	// scheduled anew only with expire_nodest_conn (see the README).
	d.settings = "  sysctls: {expire_nodest_conn: true}\n"
	drRealServer(t, d.rs1, "10.0.0.100")
	drRealServer(t, d.rs2, "10.0.0.100")
	natRealServer(t, d.rs3)
	web1, web2 := serveWeb(t, d.rs1, 80), serveWeb(t, d.rs2, 80)
	serveWeb(t, d.rs3, 8080) // the sorry server
	const vip = "10.0.0.100:80"
	rs1, rs2, sorry := vip+" 10.0.0.11:80", vip+" 10.0.0.12:80", vip+" 10.2.0.13:8080"
	w := watchWeights(t, d.dir)
	d.writeConfig(t, fmt.Sprintf(healthServices, ""))
	started := time.Now()
	proc := d.start(t)

	// New real servers: no traffic before rise checks pass; the sorry
	// server stands in meanwhile.
	up1 := w.waitWeight(t, rs1, 10*time.Second, "weight 100", weightIs(100))
	up2 := w.waitWeight(t, rs2, 10*time.Second, "weight 100", weightIs(100))
	for _, ev := range append(w.history(rs1), w.history(rs2)...) {
		if ev.present && ev.weight > 0 && ev.at.Before(started) {
			t.Fatalf("a real server had weight before the director started: %+v", ev)
		}
	}
	if h := w.history(rs1); h[0].weight != 0 {
		t.Errorf("rs1 served before its checks passed: %+v", h)
	}
	w.waitWeight(t, sorry, 5*time.Second, "sorry server gone", func(_ int32, present bool) bool { return !present })
	t.Logf("start: rs1 up after %v, rs2 after %v (rise %d x interval %v)", up1.Sub(started).Round(time.Millisecond), up2.Sub(started).Round(time.Millisecond), hcRise, hcInterval)

	// Stop rs1's web server during a stream of requests.
	s := startStream(d.client, vip, 100000)
	s.waitMore(t, 20)
	web1.stop()
	stopped := time.Now()
	quiesced := w.waitWeight(t, rs1, 10*time.Second, "weight 0", weightIs(0))
	s.waitMore(t, 100)
	reqs := s.end()
	detect := quiesced.Sub(stopped)
	limit := hcFall*hcInterval + hcTimeout + hcSlack
	if detect > limit {
		t.Errorf("quiesced %v after the web server stopped, want within fall x interval + timeout + slack = %v", detect, limit)
	}
	if bad := failures(reqs, quiesced); len(bad) > 0 {
		t.Errorf("%d requests started after rs1 was quiesced failed; first: %v", len(bad), bad[0].err)
	}
	after := 0
	for _, r := range reqs {
		if !r.start.Before(quiesced) {
			after++
			if r.server != "rs2" {
				t.Errorf("a request after the quiesce went to %q", r.server)
				break
			}
		}
	}
	t.Logf("rs1 stopped: quiesced after %v (limit %v); %d requests failed in between, %d after the quiesce all answered by rs2; %d requests in all",
		detect.Round(time.Millisecond), limit, len(failures(reqs, stopped)), after, len(reqs))
	st := directorStatus(t, d)
	if r := st.server("web", "10.0.0.11:80"); r.Health != "down" || !strings.Contains(r.Reason, "after 3 checks") {
		t.Errorf("status of rs1: %+v", r)
	}

	// Reload with rs2's check changed while rs1 is down: rs1 stays down,
	// rs2 stays up, neither moves.
	checksBefore := st.server("web", "10.0.0.11:80").Check.Checks
	reloaded := time.Now()
	d.writeConfig(t, fmt.Sprintf(healthServices, ", health_check: {path: /health/rs2}"))
	d.dir.MustRun(t, "lvs-node", "director", "reload", "--config", d.cfgPath)
	time.Sleep(3 * hcInterval)
	if ev := append(w.since(rs1, reloaded), w.since(rs2, reloaded)...); len(ev) > 0 {
		t.Errorf("the reload moved a weight: %+v", ev)
	}
	st = directorStatus(t, d)
	r1, r2 := st.server("web", "10.0.0.11:80"), st.server("web", "10.0.0.12:80")
	if r1.Health != "down" || r1.Check.Checks <= checksBefore || r2.Health != "up" || r2.EffectiveWeight != 100 {
		t.Errorf("after the reload: rs1 %+v (checks before %d), rs2 %+v", r1, checksBefore, r2)
	}
	t.Logf("reload with rs2's check changed: no weight moved; rs1's check went on from %d to %d checks", checksBefore, r1.Check.Checks)

	// Start rs1 again: back after rise checks.
	web1.start()
	restarted := time.Now()
	back := w.waitWeight(t, rs1, 10*time.Second, "weight 100", weightIs(100))
	if took := back.Sub(restarted); took > hcRise*hcInterval+hcSlack {
		t.Errorf("back after %v, want within rise x interval + slack", took)
	}
	t.Logf("rs1 started: back after %v (rise %d x interval %v)", back.Sub(restarted).Round(time.Millisecond), hcRise, hcInterval)

	// Every real server down: the sorry server answers; one back: it
	// leaves.
	web1.stop()
	web2.stop()
	bothDown := time.Now()
	in := w.waitWeight(t, sorry, 10*time.Second, "sorry server in", weightIs(1))
	time.Sleep(1500 * time.Millisecond) // resyncs leave it
	if got, err := httpGet(d.client, vip, 3*time.Second); err != nil || got != "rs3" {
		t.Fatalf("with every real server down the VIP answered %q, %v; want the sorry server rs3", got, err)
	}
	if _, present := w.current(sorry); !present {
		t.Fatal("a resync removed the sorry server")
	}
	web2.start()
	rs2Back := time.Now()
	out := w.waitWeight(t, sorry, 10*time.Second, "sorry server gone", func(_ int32, present bool) bool { return !present })
	if got, err := httpGet(d.client, vip, 3*time.Second); err != nil || got != "rs2" {
		t.Fatalf("with rs2 back the VIP answered %q, %v", got, err)
	}
	t.Logf("sorry server: in %v after both web servers stopped, out %v after rs2 started", in.Sub(bothDown).Round(time.Millisecond), out.Sub(rs2Back).Round(time.Millisecond))
	mustContain(t, "director log", proc.Output(), "the sorry server takes new connections")

	// Restart the director during a stream: no request fails, no real
	// server is taken out.
	web1.start()
	w.waitWeight(t, rs1, 10*time.Second, "weight 100", weightIs(100))
	s = startStream(d.client, vip, 100000)
	s.waitMore(t, 20)
	from := time.Now()
	if err := proc.Stop(10 * time.Second); !proc.Exited() {
		t.Fatalf("director did not stop: %v", err)
	}
	proc = d.start(t)
	mustContain(t, "restart log", proc.Output(), "changes=0")
	time.Sleep(3 * hcInterval) // the restored checks run
	s.waitMore(t, 50)
	reqs = s.end()
	if bad := failures(reqs, time.Time{}); len(bad) > 0 {
		t.Errorf("%d of %d requests failed across the restart; first: %v", len(bad), len(reqs), bad[0].err)
	}
	if ev := append(w.since(rs1, from), w.since(rs2, from)...); len(ev) > 0 {
		t.Errorf("the restart moved a weight: %+v", ev)
	}
	t.Logf("director restarted during %d requests: none failed, no weight moved", len(reqs))
}

// statusDoc is the part of lvs-node status --json the lab tests read.
type statusDoc struct {
	Director struct {
		Ready    bool `json:"ready"`
		Services []struct {
			Name        string         `json:"name"`
			RealServers []statusServer `json:"real_servers"`
		} `json:"services"`
	} `json:"director"`
}

type statusServer struct {
	Address         string   `json:"address"`
	Health          string   `json:"health"`
	Reason          string   `json:"reason"`
	EffectiveWeight int      `json:"effective_weight"`
	Capacity        *float64 `json:"capacity"`
	Check           struct {
		Checks uint64 `json:"checks"`
	} `json:"check"`
	Agent *struct {
		Admin string `json:"admin"`
		Stale bool   `json:"stale"`
	} `json:"agent"`
}

func (s *statusDoc) server(service, addr string) statusServer {
	for _, v := range s.Director.Services {
		for _, r := range v.RealServers {
			if v.Name == service && r.Address == addr {
				return r
			}
		}
	}
	return statusServer{}
}

func directorStatus(t *testing.T, d *directorLab) *statusDoc {
	t.Helper()
	out := d.dir.MustRun(t, "lvs-node", "status", "--role", "director", "--config", d.cfgPath, "--json")
	var st statusDoc
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return &st
}
