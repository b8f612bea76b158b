package rsagent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/toa"
)

// fakeTOA records what the agent asks of eBPF TOA and fails like the
// real one when told to.
type fakeTOA struct {
	attached *toa.Config
	err      error
	calls    []string
}

func (f *fakeTOA) Attach(c toa.Config, force bool) ([]string, error) {
	f.calls = append(f.calls, fmt.Sprintf("attach %s %v %v force=%v", c.Cgroup, c.Trusted, c.Kinds, force))
	if f.err != nil {
		return nil, f.err
	}
	f.attached = &c
	return []string{"attach sockops to " + c.Cgroup}, nil
}

func (f *fakeTOA) Detach() ([]string, error) {
	f.calls = append(f.calls, "detach")
	f.attached = nil
	return []string{"detach sockops"}, nil
}

const toaYAML = `realserver:
  state_dir: STATE
  vips:
    - {address: 192.0.2.100, mode: dr}
  toa:
    enabled: true
    cgroup: /sys/fs/cgroup/app
    trusted_sources: [10.0.0.0/24, 2001:db8::/64]
    kinds: [254, 253]
`

func TestTOAConfigErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rs.yaml")
	body := `realserver:
  toa:
    enabled: true
    cgroup: relative/path
    trusted_sources: [10.0.0.1/24, nonsense]
    kinds: [254, 7]
    slots: 1000
`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadConfig(p)
	errs := config.AsErrors(err)
	if errs == nil {
		t.Fatalf("want config errors, got %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		"rs.yaml:4:5: realserver.toa.cgroup: want an absolute path",
		"rs.yaml:5:23: realserver.toa.trusted_sources[0]: 10.0.0.1/24 has host bits set",
		"rs.yaml:5:36: realserver.toa.trusted_sources[1]: want a prefix",
		"realserver.toa.kinds: kind 7",
		"rs.yaml:7:5: realserver.toa.slots: slots 1000: want a power of two from 1024 to 4194304 (default 65536)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "realserver.vips") {
		t.Errorf("toa enabled should make VIPs optional:\n%s", got)
	}
}

func TestApplyTOA(t *testing.T) {
	f := newFake(t)
	c, doc := loadYAML(t, t.TempDir(), toaYAML)
	a := newAgent(t, f, c, doc)
	h := &fakeTOA{}
	if _, err := a.Up(); err != nil {
		t.Fatal(err)
	}
	changes, err := a.ApplyTOA(h)
	if err != nil || len(changes) != 1 || changes[0] != "toa: attach sockops to /sys/fs/cgroup/app" {
		t.Fatalf("apply: %v %v", changes, err)
	}
	if got := h.calls[0]; got != "attach /sys/fs/cgroup/app [10.0.0.0/24 2001:db8::/64] [254 253] force=false" {
		t.Fatalf("call %q", got)
	}
	if _, err := a.RemoveTOA(h); err != nil || h.attached != nil {
		t.Fatalf("remove: %v", err)
	}
}

// TestApplyTOARefusedKeepsTheRest: a host that refuses eBPF TOA gets a
// configuration error naming the key, and the VIPs stay applied.
func TestApplyTOARefusedKeepsTheRest(t *testing.T) {
	f := newFake(t)
	c, doc := loadYAML(t, t.TempDir(), toaYAML)
	a := newAgent(t, f, c, doc)
	for _, tc := range []struct {
		err error
		key string
	}{
		{fmt.Errorf("cgroup /sys/fs/cgroup/app: %w: it does not exist", toa.ErrNoCgroup), "realserver.toa.cgroup"},
		{fmt.Errorf("pin directory: %w", toa.ErrNoBPFFS), "realserver.toa.enabled"},
		{fmt.Errorf("kernel 5.4: %w", toa.ErrKernel), "realserver.toa.enabled"},
		{fmt.Errorf("%w (toa)", toa.ErrModuleLoaded), "realserver.toa"},
	} {
		h := &fakeTOA{err: tc.err}
		if _, err := a.Up(); err != nil {
			t.Fatal(err)
		}
		_, err := a.ApplyTOA(h)
		errs := config.AsErrors(err)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), ": "+tc.key+": toa: ") || !errors.Is(tc.err, tc.err) {
			t.Errorf("%v: got %v, want an error at %s", tc.err, err, tc.key)
		}
		if n, err := a.VIPsBound(); err != nil || n != 1 {
			t.Errorf("VIPs bound after a TOA refusal: %d, %v", n, err)
		}
	}
}

func TestApplyTOADisabledDetachesAbsentLeavesAlone(t *testing.T) {
	f := newFake(t)
	c, doc := loadYAML(t, t.TempDir(), strings.Replace(toaYAML, "enabled: true", "enabled: false", 1))
	a := newAgent(t, f, c, doc)
	h := &fakeTOA{}
	if _, err := a.ApplyTOA(h); err != nil || len(h.calls) != 1 || h.calls[0] != "detach" {
		t.Fatalf("disabled: %v %v", h.calls, err)
	}
	c, doc = loadYAML(t, t.TempDir(), "realserver:\n  state_dir: STATE\n  vips: [{address: 192.0.2.100, mode: dr}]\n")
	a = newAgent(t, f, c, doc)
	h = &fakeTOA{}
	if _, err := a.ApplyTOA(h); err != nil || len(h.calls) != 0 {
		t.Fatalf("absent: %v %v", h.calls, err)
	}
	if _, err := a.RemoveTOA(h); err != nil || len(h.calls) != 0 {
		t.Fatalf("absent, down: %v %v", h.calls, err)
	}
}
