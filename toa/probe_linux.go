package toa

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// LiveProbe asks the running kernel for the program types, attach
// points, map types and helpers eBPF TOA uses.
type LiveProbe struct{}

// Probe implements Prober.
func (LiveProbe) Probe() []Check {
	var out []Check
	add := func(name string, err error, need string) {
		c := Check{Name: name, OK: err == nil, Detail: "supported"}
		if err != nil {
			c.Detail = err.Error()
			if errors.Is(err, ebpf.ErrNotSupported) {
				c.Detail = "not supported by this kernel"
			}
			c.Fix = need
		}
		out = append(out, c)
	}
	add("sock_ops", features.HaveProgramType(ebpf.SockOps), "CONFIG_CGROUP_BPF=y")
	add("sock_addr", features.HaveProgramType(ebpf.CGroupSockAddr), "CONFIG_CGROUP_BPF=y (getpeername hooks need 5.8+)")
	add("sockopt", features.HaveProgramType(ebpf.CGroupSockopt), "kernel 5.3+ with CONFIG_CGROUP_BPF=y")
	add("sock_release", features.HaveProgramType(ebpf.CGroupSock), "CONFIG_CGROUP_BPF=y (the release hook needs 5.9+)")
	add("sk_storage", features.HaveMapType(ebpf.SkStorage), "kernel 5.2+")
	add("lpm_trie", features.HaveMapType(ebpf.LPMTrie), "kernel 4.11+")
	add("bpf_getsockopt", features.HaveProgramHelper(ebpf.SockOps, asm.FnGetsockopt), "kernel 5.10+ (saved SYN)")
	add("bpf_sk_storage_get", helperOr(features.HaveProgramHelper(ebpf.CGroupSockAddr, asm.FnSkStorageGet)), "kernel 5.10+")
	return out
}

func helperOr(err error) error {
	if err != nil {
		return fmt.Errorf("bpf_sk_storage_get from sock_addr programs: %w", err)
	}
	return nil
}
