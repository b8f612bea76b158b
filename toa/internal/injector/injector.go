package injector

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Where says which packets of a connection carry the option.
type Where uint32

// Packets.
const (
	SYN   Where = 1 // the SYN
	ACK   Where = 2 // the handshake-completing ACK
	Data  Where = 4 // the first packet with data
	Early Where = 8 // every packet after the SYN up to the first data
)

// MaxOption is the most option bytes one packet can carry here.
const MaxOption = 40

// Injector is the loaded program, attached to one cgroup.
type Injector struct {
	objs injectorObjects
	lnk  link.Link
}

// Attach loads the injector and attaches it to the cgroup v2 directory.
// Until Set is called it writes nothing.
func Attach(cgroup string) (*Injector, error) {
	var in Injector
	if err := loadInjectorObjects(&in.objs, nil); err != nil {
		return nil, fmt.Errorf("load the TOA injector: %w", err)
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroup, Attach: ebpf.AttachCGroupSockOps, Program: in.objs.ToaInject})
	if err != nil {
		in.objs.Close()
		return nil, fmt.Errorf("attach the TOA injector to %s: %w", cgroup, err)
	}
	in.lnk = l
	return &in, nil
}

// ErrTooLong is returned for option bytes that do not fit a header.
var ErrTooLong = errors.New("option bytes do not fit a TCP header")

// Set makes new connections carry opt (one option, or several that the
// first one's length byte covers: see Raw) in the packets where says.
// An empty opt stops the injector.
func (in *Injector) Set(opt []byte, where Where) error {
	if len(opt) > MaxOption {
		return fmt.Errorf("%d bytes: %w", len(opt), ErrTooLong)
	}
	var c injectorInjectConf
	copy(c.Opt[:], opt)
	c.Len = uint32(len(opt))
	c.Where = uint32(where)
	return in.objs.InjectCfg.Put(uint32(0), c)
}

// Stats returns how many options were written, how many writes failed
// and the error of the last failure (a negative errno).
func (in *Injector) Stats() (written, failed, lastErr int64, err error) {
	var v [3]int64
	for i := range v {
		if err := in.objs.InjectStats.Lookup(uint32(i), &v[i]); err != nil {
			return 0, 0, 0, err
		}
	}
	return v[0], v[1], v[2], nil
}

// Close detaches and unloads the injector.
func (in *Injector) Close() error {
	return errors.Join(in.lnk.Close(), in.objs.Close())
}

// Raw wraps arbitrary option bytes (malformed ones too) so that the
// kernel's bpf_store_hdr_opt, which checks only the first option, writes
// them all: a NOP whose next byte, the length the kernel copies, the
// receiver reads as a harmless 2-byte option of that kind, then b.
// Lengths that would make that kind one the kernel acts on are padded
// with NOPs after b.
func Raw(b []byte) []byte {
	n := len(b) + 3
	for !harmlessKind(n) {
		n++
	}
	out := append([]byte{1, byte(n), 2}, b...)
	for len(out) < n {
		out = append(out, 1)
	}
	return out
}

// harmlessKind reports whether the kernel ignores a 2-byte option of kind
// k after the handshake.
func harmlessKind(k int) bool {
	switch k {
	case 2, 3, 4, 5, 8, 19, 28, 29, 30, 34:
		return false
	}
	return k >= 4
}
