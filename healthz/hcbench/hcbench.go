package hcbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lvs-node/lvs-node/healthz"
	"github.com/lvs-node/lvs-node/internal/config"
)

// Settings of the benchmark's checks, the same for every contender.
const (
	Interval = time.Second
	Timeout  = 500 * time.Millisecond
	Fall     = 3
	Rise     = 2
	// PerPort is the number of target addresses (127.1.0.1 ...) one
	// listener port serves: stopping a listener takes PerPort targets down.
	PerPort = 100
	// Path is the path of the HTTP checks.
	Path = "/health"
	// VIP is the virtual address of the services in the checker's output.
	VIP = "10.250.0.1"
)

// Bound is the detection goal: fall x interval + timeout + 100 ms.
func Bound() time.Duration { return Fall*Interval + Timeout + 100*time.Millisecond }

// Targets are the listeners of one benchmark: one per port, each serving
// PerPort target addresses, counting the connections they accept.
type Targets struct {
	Type  string // tcp or http
	Ports []uint16

	listen func(addr string) (net.Listener, error)
	mu     sync.Mutex
	ls     map[uint16]net.Listener
}

// NewTargets opens enough listeners from port base on for rate checks a
// second at Interval (at least two ports). listen opens a listener (in a
// network namespace, say); nil means net.Listen.
func NewTargets(typ string, base uint16, rate int, listen func(addr string) (net.Listener, error)) (*Targets, error) {
	if listen == nil {
		listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	t := &Targets{Type: typ, listen: listen, ls: map[uint16]net.Listener{}}
	n := max(2, rate*int(Interval/time.Second)/PerPort)
	for i := range n {
		t.Ports = append(t.Ports, base+uint16(i))
	}
	for _, p := range t.Ports {
		if err := t.Open(p); err != nil {
			t.CloseAll()
			return nil, err
		}
	}
	return t, nil
}

// PortAddrs returns the targets served by port.
func PortAddrs(port uint16) []string {
	out := make([]string, 0, PerPort)
	for i := 1; i <= PerPort; i++ {
		out = append(out, fmt.Sprintf("127.1.%d.%d:%d", i/256, i%256, port))
	}
	return out
}

// Addrs returns every target.
func (t *Targets) Addrs() []string {
	var out []string
	for _, p := range t.Ports {
		out = append(out, PortAddrs(p)...)
	}
	return out
}

// PassiveOpens returns the TCP connections the kernel completed for
// listeners in the network namespace of pid (Tcp PassiveOpens of
// /proc/PID/net/snmp): one per check, whether or not the listener
// accepted it before the checker reset it.
func PassiveOpens(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/snmp", pid))
	if err != nil {
		return 0, err
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "PassiveOpens" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, errors.New("no Tcp PassiveOpens in /proc/net/snmp")
}

// Open starts the listener of port.
func (t *Targets) Open(port uint16) error {
	l, err := t.listen(fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.ls[port] = l
	t.mu.Unlock()
	if t.Type == healthz.TypeHTTP {
		srv := &http.Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
		go func() { _ = srv.Serve(l) }()
		return nil
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// Close stops the listener of port: its targets refuse connections.
func (t *Targets) Close(port uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.ls[port]; l != nil {
		l.Close()
		delete(t.ls, port)
	}
}

// CloseAll stops every listener.
func (t *Targets) CloseAll() {
	for _, p := range t.Ports {
		t.Close(p)
	}
}

// Result is what one contender did.
type Result struct {
	Rate   float64 // checks a second, counted by the listeners
	CPU    float64 // CPU seconds a second of the contender's processes
	SysCPU float64 // CPU seconds a second of the whole machine (listeners, softirqs and timers included)
	RSSMB  float64 // their resident memory at the end of the window
	Detect []time.Duration
}

// CPUPer1k is the CPU (cores) per 1,000 checks a second.
func (r Result) CPUPer1k() float64 { return r.CPU / (r.Rate / 1000) }

// SysCPUPer1k is the machine's CPU (cores) per 1,000 checks a second.
func (r Result) SysCPUPer1k() float64 { return r.SysCPU / (r.Rate / 1000) }

// machineCPU returns the busy time of all CPUs in seconds (/proc/stat:
// everything but idle and iowait).
func machineCPU() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / 100, nil // USER_HZ
}

// P returns the q quantile of the detection latencies (nearest rank).
func (r Result) P(q float64) time.Duration {
	if len(r.Detect) == 0 {
		return 0
	}
	d := slices.Sorted(slices.Values(r.Detect))
	i := int(q*float64(len(d))+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

// ProcStat returns the CPU time (user and system) of pid in seconds and
// its resident memory in MB.
func ProcStat(pid int) (cpu, rssMB float64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			rssMB = kb / 1000
		}
	}
	return (ut + st) / 100, rssMB, nil // USER_HZ is 100 on Linux
}

// Steady waits warmup, then measures the processes pids returns over
// window: checks a second (connections completed in the namespace of the
// first), CPU and resident memory.
func (t *Targets) Steady(pids func() []int, warmup, window time.Duration) (Result, error) {
	time.Sleep(warmup)
	sum := func() (cpu, rss float64, err error) {
		for _, pid := range pids() {
			c, r, err := ProcStat(pid)
			if err != nil {
				return 0, 0, err
			}
			cpu += c
			rss += r
		}
		return cpu, rss, nil
	}
	cpu0, _, err := sum()
	if err != nil {
		return Result{}, err
	}
	n0, err := PassiveOpens(pids()[0])
	if err != nil {
		return Result{}, err
	}
	sys0, err := machineCPU()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	time.Sleep(window)
	cpu1, rss, err := sum()
	if err != nil {
		return Result{}, err
	}
	n1, err := PassiveOpens(pids()[0])
	if err != nil {
		return Result{}, err
	}
	sys1, err := machineCPU()
	if err != nil {
		return Result{}, err
	}
	took := time.Since(start).Seconds()
	return Result{Rate: float64(n1-n0) / took, CPU: (cpu1 - cpu0) / took, SysCPU: (sys1 - sys0) / took, RSSMB: rss}, nil
}

// Detect stops the listeners of ports and returns, for each of their
// targets, the time until downAt reports it down (polled every 5 ms, for
// at most limit); then it starts the listeners again. downAt returns the
// targets of killed it sees down now, with when it first saw each down. A
// target already down before its listener stopped (a check that timed out
// under load) is left out, and counted in the error when there are more
// than a few.
func (t *Targets) Detect(ports []uint16, limit time.Duration, downAt func(killed map[string]bool) map[string]time.Time) ([]time.Duration, error) {
	killed := map[string]bool{}
	for _, p := range ports {
		for _, a := range PortAddrs(p) {
			killed[a] = true
		}
	}
	total := len(killed)
	for a := range downAt(killed) {
		delete(killed, a)
	}
	if len(killed) < total*95/100 {
		return nil, fmt.Errorf("%d of %d targets were down before their listeners stopped: the checker is overloaded", total-len(killed), total)
	}
	start := time.Now()
	for _, p := range ports {
		t.Close(p)
	}
	var seen map[string]time.Time
	for time.Since(start) < limit {
		if seen = downAt(killed); len(seen) == len(killed) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, p := range ports {
		if err := t.Open(p); err != nil {
			return nil, err
		}
	}
	if len(seen) != len(killed) {
		return nil, fmt.Errorf("only %d of %d stopped targets were reported down within %s", len(seen), len(killed), limit)
	}
	out := make([]time.Duration, 0, len(seen))
	for _, at := range seen {
		out = append(out, at.Sub(start))
	}
	slices.Sort(out)
	return out, nil
}

// Config is what the checker process checks.
type Config struct {
	Type    string   `json:"type"`
	Targets []string `json:"targets"`
}

// WriteConfig writes the checker's configuration for t to path.
func (t *Targets) WriteConfig(path string) error {
	b, err := json.Marshal(Config{Type: t.Type, Targets: t.Addrs()})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Spec is the check every contender runs.
func Spec(typ string) healthz.Spec {
	return healthz.Spec{Type: typ, Interval: config.Duration(Interval), Timeout: config.Duration(Timeout),
		Rise: Rise, Fall: Fall, Path: Path, ExpectStatus: []int{200}}
}

// Ready is the line the checker process prints once it runs.
const Ready = "READY"

// Checker is the main function of the checker process: it runs a
// healthz.Manager over the targets of the configuration file at path
// until SIGTERM or SIGINT, and prints each delivered transition to out
// as "T address:port state unix-nanoseconds". Every target starts up, as
// keepalived's real servers do.
func Checker(path string, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	spec := Spec(cfg.Type)
	wants := make([]healthz.Want, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		ap, err := netip.ParseAddrPort(t)
		if err != nil {
			return err
		}
		o := healthz.Owner{Service: "s" + strconv.Itoa(int(ap.Port())), VIP: netip.MustParseAddr(VIP), Port: ap.Port(), Protocol: "tcp", Real: ap}
		wants = append(wants, healthz.Want{Owner: o, Spec: spec, Restore: healthz.StateUp})
	}
	w := bufio.NewWriter(out)
	m := healthz.NewManager(healthz.Options{Sink: &printSink{w: w}})
	if err := m.Update(wants); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintln(out, Ready)
	return m.Run(ctx)
}

type printSink struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (s *printSink) HealthChanged(_ context.Context, batch []healthz.Transition) {
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range batch {
		fmt.Fprintf(s.w, "T %s %s %d\n", t.Owner.Real, t.To, now)
	}
	_ = s.w.Flush()
}

// DownTimes reads the checker's output: the targets of killed that are
// down at its end, each with the time it was reported down.
func DownTimes(output string, killed map[string]bool) map[string]time.Time {
	down := map[string]time.Time{}
	for _, line := range strings.Split(output, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "T" || !killed[f[1]] {
			continue
		}
		if f[2] != "down" {
			delete(down, f[1])
			continue
		}
		if ns, err := strconv.ParseInt(f[3], 10, 64); err == nil {
			if _, ok := down[f[1]]; !ok {
				down[f[1]] = time.Unix(0, ns)
			}
		}
	}
	return down
}

// Row is one contender's line in a table.
type Row struct {
	Name string
	R    Result
}

// Table prints the results side by side.
func Table(w io.Writer, title string, rows ...Row) {
	fmt.Fprintf(w, "\n%s\n", title)
	fmt.Fprintf(w, "  %-22s %10s %12s %14s %16s %8s %11s %11s %11s\n", "contender", "checks/s", "CPU (cores)", "CPU per 1k/s", "machine per 1k/s", "RSS MB", "detect p50", "detect p99", "detect max")
	for _, r := range rows {
		maxd := time.Duration(0)
		if len(r.R.Detect) > 0 {
			maxd = slices.Max(r.R.Detect)
		}
		fmt.Fprintf(w, "  %-22s %10.0f %12.3f %14.3f %16.3f %8.1f %11s %11s %11s\n", r.Name, r.R.Rate, r.R.CPU, r.R.CPUPer1k(), r.R.SysCPUPer1k(), r.R.RSSMB,
			r.R.P(0.5).Round(time.Millisecond), r.R.P(0.99).Round(time.Millisecond), maxd.Round(time.Millisecond))
	}
}

// ErrSlow reports a detection above the bound.
var ErrSlow = errors.New("detection slower than fall x interval + timeout + 100ms")

// CheckBound returns ErrSlow when r's p99 detection is above Bound.
func CheckBound(r Result) error {
	if p := r.P(0.99); p > Bound() {
		return fmt.Errorf("%w: p99 %s, bound %s", ErrSlow, p, Bound())
	}
	return nil
}
