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
// # on_failure, persistence and the kernel's expiry settings
//
// quiesce sets a failed real server's weight to 0: IPVS schedules no new
// connection to it and established connections finish. A persistence
// template (the client-to-real-server affinity of a persistent service)
// still names the quiesced server, though, and new connections of that
// client follow the template until it times out, unless the sysctl
// net.ipv4.vs.expire_quiescent_template is 1 (director.sysctls
// expire_quiescent_template: true): then IPVS drops a template whose
// server has weight 0 when the client next connects, and schedules the
// client anew. Persistent services with quiesce should set it.
//
// remove deletes the destination. Templates and connections that name it
// no longer match an available server: new connections of those clients
// are scheduled anew at once. Established connections keep flowing to the
// deleted server (the kernel keeps it until they end), unless
// net.ipv4.vs.expire_nodest_conn is 1 (director.sysctls
// expire_nodest_conn: true), which drops them on their next packet: the
// clients then see resets. remove is for a server that must get nothing
// at all; quiesce never breaks a connection that still works.
package healthz
