package injector

//go:generate go tool bpf2go -tags linux -type inject_conf injector injector.c -- -Wall -Werror
