// Package rsprog holds the real-server TOA eBPF programs (realserver.c)
// and their generated loader: a sock_ops program that reads the TOA
// option into socket storage, cgroup getpeername4/6 programs that hand
// the address to getpeername() and accept(), and a cgroup getsockopt
// program for the NAT64 lookup. Run "make generate" after changing the C.
package rsprog
