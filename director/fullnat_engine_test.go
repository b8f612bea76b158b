package director

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/director/fullnat"
	"github.com/lvs-node/lvs-node/internal/ipvs/ipvstest"
)

// fakeFullNAT stands for fullnat.Manager: it records what it holds in
// the record (through save, before "adding" it) as the manager does, and
// remembers each call with what the IPVS kernel held at that moment.
type fakeFullNAT struct {
	k     *ipvstest.Kernel
	held  fullnat.Spec
	calls []string
	fail  error
}

func (f *fakeFullNAT) Apply(spec fullnat.Spec, rec *fullnat.Record, save func() error, verify bool) ([]string, error) {
	var targets []string
	for _, t := range spec.Targets {
		targets = append(targets, t.String())
	}
	f.calls = append(f.calls, fmt.Sprintf("apply verify=%t ipvs=%d [%s]", verify, strings.Count(f.k.String(), "-A "), strings.Join(targets, "; ")))
	if f.fail != nil {
		return nil, f.fail
	}
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if !spec.Empty() && rec.NFTable == "" {
		rec.NFTable = "lvs_node_fullnat"
		if err := save(); err != nil {
			return nil, err
		}
	}
	if spec.Empty() && rec.NFTable != "" {
		rec.NFTable = ""
		if err := save(); err != nil {
			return nil, err
		}
	}
	f.held = spec
	return []string{"set"}, nil
}

func (f *fakeFullNAT) Remove(rec *fullnat.Record, save func() error) ([]string, error) {
	f.calls = append(f.calls, "remove")
	f.held = fullnat.Spec{}
	rec.NFTable = ""
	return []string{"remove"}, save()
}

const fullNATService = `virtual_services:
  - name: web
    vip: 198.51.100.100
    port: 80
    forwarding: fullnat
    local_addresses: [10.1.0.2, 10.1.0.3]
    real_servers:
      - {address: 10.1.0.11, port: 8080}
      - {address: 10.1.0.12, port: 8080, forwarding: nat}
`

func fullNATRig(t *testing.T) (*rig, *fakeFullNAT) {
	r := newRig(t)
	r.s.vals["net/ipv4/vs/conntrack"] = "0"
	f := &fakeFullNAT{k: r.k}
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: r.s, Host: r.a, FullNAT: f})
	return r, f
}

func TestFullNATBeforeIPVSAndRecorded(t *testing.T) {
	r, f := fullNATRig(t)
	cfg := r.config(t, fullNATService)
	r.apply(t, cfg)
	want := []string{
		"apply verify=true ipvs=0 [web: tcp 198.51.100.100:80 -> 10.1.0.11:8080]",
		"apply verify=false ipvs=1 [web: tcp 198.51.100.100:80 -> 10.1.0.11:8080]",
	}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if p := f.held.Pools; len(p) != 1 || len(p[0].Addrs) != 2 || p[0].TOA != 1 {
		t.Fatalf("pools: %+v", p)
	}
	// Both real servers are NAT to IPVS; the nat one gets no source NAT.
	r.expectKernel(t, "-A -t 198.51.100.100:80 -s wlc\n-a -t 198.51.100.100:80 -r 10.1.0.11:8080 -m -w 1\n-a -t 198.51.100.100:80 -r 10.1.0.12:8080 -m -w 1\n")
	if r.s.vals["net/ipv4/vs/conntrack"] != "1" || r.s.vals["net/ipv4/ip_forward"] != "1" {
		t.Fatalf("sysctls:\n%s", r.s)
	}
	rec, err := loadRecords(r.dir)
	if err != nil || rec.FullNAT.NFTable != "lvs_node_fullnat" {
		t.Fatalf("state file: %+v, %v", rec, err)
	}

	// Nothing changed: the quick path asks nothing of the kernel side.
	f.calls = nil
	r.apply(t, r.config(t, fullNATService))
	if len(f.calls) != 2 || !strings.HasPrefix(f.calls[0], "apply verify=false") {
		t.Fatalf("calls of an unchanged apply: %q", f.calls)
	}

	// A reload that moves the real server: first the old and the new
	// together, then only the new, once IPVS changed.
	f.calls = nil
	moved := strings.Replace(fullNATService, "10.1.0.11, port: 8080", "10.1.0.13, port: 8080", 1)
	if _, err := r.engine.Reload(t.Context(), r.config(t, moved)); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"apply verify=false ipvs=1 [web: tcp 198.51.100.100:80 -> 10.1.0.13:8080; web: tcp 198.51.100.100:80 -> 10.1.0.11:8080]",
		"apply verify=false ipvs=1 [web: tcp 198.51.100.100:80 -> 10.1.0.13:8080]",
	}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}

	// A restarted daemon verifies what is in place.
	r.engine = NewEngine(r.dir, Deps{Kernel: r.k, Marker: r.m, Sysctls: r.s, Host: r.a, FullNAT: f})
	f.calls = nil
	r.apply(t, r.config(t, moved))
	if len(f.calls) == 0 || !strings.HasPrefix(f.calls[0], "apply verify=true") {
		t.Fatalf("calls after a restart: %q", f.calls)
	}

	// down removes it, and the sysctl goes back.
	f.calls = nil
	if _, err := r.engine.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.calls, []string{"remove"}) || r.s.vals["net/ipv4/vs/conntrack"] != "0" {
		t.Fatalf("down: calls %q, sysctls:\n%s", f.calls, r.s)
	}
}

func TestFullNATRefusedChangesNoIPVS(t *testing.T) {
	r, f := fullNATRig(t)
	f.fail = errors.New("nftables refused")
	_, err := r.engine.Apply(t.Context(), r.config(t, fullNATService))
	if err == nil || !strings.Contains(err.Error(), "full-NAT: nftables refused") {
		t.Fatalf("apply: %v", err)
	}
	r.expectKernel(t, "")
	if r.engine.Config() != nil {
		t.Fatal("a refused configuration came into force")
	}

	// Removed from the configuration: taken away after IPVS.
	f.fail = nil
	r.apply(t, r.config(t, fullNATService))
	f.calls = nil
	r.apply(t, r.config(t, strings.ReplaceAll(strings.ReplaceAll(fullNATService, "forwarding: fullnat\n    local_addresses: [10.1.0.2, 10.1.0.3]\n", "forwarding: nat\n"), "fullnat", "nat")))
	want := []string{
		"apply verify=false ipvs=1 [web: tcp 198.51.100.100:80 -> 10.1.0.11:8080]",
		"apply verify=false ipvs=1 []",
	}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	b, _ := os.ReadFile(recordsPath(r.dir))
	if strings.Contains(string(b), "fullnat") {
		t.Fatalf("state file still records full-NAT: %s", b)
	}
}

func TestFullNATUnavailable(t *testing.T) {
	r := newRig(t)
	r.s.vals["net/ipv4/vs/conntrack"] = "0"
	_, err := r.engine.Apply(t.Context(), r.config(t, fullNATService))
	if err == nil || !strings.Contains(err.Error(), "full-NAT needs nftables and eBPF") {
		t.Fatalf("apply without the kernel side: %v", err)
	}
	r.expectKernel(t, "")
	// Configurations without full-NAT do not need it.
	r.apply(t, r.config(t, twoServices))
}
