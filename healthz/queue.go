package healthz

import "time"

// probeQueue orders probes by their next check: a binary heap whose
// entries carry the time as an integer beside the probe, so that sifting
// compares integers in one array and follows no pointer (10,000 probes
// would otherwise miss the cache on every comparison), with no interface
// calls. Times are counted on the monotonic clock from epoch.
type probeQueue struct {
	epoch time.Time
	items []queued
}

type queued struct {
	at int64 // next check, in nanoseconds since epoch
	p  *probe
}

func newProbeQueue() probeQueue { return probeQueue{epoch: time.Now()} }

func (q *probeQueue) len() int { return len(q.items) }

// peek returns the time of the earliest check; the queue is not empty.
func (q *probeQueue) peek() time.Time { return q.epoch.Add(time.Duration(q.items[0].at)) }

// dueBy tells whether the earliest check comes at or before t; the queue
// is not empty.
func (q *probeQueue) dueBy(t time.Time) bool { return q.items[0].at <= int64(t.Sub(q.epoch)) }

// push queues p for p.next.
func (q *probeQueue) push(p *probe) {
	p.index = len(q.items)
	q.items = append(q.items, queued{at: int64(p.next.Sub(q.epoch)), p: p})
	q.up(p.index)
}

// pop takes the earliest probe off the queue; the queue is not empty.
func (q *probeQueue) pop() *probe {
	return q.remove(0)
}

// remove takes the probe at index i off the queue.
func (q *probeQueue) remove(i int) *probe {
	p := q.items[i].p
	last := len(q.items) - 1
	if i != last {
		q.move(i, q.items[last])
	}
	q.items[last] = queued{}
	q.items = q.items[:last]
	if i != last {
		q.down(i)
		q.up(i)
	}
	p.index = -1
	return p
}

func (q *probeQueue) move(i int, e queued) {
	q.items[i] = e
	e.p.index = i
}

func (q *probeQueue) up(i int) {
	e := q.items[i]
	for i > 0 {
		parent := (i - 1) / 2
		if q.items[parent].at <= e.at {
			break
		}
		q.move(i, q.items[parent])
		i = parent
	}
	q.move(i, e)
}

func (q *probeQueue) down(i int) {
	e := q.items[i]
	n := len(q.items)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && q.items[r].at < q.items[c].at {
			c = r
		}
		if e.at <= q.items[c].at {
			break
		}
		q.move(i, q.items[c])
		i = c
	}
	q.move(i, e)
}
