package ipvs

import "errors"

// ErrModule means a scheduler or persistence engine an op names has no
// module in the running kernel.
var ErrModule = errors.New("missing kernel module")

// module is a kernel module an op needs.
type module struct {
	name string // ip_vs_wlc, ip_vs_pe_sip
	what string // "scheduler" or "persistence engine"
	arg  string // the name the op gives
	op   int    // index of the first op that needs it
}

// neededModules lists, in order of first use and without repeats, the
// scheduler and persistence-engine modules that the service additions and
// edits of ops name.
func neededModules(ops []Op) []module {
	var out []module
	seen := map[string]bool{}
	add := func(name, what, arg string, i int) {
		if arg == "" || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, module{name: name, what: what, arg: arg, op: i})
	}
	for i, op := range ops {
		if op.Kind != AddService && op.Kind != EditService {
			continue
		}
		add("ip_vs_"+op.Service.Scheduler, "scheduler", op.Service.Scheduler, i)
		add("ip_vs_pe_"+op.Service.PE, "persistence engine", op.Service.PE, i)
	}
	return out
}
