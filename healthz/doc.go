// Package healthz health-checks real servers for the director.
//
// A Spec is the health_check: block of a virtual service, optionally
// overridden per real server (Merge), validated with file:line:column and
// key path through internal/config. New builds the Checker of a spec for
// one target; there is one protocol per file (tcp, http and https, udp,
// icmp, dns, exec), and every check is bounded by its timeout.
//
// A Manager runs the checks the caller wants (Update takes the whole
// desired set, as on a reload): it starts new ones, stops removed ones and
// keeps unchanged ones with their state and history. An identical check of
// the same target shared by several virtual services runs once and its
// result fans out to every owner. Plain tcp checks and http checks of the
// status alone run in the Manager's event loop on non-blocking sockets
// (reactor.go); the others run on worker goroutines. Each check passes through a rise/fall
// state machine (Machine): a new target is unknown, not up, until it
// passes rise checks; a state restored by the caller can seed it as up.
// Transitions reach a Sink in batches, and the Manager is a
// prometheus.Collector of the health metrics.
//
// SorryServer and Quorum are the spec types of the sorry_server: and
// quorum: blocks, for the director's configuration to embed.
//
// How quiesce and remove interact with persistence templates and the
// kernel's expire_quiescent_template and expire_nodest_conn settings is
// documented for operators in the README (Health checks).
package healthz
