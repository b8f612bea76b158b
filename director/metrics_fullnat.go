package director

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvs-node/lvs-node/internal/promserve"
)

// fullNATCounters gives the TOA writer's counters (a *fullnat.Manager):
// ok is false while no writer is in place.
type fullNATCounters interface {
	Counters() (c map[string]uint64, ok bool, err error)
}

// newFullNATCollector exports the counters of full-NAT's TOA writer,
// read from its pinned map at each scrape (they survive restarts of the
// director). Nothing is exported while full-NAT writes no option.
func newFullNATCollector(e *Engine) promserve.Updater {
	const p = "lvs_node_fullnat_toa_"
	inserted := newTypedDesc(p+"inserted_total", "TCP options carrying the client's address written into packets towards full-NAT real servers.", prometheus.CounterValue)
	skipped := newTypedDesc(p+"skipped_total", "Packets that should have carried the option but were left as they were, by reason: no_room (40 bytes of TCP options), mtu (the option would have grown the packet past the device or path MTU), gso (a segmentation-offload packet).", prometheus.CounterValue, "reason")
	noCT := newTypedDesc(p+"no_conntrack_total", "Connections from a local address whose SYN had no conntrack entry to take the client from.", prometheus.CounterValue)
	errs := newTypedDesc(p+"errors_total", "Packets the writer could not change as planned (a kernel helper refused); a packet changed half-way is dropped.", prometheus.CounterValue)
	return promserve.UpdaterFunc(func(ch chan<- prometheus.Metric) error {
		src, ok := e.deps.FullNAT.(fullNATCounters)
		if !ok {
			return nil
		}
		c, ok, err := src.Counters()
		if err != nil || !ok {
			return err
		}
		ch <- inserted.metric(float64(c["inserted"]))
		for _, r := range []string{"no_room", "mtu", "gso"} {
			ch <- skipped.metric(float64(c[r]), r)
		}
		ch <- noCT.metric(float64(c["no_conntrack"]))
		ch <- errs.metric(float64(c["error"]))
		return nil
	})
}
