package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
)

// The kernel's connection-synchronisation daemon: its ABI
// (include/uapi/linux/ip_vs.h: IPVS_CMD_NEW_DAEMON, IPVS_CMD_DEL_DAEMON,
// IPVS_CMD_GET_DAEMON and the IPVS_DAEMON_ATTR_* nest), its encoding and
// decoding. The client calls are in sync_linux.go.

// Sync-daemon commands and attributes.
const (
	cmdNewDaemon  = 9
	cmdDelDaemon  = 10
	cmdGetDaemon  = 11
	cmdAttrDaemon = 3

	daemonAttrState       = 1 // u32: IP_VS_STATE_MASTER or _BACKUP
	daemonAttrMcastIfn    = 2 // NUL-terminated string, at most 15 bytes
	daemonAttrSyncID      = 3 // u32
	daemonAttrSyncMaxLen  = 4 // u16, host order
	daemonAttrMcastGroup  = 5 // __be32 IPv4 group
	daemonAttrMcastGroup6 = 6 // struct in6_addr
	daemonAttrMcastPort   = 7 // u16, host order
	daemonAttrMcastTTL    = 8 // u8

	ifNameMaxLen = 16 // IP_VS_IFNAME_MAXLEN, with the NUL
)

// SyncState is the role of a sync daemon (IP_VS_STATE_*): a master sends
// the connections of this director, a backup receives those of its peers.
// The kernel runs at most one of each per network namespace, both at once
// if asked.
type SyncState uint32

// Sync daemon roles.
const (
	SyncMaster SyncState = 1
	SyncBackup SyncState = 2
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("state%d", uint32(s))
}

// ParseSyncState accepts master and backup.
func ParseSyncState(s string) (SyncState, error) {
	switch strings.ToLower(s) {
	case "master":
		return SyncMaster, nil
	case "backup":
		return SyncBackup, nil
	}
	return 0, fmt.Errorf("unknown sync daemon state %q (want master or backup)", s)
}

// SyncDaemon is one connection-sync daemon as ipvsadm --start-daemon
// sets it and --list --daemon shows it. Zero values of MaxLen, Group,
// Port and TTL leave the kernel's defaults (a length from the interface's
// MTU, 224.0.0.81, 8848, 1), which it then reports.
type SyncDaemon struct {
	State     SyncState
	Interface string // multicast interface
	SyncID    uint32 // 0..255 on the wire of the sync protocol
	MaxLen    uint16 // UDP payload size of a sync message
	Group     netip.Addr
	Port      uint16
	TTL       uint8
}

// Same reports whether the running daemon d is the one want asks for:
// equal fields, a zero field of want standing for whatever the kernel
// chose.
func (d SyncDaemon) Same(want SyncDaemon) bool {
	return d.State == want.State && d.Interface == want.Interface && d.SyncID == want.SyncID &&
		(want.MaxLen == 0 || d.MaxLen == want.MaxLen) &&
		(!want.Group.IsValid() || d.Group == want.Group) &&
		(want.Port == 0 || d.Port == want.Port) &&
		(want.TTL == 0 || d.TTL == want.TTL)
}

// CheckSyncDaemon reports what keeps the kernel from starting d, before
// anything is sent.
func CheckSyncDaemon(d SyncDaemon) error {
	if d.State != SyncMaster && d.State != SyncBackup {
		return fmt.Errorf("sync daemon: state must be master or backup, got %d", uint32(d.State))
	}
	if d.Interface == "" {
		return fmt.Errorf("sync daemon: a multicast interface is required")
	}
	if len(d.Interface)+1 > ifNameMaxLen || strings.ContainsAny(d.Interface, "/ \x00") {
		return fmt.Errorf("sync daemon: %q is not an interface name", d.Interface)
	}
	if d.SyncID > 255 {
		return fmt.Errorf("sync daemon: sync id must be from 0 to 255, got %d", d.SyncID)
	}
	if d.Group.IsValid() && !d.Group.IsMulticast() {
		return fmt.Errorf("sync daemon: group %s is not a multicast address", d.Group)
	}
	return nil
}

// syncDaemon appends an IPVS_CMD_ATTR_DAEMON nest. full adds what only
// a start carries; a stop needs the state alone.
func (e *encoder) syncDaemon(d SyncDaemon, full bool) {
	n := e.nest(cmdAttrDaemon)
	e.u32(daemonAttrState, uint32(d.State))
	if full {
		e.str(daemonAttrMcastIfn, d.Interface)
		e.u32(daemonAttrSyncID, d.SyncID)
		if d.MaxLen != 0 {
			e.u16(daemonAttrSyncMaxLen, d.MaxLen)
		}
		if d.Port != 0 {
			e.u16(daemonAttrMcastPort, d.Port)
		}
		if d.TTL != 0 {
			e.u8(daemonAttrMcastTTL, d.TTL)
		}
		if g := d.Group; g.Is4() {
			a := g.As4()
			e.attr(daemonAttrMcastGroup, a[:])
		} else if g.Is6() {
			a := g.As16()
			e.attr(daemonAttrMcastGroup6, a[:])
		}
	}
	e.endNest(n)
}

// parseSyncDaemon decodes the payload of an IPVS_CMD_ATTR_DAEMON nest.
func parseSyncDaemon(b []byte) (SyncDaemon, error) {
	var d SyncDaemon
	var hasState, hasIfn bool
	err := forEachAttr(b, func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case daemonAttrState:
			var s uint32
			s, err = getU32(v)
			d.State, hasState = SyncState(s), true
		case daemonAttrMcastIfn:
			d.Interface, hasIfn = getString(v), true
		case daemonAttrSyncID:
			d.SyncID, err = getU32(v)
		case daemonAttrSyncMaxLen:
			d.MaxLen, err = getU16(v)
		case daemonAttrMcastPort:
			d.Port, err = getU16(v)
		case daemonAttrMcastTTL:
			d.TTL, err = getU8(v)
		case daemonAttrMcastGroup:
			if len(v) < 4 {
				return fmt.Errorf("%w: IPv4 group of %d bytes", errMalformed, len(v))
			}
			if !d.Group.IsValid() { // the kernel sends one of the two
				d.Group = netip.AddrFrom4([4]byte(v[:4]))
			}
		case daemonAttrMcastGroup6:
			if len(v) < 16 {
				return fmt.Errorf("%w: IPv6 group of %d bytes", errMalformed, len(v))
			}
			d.Group = netip.AddrFrom16([16]byte(v[:16]))
		}
		return err
	})
	if err != nil {
		return d, err
	}
	if !hasState || !hasIfn {
		return d, fmt.Errorf("%w: sync daemon without state or interface", errMalformed)
	}
	return d, nil
}

// parseSyncDaemonMsg decodes one message of a daemon dump.
func parseSyncDaemonMsg(payload []byte) (SyncDaemon, error) {
	nest, err := nestedAttr(payload, cmdAttrDaemon, "daemon")
	if err != nil {
		return SyncDaemon{}, err
	}
	return parseSyncDaemon(nest)
}
