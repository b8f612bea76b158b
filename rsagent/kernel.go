package rsagent

import "github.com/lvs-node/lvs-node/internal/hostnet"

const tunl0 = "tunl0"

// Kernel is the netlink side of the host, as rsagent needs it
// (hostnet.NetlinkKernel on a real host).
type Kernel interface {
	// Snapshot returns the links, addresses and main-table routes.
	Snapshot() (*Snapshot, error)
	// Add creates obj (a Link, LinkUp, Addr or Route). For a Route it
	// replaces any route to the same prefix and metric.
	Add(obj Object) error
	// Del removes obj; for a LinkUp it sets the link down.
	Del(obj Object) error
	// Watch sends on the returned channel (without blocking, coalescing)
	// whenever links, addresses or routes change, until done is closed.
	Watch(done <-chan struct{}) (<-chan struct{}, error)
	// LoadModule loads a kernel module such as ipip.
	LoadModule(name string) error
}

// The host objects rsagent works with (package hostnet).
type (
	Snapshot = hostnet.Snapshot
	LinkInfo = hostnet.LinkInfo
	Object   = hostnet.Object
	Link     = hostnet.Link
	LinkUp   = hostnet.LinkUp
	Addr     = hostnet.Addr
	Route    = hostnet.Route
)
