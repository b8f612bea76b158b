package nftmark

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

var (
	vip4 = netip.MustParseAddr("10.0.0.100")
	vip6 = netip.MustParseAddr("2001:db8::100")
)

func show(rs []Rule) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintln(&b, r)
	}
	return b.String()
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		name string
		in   []Rule
		want string // one rule per line, or the error's substring after "error: "
	}{
		{"empty", nil, ""},
		{"sorts and dedups ports",
			[]Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{443, 80, 443}, Mark: 10, Mask: 0xff}},
			"tcp 10.0.0.100 ports 80,443 mark 0xa/0xff\n"},
		{"port zero is every port",
			[]Rule{{VIP: vip4, Protocol: ipvs.UDP, Ports: []uint16{0}, Mark: 3, Mask: 0xff}},
			"udp 10.0.0.100 every port mark 0x3/0xff\n"},
		{"merges same vip protocol mark",
			[]Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{80}, Mark: 10, Mask: 0xff}, {VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{8080}, Mark: 10, Mask: 0xff}},
			"tcp 10.0.0.100 ports 80,8080 mark 0xa/0xff\n"},
		{"every port absorbs ports",
			[]Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{80}, Mark: 10, Mask: 0xff}, {VIP: vip4, Protocol: ipvs.TCP, Mark: 10, Mask: 0xff}},
			"tcp 10.0.0.100 every port mark 0xa/0xff\n"},
		{"sorted by vip protocol mark",
			[]Rule{
				{VIP: vip6, Protocol: ipvs.SCTP, Ports: []uint16{3868}, Mark: 2, Mask: 0xff},
				{VIP: vip4, Protocol: ipvs.UDP, Ports: []uint16{53}, Mark: 1, Mask: 0xff},
				{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{53}, Mark: 1, Mask: 0xff},
			},
			"tcp 10.0.0.100 ports 53 mark 0x1/0xff\nudp 10.0.0.100 ports 53 mark 0x1/0xff\nsctp 2001:db8::100 ports 3868 mark 0x2/0xff\n"},
		{"invalid vip", []Rule{{Protocol: ipvs.TCP, Mark: 1, Mask: 0xff}}, "error: invalid VIP"},
		{"mapped vip", []Rule{{VIP: netip.MustParseAddr("::ffff:10.0.0.1"), Protocol: ipvs.TCP, Mark: 1, Mask: 0xff}}, "error: invalid VIP"},
		{"bad protocol", []Rule{{VIP: vip4, Protocol: 1, Mark: 1, Mask: 0xff}}, "error: protocol proto1 is not"},
		{"mark zero", []Rule{{VIP: vip4, Protocol: ipvs.TCP}}, "error: mark 0"},
		{"zero among ports", []Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{0, 80}, Mark: 1, Mask: 0xff}}, "error: port 0"},
		{"port with two marks",
			[]Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{80, 443}, Mark: 1, Mask: 0xff}, {VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{443}, Mark: 2, Mask: 0xff}},
			"error: tcp 10.0.0.100 port 443: marked both 1 and 2"},
		{"two marks for every port",
			[]Rule{{VIP: vip4, Protocol: ipvs.UDP, Mark: 1, Mask: 0xff}, {VIP: vip4, Protocol: ipvs.UDP, Ports: []uint16{53}, Mark: 2, Mask: 0xff}},
			"error: marks 1 and 2 both claim every port"},
		{"same port other protocol is fine",
			[]Rule{{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{53}, Mark: 1, Mask: 0xff}, {VIP: vip4, Protocol: ipvs.UDP, Ports: []uint16{53}, Mark: 2, Mask: 0xff}},
			"tcp 10.0.0.100 ports 53 mark 0x1/0xff\nudp 10.0.0.100 ports 53 mark 0x2/0xff\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := show(got); s != tc.want {
				t.Fatalf("got:\n%swant:\n%s", s, tc.want)
			}
		})
	}
}

func TestExprsRoundTrip(t *testing.T) {
	rules := []Rule{
		{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{80, 443}, Mark: 10, Mask: 0xff},
		{VIP: vip4, Protocol: ipvs.UDP, Mark: 0xfffffffe, Mask: 0xffffffff},
		{VIP: vip6, Protocol: ipvs.SCTP, Ports: []uint16{3868}, Mark: 7, Mask: 0xff},
		{VIP: vip6, Protocol: ipvs.TCP, Mark: 8, Mask: 0xff},
	}
	for _, r := range rules {
		var back []Rule
		for _, exprs := range ruleExprs(r) {
			p, err := parseExprs(exprs)
			if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			back = append(back, p)
		}
		if len(back) != max(1, len(r.Ports)) {
			t.Errorf("%s: %d nftables rules", r, len(back))
		}
		got, err := Normalize(back)
		if err != nil || len(got) != 1 || !got[0].Equal(r) {
			t.Errorf("round trip of %s gave %v (%v)", r, got, err)
		}
	}
}

func TestParseExprsRejectsForeignRules(t *testing.T) {
	exprs := ruleExprs(Rule{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{80}, Mark: 1, Mask: 0xff})[0]
	if _, err := parseExprs(exprs[:len(exprs)-2]); err == nil {
		t.Error("a rule without mark statement parsed")
	}
	if _, err := parseExprs(exprs[2:]); err == nil {
		t.Error("a rule without family match parsed")
	}
}

// TestParseLegacyRule: a rule of an earlier version set the whole mark;
// it reads back with every bit in its mask, so it never equals a rule of
// today and Set replaces it.
func TestParseLegacyRule(t *testing.T) {
	exprs := ruleExprs(Rule{VIP: vip4, Protocol: ipvs.TCP, Ports: []uint16{80}, Mark: 0x4c560000, Mask: 0xffffffff})[0]
	n := len(exprs)
	legacy := append(slices.Clone(exprs[:n-4]),
		&expr.Immediate{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 0x4c560000)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		&expr.Counter{})
	r, err := parseExprs(legacy)
	if err != nil || r.Mark != 0x4c560000 || r.Mask != 0xffffffff {
		t.Fatalf("legacy rule: %v, %v", r, err)
	}
}
