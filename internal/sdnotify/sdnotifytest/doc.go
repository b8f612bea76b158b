// Package sdnotifytest receives sd_notify messages in tests the way systemd
// does: on a datagram socket named by NOTIFY_SOCKET.
package sdnotifytest
