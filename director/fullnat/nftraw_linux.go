package fullnat

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rawRule is a rule as the kernel lists it, undecoded.
type rawRule struct {
	handle   uint64
	userData []byte
}

// dumpRules lists the rules of one chain with their comments, without
// decoding their expressions: github.com/google/nftables cannot decode
// the direction of a conntrack expression ("ct original ..."), which the
// kernel reports in one byte, and refuses the whole listing.
func dumpRules(f nftables.TableFamily, table, chain string) ([]rawRule, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	defer c.Close()
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(table + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(chain + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{byte(f), unix.NFNETLINK_V0, 0, 0}, attrs...),
	}
	msgs, err := c.Execute(req)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list rules of %s %s %s: %w", familyName(f), table, chain, err)
	}
	var out []rawRule
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		var r rawRule
		var tab, ch string
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				tab = ad.String()
			case unix.NFTA_RULE_CHAIN:
				ch = ad.String()
			case unix.NFTA_RULE_HANDLE:
				r.handle = ad.Uint64()
			case unix.NFTA_RULE_USERDATA:
				r.userData = ad.Bytes()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode a rule of %s %s %s: %w", familyName(f), table, chain, err)
		}
		if tab == table && ch == chain {
			out = append(out, r)
		}
	}
	return out, nil
}
