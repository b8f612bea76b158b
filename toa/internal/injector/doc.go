// Package injector loads the sock_ops program (injector.c) that writes
// given TCP option bytes into the SYN, the handshake ACK or the early
// packets of the client connections in one cgroup: the stand-in for a
// full-NAT balancer in "lvs-node toa verify" and in the tests.
package injector
