// Package modprobe loads kernel modules with modprobe(8), every call
// bounded: a modprobe that hangs (a module whose init waits on a lock, a
// wrapper script that sleeps) ends with an error after its timeout instead
// of blocking the daemon that asked.
package modprobe
