package fullnattest

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/lab/topo"
)

// frame6 builds an Ethernet frame with an IPv6 TCP segment from src to
// dst, with a complete checksum.
func frame6(src, dst netip.AddrPort, seq uint32, flags byte, opts []byte) topo.Packet {
	tcp := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], 1000)
	tcp[12] = byte(len(tcp)/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64000)
	copy(tcp[20:], opts)
	binary.BigEndian.PutUint16(tcp[16:], Fold(Sum(tcp, PseudoSum(src.Addr(), dst.Addr(), len(tcp)))))
	f := make([]byte, 14+40, 14+40+len(tcp))
	binary.BigEndian.PutUint16(f[12:], 0x86dd)
	ip := f[14:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
	ip[6], ip[7] = 6, 64
	copy(ip[8:], src.Addr().AsSlice())
	copy(ip[24:], dst.Addr().AsSlice())
	return topo.Packet{Data: append(f, tcp...)}
}

func TestCheckWireNoRoom(t *testing.T) {
	local := netip.MustParseAddrPort("[2001:db8:1::2]:40000")
	rs := netip.MustParseAddrPort("[2001:db8:1::11]:8080")
	client := netip.MustParseAddrPort("[2001:db8:c::10]:41000")
	clients := map[netip.AddrPort]netip.AddrPort{local: client}
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	dsack := []byte{1, 1, 5, 10, 0, 0, 3, 0, 0, 0, 3, 100}
	const isn = 5000
	toa := TOA(254, client)
	handshake := []topo.Packet{
		frame6(local, rs, isn, SYN, ts),
		frame6(local, rs, isn+1, ACK, append(append([]byte{}, toa...), ts...)),
	}

	// A duplicate ACK with timestamps and a D-SACK block: 24 bytes of
	// options leave 16, and the IPv6 option takes 20.
	pkts := append(append([]topo.Packet{}, handshake...), frame6(local, rs, isn+1, ACK, append(append([]byte{}, ts...), dsack...)))
	rep, err := CheckWire(pkts, clients, 254)
	if err != nil {
		t.Fatalf("a segment without room for the option: %v", err)
	}
	if rep.NoRoom != 1 || rep.FirstCarry != 1 || rep.WithTOA != 1 || rep.Flows != 1 || rep.Complete != 3 {
		t.Fatalf("report %s (no room %d), want 1 flow, 1 option, 1 without room, 3 complete checksums", rep, rep.NoRoom)
	}

	// With room left (timestamps only), a missing option is an error.
	pkts = append(append([]topo.Packet{}, handshake...), frame6(local, rs, isn+1, ACK, ts))
	rep, err = CheckWire(pkts, clients, 254)
	if err == nil || !strings.Contains(err.Error(), "want options starting") || rep.NoRoom != 0 {
		t.Fatalf("a segment with room and no option: report %s, error %v", rep, err)
	}

	// A corrupted checksum is an error whatever the options.
	bad := frame6(local, rs, isn+1, ACK, append(append([]byte{}, ts...), dsack...))
	bad.Data[len(bad.Data)-1] ^= 0xff
	pkts = append(append([]topo.Packet{}, handshake...), bad)
	if _, err = CheckWire(pkts, clients, 254); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a bad checksum: %v", err)
	}
}
