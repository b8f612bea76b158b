// Package rsprog holds the real-server TOA eBPF programs (realserver.c)
// and their generated loader: a sock_ops program that reads the TOA
// option into a slot of a preallocated array (socket storage when the
// slot is held), cgroup getpeername4/6 programs that hand the address to
// getpeername() and accept(), a cgroup sock_release program that gives
// the slot back, and a cgroup getsockopt program for the NAT64 lookup.
// Run "make generate" after changing the C.
package rsprog
