// Package agentserver answers the HAProxy agent-check protocol for a real
// server, so that the lvs-node director and HAProxy can both poll it, and
// serves the same report as JSON over HTTP.
//
// # Agent protocol
//
// On each TCP connection the server writes one reply line (see
// internal/agentcheck) and closes: "up ready 75%" when 75 % of the
// server's capacity is free. The health word is "up" unless a load source
// reports down, fail or stopped; the admin word is always sent (ready,
// drain or maint), so that ready undoes a drain; the weight is the
// combined capacity of the load sources, rounded, or 100% when no source
// gave one (the configured weight: an unknown load is not a reason to
// send less).
//
// # Token
//
// With a token, the server first reads one line (at most 256 bytes, within
// ReadTimeout) and answers only when it is the token, compared in
// constant time; otherwise it closes without a word. This is what
// HAProxy's agent-send sends (agent-send "TOKEN\n") and what the director
// sends (feedback.token_file). Without a token, whatever the poller sends
// is ignored. The HTTP endpoint then requires "Authorization: Bearer
// TOKEN".
//
// # HTTP
//
// GET or HEAD / answers the report as JSON: the capacity, the reply line,
// the admin state, the time of the last reading and each source's value
// and error. Any other method is refused: no state can be changed over
// the network (the admin state changes through the local control socket
// only).
package agentserver
