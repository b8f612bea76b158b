// Package healthz will health-check real servers (TCP, HTTP, TLS, DNS,
// UDP, external commands), once per real server however many virtual
// services use it, with rise/fall damping, and hand results to the director
// in batches. Nothing is built yet: the director's configuration leaves
// room for it.
package healthz
