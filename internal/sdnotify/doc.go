// Package sdnotify tells the service manager what a daemon is doing, with
// the sd_notify protocol of systemd's Type=notify services: READY=1 once
// the configuration is applied and the kernel is in sync, RELOADING=1 and
// READY=1 around a reload, STOPPING=1 on the way out.
//
// The messages go to the datagram socket named by $NOTIFY_SOCKET (through
// github.com/coreos/go-systemd/v22/daemon); without it, as under SysV init
// or in a terminal, nothing is sent. A failure to send is logged, never
// fatal: the daemon's work does not depend on the service manager.
package sdnotify
