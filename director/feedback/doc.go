// Package feedback turns the load that real servers report into IPVS
// weights on the director.
//
// Each virtual service may carry a feedback block (Spec). The director
// polls the agent of each of its real servers (HAProxy agent-check
// protocol, see internal/agentcheck) and a Controller per real server
// turns the replies into a weight. Spec.Mode says what "N%" means.
//
// In ModeCapacity (the default, HAProxy's meaning) each real server is on
// its own:
//
//   - the configured weight times the reported capacity ("75%"), or the
//     agent's absolute "weight:N";
//   - smoothed (EWMA with smoothing, the share of the previous value
//     kept), except that a move of more than twice the dead band that the
//     next reply confirms is taken at once: noise is damped, a real change
//     is followed within two polls;
//   - clamped to [min_weight, max_weight] (min_weight is at least 1:
//     feedback never takes a server out);
//   - written only when it moves by more than dead_band of the configured
//     weight, and by at most max_step of the configured weight per poll.
//
// In ModeBalance "N%" is headroom that the weight itself moves (the cpu
// source): the controllers of a service share a Pool, each measures its
// real server's load per unit of traffic share (loadEstimate, which the
// weight does not change), and Balance, a pure function, gives each real
// server its capacity's part of the service's configured weights once its
// utilisation is further from the pool's at balance than the noise of the
// replies allows and the move exceeds dead_band of its weight. The
// first moves wait until every agent has answered once and are made
// together (Pool.settle). weight:N
// is applied as it is, and clamping and max_step bound every move, as in
// capacity mode.
//
// An agent that cannot be reached, times out or answers what the grammar
// does not know keeps the last weight; once it has given no good reply
// for stale_after, the configured weight applies (and admin state ready):
// losing the agent is not a failure of the server. drain and maint are
// reported as the admin state, apart from the weight, and down, fail and
// stopped are reported as a failed health check only with agent_health.
// How these combine with the director's own health checks is the
// director engine's rule: a failed check wins, then drain/maint give 0,
// then Decision.Weight applies.
//
// A Poller polls the agents of a list of targets on their own schedules,
// at most Options.Concurrency at once and each poll bounded by the spec's
// timeout, so one slow agent never delays the others; a real server used
// by several services with the same port and token is polled once. Only
// changes reach the Sink, in batches; each is logged with its reason.
// The poller's metrics (Collector) give the capacity ratio, the feedback
// weight, staleness and admin state per target, and the polls and errors
// by kind per agent.
//
// With a token_file, the poller sends the token as the first line of each
// connection (what HAProxy's agent-send does) before reading the reply.
package feedback
