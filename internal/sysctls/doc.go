// Package sysctls changes kernel parameters under /proc/sys and remembers
// what they were, so that every change can be undone exactly.
//
// Keys are written in slash form relative to /proc/sys, for example
// "net/ipv4/conf/eth0.100/arp_ignore": interface names may contain dots,
// which the dotted sysctl(8) notation cannot express. The first time a key
// is changed, its original value is written to a state file (atomically,
// through internal/state) before the kernel value is touched; Restore
// writes every recorded original back, newest change first, and clears the
// record. A key whose value already matches is left alone and not recorded,
// so applying the same settings twice changes nothing.
//
// Values are read and written with github.com/lorenzosaino/go-sysctl. That
// library turns every '.' of a key into '/', so each access uses a client
// rooted at the key's directory and passes only the base name.
package sysctls
