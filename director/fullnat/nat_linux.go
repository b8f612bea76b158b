package fullnat

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Chains of the full-NAT tables.
const (
	chainPost  = "postrouting"
	poolPrefix = "pool"
)

// Registers: the 16-byte ones (1-3), and the 4-byte ones from 8 for the
// fields hashed together (as nft lays out a concatenation).
const (
	regAddr     = 1
	regPortMin  = 2
	regPortMax  = 3
	regConcat   = 8
	commentHead = "lvs-node fullnat "
	hashSeed    = 0x4c56 // "LV"
)

// natTables keeps the source NAT of full-NAT services in two nftables
// tables of lvs-node's own, "ip NAME" and "ip6 NAME": a postrouting
// chain that sends the packets IPVS forwards towards a full-NAT real
// server (told apart by the connection's original destination, the
// virtual service) to the chain of their local addresses, where they
// are translated. The ip and ip6 families are used rather than inet so
// that nft(8) shows the rules in its own words ("ct original ip daddr").
type natTables struct {
	mu   sync.Mutex
	conn *nftables.Conn
	name string
}

func openNAT(name string) (*natTables, error) {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	return &natTables{conn: c, name: name}, nil
}

func (n *natTables) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil
	}
	err := n.conn.CloseLasting()
	n.conn = nil
	return err
}

// families are the two tables' families, IPv4 first.
func families() []nftables.TableFamily {
	return []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6}
}

func familyName(f nftables.TableFamily) string {
	if f == nftables.TableFamilyIPv6 {
		return "ip6"
	}
	return "ip"
}

// wantRule is a rule as it should be in a chain.
type wantRule struct {
	exprs   []expr.Any
	comment string
}

// wantChain is a chain as it should be in a table.
type wantChain struct {
	chain *nftables.Chain
	rules []wantRule
}

// build returns the chains of the table of family f for spec; none when
// spec has no target of that family (the table is then removed).
func (n *natTables) build(spec Spec, f nftables.TableFamily) []wantChain {
	v6 := f == nftables.TableFamilyIPv6
	targets := spec.targetsOf(v6)
	if len(targets) == 0 {
		return nil
	}
	t := &nftables.Table{Name: n.name, Family: f}
	accept := nftables.ChainPolicyAccept
	post := wantChain{chain: &nftables.Chain{Name: chainPost, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept}}
	var pools []int
	for _, tg := range targets {
		if !slices.Contains(pools, tg.Pool) {
			pools = append(pools, tg.Pool)
		}
		post.rules = append(post.rules, wantRule{exprs: targetExprs(tg, poolChain(tg.Pool)), comment: tg.String()})
	}
	out := []wantChain{post}
	slices.Sort(pools)
	for _, pi := range pools {
		p := spec.Pools[pi]
		c := wantChain{chain: &nftables.Chain{Name: poolChain(pi), Table: t}}
		for i, a := range p.Addrs {
			c.rules = append(c.rules, wantRule{exprs: snatExprs(v6, a.AsSlice(), i, len(p.Addrs)),
				comment: fmt.Sprintf("local address %s", a)})
		}
		out = append(out, c)
	}
	return out
}

func poolChain(i int) string { return fmt.Sprintf("%s%d", poolPrefix, i) }

// targetExprs matches the packets of t (the first of each connection: a
// NAT chain sees no other) and sends them to chain.
func targetExprs(t Target, chain string) []expr.Any {
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regAddr},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regAddr, Data: []byte{t.Protocol}},
	}
	if t.VIP.IsValid() {
		e = append(e,
			&expr.Ct{Key: expr.CtKeyDST, Register: regAddr, Direction: 0},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regAddr, Data: t.VIP.AsSlice()})
		if t.VPort != 0 {
			e = append(e,
				&expr.Ct{Key: expr.CtKeyPROTODST, Register: regAddr, Direction: 0},
				&expr.Cmp{Op: expr.CmpOpEq, Register: regAddr, Data: binary.BigEndian.AppendUint16(nil, t.VPort)})
		}
	} else {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyMARK, Register: regAddr},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regAddr, Data: binary.NativeEndian.AppendUint32(nil, t.FWMark)})
	}
	daddr, alen := uint32(16), uint32(4)
	if t.Is6() {
		daddr, alen = 24, 16
	}
	e = append(e,
		&expr.Payload{DestRegister: regAddr, Base: expr.PayloadBaseNetworkHeader, Offset: daddr, Len: alen},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regAddr, Data: t.RS.AsSlice()})
	if t.RPort != 0 {
		e = append(e,
			&expr.Payload{DestRegister: regAddr, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regAddr, Data: binary.BigEndian.AppendUint16(nil, t.RPort)})
	}
	return append(e, &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain})
}

// snatExprs translates the source to addr, the i-th of n local
// addresses: a connection goes to the address its client address and
// port hash to, and gets a port no other connection from that address
// to the same real server and port uses.
func snatExprs(v6 bool, addr []byte, i, n int) []expr.Any {
	var e []expr.Any
	if n > 1 {
		saddr, alen, hlen := uint32(12), uint32(4), uint32(8)
		if v6 {
			saddr, alen, hlen = 8, 16, 20
		}
		e = append(e,
			&expr.Payload{DestRegister: regConcat, Base: expr.PayloadBaseNetworkHeader, Offset: saddr, Len: alen},
			&expr.Payload{DestRegister: regConcat + alen/4, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
			// The seed is fixed: without one the kernel draws one per
			// expression, and the rules of a pool would disagree.
			&expr.Hash{SourceRegister: regConcat, DestRegister: regAddr, Length: hlen, Modulus: uint32(n), Seed: hashSeed, Type: expr.HashTypeJenkins},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regAddr, Data: binary.NativeEndian.AppendUint32(nil, uint32(i))})
	}
	fam := uint32(unix.NFPROTO_IPV4)
	if v6 {
		fam = unix.NFPROTO_IPV6
	}
	return append(e,
		&expr.Immediate{Register: regAddr, Data: addr},
		&expr.Immediate{Register: regPortMin, Data: binary.BigEndian.AppendUint16(nil, PortFirst)},
		&expr.Immediate{Register: regPortMax, Data: binary.BigEndian.AppendUint16(nil, PortLast)},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: fam, RegAddrMin: regAddr,
			RegProtoMin: regPortMin, RegProtoMax: regPortMax, FullyRandom: true, Specified: true})
}

// userData is the comment of a rule: what it is for and a digest of its
// expressions, so that a rule changed by hand does not pass for ours.
func userData(f nftables.TableFamily, r wantRule) []byte {
	h := sha256.New()
	for _, e := range r.exprs {
		b, err := expr.Marshal(byte(f), e)
		if err != nil {
			panic(fmt.Sprintf("marshal %T: %v", e, err)) // our own expressions
		}
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil)[:8])
	return userdata.AppendString(nil, userdata.TypeComment, commentHead+r.comment+" #"+sum)
}

// set makes both tables hold exactly what spec asks for. A table that
// already does is left alone (no rule is rewritten and no handle
// changes); any other is replaced in one transaction, so the rules never
// go missing in between. It returns the changes made.
func (n *natTables) set(spec Spec) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil, errors.New("nftables tables are closed")
	}
	var changes []string
	for _, f := range families() {
		want := n.build(spec, f)
		same, err := n.matches(f, want)
		if err != nil {
			return changes, err
		}
		if same {
			continue
		}
		t := &nftables.Table{Name: n.name, Family: f}
		n.conn.AddTable(t)
		n.conn.DelTable(t)
		verb := "remove"
		if len(want) > 0 {
			verb = "set"
			t = n.conn.AddTable(&nftables.Table{Name: n.name, Family: f})
			// Chains first: a rule may jump to any of them.
			chains := make([]*nftables.Chain, len(want))
			for i, wc := range want {
				chains[i] = n.conn.AddChain(wc.chain)
			}
			for i, wc := range want {
				for _, r := range wc.rules {
					n.conn.AddRule(&nftables.Rule{Table: t, Chain: chains[i], Exprs: r.exprs, UserData: userData(f, r)})
				}
			}
		}
		if err := n.conn.Flush(); err != nil {
			return changes, fmt.Errorf("%s nftables table %s %s: %w", verb, familyName(f), n.name, err)
		}
		if len(want) > 0 {
			changes = append(changes, fmt.Sprintf("set nftables table %s %s (%d rules)", familyName(f), n.name, countRules(want)))
		} else {
			changes = append(changes, fmt.Sprintf("remove nftables table %s %s", familyName(f), n.name))
		}
	}
	return changes, nil
}

func countRules(cs []wantChain) int {
	n := 0
	for _, c := range cs {
		n += len(c.rules)
	}
	return n
}

// remove deletes both tables; missing ones are no error.
func (n *natTables) remove() ([]string, error) {
	return n.set(Spec{})
}

// matches reports whether the table of family f holds exactly want (and
// is missing when want is empty).
func (n *natTables) matches(f nftables.TableFamily, want []wantChain) (bool, error) {
	tables, err := n.conn.ListTablesOfFamily(f)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	found := slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == n.name })
	if !found || len(want) == 0 {
		return found == (len(want) > 0), nil
	}
	chains, err := n.conn.ListChainsOfTableFamily(f)
	if err != nil {
		return false, fmt.Errorf("list nftables chains: %w", err)
	}
	var have []*nftables.Chain
	for _, c := range chains {
		if c.Table.Name == n.name {
			have = append(have, c)
		}
	}
	if len(have) != len(want) {
		return false, nil
	}
	for _, wc := range want {
		i := slices.IndexFunc(have, func(c *nftables.Chain) bool { return c.Name == wc.chain.Name })
		if i < 0 || !sameHook(have[i], wc.chain) {
			return false, nil
		}
		rules, err := dumpRules(f, n.name, wc.chain.Name)
		if err != nil {
			return false, err
		}
		if len(rules) != len(wc.rules) {
			return false, nil
		}
		for j, r := range wc.rules {
			if string(rules[j].userData) != string(userData(f, r)) {
				return false, nil
			}
		}
	}
	return true, nil
}

func sameHook(a, b *nftables.Chain) bool {
	if (a.Hooknum == nil) != (b.Hooknum == nil) || a.Type != b.Type {
		return false
	}
	if a.Hooknum == nil {
		return true
	}
	return *a.Hooknum == *b.Hooknum && a.Priority != nil && b.Priority != nil && *a.Priority == *b.Priority &&
		(a.Policy == nil || b.Policy == nil || *a.Policy == *b.Policy)
}
