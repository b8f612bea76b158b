// Package ipvstest provides an in-memory IPVS kernel for the unit tests of
// every package that programs IPVS. It applies operations with the same
// model as the director's view (ipvs.ApplyOps) and fails the way the
// netlink client does: missing modules before anything is sent, partial
// datagrams, errnos the kernel gives, and calls that hang until released.
package ipvstest
