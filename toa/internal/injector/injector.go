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

// Set makes new connections carry opts (one or two options, each
// written by its own bpf_store_hdr_opt call, so each must be well formed
// and the two of different kinds or magics) in the packets where says.
// No options stop the injector.
func (in *Injector) Set(where Where, opts ...[]byte) error {
	var c injectorInjectConf
	switch {
	case len(opts) > 2:
		return fmt.Errorf("%d options: the injector writes at most two", len(opts))
	case len(opts) == 2:
		copy(c.Opt2[:], opts[1])
		c.Len2 = uint32(len(opts[1]))
		fallthrough
	case len(opts) == 1:
		copy(c.Opt[:], opts[0])
		c.Len = uint32(len(opts[0]))
	}
	if c.Len+c.Len2 > MaxOption {
		return fmt.Errorf("%d bytes: %w", c.Len+c.Len2, ErrTooLong)
	}
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
