// Package e2e holds the end-to-end tests of lvs-node. They are built with
// the e2e tag and run inside the lab VM (package lab), which has a Debian
// kernel with IPVS and IPIP:
//
//	go test -tags e2e ./e2e                 # the whole suite, in one VM boot
//	go test -tags e2e -run TestSmoke -v ./e2e
//
// On the host, TestMain packs the test binary and lvs-node into the VM and
// runs the same tests there with the same flags; inside the VM
// (LVS_LAB_GUEST=1) the tests run directly. Each test builds its own hosts
// with package topo and tears them down.
package e2e
