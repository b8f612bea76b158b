package rsprog

//go:generate go tool bpf2go -tags linux -type toa_addr -type toa_conf -type toa_trust_key realserver realserver.c -- -I../../include -Wall -Werror
