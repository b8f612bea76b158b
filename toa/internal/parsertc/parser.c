//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A tc build of the real-server TOA parser and of the option encoder, so
 * that both run under BPF_PROG_TEST_RUN (which does not run sock_ops
 * programs) with the very code the real server and a balancer use.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../../include/toa_parse.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define TCP_FLAG_SYN 0x02

struct parse_in {
	__u32 formats;
};

struct parse_out {
	__u32 flags;
	__u32 hdrlen;
	struct toa_addr addr;
};

struct encode_io {
	__u32 id;
	__u32 len;
	struct toa_addr addr;
	__u8 opt[20];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct parse_in);
} parse_in_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct parse_out);
} parse_out_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct encode_io);
} encode_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct toa_scratch);
} parse_scratch SEC(".maps");

/* toa_parse_tc parses the TCP header of an Ethernet frame (IPv4 without
 * options beyond the header length, or IPv6 without extension headers)
 * and stores the result in parse_out. */
SEC("tc")
int toa_parse_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 zero = 0, l4;
	struct parse_in *in = bpf_map_lookup_elem(&parse_in_map, &zero);
	struct parse_out *out = bpf_map_lookup_elem(&parse_out_map, &zero);
	struct toa_scratch *sc = bpf_map_lookup_elem(&parse_scratch, &zero);
	struct toa_addr a = {};
	volatile struct toa_slot *s;
	__u8 *p = data;
	__u32 hl = 0, flags = 0;
	int r;

	if (!in || !out || !sc)
		return 0;
	out->flags = 0;
	out->hdrlen = 0;
	if (data + ETH_HLEN + 1 > data_end)
		return 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl = p[ETH_HLEN];

		if (vihl >> 4 != 4 || (vihl & 15) < 5)
			return 0;
		l4 = ETH_HLEN + (vihl & 15) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		l4 = ETH_HLEN + 40;
	} else {
		return 0;
	}
	if (l4 > ETH_HLEN + 60)
		return 0;
	s = &sc->slot[0];
	r = toa_copy_hdr(s, data + l4, data_end);
	if (r >= 0) {
		hl = r;
		flags = toa_parse(s, hl, in->formats,
				  !!(s->buf[13] & TCP_FLAG_SYN), &a);
	}
	out->flags = flags | 0x100; /* ran */
	out->hdrlen = hl;
	out->addr = a;
	return 0;
}

/* toa_encode_tc encodes encode_io.addr in format encode_io.id into
 * encode_io.opt. */
SEC("tc")
int toa_encode_tc(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct encode_io *io = bpf_map_lookup_elem(&encode_map, &zero);
	__u8 opt[20] = {};
	struct toa_addr a;

	if (!io)
		return 0;
	a = io->addr;
	io->len = toa_encode(opt, io->id, &a);
	__builtin_memcpy(io->opt, opt, sizeof(opt));
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
