package ipvs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path -> body) under a new root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") { // a directory
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestKernelFilesModule(t *testing.T) {
	// A Debian 6.1 layout: modules.dep paths relative to the release
	// directory, compressed or not, ip_vs_twos absent.
	root := writeTree(t, map[string]string{
		"proc/sys/kernel/osrelease": "6.1.0-18-amd64\n",
		"lib/modules/6.1.0-18-amd64/modules.dep": "kernel/net/netfilter/ipvs/ip_vs.ko: kernel/lib/libcrc32c.ko\n" +
			"kernel/net/netfilter/ipvs/ip_vs_wlc.ko: kernel/net/netfilter/ipvs/ip_vs.ko\n" +
			"kernel/net/netfilter/ipvs/ip_vs_mh.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko\n" +
			"kernel/net/netfilter/ipvs/ip_vs_pe_sip.ko.zst: kernel/net/netfilter/ipvs/ip_vs.ko\n",
		"lib/modules/6.1.0-18-amd64/modules.builtin": "kernel/net/netfilter/ipvs/ip_vs_rr.ko\n",
		"sys/module/ip_vs_lc/":                       "",
	})
	k := NewKernelFiles(root)
	for _, c := range []struct {
		name string
		want Availability
		why  string
	}{
		{"ip_vs_wlc", Available, "in /lib/modules/6.1.0-18-amd64/modules.dep"},
		{"ip_vs_mh", Available, "modules.dep"},
		{"ip_vs_pe_sip", Available, "modules.dep"},
		{"ip_vs_rr", Available, "built into the kernel"},
		{"ip_vs_lc", Available, "loaded"},
		{"ip_vs_twos", Unavailable, "kernel 6.1.0-18-amd64 has no module ip_vs_twos (not loaded, not built in, not in /lib/modules/6.1.0-18-amd64/modules.dep)"},
	} {
		got, why := k.Module(c.name)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("Module(%s) = %v %q, want %v with %q", c.name, got, why, c.want, c.why)
		}
	}
	if r, err := k.Release(); r != "6.1.0-18-amd64" || err != nil {
		t.Errorf("Release = %q, %v", r, err)
	}
}

// TestKernelFilesWithoutModuleIndex: on a host without /lib/modules for
// the running kernel (containers, this project's CI) nothing is claimed,
// except what /sys/module shows loaded.
func TestKernelFilesWithoutModuleIndex(t *testing.T) {
	root := writeTree(t, map[string]string{
		"proc/sys/kernel/osrelease": "6.12.0-custom\n",
		"sys/module/ip_vs_rr/":      "",
	})
	k := NewKernelFiles(root)
	if got, why := k.Module("ip_vs_twos"); got != Unknown || !strings.Contains(why, "no module index for kernel 6.12.0-custom") {
		t.Errorf("Module(ip_vs_twos) = %v %q, want Unknown", got, why)
	}
	if got, _ := k.Module("ip_vs_rr"); got != Available {
		t.Errorf("a loaded module is %v", got)
	}
}

func TestTunnelTypesSupported(t *testing.T) {
	for r, want := range map[string][2]bool{
		"6.1.0-18-amd64":         {true, true},
		"5.3.0":                  {true, true},
		"5.2.21":                 {false, true},
		"4.19.0-26-amd64":        {false, true},
		"3.10.0-1160.el7.x86_64": {false, true},
		"5.10.0-rc1":             {true, true},
		"garbage":                {false, false},
		"":                       {false, false},
	} {
		ok, known := TunnelTypesSupported(r)
		if [2]bool{ok, known} != want {
			t.Errorf("TunnelTypesSupported(%q) = %v %v, want %v", r, ok, known, want)
		}
	}
}
