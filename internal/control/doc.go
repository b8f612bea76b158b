// Package control is the local control socket both daemons serve: a unix
// socket of mode 0600 on which a client sends one command on one line
// ("reload", "status", "drain 10.0.0.11:80") and the daemon answers "ok" followed by a body, or
// "error" followed by the problems one per line, and closes.
//
// The socket carries commands only, never configuration: a reload makes
// the daemon re-read its own file, which an attacker with access to the
// socket cannot choose.
package control
