package ipvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// daemonNest encodes d and returns the payload of its daemon nest.
func daemonNest(t *testing.T, d SyncDaemon, full bool) []byte {
	t.Helper()
	var e encoder
	e.syncDaemon(d, full)
	nest, ok := attrsOf(t, e.b)[cmdAttrDaemon]
	if !ok {
		t.Fatal("no daemon nest")
	}
	return nest
}

func TestSyncDaemonRoundTrip(t *testing.T) {
	for _, d := range []SyncDaemon{
		{State: SyncMaster, Interface: "eth1", SyncID: 7},
		{State: SyncBackup, Interface: "bond0.100", SyncID: 255, MaxLen: 1400, Group: netip.MustParseAddr("239.1.2.3"), Port: 9000, TTL: 3},
		{State: SyncMaster, Interface: "eth0", SyncID: 1, Group: netip.MustParseAddr("ff02::81"), Port: 8848, TTL: 1},
	} {
		got, err := parseSyncDaemon(daemonNest(t, d, true))
		if err != nil {
			t.Fatalf("%+v: %v", d, err)
		}
		if got != d {
			t.Errorf("round trip of %+v gave %+v", d, got)
		}
		if !got.Same(d) {
			t.Errorf("%+v is not Same as itself", d)
		}
	}
}

// TestSyncDaemonWire checks the bytes against ip_vs.h and the kernel's
// policy: host-order u16 length and port, u8 TTL, the IPv4 group as
// __be32 (the address bytes in order), the name NUL-terminated.
func TestSyncDaemonWire(t *testing.T) {
	d := SyncDaemon{State: SyncBackup, Interface: "eth1", SyncID: 9, MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 2}
	a := attrsOf(t, daemonNest(t, d, true))
	want := map[uint16][]byte{
		daemonAttrState:      binary.NativeEndian.AppendUint32(nil, 2),
		daemonAttrMcastIfn:   []byte("eth1\x00"),
		daemonAttrSyncID:     binary.NativeEndian.AppendUint32(nil, 9),
		daemonAttrSyncMaxLen: binary.NativeEndian.AppendUint16(nil, 1472),
		daemonAttrMcastPort:  binary.NativeEndian.AppendUint16(nil, 8848),
		daemonAttrMcastTTL:   {2},
		daemonAttrMcastGroup: {224, 0, 0, 81},
	}
	for typ, w := range want {
		if !bytes.Equal(a[typ], w) {
			t.Errorf("attribute %d = %v, want %v", typ, a[typ], w)
		}
	}
	if len(a) != len(want) {
		t.Errorf("%d attributes, want %d", len(a), len(want))
	}
	// A stop names the state only; zero options are left to the kernel.
	if a := attrsOf(t, daemonNest(t, SyncDaemon{State: SyncMaster, Interface: "x"}, false)); len(a) != 1 || a[daemonAttrState] == nil {
		t.Errorf("stop request attributes %v", a)
	}
	if a := attrsOf(t, daemonNest(t, SyncDaemon{State: SyncMaster, Interface: "x"}, true)); len(a) != 3 {
		t.Errorf("start without options sends %d attributes, want state, interface and sync id", len(a))
	}
}

func TestSyncDaemonMsgErrors(t *testing.T) {
	var e encoder
	e.b = append(e.b, cmdGetDaemon, 1, 0, 0) // genl header
	if _, err := parseSyncDaemonMsg(e.b); !errors.Is(err, errMalformed) {
		t.Errorf("message without nest: %v", err)
	}
	n := e.nest(cmdAttrDaemon)
	e.u32(daemonAttrSyncID, 1)
	e.endNest(n)
	if _, err := parseSyncDaemonMsg(e.b); !errors.Is(err, errMalformed) {
		t.Errorf("daemon without state: %v", err)
	}
	bad := []byte{8, 0, daemonAttrMcastGroup, 0, 1, 2, 3} // 4-byte header, 3-byte value, length 8 past the end
	if _, err := parseSyncDaemon(bad); !errors.Is(err, errMalformed) {
		t.Errorf("truncated attribute: %v", err)
	}
}

func TestCheckSyncDaemon(t *testing.T) {
	ok := SyncDaemon{State: SyncMaster, Interface: "eth0", SyncID: 1}
	if err := CheckSyncDaemon(ok); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]SyncDaemon{
		"no state":      {Interface: "eth0"},
		"no interface":  {State: SyncBackup},
		"long name":     {State: SyncBackup, Interface: "abcdefghijklmnop"},
		"sync id":       {State: SyncBackup, Interface: "eth0", SyncID: 256},
		"unicast group": {State: SyncBackup, Interface: "eth0", Group: netip.MustParseAddr("10.0.0.1")},
	} {
		if err := CheckSyncDaemon(d); err == nil {
			t.Errorf("%s: accepted %+v", name, d)
		}
	}
	if s, err := ParseSyncState("Backup"); err != nil || s != SyncBackup {
		t.Errorf("ParseSyncState(Backup) = %v, %v", s, err)
	}
	if _, err := ParseSyncState("both"); err == nil {
		t.Error("ParseSyncState(both) accepted")
	}
}

func FuzzParseSyncDaemon(f *testing.F) {
	var e encoder
	e.syncDaemon(SyncDaemon{State: SyncBackup, Interface: "eth1", SyncID: 9, Group: netip.MustParseAddr("ff02::1")}, true)
	f.Add(e.b[nlaHdrLen:])
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseSyncDaemon(b)
		if err != nil {
			return
		}
		var e encoder
		e.syncDaemon(d, true)
		again, err := parseSyncDaemon(e.b[nlaHdrLen:])
		if err != nil || !again.Same(d) {
			t.Fatalf("%+v re-encoded gave %+v, %v", d, again, err)
		}
	})
}
