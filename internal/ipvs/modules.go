package ipvs

import (
	"errors"
	"fmt"

	"github.com/lvs-node/lvs-node/internal/modprobe"
)

// ErrModule means a scheduler or persistence engine an op names has no
// module in the running kernel.
var ErrModule = errors.New("missing kernel module")

// Module is a kernel module an op needs.
type Module struct {
	Name string // ip_vs_wlc, ip_vs_pe_sip
	What string // "scheduler" or "persistence engine"
	Arg  string // the name the op gives
	Op   int    // index of the first op that needs it
}

// ModuleError is a module that could not be loaded. errors.Is matches it
// with ErrModule.
type ModuleError struct {
	Module Module
	Cause  error
}

func (e *ModuleError) Error() string {
	if errors.Is(e.Cause, modprobe.ErrTimeout) {
		return fmt.Sprintf("%s %q could not be loaded: %v", e.Module.What, e.Module.Arg, e.Cause)
	}
	return fmt.Sprintf("%s %q is not available in this kernel (%s: %v)", e.Module.What, e.Module.Arg, e.Module.Name, e.Cause)
}

// Is reports whether target is ErrModule.
func (e *ModuleError) Is(target error) bool { return target == ErrModule }

// Unwrap gives the cause.
func (e *ModuleError) Unwrap() error { return e.Cause }

// Missing returns the *OpError that Apply gives when m cannot be loaded:
// nothing of ops was sent.
func (m Module) Missing(ops []Op, cause error) *OpError {
	return &OpError{Index: m.Op, Op: ops[m.Op], Err: &ModuleError{Module: m, Cause: cause}}
}

// SchedulerModule and PEModule name the module of a scheduler or a
// persistence engine.
func SchedulerModule(name string) string { return "ip_vs_" + name }

// PEModule names the module of a persistence engine.
func PEModule(name string) string { return "ip_vs_pe_" + name }

// NeededModules lists, in order of first use and without repeats, the
// scheduler and persistence-engine modules that the service additions and
// edits of ops name.
func NeededModules(ops []Op) []Module {
	var out []Module
	seen := map[string]bool{}
	add := func(name, what, arg string, i int) {
		if arg == "" || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, Module{Name: name, What: what, Arg: arg, Op: i})
	}
	for i, op := range ops {
		if op.Kind != AddService && op.Kind != EditService {
			continue
		}
		add(SchedulerModule(op.Service.Scheduler), "scheduler", op.Service.Scheduler, i)
		add(PEModule(op.Service.PE), "persistence engine", op.Service.PE, i)
	}
	return out
}
