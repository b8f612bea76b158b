package director

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// Skipped is a virtual service the kernel cannot hold as configured: a
// scheduler or persistence engine whose module this kernel lacks.
type Skipped struct {
	Key ipvs.ServiceKey
	Err error
}

// PartialError reports services left out of a reconciliation that applied
// everything else.
type PartialError struct {
	Skipped []Skipped
}

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d service(s) could not be applied, everything else was:", len(e.Skipped))
	for _, s := range e.Skipped {
		fmt.Fprintf(&b, "\n  %s: %v", s.Key, s.Err)
	}
	return b.String()
}

// Unwrap gives the errors of the skipped services.
func (e *PartialError) Unwrap() []error {
	out := make([]error, len(e.Skipped))
	for i, s := range e.Skipped {
		out[i] = s.Err
	}
	return out
}

// send hands ops to the kernel and returns those it acknowledged. A batch
// the client refuses before sending anything because a scheduler or
// persistence-engine module is missing is sent again without the
// operations that need that module (and, for a service that would be
// created, without its real servers); those services are returned as
// skipped. Any other failure ends the batch: the operations before the
// failed one that were sent count as acknowledged, the others do not.
func (e *Engine) send(ctx context.Context, ops []ipvs.Op) (acked []ipvs.Op, skipped []Skipped, err error) {
	for len(ops) > 0 {
		err := e.deps.Kernel.Apply(ctx, ops)
		if err == nil {
			return ops, skipped, nil
		}
		var oe *ipvs.OpError
		if !errors.As(err, &oe) {
			return nil, skipped, err
		}
		var me *ipvs.ModuleError
		if oe.Sent == 0 && errors.As(err, &me) {
			var gone []ipvs.ServiceKey
			ops, gone = withoutModule(ops, me.Module)
			for _, k := range gone {
				skipped = append(skipped, Skipped{Key: k, Err: oe.Err})
			}
			if len(gone) > 0 {
				continue
			}
		}
		return ops[:min(oe.Index, oe.Sent)], skipped, err
	}
	return nil, skipped, nil
}

// withoutModule returns ops without the service additions and edits that
// need module m, and without every operation on a service whose addition
// was dropped. It returns the keys of the services left out.
func withoutModule(ops []ipvs.Op, m ipvs.Module) ([]ipvs.Op, []ipvs.ServiceKey) {
	needs := func(op ipvs.Op) bool {
		if op.Kind != ipvs.AddService && op.Kind != ipvs.EditService {
			return false
		}
		return ipvs.SchedulerModule(op.Service.Scheduler) == m.Name || op.Service.PE != "" && ipvs.PEModule(op.Service.PE) == m.Name
	}
	var gone []ipvs.ServiceKey
	added := map[ipvs.ServiceKey]bool{}
	for _, op := range ops {
		if needs(op) {
			k := ipvs.NormKey(op.Service.ServiceKey)
			if !slices.Contains(gone, k) {
				gone = append(gone, k)
			}
			if op.Kind == ipvs.AddService {
				added[k] = true
			}
		}
	}
	out := make([]ipvs.Op, 0, len(ops))
	for _, op := range ops {
		if needs(op) || added[ipvs.NormKey(op.Service.ServiceKey)] {
			continue
		}
		out = append(out, op)
	}
	return out, gone
}
