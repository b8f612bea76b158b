package director

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/lvs-node/lvs-node/internal/control"
)

// The director's control commands, one line each on the control socket:
//
//	reload                        re-read the file (the socket carries no configuration)
//	status                        the status as JSON (see Status)
//	drain ADDRESS[:PORT] [NAME]   the operator's drain of matching real servers
//	ready ADDRESS[:PORT] [NAME]   lift it
const (
	cmdReload = "reload"
	cmdStatus = "status"
	cmdDrain  = "drain"
	cmdReady  = "ready"
)

// controlCommands are the commands the socket accepts ("..." takes
// arguments).
func controlCommands() []string {
	return []string{cmdReload, cmdStatus, cmdDrain + " ...", cmdReady + " ..."}
}

// openMonitor creates the daemon's monitor and gives the engine the
// health verdicts kept from the last run (see Monitor.Seed).
func (d *Daemon) openMonitor(ctx context.Context, cfg *Config) error {
	m, err := NewMonitor(d.Engine, cfg.Director.StateDir, d.Log, d.Inputs)
	if err != nil {
		return err
	}
	d.mon = m
	rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	if err := m.Seed(rctx, cfg, false); err != nil {
		d.Log.Error("health verdicts not restored", "error", err)
	}
	return nil
}

// startMonitor sets up and runs the checks and polls of cfg.
func (d *Daemon) startMonitor(ctx context.Context, cfg *Config) {
	if err := d.mon.Load(cfg); err != nil {
		d.Log.Error("health checks or load feedback not fully set up", "error", err)
	}
	d.mon.Run(ctx)
}

// control answers the commands other than reload. They read or change
// the engine's inputs, never the configuration.
func (d *Daemon) control(ctx context.Context, cmd string) (string, error) {
	word, args, _ := strings.Cut(cmd, " ")
	switch word {
	case cmdStatus:
		b, err := json.Marshal(BuildStatus(d.Engine, d.mon, d.Path))
		if err != nil {
			return "", fmt.Errorf("encode status: %w", err)
		}
		return string(b) + "\n", nil
	case cmdDrain, cmdReady:
		lines, err := d.override(ctx, word == cmdDrain, strings.Fields(args))
		if err != nil {
			return "", err
		}
		return strings.Join(lines, "\n") + "\n", nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

// override drains (or lifts the drain of) the real servers args names:
// ADDRESS or ADDRESS:PORT, optionally followed by a service name.
func (d *Daemon) override(ctx context.Context, drain bool, args []string) ([]string, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, errors.New("want ADDRESS[:PORT] [SERVICE]")
	}
	cfg := d.Engine.Config()
	if cfg == nil {
		return nil, errors.New("no configuration is in force yet")
	}
	refs, err := matchServers(cfg, args[0], strings.Join(args[1:], ""))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range refs {
		rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
		ops, err := d.Engine.SetOverride(rctx, r, drain)
		cancel()
		for _, op := range ops {
			d.Log.Info("change", "op", FormatOp(op), "why", "operator "+map[bool]string{true: cmdDrain, false: cmdReady}[drain])
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", r, err)
		}
		w := effectiveOf(d.Engine, r)
		state := "ready"
		if drain {
			state = "drained"
		}
		out = append(out, fmt.Sprintf("%s %s: %s, weight %d", r.Service, netip.AddrPortFrom(r.Addr, r.Port), state, w))
	}
	return out, nil
}

// matchServers returns the real servers of cfg at addr (ADDRESS or
// ADDRESS:PORT) in service (every service when empty).
func matchServers(cfg *Config, addr, service string) ([]ServerRef, error) {
	var a netip.Addr
	port, anyPort := uint16(0), true
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		a, port, anyPort = ap.Addr().Unmap(), ap.Port(), false
	} else if x, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
		a = x.Unmap()
	} else {
		return nil, fmt.Errorf("want ADDRESS or ADDRESS:PORT, got %q", addr)
	}
	var out []ServerRef
	known := service == ""
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if service != "" && vs.Name != service {
			continue
		}
		known = true
		for j := range vs.RealServers {
			if r := vs.ref(j); r.Addr == a && (anyPort || r.Port == port) {
				out = append(out, r)
			}
		}
	}
	switch {
	case !known:
		return nil, fmt.Errorf("no virtual service %q in the configuration in force", service)
	case len(out) == 0 && service != "":
		return nil, fmt.Errorf("virtual service %s has no real server %s", service, addr)
	case len(out) == 0:
		return nil, fmt.Errorf("no real server %s in the configuration in force", addr)
	}
	return out, nil
}

// effectiveOf returns the weight the engine now gives r.
func effectiveOf(e *Engine, r ServerRef) int32 {
	cfg, in := e.Config(), e.Inputs()
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if vs.Name != r.Service {
			continue
		}
		w := vs.weights(in)
		for j := range vs.RealServers {
			if vs.ref(j) == r {
				if w.servers == nil {
					return int32(*vs.RealServers[j].Weight)
				}
				return w.servers[j].Weight
			}
		}
	}
	return 0
}

// RequestStatus asks the director listening on socket for its status.
func RequestStatus(ctx context.Context, socket string) (*Status, error) {
	body, err := control.Call(ctx, socket, cmdStatus)
	if err != nil {
		return nil, fmt.Errorf("director status: %w", err)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("decode the director's status: %w", err)
	}
	return &st, nil
}

// RequestOverride asks the director listening on socket to drain (or
// lift the drain of) the real servers at addr (ADDRESS or ADDRESS:PORT)
// of service (every service when empty), and returns one line per real
// server changed. The drain is saved in the state directory: it survives
// resyncs, reloads and restarts until "ready" lifts it.
func RequestOverride(ctx context.Context, socket string, drain bool, addr, service string) ([]string, error) {
	cmd := cmdReady
	if drain {
		cmd = cmdDrain
	}
	line := cmd + " " + addr
	if service != "" {
		line += " " + service
	}
	body, err := control.Call(ctx, socket, line)
	var r *control.Refusal
	if errors.As(err, &r) {
		return nil, fmt.Errorf("%s refused: %s", cmd, r.Problems)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return strings.Split(strings.TrimRight(body, "\n"), "\n"), nil
}
