package director

import (
	"github.com/lvs-node/lvs-node/internal/nftmark"
)

// nftMarker adapts internal/nftmark to Marker.
type nftMarker struct{ m *nftmark.Marker }

// openMarker opens the nftables table that marks ports: services.
func openMarker(table string) (*nftMarker, error) {
	m, err := nftmark.Open(table)
	if err != nil {
		return nil, err
	}
	return &nftMarker{m: m}, nil
}

func (n *nftMarker) Set(rules []MarkRule) error {
	out := make([]nftmark.Rule, len(rules))
	for i, r := range rules {
		out[i] = nftmark.Rule{VIP: r.VIP, Protocol: r.Protocol, Ports: r.Ports, Mark: r.Mark, Mask: r.Mask}
	}
	return n.m.Set(out)
}

func (n *nftMarker) Delete() error { return n.m.Delete() }

func (n *nftMarker) Close() error { return n.m.Close() }
