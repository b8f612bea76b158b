package fullnat

import "slices"

// Record is what lvs-node added to the host for full-NAT, kept in the
// director's state file. Each addition is recorded before it is made,
// so a crash half-way orphans nothing, and only what is recorded is
// ever removed.
type Record struct {
	// NFTable names the tables "ip NFTable" and "ip6 NFTable".
	NFTable string `json:"nftables_table,omitempty"`
	// PinDir is the BPF file system directory of the program, its maps
	// and its tcx links.
	PinDir string `json:"pin_dir,omitempty"`
	// Hooks are the interfaces the egress program is attached to.
	Hooks []Hook `json:"hooks,omitempty"`
}

// Hook is the egress program on one interface.
type Hook struct {
	Interface string `json:"interface"`
	Ifindex   int    `json:"ifindex"`
	// Mode is ModeTCX (a link pinned in PinDir) or ModeTC (a cls_bpf
	// filter of the clsact qdisc).
	Mode string `json:"mode"`
	// Clsact is set when lvs-node added the interface's clsact qdisc.
	Clsact bool `json:"clsact_added,omitempty"`
}

// Attachment modes.
const (
	ModeTCX = "tcx"
	ModeTC  = "tc"
)

// Empty reports whether nothing is recorded.
func (r *Record) Empty() bool { return r.NFTable == "" && r.PinDir == "" && len(r.Hooks) == 0 }

// Clone returns a copy of r that shares nothing with it.
func (r *Record) Clone() Record {
	return Record{NFTable: r.NFTable, PinDir: r.PinDir, Hooks: slices.Clone(r.Hooks)}
}

func (r *Record) hook(ifindex int) (Hook, bool) {
	for _, h := range r.Hooks {
		if h.Ifindex == ifindex {
			return h, true
		}
	}
	return Hook{}, false
}

func (r *Record) setHook(h Hook) {
	for i := range r.Hooks {
		if r.Hooks[i].Ifindex == h.Ifindex {
			r.Hooks[i] = h
			return
		}
	}
	r.Hooks = append(r.Hooks, h)
}

func (r *Record) dropHook(ifindex int) {
	r.Hooks = slices.DeleteFunc(r.Hooks, func(h Hook) bool { return h.Ifindex == ifindex })
}
