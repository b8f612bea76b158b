package director

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/state"
)

// TimeoutStore reads and sets IPVS's connection timeouts (an
// *ipvs.Client). A zero field of SetTimeouts leaves that timeout as it is.
type TimeoutStore interface {
	Timeouts(ctx context.Context) (ipvs.Timeouts, error)
	SetTimeouts(ctx context.Context, t ipvs.Timeouts) error
}

// timeoutsFile keeps the kernel's timeouts as they were before the
// director first changed them.
const timeoutsFile = "director-timeouts.json"

// savedTimeouts is timeoutsFile's content, in seconds.
type savedTimeouts struct {
	TCP    uint32 `json:"tcp"`
	TCPFin uint32 `json:"tcp_fin"`
	UDP    uint32 `json:"udp"`
}

func (s savedTimeouts) timeouts() ipvs.Timeouts {
	return ipvs.Timeouts{TCP: time.Duration(s.TCP) * time.Second, TCPFin: time.Duration(s.TCPFin) * time.Second, UDP: time.Duration(s.UDP) * time.Second}
}

// setTimeouts makes the kernel's connection timeouts those cfg asks for,
// recording the kernel's own before the first change; a configuration
// without timeouts puts the recorded ones back.
func (e *Engine) setTimeouts(ctx context.Context, cfg *Config) error {
	want := cfg.Director.Timeouts
	if want == nil {
		return e.restoreTimeouts(ctx)
	}
	if e.deps.Timeouts == nil {
		return errors.New("director.timeouts is set but the IPVS timeouts cannot be changed here")
	}
	cur, err := e.deps.Timeouts.Timeouts(ctx)
	if err != nil {
		return err
	}
	var set ipvs.Timeouts
	change := false
	for _, f := range []struct {
		want *config.Duration
		cur  time.Duration
		set  *time.Duration
	}{{want.TCP, cur.TCP, &set.TCP}, {want.TCPFin, cur.TCPFin, &set.TCPFin}, {want.UDP, cur.UDP, &set.UDP}} {
		if f.want != nil && f.want.D() != f.cur {
			*f.set, change = f.want.D(), true
		}
	}
	if !change {
		return nil
	}
	path := filepath.Join(e.stateDir, timeoutsFile)
	var orig savedTimeouts
	found, err := state.Load(path, &orig)
	if err != nil {
		return fmt.Errorf("read the recorded IPVS timeouts: %w", err)
	}
	if !found {
		orig = savedTimeouts{uint32(cur.TCP / time.Second), uint32(cur.TCPFin / time.Second), uint32(cur.UDP / time.Second)}
		if err := state.Save(path, orig); err != nil {
			return fmt.Errorf("record the IPVS timeouts: %w", err)
		}
	}
	if err := e.deps.Timeouts.SetTimeouts(ctx, set); err != nil {
		return err
	}
	e.log.Info("IPVS connection timeouts set", "tcp", want.TCP, "tcp_fin", want.TCPFin, "udp", want.UDP)
	return nil
}

// restoreTimeouts puts back the timeouts recorded before the director
// changed them, if it did, and forgets them.
func (e *Engine) restoreTimeouts(ctx context.Context) error {
	path := filepath.Join(e.stateDir, timeoutsFile)
	var orig savedTimeouts
	found, err := state.Load(path, &orig)
	if err != nil || !found {
		return err
	}
	if e.deps.Timeouts == nil {
		return errors.New("the recorded IPVS timeouts cannot be restored here")
	}
	if err := e.deps.Timeouts.SetTimeouts(ctx, orig.timeouts()); err != nil {
		return fmt.Errorf("restore the IPVS timeouts: %w", err)
	}
	return state.Remove(path)
}

// sameTimeouts reports whether two configurations ask for the same
// timeouts: a quick reconciliation then leaves them alone (a resync still
// repairs them).
func sameTimeouts(a, b *Timeouts) bool {
	if a == nil || b == nil {
		return a == b
	}
	eq := func(x, y *config.Duration) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.TCP, b.TCP) && eq(a.TCPFin, b.TCPFin) && eq(a.UDP, b.UDP)
}
