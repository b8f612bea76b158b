package ipvs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvs-node/lvs-node/internal/modprobe"
)

// Tuning of the bulk paths.
const (
	// dumpConns is the number of sockets that read real servers in
	// parallel: the kernel allows one dump at a time per socket, and a
	// table of 10,000 services needs 10,000 of them.
	dumpConns = 4
	// applyBatch bounds the requests of one sendmsg (less when the
	// receive buffer could not be enlarged): every one of them may come
	// back as an error message, and all must fit in the receive queue.
	applyBatch = 4096
	// ackTrueSize is a generous estimate of the memory one queued
	// error message or acknowledgement takes from the receive buffer.
	ackTrueSize = 2048
	// applyBatchBytes bounds one sendmsg (less when the send buffer could
	// not be enlarged: the kernel refuses a datagram larger than it).
	applyBatchBytes = 1 << 20
	// maxOpLen is more than the longest request one Op encodes to.
	maxOpLen = 512
)

// ErrNoIPVS is returned by Open when the kernel has no IPVS, even after
// trying to load the ip_vs module.
var ErrNoIPVS = errors.New("the kernel has no IPVS (generic netlink family \"IPVS\" not found)")

// Client reads and writes the kernel's IPVS table over generic netlink.
//
// All methods are safe for concurrent use; calls are serialised. Every
// wait for the kernel is bounded by the context's deadline, or by 10 s of
// silence when the context has none, so a lost reply cannot block a
// caller forever. The sockets belong to the network namespace of the
// thread that called Open.
//
// Why not github.com/moby/ipvs for this: it sends one request and waits
// for its answer before the next (about 110,000 round trips to program
// 10,000 services of 10 real servers), keeps the family id in package
// state, is not safe for concurrent use, sends the IPv4 persistence
// netmask in host order where the kernel reads __be32, has no tunnel
// type, port and flags, reads only 32-bit statistics, and its receive
// timeout is fixed. Client pipelines many requests per sendmsg and matches
// the acknowledgements by sequence number, and reads real servers over
// several sockets at once. The e2e tests use moby/ipvs as an independent
// reader to cross-check what Client writes.
type Client struct {
	mu      sync.Mutex
	ns      netns.NsHandle
	family  uint16
	conns   []*conn // conns[0] carries requests; all of them carry dumps
	seq     atomic.Uint32
	modMu   sync.Mutex      // guards modules; never held with mu
	modules map[string]bool // scheduler and persistence-engine modules known loaded

	// ModprobeTimeout bounds one module load (30 s from Open). Set it
	// before the first Apply.
	ModprobeTimeout time.Duration
}

// Open connects to the kernel's IPVS in the caller's network namespace.
// When the IPVS family is missing it runs `modprobe ip_vs` once and asks
// again. Scheduler and persistence-engine modules (ip_vs_wlc, ...) are
// loaded by Apply before it sends the ops that need them.
func Open() (*Client, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("get network namespace: %w", err)
	}
	c := &Client{ns: ns, modules: map[string]bool{}, ModprobeTimeout: modprobe.DefaultTimeout}
	c.seq.Store(uint32(time.Now().UnixNano()))
	first, err := openConn(netns.None())
	if err != nil {
		ns.Close()
		return nil, err
	}
	c.conns = append(c.conns, first)
	ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
	defer cancel()
	c.family, err = c.resolveFamily(ctx)
	if errors.Is(err, unix.ENOENT) {
		merr := modprobe.Load(ctx, "ip_vs", c.ModprobeTimeout)
		c.family, err = c.resolveFamily(ctx)
		if err != nil && merr != nil {
			err = fmt.Errorf("%w (%w)", err, merr)
		}
	}
	if err != nil {
		c.Close()
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %w", ErrNoIPVS, err)
		}
		return nil, fmt.Errorf("resolve IPVS generic netlink family: %w", err)
	}
	for range dumpConns - 1 {
		cn, err := openConn(netns.None())
		if err != nil {
			c.Close()
			return nil, err
		}
		c.conns = append(c.conns, cn)
	}
	return c, nil
}

// Close releases the sockets.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, cn := range c.conns {
		errs = append(errs, cn.close())
	}
	c.conns = nil
	if c.ns.IsOpen() {
		errs = append(errs, c.ns.Close())
		c.ns = netns.None()
	}
	return errors.Join(errs...)
}

func (c *Client) resolveFamily(ctx context.Context) (uint16, error) {
	var e encoder
	seq := c.seq.Add(1)
	start := e.begin(genlIDCtrl, nlmFRequest|nlmFAck, seq, ctrlCmdGetFamily, ctrlVersion)
	e.str(ctrlAttrFamilyName, ipvsGenlName)
	e.end(start)
	var id uint16
	err := c.conns[0].request(ctx, e.b, seq, func(p []byte) error {
		attrs, err := parseGenl(p)
		if err != nil {
			return err
		}
		return forEachAttr(attrs, func(typ uint16, v []byte) error {
			if typ == ctrlAttrFamilyID {
				id, err = getU16(v)
			}
			return err
		})
	})
	if err == nil && id == 0 {
		err = fmt.Errorf("%w: no family id in the answer", errMalformed)
	}
	return id, err
}

// ready replaces sockets left in an unknown state by an earlier failure.
// The caller holds c.mu.
func (c *Client) ready() error {
	if c.conns == nil {
		return errors.New("ipvs client is closed")
	}
	for i, cn := range c.conns {
		if !cn.bad {
			continue
		}
		fresh, err := openConn(c.ns)
		if err != nil {
			return err
		}
		cn.close()
		c.conns[i] = fresh
	}
	return nil
}

// Table reads every service with its real servers, 64-bit statistics and
// tunnel settings. Services come in the kernel's order.
func (c *Client) Table(ctx context.Context) (*Table, error) {
	t := &Table{}
	err := c.call(ctx, nlmFDump, cmdGetService, nil, func(p []byte) error {
		s, err := parseServiceMsg(p)
		if err != nil {
			return err
		}
		t.Services = append(t.Services, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list IPVS services: %w", err)
	}

	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, len(c.conns))
	)
	for w, cn := range c.conns {
		wg.Go(func() {
			var e encoder
			for {
				i := int(next.Add(1) - 1)
				if i >= len(t.Services) || errs[w] != nil {
					return
				}
				svc := &t.Services[i]
				seq := c.seq.Add(1)
				e.b = e.b[:0]
				start := e.begin(c.family, nlmFRequest|nlmFDump, seq, cmdGetDest, ipvsGenlVersion)
				e.service(svc.Service, false)
				e.end(start)
				err := cn.request(ctx, e.b, seq, func(p []byte) error {
					d, err := parseDestMsg(p, svc.Family)
					if err != nil {
						return err
					}
					svc.Dests = append(svc.Dests, d)
					return nil
				})
				if err != nil {
					errs[w] = fmt.Errorf("list real servers of %s: %w", svc.ServiceKey, err)
					next.Store(int64(len(t.Services)))
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// Apply performs ops in order. Requests go to the kernel thousands per
// sendmsg; only the last request of each sendmsg asks for an
// acknowledgement, and the kernel answers the others only when they fail.
// The kernel handles the requests of a datagram one after the other
// before sendmsg returns, so the acknowledgement of the last one closes
// the batch.
//
// Every op is checked before anything is sent; an op that cannot be
// encoded fails the batch with nothing changed. A failure in the kernel
// stops the batch: nothing more is sent and the error is an *OpError for
// the first failed op (the ops after it in the same sendmsg were tried
// as well: see OpError for what was applied). A context that ends while
// answers are awaited gives an *OpError for the first unacknowledged op,
// wrapping the context's error.
func (c *Client) Apply(ctx context.Context, ops []Op) error {
	for i, op := range ops {
		if err := CheckOp(op); err != nil {
			return &OpError{Index: i, Op: op, Err: err}
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if err := c.loadModules(ctx, ops); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ready(); err != nil {
		return err
	}
	cn := c.conns[0]
	base := c.seq.Add(uint32(len(ops))) - uint32(len(ops)) + 1 // ops[i] has seq base+i
	maxOps, maxBytes := cn.batchLimits()
	e := encoder{b: make([]byte, 0, min(maxBytes, len(ops)*maxOpLen)+maxOpLen)}
	for sent := 0; sent < len(ops); {
		if err := ctx.Err(); err != nil {
			return &OpError{Index: sent, Op: ops[sent], Err: err, Sent: sent}
		}
		first := sent
		e.b = e.b[:0]
		last := 0
		for sent < len(ops) && sent-first < maxOps && len(e.b)+maxOpLen <= maxBytes {
			last = len(e.b)
			if err := e.op(c.family, nlmFRequest, base+uint32(sent), ops[sent]); err != nil {
				return &OpError{Index: sent, Op: ops[sent], Err: err, Sent: first}
			}
			sent++
		}
		e.setFlags(last, nlmFRequest|nlmFAck)
		if err := cn.send(e.b); err != nil {
			return &OpError{Index: first, Op: ops[first], Err: err, Sent: first}
		}
		failed, err := cn.collect(ctx, base, first, sent)
		if failed >= 0 {
			return &OpError{Index: failed, Op: ops[failed], Err: err, Sent: sent}
		}
		if err != nil {
			// The batch's fate is unknown from its first op on.
			return &OpError{Index: first, Op: ops[first], Err: err, Sent: sent}
		}
	}
	return nil
}

// collect reads the answers to the requests with sequence numbers
// base+first up to base+sent-1, of which only the last asked for an
// acknowledgement. It returns the index of the first failed request (or
// -1) with its error; or -1 and the error that ended the wait.
func (c *conn) collect(ctx context.Context, base uint32, first, sent int) (int, error) {
	failed := -1
	var failedErr error
	for {
		b, err := c.recv(ctx)
		if err != nil {
			if failed >= 0 {
				return failed, failedErr
			}
			return -1, err
		}
		done := false
		err = parseMessages(b, func(m nlMsg) error {
			if m.Type != nlmsgError {
				return nil
			}
			seq, err := ackSeq(m.Payload)
			if err != nil {
				return err
			}
			i := int(seq - base)
			if seq-base < uint32(first) || seq-base >= uint32(sent) {
				return nil // an answer to an earlier, abandoned call
			}
			errno, err := errnoOf(m.Payload)
			if err != nil {
				return err
			}
			if errno != 0 && failed < 0 {
				failed, failedErr = i, unix.Errno(errno)
			}
			if i == sent-1 {
				done = true
			}
			return nil
		})
		if err != nil {
			c.bad = true
			if failed >= 0 {
				return failed, failedErr
			}
			return -1, err
		}
		if done {
			return failed, failedErr
		}
	}
}

// batchLimits is how many requests, and how many bytes of them, one
// sendmsg may carry so that the receive buffer holds an answer to each
// and the send buffer the datagram.
func (c *conn) batchLimits() (ops, bytes int) {
	ops, bytes = 16, 16*maxOpLen
	if n, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		ops = max(ops, min(applyBatch, n/ackTrueSize))
	}
	if n, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil {
		// The kernel reports twice what it charges against; keep clear
		// of its limit of SO_SNDBUF less 32 bytes.
		bytes = max(bytes, min(applyBatchBytes, n/2))
	}
	return ops, bytes
}

// Info asks the kernel for the IPVS version and connection table size.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	err := c.get(ctx, cmdGetInfo, func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case infoAttrVersion:
			info.Version, err = getU32(v)
		case infoAttrConnTabSize:
			info.ConnTableSize, err = getU32(v)
		}
		return err
	})
	if err != nil {
		return Info{}, fmt.Errorf("read IPVS info: %w", err)
	}
	return info, nil
}

// Timeouts are the connection timeouts of IPVS (ipvsadm --set).
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// Timeouts reads the connection timeouts.
func (c *Client) Timeouts(ctx context.Context) (Timeouts, error) {
	var t Timeouts
	err := c.get(ctx, cmdGetConfig, func(typ uint16, v []byte) error {
		var p *time.Duration
		switch typ {
		case cmdAttrTimeoutTCP:
			p = &t.TCP
		case cmdAttrTimeoutTCPFin:
			p = &t.TCPFin
		case cmdAttrTimeoutUDP:
			p = &t.UDP
		default:
			return nil
		}
		s, err := getU32(v)
		*p = time.Duration(s) * time.Second
		return err
	})
	if err != nil {
		return Timeouts{}, fmt.Errorf("read IPVS timeouts: %w", err)
	}
	return t, nil
}

// SetTimeouts sets the connection timeouts, in whole seconds; a zero
// field leaves that timeout unchanged.
func (c *Client) SetTimeouts(ctx context.Context, t Timeouts) error {
	for _, d := range []time.Duration{t.TCP, t.TCPFin, t.UDP} {
		if d < 0 || d%time.Second != 0 || d/time.Second > 1<<31 {
			return fmt.Errorf("set IPVS timeouts: %s is not a whole number of seconds", d)
		}
	}
	err := c.call(ctx, nlmFAck, cmdSetConfig, func(e *encoder) {
		e.u32(cmdAttrTimeoutTCP, uint32(t.TCP/time.Second))
		e.u32(cmdAttrTimeoutTCPFin, uint32(t.TCPFin/time.Second))
		e.u32(cmdAttrTimeoutUDP, uint32(t.UDP/time.Second))
	}, nil)
	if err != nil {
		return fmt.Errorf("set IPVS timeouts: %w", err)
	}
	return nil
}

// get sends an attribute-less request and hands the top-level attributes
// of the reply to fn.
func (c *Client) get(ctx context.Context, cmd uint8, fn func(typ uint16, v []byte) error) error {
	return c.call(ctx, nlmFAck, cmd, nil, func(p []byte) error {
		attrs, err := parseGenl(p)
		if err != nil {
			return err
		}
		return forEachAttr(attrs, fn)
	})
}

// call sends one request of cmd (flags besides NLM_F_REQUEST: an ack or a
// dump) with the attributes put writes (nil: none) on the first socket,
// and hands each reply message to each (nil: none expected).
func (c *Client) call(ctx context.Context, flags uint16, cmd uint8, put func(*encoder), each func([]byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ready(); err != nil {
		return err
	}
	var e encoder
	seq := c.seq.Add(1)
	start := e.begin(c.family, nlmFRequest|flags, seq, cmd, ipvsGenlVersion)
	if put != nil {
		put(&e)
	}
	e.end(start)
	return c.conns[0].request(ctx, e.b, seq, each)
}

// loadModules loads the scheduler and persistence-engine modules ops
// need before anything is sent. The kernel would load a missing one itself
// (request_module) while it holds the IPVS mutex, and the module's init
// then waits for the lock that a network namespace being torn down holds
// while it waits for the IPVS mutex: a deadlock of the kernel's IPVS
// (seen in the lab, 6.1). Loading from here takes no IPVS lock, and no
// lock of the Client either: a modprobe that hangs delays only this call,
// for at most ModprobeTimeout (or the context's deadline, if sooner).
func (c *Client) loadModules(ctx context.Context, ops []Op) error {
	for _, mod := range NeededModules(ops) {
		c.modMu.Lock()
		known := c.modules[mod.Name]
		c.modMu.Unlock()
		if known {
			continue
		}
		if _, err := os.Stat(filepath.Join("/sys/module", mod.Name)); err == nil {
			c.setLoaded(mod.Name)
			continue
		}
		if err := c.modprobe(ctx, mod.Name); err != nil {
			return mod.Missing(ops, err)
		}
		c.setLoaded(mod.Name)
	}
	return nil
}

func (c *Client) setLoaded(name string) {
	c.modMu.Lock()
	defer c.modMu.Unlock()
	c.modules[name] = true
}

// modprobe loads a module, giving up after c.ModprobeTimeout.
func (c *Client) modprobe(ctx context.Context, name string) error {
	return modprobe.Load(ctx, name, c.ModprobeTimeout)
}
