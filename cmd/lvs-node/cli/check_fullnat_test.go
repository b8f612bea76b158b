package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/internal/kerneltest"
)

const fullNATFile = `virtual_services:
  - name: web
    vip: 198.51.100.100
    port: 80
    forwarding: fullnat
    local_addresses: [10.1.0.2]
    real_servers:
      - {address: 10.1.0.11, port: 8080}
`

// TestCheckFullNATOnThisKernel runs check on this machine's kernel: the
// development and CI hosts have no IPVS, so full-NAT is refused with the
// reason at the key that asks for it. (The lab VM, which has IPVS, runs
// the same check in e2e.TestFullNAT and must pass.)
func TestCheckFullNATOnThisKernel(t *testing.T) {
	kerneltest.NeedRoot(t)
	if _, err := os.Stat("/proc/sys/net/ipv4/vs"); err == nil {
		t.Skip("this kernel has IPVS loaded: the refusal is tested where it has none")
	}
	p := writeFile(t, "director.yaml", fullNATFile)
	code, out, errOut := runCLI(t, "check", "--config", p)
	if code != exitBadConfig || out != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := p + ":5:5: virtual_services[0].forwarding: fullnat needs IPVS with conntrack support"
	if !strings.Contains(errOut, want) || !strings.Contains(errOut, "the kernel has no IPVS") {
		t.Fatalf("stderr:\n%s\nwant it to contain:\n%s", errOut, want)
	}
	if strings.Contains(errOut, "TOA writer") || strings.Contains(errOut, "nftables") {
		t.Fatalf("a need this kernel meets was reported missing:\n%s", errOut)
	}
}

func TestCheckWithoutFullNATProbesNothing(t *testing.T) {
	p := writeFile(t, "director.yaml", strings.ReplaceAll(strings.ReplaceAll(fullNATFile, "fullnat", "nat"), "    local_addresses: [10.1.0.2]\n", ""))
	code, out, errOut := runCLI(t, "check", "--config", p)
	if code != 0 || strings.Contains(out, "full-NAT") || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
}
