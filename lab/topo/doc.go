// Package topo builds throwaway network topologies for tests: hosts are
// network namespaces, networks are Linux bridges inside a private switch
// namespace, and every host link is a veth pair whose host end is named
// eth0, eth1, ... in attach order.
//
// A Lab is torn down by t.Cleanup: processes started on its hosts are
// stopped, then the namespaces are deleted, which removes every link the lab
// made. Nothing is created in the namespace the test runs in. The same code
// runs on the development host (for tests that need no IPVS) and inside the
// lab VM.
//
//	l := topo.New(t)
//	lan := l.Net("lan", "10.0.0.0/24")
//	client := l.Host("client", topo.On(lan, "10.0.0.2"))
//	rs1 := l.Host("rs1", topo.On(lan, "10.0.0.11"))
//	rs1.ServeName(t, 80)
//	name, err := client.Get("10.0.0.11:80", 2*time.Second) // "rs1"
package topo
