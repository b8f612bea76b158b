package toa

import "errors"

// Errors callers can test for with errors.Is.
var (
	// ErrNoCgroup: the configured cgroup does not exist or is not a
	// cgroup v2 directory.
	ErrNoCgroup = errors.New("no such cgroup v2 directory")
	// ErrNoBPFFS: the pin directory is not on a BPF file system.
	ErrNoBPFFS = errors.New("not on a BPF file system")
	// ErrKernel: the kernel lacks a hook or helper TOA needs.
	ErrKernel = errors.New("the kernel lacks what eBPF TOA needs")
	// ErrModuleLoaded: a TOA kernel module already rewrites addresses.
	ErrModuleLoaded = errors.New("a TOA kernel module is loaded")
	// ErrNotAttached: nothing is pinned.
	ErrNotAttached = errors.New("eBPF TOA is not attached")
	// ErrBusy: another process holds the pin directory's lock.
	ErrBusy = errors.New("another lvs-node is changing eBPF TOA")
)
