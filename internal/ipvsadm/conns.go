package ipvsadm

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ConnFile is where the kernel lists the IPVS connections; "ipvsadm -Lc"
// reads it rather than asking over netlink.
const ConnFile = "/proc/net/ip_vs_conn"

// ConnOptions tune WriteConns.
type ConnOptions struct {
	// PersistentConn adds the persistence-engine columns
	// (ipvsadm -Lnc --persistent-conn).
	PersistentConn bool
}

// WriteConns prints the connection table in (the kernel's
// /proc/net/ip_vs_conn) as "ipvsadm -Lnc" does: the file's first line is
// its title and is skipped, every other line becomes one entry with the
// addresses in ipvsadm's numeric form and the expiry as mm:ss.
//
// The kernel writes addresses as hex words (IPv4) or full IPv6 groups,
// ports in hex, the state, the seconds left and, for a connection of a
// persistence engine, the engine's name and data. ipvsadm reads each line
// with sscanf; a line that does not parse ends ipvsadm with status 1 and
// ends WriteConns with an error. ipvsadm reads lines into a 256-byte
// buffer, which splits the rare line longer than that (a SIP Call-ID of
// over about 100 characters); WriteConns reads whole lines.
func WriteConns(w io.Writer, in io.Reader, opts ConnOptions) error {
	bw := bufio.NewWriter(w)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 1<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read connections: %w", err)
		}
		return fmt.Errorf("unexpected input from %s", ConnFile)
	}
	fmt.Fprintln(bw, "IPVS connection entries")
	if opts.PersistentConn {
		fmt.Fprintf(bw, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n", "state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(bw, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for sc.Scan() {
		c, err := parseConn(sc.Text())
		if err != nil {
			return err
		}
		c.write(bw, opts)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read connections: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write connections: %w", err)
	}
	return nil
}

// conn is one line of the connection table, as ipvsadm's print_conn
// reads it: n counts the fields read (11 with persistence-engine data).
type conn struct {
	proto                 string
	client, virtual, dest string // addresses as the kernel wrote them
	cport, vport, dport   uint16
	state                 string
	expires               int64
	peName, peData        string
	n                     int
}

// parseConn reads a line the way sscanf("%s %s %hX %s %hX %s %hX %s %d %s
// %s") does: fields in order until one does not convert.
func parseConn(line string) (conn, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return conn{}, fmt.Errorf("unexpected empty line in %s", ConnFile)
	}
	var c conn
	hex := func(s string, p *uint16) bool {
		x, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), 16, 64)
		*p = uint16(x)
		return err == nil
	}
	steps := []func(string) bool{
		func(s string) bool { c.proto = s; return true },
		func(s string) bool { c.client = s; return true },
		func(s string) bool { return hex(s, &c.cport) },
		func(s string) bool { c.virtual = s; return true },
		func(s string) bool { return hex(s, &c.vport) },
		func(s string) bool { c.dest = s; return true },
		func(s string) bool { return hex(s, &c.dport) },
		func(s string) bool { c.state = s; return true },
		func(s string) bool {
			x, err := strconv.ParseInt(s, 10, 64)
			c.expires = x
			return err == nil
		},
		func(s string) bool { c.peName = s; return true },
		func(s string) bool { c.peData = s; return true },
	}
	for i, step := range steps {
		if i >= len(f) || !step(f[i]) {
			break
		}
		c.n++
	}
	if c.n < 9 {
		return c, fmt.Errorf("cannot read the connection %q in %s", line, ConnFile)
	}
	return c, nil
}

// connAddr turns an address of the connection table into ipvsadm's form:
// IPv6 groups as inet_ntop writes them, an IPv4 hex word dotted.
func connAddr(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a
	}
	x, _ := strconv.ParseUint(s, 16, 64) // strtoul: a bad word reads as 0
	u := uint32(x)
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

func (c conn) write(w io.Writer, opts ConnOptions) {
	// Each address is read in its own family: the real server's may
	// differ from the client's behind a tunnel.
	ca, va, da := connAddr(c.client), connAddr(c.virtual), connAddr(c.dest)
	cname, vname, dname := addrPort(ca, c.cport), addrPort(va, c.vport), addrPort(da, c.dport)
	expire := fmt.Sprintf("%02d:%02d", int32(c.expires)/60, int32(c.expires)%60)
	if opts.PersistentConn && c.n == 11 {
		fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n", c.proto, expire, c.state, cname, vname, dname, c.peName, c.peData)
		return
	}
	fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %-18s %s\n", c.proto, expire, c.state, cname, vname, dname)
}
