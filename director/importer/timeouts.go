package importer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// globalDefs maps what the director can take of a keepalived global_defs
// block: lvs_timeouts, into director.timeouts. A later lvs_timeouts
// replaces only the timeouts it names, as in keepalived; 0 leaves the
// kernel's value, as ipvsadm --set does.
func (d *docOut) globalDefs(g *kaNode) {
	t := ipvsadm.SetTimeouts{}
	if d.timeouts != nil {
		t = *d.timeouts
	}
	d.trailer = append(d.trailer, kaLVSTimeouts(g, &t)...)
	d.timeouts = &t
	d.timeoutsFrom = fmt.Sprintf("Connection timeouts, from lvs_timeouts in global_defs (line %d); the rest of global_defs is not mapped.", g.line())
}

// kaLVSTimeouts reads "lvs_timeouts [tcp N] [tcpfin N] [udp N]" of a
// keepalived global_defs block into t: the connection timeouts keepalived
// sets at start, as ipvsadm --set does. It returns notes on the words it
// could not read, which keepalived ignores too.
func kaLVSTimeouts(g *kaNode, t *ipvsadm.SetTimeouts) []string {
	var notes []string
	for _, c := range g.children {
		if len(c.words) == 0 || c.keyword() != "lvs_timeouts" {
			continue
		}
		args := c.args()
		for i := 0; i < len(args); i++ {
			var dst *uint32
			switch args[i] {
			case "tcp":
				dst = &t.TCP
			case "tcpfin":
				dst = &t.TCPFin
			case "udp":
				dst = &t.UDP
			}
			if dst == nil || i+1 >= len(args) {
				notes = append(notes, fmt.Sprintf("line %d: lvs_timeouts %q not read (want tcp, tcpfin or udp and seconds)", c.line(), args[i]))
				continue
			}
			n, err := strconv.ParseUint(args[i+1], 10, 32)
			if err != nil || n > ipvsadm.MaxSetTimeout {
				notes = append(notes, fmt.Sprintf("line %d: lvs_timeouts %s %q not read (want 0 to %d seconds)", c.line(), args[i], args[i+1], ipvsadm.MaxSetTimeout))
			} else {
				*dst = uint32(n) // 0 included: keepalived then leaves the kernel's value
			}
			i++
		}
	}
	return notes
}

// writeDirector writes the director block of the import: the connection
// timeouts (ipvsadm --set, keepalived's lvs_timeouts) under a comment
// saying where they come from, when one of them is set.
func writeDirector(b *strings.Builder, t *ipvsadm.SetTimeouts, from string) {
	if t == nil || *t == (ipvsadm.SetTimeouts{}) {
		return
	}
	var f []string
	for _, x := range []struct {
		key string
		v   uint32
	}{{"tcp", t.TCP}, {"tcp_fin", t.TCPFin}, {"udp", t.UDP}} {
		if x.v != 0 {
			f = append(f, fmt.Sprintf("%s: %ds", x.key, x.v))
		}
	}
	comment(b, "", from)
	fmt.Fprintf(b, "director:\n  timeouts: {%s}\n", strings.Join(f, ", "))
}
