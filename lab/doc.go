// Package lab runs code against a real Linux kernel with IPVS and IPIP when
// the machine's own kernel has neither.
//
// It packs an initramfs (busybox-static as /init and shell, the Debian
// kernel's modules with modules.dep so modprobe and kernel autoloading work,
// ipvsadm, iproute2 and keepalived with their libraries, and the binaries the
// caller names), boots it with qemu under software emulation with no network
// device, streams the guest's console back, and returns the guest command's
// exit status. Hosts inside the guest are network namespaces (package topo).
//
// The end-to-end tests in ../e2e use it from their TestMain: on the host the
// test binary copies itself into the VM and runs there with the same flags.
package lab
