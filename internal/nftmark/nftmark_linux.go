package nftmark

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
)

// Chain names inside the owned table.
const (
	chainPrerouting = "prerouting"
	chainOutput     = "output"
)

// Marker keeps the rules of one nftables table. Its methods are safe for
// concurrent use. The netlink socket belongs to the network namespace of
// the thread that called Open. Every call is bounded (DefaultTimeout): a
// kernel that does not answer gives an error wrapping
// os.ErrDeadlineExceeded, and the socket, whose state is then unknown, is
// replaced before the next call.
type Marker struct {
	mu      sync.Mutex
	conn    *nftables.Conn
	nl      *netlink.Conn // the socket under conn, for its deadline
	ns      netns.NsHandle
	table   string
	timeout time.Duration
}

// DefaultTimeout bounds one call of a Marker (a read back and a
// transaction).
const DefaultTimeout = 10 * time.Second

// Open prepares a Marker for the table of family inet named table. It
// changes nothing in the kernel; Set creates the table.
func Open(table string) (*Marker, error) {
	if err := checkTableName(table); err != nil {
		return nil, err
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("nftables: network namespace: %w", err)
	}
	m := &Marker{ns: ns, table: table, timeout: DefaultTimeout}
	if err := m.dial(); err != nil {
		ns.Close()
		return nil, err
	}
	return m, nil
}

// dial opens the lasting socket in the Marker's namespace; the caller
// holds m.mu (or owns m).
func (m *Marker) dial() error {
	var nl *netlink.Conn
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(int(m.ns)),
		nftables.WithSockOptions(func(c *netlink.Conn) error { nl = c; return nil }))
	if err != nil {
		return fmt.Errorf("open nftables netlink socket: %w", err)
	}
	m.conn, m.nl = c, nl
	return nil
}

// begin bounds the exchanges of one call; the caller holds m.mu.
func (m *Marker) begin() error {
	if m.conn == nil {
		return errors.New("nftables marker is closed")
	}
	if m.nl == nil {
		if err := m.dial(); err != nil {
			return err
		}
	}
	if err := m.nl.SetDeadline(time.Now().Add(m.timeout)); err != nil {
		return fmt.Errorf("nftables socket deadline: %w", err)
	}
	return nil
}

// done ends a call: after a timeout the socket may still receive the
// late answers, so it is closed and the next call opens another. The
// caller holds m.mu.
func (m *Marker) done(err error) error {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		_ = m.conn.CloseLasting()
		m.nl = nil
		return fmt.Errorf("nftables did not answer within %s: %w", m.timeout, err)
	}
	return err
}

// Close releases the netlink socket; the rules stay in the kernel.
func (m *Marker) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return nil
	}
	var err error
	if m.nl != nil {
		err = m.conn.CloseLasting()
	}
	m.conn, m.nl = nil, nil
	m.ns.Close()
	return err
}

// Table is the name of the owned table.
func (m *Marker) Table() string { return m.table }

func (m *Marker) tableRef() *nftables.Table {
	return &nftables.Table{Name: m.table, Family: nftables.TableFamilyINet}
}

func (m *Marker) chains(t *nftables.Table) []*nftables.Chain {
	return []*nftables.Chain{
		{Name: chainPrerouting, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle},
		// A route chain: a changed mark makes the kernel route locally
		// generated packets again.
		{Name: chainOutput, Table: t, Type: nftables.ChainTypeRoute,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle},
	}
}

// Set makes the table hold exactly rules, in one transaction: the table
// is created (or emptied) and filled atomically, and setting the same
// rules twice is harmless. Invalid rules change nothing.
func (m *Marker) Set(rules []Rule) error {
	norm, err := Normalize(rules)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(); err != nil {
		return err
	}
	return m.done(m.set(norm))
}

// set makes the table hold norm; the caller holds m.mu.
func (m *Marker) set(norm []Rule) error {
	// The table already holds exactly these rules: nothing to write. Any
	// difference, or a table that cannot be read back as ours (a rule or
	// chain changed by hand), is replaced.
	cur, found, err := m.rules()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case err == nil && found && equalRules(cur, norm):
		return nil
	}
	t := m.tableRef()
	// Adding before deleting makes the delete succeed whether or not the
	// table exists; the whole batch is one transaction.
	m.conn.AddTable(t)
	m.conn.DelTable(t)
	t = m.conn.AddTable(m.tableRef())
	for _, ch := range m.chains(t) {
		ch = m.conn.AddChain(ch)
		for _, r := range norm {
			for _, exprs := range ruleExprs(r) {
				m.conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
			}
		}
	}
	if err := m.conn.Flush(); err != nil {
		return fmt.Errorf("replace nftables table inet %s: %w", m.table, err)
	}
	return nil
}

// Delete removes the table; deleting a missing table is not an error.
func (m *Marker) Delete() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(); err != nil {
		return err
	}
	m.conn.AddTable(m.tableRef())
	m.conn.DelTable(m.tableRef())
	if err := m.conn.Flush(); err != nil {
		return m.done(fmt.Errorf("delete nftables table inet %s: %w", m.table, err))
	}
	return nil
}

// Rules reads the rules back from the kernel in normalised form (see
// Normalize). A missing table holds no rules. Rules that lvs-node did not
// write, or chains that disagree, are reported as errors: someone else
// changed the table.
func (m *Marker) Rules() ([]Rule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(); err != nil {
		return nil, err
	}
	rules, _, err := m.rules()
	return rules, m.done(err)
}

// rules reads the rules of the table and whether the table exists; the
// caller holds m.mu.
func (m *Marker) rules() ([]Rule, bool, error) {
	tables, err := m.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, false, fmt.Errorf("list nftables tables: %w", err)
	}
	found := false
	for _, t := range tables {
		found = found || t.Name == m.table
	}
	if !found {
		return nil, false, nil
	}
	t := m.tableRef()
	var per [2][]Rule
	for i, ch := range m.chains(t) {
		nrs, err := m.conn.GetRules(t, ch)
		if err != nil {
			return nil, true, fmt.Errorf("read rules of inet %s %s: %w", m.table, ch.Name, err)
		}
		var parsed []Rule
		for _, nr := range nrs {
			r, err := parseExprs(nr.Exprs)
			if err != nil {
				return nil, true, fmt.Errorf("inet %s %s rule handle %d: %w", m.table, ch.Name, nr.Handle, err)
			}
			parsed = append(parsed, r)
		}
		per[i], err = Normalize(parsed)
		if err != nil {
			return nil, true, fmt.Errorf("inet %s %s: %w", m.table, ch.Name, err)
		}
	}
	if !equalRules(per[0], per[1]) {
		return nil, true, fmt.Errorf("inet %s: chains %s and %s hold different rules", m.table, chainPrerouting, chainOutput)
	}
	return per[0], true, nil
}

func equalRules(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
