package egress

import (
	"crypto/sha256"

	"github.com/cilium/ebpf"
)

// The C types the loader fills in.
type (
	LaddrKey  = egressLaddrKey
	LaddrConf = egressLaddrConf
	ConnKey   = egressConnKey
	ConnState = egressConnState
)

// Names of the objects in the ELF.
const (
	MapLaddrs = egressMapFullnatLaddrs
	MapConns  = egressMapFullnatConns
	MapStats  = egressMapFullnatStats
	Prog      = egressProgFullnatToa
)

// Counter indexes of the stats map (enum fullnat_counter).
const (
	CounterInserted = iota
	CounterNoRoom
	CounterMTU
	CounterNoConntrack
	CounterGSO
	CounterError
	// CounterSlots is the size of the stats map.
	CounterSlots = 8
)

// Counters names the counters by index.
func Counters() []string {
	return []string{"inserted", "no_room", "mtu", "no_conntrack", "gso", "error"}
}

// Spec returns the collection of the egress program.
func Spec() (*ebpf.CollectionSpec, error) { return loadEgress() }

// Hash identifies the compiled program: it changes when it does.
func Hash() [32]byte { return sha256.Sum256(_EgressBytes) }
