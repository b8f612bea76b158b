//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/lab/topo"
)

// countingKernel counts the operations handed to the real client.
type countingKernel struct {
	*ipvs.Client
	ops atomic.Int64
}

func (k *countingKernel) Apply(ctx context.Context, ops []ipvs.Op) error {
	k.ops.Add(int64(len(ops)))
	return k.Client.Apply(ctx, ops)
}

// TestDirectorInputsOneOpPerWeight: in a table of 200 services x 10 real
// servers programmed by the engine, a health verdict, a feedback change
// and an operator drain each reach the kernel as one netlink operation
// for the one real server they concern; ipvsadm sees exactly that line
// change, and a resync finds nothing to repair.
func TestDirectorInputsOneOpPerWeight(t *testing.T) {
	modprobe(t, "ip_vs", "ip_vs_wlc")
	l := topo.New(t)
	lan := l.Net("lan", "10.1.0.0/24")
	h := l.Host("dir", topo.On(lan, "10.1.0.1"))
	var k countingKernel
	if err := h.Do(func() error {
		var err error
		k.Client, err = ipvs.Open()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	tmp := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "director:\n  state_dir: %s\nlisten: {metrics: \"\", control: \"\"}\nvirtual_services:\n", filepath.Join(tmp, "state"))
	for i := range 200 {
		fmt.Fprintf(&cfg, "  - name: s%d\n    vip: 10.9.%d.%d\n    port: 80\n    real_servers:\n", i, i/250, i%250+1)
		for j := range 10 {
			fmt.Fprintf(&cfg, "      - {address: 10.1.1.%d, weight: 100}\n", j+10)
		}
	}
	c, _, err := director.ParseConfig("director.yaml", []byte(cfg.String()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	e := director.NewEngine(c.Director.StateDir, director.Deps{Kernel: &k})
	if _, err := e.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	ref := director.ServerRef{Service: "s117", Addr: netip.MustParseAddr("10.1.1.13"), Port: 80}
	line := "-a -t 10.9.0.118:80 -r 10.1.1.13:80 -g -w "
	before := h.MustRun(t, "ipvsadm", "-Sn")
	for _, step := range []struct {
		name   string
		do     func() ([]ipvs.Op, error)
		weight int
	}{
		{"feedback 30%", func() ([]ipvs.Op, error) {
			return e.SetFeedback(ctx, map[director.ServerRef]*director.Feedback{ref: {Capacity: 0.3}})
		}, 30},
		{"health down", func() ([]ipvs.Op, error) {
			return e.SetHealth(ctx, map[director.ServerRef]director.Health{ref: {State: director.Down, Reason: "lab"}})
		}, 0},
		{"health up", func() ([]ipvs.Op, error) {
			return e.SetHealth(ctx, map[director.ServerRef]director.Health{ref: {State: director.Up}})
		}, 30},
		{"operator drain", func() ([]ipvs.Op, error) { return e.SetOverride(ctx, ref, true) }, 0},
		{"operator ready, agent gone", func() ([]ipvs.Op, error) {
			if _, err := e.SetOverride(ctx, ref, false); err != nil {
				return nil, err
			}
			return e.SetFeedback(ctx, map[director.ServerRef]*director.Feedback{ref: nil})
		}, 100},
	} {
		n := k.ops.Load()
		start := time.Now()
		if _, err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		took := time.Since(start)
		after := h.MustRun(t, "ipvsadm", "-Sn")
		want := strings.Replace(before, line+"100\n", fmt.Sprintf("%s%d\n", line, step.weight), 1)
		if after != want {
			t.Errorf("%s: the table is not the original with one weight changed:\n%s", step.name, after)
		}
		sent := k.ops.Load() - n
		if step.name == "operator ready, agent gone" {
			sent-- // two setters, the first back to the feedback weight
		}
		if sent != 1 {
			t.Errorf("%s: %d operations sent, want 1", step.name, sent)
		}
		t.Logf("%s: weight %d in the kernel after %v", step.name, step.weight, took.Round(time.Microsecond))
	}
	if n, err := e.Resync(ctx); err != nil || n != 0 {
		t.Errorf("resync: %d repairs, %v", n, err)
	}
}
