package rsagent

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// statusWait is how long a status request waits for the daemon's loop
// before it is answered from the last status: the loop may be in a slow
// kernel call (a module load, a netlink request that times out).
const statusWait = 500 * time.Millisecond

// statusBoard lets status answer while the daemon's loop is busy: the
// loop notes when a pass begins and ends and publishes each status it
// computes; a request the loop does not take in time gets the last one,
// marked busy.
type statusBoard struct {
	mu    sync.Mutex
	last  *Status
	at    time.Time // when last was computed
	since time.Time // start of the running pass; zero when idle
	what  string
}

func (b *statusBoard) begin(what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.since, b.what = time.Now(), what
}

func (b *statusBoard) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.since, b.what = time.Time{}, ""
}

func (b *statusBoard) publish(st *Status) {
	c := *st
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.at = &c, time.Now()
}

// busyReply answers a status request the loop did not take: the last
// status with Busy saying what the loop is doing and for how long.
func (b *statusBoard) busyReply() ctlReply {
	b.mu.Lock()
	defer b.mu.Unlock()
	busy := "the daemon is busy"
	if !b.since.IsZero() {
		busy = fmt.Sprintf("the daemon is %s since %s (%s)", b.what, b.since.Format(time.RFC3339), time.Since(b.since).Round(time.Millisecond))
	}
	if b.last == nil {
		return ctlReply{err: fmt.Errorf("%s; no status yet", busy)}
	}
	st := *b.last
	st.Busy = busy + "; this status is from " + b.at.Format(time.RFC3339)
	body, err := json.Marshal(&st)
	if err != nil {
		return ctlReply{err: fmt.Errorf("encode status: %w", err)}
	}
	return ctlReply{body: string(body) + "\n"}
}
