package egress

//go:generate go tool bpf2go -tags linux -type laddr_key -type laddr_conf -type conn_key -type conn_state egress egress.c -- -I../../../../toa/include -Wall -Werror
