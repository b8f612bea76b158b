package parsertc

//go:generate go tool bpf2go -tags linux -type parse_in -type parse_out -type encode_io parser parser.c -- -I../../include -Wall -Werror
