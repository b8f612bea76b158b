package rsprog

import (
	"crypto/sha256"

	"github.com/cilium/ebpf"
)

// The C types the loader fills in.
type (
	Addr     = realserverToaAddr
	Conf     = realserverToaConf
	TrustKey = realserverToaTrustKey
	Slot     = realserverToaSlotEntry
)

// ConfSaveSYN is the flag of Conf.Flags that makes listeners save the SYN.
const ConfSaveSYN = 1

// Names of the objects in the ELF.
const (
	MapAddrs     = realserverMapToaAddrs
	MapSlots     = realserverMapToaSlots
	MapStats     = realserverMapToaStats
	MapTrusted   = realserverMapToaTrusted
	MapConfig    = realserverMapToaConfig
	ProgSockOps  = realserverProgToaSockops
	ProgPeer4    = realserverProgToaGetpeername4
	ProgPeer6    = realserverProgToaGetpeername6
	ProgSockopt  = realserverProgToaGetsockopt
	ProgRelease  = realserverProgToaRelease
	VarPageSize  = realserverVarPageSize
	VarSlotMask  = realserverVarSlotMask
	CounterSlots = 16
)

// Counters are the names of the counters in the stats map, by index: the
// names of the modules' /proc/net/toa_stats first.
func Counters() []string {
	return []string{
		"syn_recv_sock_toa", "syn_recv_sock_no_toa", "getname_toa_ok", "getname_toa_mismatch",
		"getname_toa_bypass", "getname_toa_empty", "untrusted", "malformed", "late_toa", "nat64_lookup", "slot_taken",
	}
}

// Spec returns the collection of the real-server programs.
func Spec() (*ebpf.CollectionSpec, error) { return loadRealserver() }

// Hash identifies the compiled programs: it changes when they do.
func Hash() [32]byte { return sha256.Sum256(_RealserverBytes) }
