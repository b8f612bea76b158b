package rsprog

//go:generate go tool bpf2go -tags linux -type toa_addr -type toa_conf -type toa_trust_key -type toa_slot_entry realserver realserver.c -- -I../../include -Wall -Werror
