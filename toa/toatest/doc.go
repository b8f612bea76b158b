// Package toatest is the TOA test suite, shared by the host's tests
// (go test ./toa/...) and the lab VM's (e2e.TestTOASuite): every case
// connects through a toa.Lab (a private network namespace and cgroup
// whose client writes the TOA option) with eBPF TOA attached to the
// lab's cgroup, and asserts the addresses accept() and getpeername()
// return and the counters.
package toatest
