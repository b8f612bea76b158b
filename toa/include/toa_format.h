/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TCP Option Address (TOA) formats, shared by every eBPF program of
 * lvs-node: the real-server parser, its tc test build, the test injector
 * and a balancer's egress writer. The Go package toa/format mirrors these
 * definitions; its tests check both sides agree.
 *
 * All option fields are in network byte order.
 */
#ifndef LVS_TOA_FORMAT_H
#define LVS_TOA_FORMAT_H

#include <linux/types.h>

/* Format identifiers: bit positions in a formats mask. */
enum toa_format_id {
	TOA_F_NONE = 0,
	TOA_F_254_V4 = 1, /* kind 254, len 8: port, IPv4 (LVS, DPVS, ELB, TTM, UCloud) */
	TOA_F_254_V6 = 2, /* kind 254, len 20: port, IPv6 (DPVS) */
	TOA_F_253_V6 = 3, /* kind 253, len 20: port, IPv6 (Alibaba LVS) */
	TOA_F_200_V4 = 4, /* kind 200, len 8: port, IPv4 (Tencent, UCloud) */
	TOA_F_28_V4 = 5,  /* kind 28, len 7: version 1, IPv4, no port (CDN) */
	TOA_F_28_V6 = 6,  /* kind 28, len 19: version 1, IPv6, no port (CDN) */
	TOA_F_MAX = 7,
};

#define TOA_FMASK(id) (1u << (id))
#define TOA_FMASK_ALL                                                          \
	(TOA_FMASK(TOA_F_254_V4) | TOA_FMASK(TOA_F_254_V6) |                   \
	 TOA_FMASK(TOA_F_253_V6) | TOA_FMASK(TOA_F_200_V4) |                   \
	 TOA_FMASK(TOA_F_28_V4) | TOA_FMASK(TOA_F_28_V6))

/* Formats carried in the SYN only: parsing them needs the saved SYN. */
#define TOA_FMASK_SYN (TOA_FMASK(TOA_F_28_V4) | TOA_FMASK(TOA_F_28_V6))

/* The kernel reads kind 254 with this magic as TCP Fast Open. */
#define TOA_FASTOPEN_MAGIC_HI 0xF9
#define TOA_FASTOPEN_MAGIC_LO 0x89

/* The version byte of kind 28. */
#define TOA_CDN_VERSION 1

/* The NAT64 lookup: getsockopt(fd, IPPROTO_IP, TOA_SO_GET_LOOKUP, ...)
 * returns struct toa_nat64_peer. */
#define TOA_SO_GET_LOOKUP 4096
struct toa_nat64_peer {
	__u8 addr[16];
	__u16 port; /* network byte order */
	__u16 pad;
};

/* An address found in (or to be written into) an option. */
struct toa_addr {
	__u8 family; /* 4 or 6; 0 for none */
	__u8 format; /* enum toa_format_id */
	__u8 has_port;
	__u8 pad;
	__u16 port; /* network byte order */
	__u16 pad2;
	__u8 addr[16]; /* IPv4 in the first four bytes */
};

/* toa_format_of returns the format of an option with kind and len, or
 * TOA_F_NONE. */
static __always_inline __u32 toa_format_of(__u8 kind, __u8 len)
{
	switch (kind) {
	case 254:
		if (len == 8)
			return TOA_F_254_V4;
		if (len == 20)
			return TOA_F_254_V6;
		return TOA_F_NONE;
	case 253:
		return len == 20 ? TOA_F_253_V6 : TOA_F_NONE;
	case 200:
		return len == 8 ? TOA_F_200_V4 : TOA_F_NONE;
	case 28:
		if (len == 7)
			return TOA_F_28_V4;
		if (len == 19)
			return TOA_F_28_V6;
		return TOA_F_NONE;
	}
	return TOA_F_NONE;
}

static __always_inline __u8 toa_format_kind(__u32 id)
{
	switch (id) {
	case TOA_F_254_V4:
	case TOA_F_254_V6:
		return 254;
	case TOA_F_253_V6:
		return 253;
	case TOA_F_200_V4:
		return 200;
	case TOA_F_28_V4:
	case TOA_F_28_V6:
		return 28;
	}
	return 0;
}

static __always_inline __u8 toa_format_len(__u32 id)
{
	switch (id) {
	case TOA_F_254_V4:
	case TOA_F_200_V4:
		return 8;
	case TOA_F_254_V6:
	case TOA_F_253_V6:
		return 20;
	case TOA_F_28_V4:
		return 7;
	case TOA_F_28_V6:
		return 19;
	}
	return 0;
}

static __always_inline int toa_format_v6(__u32 id)
{
	return id == TOA_F_254_V6 || id == TOA_F_253_V6 || id == TOA_F_28_V6;
}

static __always_inline int toa_format_cdn(__u32 id)
{
	return id == TOA_F_28_V4 || id == TOA_F_28_V6;
}

/* toa_v4_invalid reports IPv4 addresses no balancer may hand out as a
 * client's: unspecified, loopback, multicast and reserved. */
static __always_inline int toa_v4_invalid(__u8 a0, __u8 a1, __u8 a2, __u8 a3)
{
	if ((a0 | a1 | a2 | a3) == 0)
		return 1;
	return a0 == 127 || a0 >= 224;
}

/*
 * toa_encode writes the option of format id for a into out (at least 20
 * bytes) and returns its length, or 0 when a does not fit the format.
 * A balancer's egress writer and the test injector share it.
 */
static __always_inline __u32 toa_encode(__u8 *out, __u32 id,
					const struct toa_addr *a)
{
	__u32 len = toa_format_len(id);
	__u32 off = 4;

	if (!len || (a->family == 6) != toa_format_v6(id))
		return 0;
	out[0] = toa_format_kind(id);
	out[1] = len;
	if (toa_format_cdn(id)) {
		out[2] = TOA_CDN_VERSION;
		off = 3;
	} else {
		__builtin_memcpy(&out[2], &a->port, 2);
	}
	if (toa_format_v6(id)) {
#pragma unroll
		for (int k = 0; k < 16; k++)
			out[off + k] = a->addr[k];
	} else {
#pragma unroll
		for (int k = 0; k < 4; k++)
			out[off + k] = a->addr[k];
	}
	return len;
}

#endif /* LVS_TOA_FORMAT_H */
