/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TOA option parser, shared by the real-server sock_ops program and
 * its tc test build (BPF_PROG_TEST_RUN does not run sock_ops programs).
 *
 * bpf_load_hdr_opt cannot search kinds 253/254 without a magic, so the
 * options are walked by hand. The TCP header is first copied into a
 * per-CPU scratch buffer (from the packet, or by bpf_getsockopt for the
 * saved SYN) and parsed there with masked indexes, which every kernel
 * since 5.10 verifies. Only the options are copied from a packet.
 *
 * Rules (mirrored by the Go reference parser in toa/format):
 *  - options are walked from byte 20 to the header length; EOL stops, NOP
 *    is skipped;
 *  - a missing length byte, a length below 2 or an option running past
 *    the header is malformed and stops the walk;
 *  - the first option of an enabled format decides: a valid one is the
 *    address, an invalid one (kind 28 version other than 1, or an
 *    unspecified, loopback, multicast or reserved address) is malformed
 *    and no address is taken;
 *  - every later option of an enabled format is a repeat and is ignored;
 *  - in a SYN, kind 254 with the magic 0xF989 is TCP Fast Open, not TOA.
 */
#ifndef LVS_TOA_PARSE_H
#define LVS_TOA_PARSE_H

#include "toa_format.h"

#define TOA_HDR_MIN 20
#define TOA_HDR_MAX 60
#define TOA_BUF 64 /* a power of two above TOA_HDR_MAX, for index masks */
#define TOA_NEST 3 /* process, softirq and one more level on one CPU */

/* Parse result flags. */
#define TOA_R_FOUND 1     /* an address was taken */
#define TOA_R_MALFORMED 2 /* the option list is broken */
#define TOA_R_INVALID 4   /* the deciding TOA option was invalid */
#define TOA_R_REPEATED 8  /* a further TOA option was ignored */
#define TOA_R_FASTOPEN 16 /* a Fast Open option of kind 254 was skipped */

/* One parse in progress. The walk keeps its state here, in map memory,
 * so that the verifier sees the same registers at the top of every
 * iteration and prunes the paths through the loop body. */
struct toa_slot {
	__u8 buf[TOA_BUF];
	__u32 i;     /* offset of the next option */
	__u32 flags; /* TOA_R_* */
	__u32 pos;   /* offset of the deciding TOA option, 0 for none */
	__u32 id;    /* its format */
};

/* Per-CPU scratch. A program interrupted by a softirq on the same CPU
 * keeps its slot: the nesting level picks the slot. */
struct toa_scratch {
	__u32 nest;
	__u32 pad;
	struct toa_slot slot[TOA_NEST];
};

/*
 * toa_copy_hdr copies what the parser reads of the TCP header between
 * data and data_end into s->buf: bytes 12 and 13 (data offset and flags)
 * and the options, never the fixed part the parser skips. It returns the
 * header length, 0 when the header runs past data_end (toa_parse calls
 * that malformed), or -1 when fewer than TOA_HDR_MIN bytes are there
 * (nothing to parse).
 *
 * The options are copied two bytes at a time in a loop the compiler keeps
 * rolled: two-byte loads at even offsets from the TCP header pass the
 * verifier on every architecture (strict alignment assumes the packet
 * starts 2 bytes past an aligned address), and a short loop keeps the
 * per-connection code small.
 */
static __always_inline int toa_copy_hdr(volatile struct toa_slot *s,
					void *data, void *data_end)
{
	__u8 *th = data;
	__u32 hl;

	if ((void *)(th + TOA_HDR_MIN) > data_end)
		return -1;
	*(volatile __u16 *)&s->buf[12] = *(__u16 *)(th + 12);
	hl = (th[12] >> 4) * 4;
	if ((void *)(th + hl) > data_end)
		return 0;
#pragma clang loop unroll(disable)
	for (__u32 k = TOA_HDR_MIN; k < TOA_HDR_MAX; k += 2) {
		__u8 *p = th + k;

		if (k >= hl || (void *)(p + 2) > data_end)
			break;
		*(volatile __u16 *)&s->buf[k] = *(__u16 *)p;
	}
	/* The length again, from the copy: whatever the loop taught the
	 * verifier about hl stays behind, so that every way out of the loop
	 * reaches the parser in the same state. */
	return (s->buf[12] >> 4) * 4;
}

static __always_inline int toa_read(const __u8 *b, __u32 i, __u32 id,
				    struct toa_addr *out)
{
	__u32 off = 4;

	out->format = id;
	out->has_port = 1;
	if (toa_format_cdn(id)) {
		if (b[(i + 2) & (TOA_BUF - 1)] != TOA_CDN_VERSION)
			return 0;
		off = 3;
		out->has_port = 0;
		out->port = 0;
	} else {
		/* bytewise: the port stays in network byte order */
		((__u8 *)&out->port)[0] = b[(i + 2) & (TOA_BUF - 1)];
		((__u8 *)&out->port)[1] = b[(i + 3) & (TOA_BUF - 1)];
	}
	if (toa_format_v6(id)) {
		__u8 any = 0;

		out->family = 6;
#pragma unroll
		for (int k = 0; k < 16; k++) {
			out->addr[k] = b[(i + off + k) & (TOA_BUF - 1)];
			if (k < 15)
				any |= out->addr[k];
		}
		/* ::, ::1 and ff00::/8 */
		if (any == 0 && out->addr[15] <= 1)
			return 0;
		if (out->addr[0] == 0xff)
			return 0;
		/* ::ffff:a.b.c.d follows the IPv4 rules */
		if ((out->addr[0] | out->addr[1] | out->addr[2] | out->addr[3] |
		     out->addr[4] | out->addr[5] | out->addr[6] | out->addr[7] |
		     out->addr[8] | out->addr[9]) == 0 &&
		    out->addr[10] == 0xff && out->addr[11] == 0xff &&
		    toa_v4_invalid(out->addr[12], out->addr[13], out->addr[14],
				   out->addr[15]))
			return 0;
		return 1;
	}
	out->family = 4;
#pragma unroll
	for (int k = 0; k < 4; k++)
		out->addr[k] = b[(i + off + k) & (TOA_BUF - 1)];
	return !toa_v4_invalid(out->addr[0], out->addr[1], out->addr[2],
			       out->addr[3]);
}

/*
 * toa_parse walks the options of the TCP header in s->buf (hdrlen bytes)
 * for the formats in mask formats and returns TOA_R_* flags; with
 * TOA_R_FOUND, out holds the address. syn says the header is a SYN's.
 */
static __always_inline __u32 toa_parse(volatile struct toa_slot *s,
				       __u32 hdrlen, __u32 formats, int syn,
				       struct toa_addr *out)
{
	const __u8 *b = (const __u8 *)s->buf;
	__u32 flags;

	if (hdrlen < TOA_HDR_MIN || hdrlen > TOA_HDR_MAX)
		return TOA_R_MALFORMED;
	s->i = TOA_HDR_MIN;
	s->flags = 0;
	s->pos = 0;
	s->id = 0;
	for (int n = 0; n < TOA_HDR_MAX - TOA_HDR_MIN; n++) {
		__u32 i = s->i, id;
		__u8 kind, len;

		if (i >= hdrlen)
			break;
		kind = s->buf[i & (TOA_BUF - 1)];
		if (kind == 0)
			break;
		if (kind == 1) {
			s->i = i + 1;
			continue;
		}
		if (i + 1 >= hdrlen) {
			s->flags |= TOA_R_MALFORMED;
			break;
		}
		len = s->buf[(i + 1) & (TOA_BUF - 1)];
		if (len < 2 || i + len > hdrlen) {
			s->flags |= TOA_R_MALFORMED;
			break;
		}
		id = toa_format_of(kind, len);
		if (id != TOA_F_NONE && (formats & TOA_FMASK(id))) {
			if (kind == 254 && syn &&
			    s->buf[(i + 2) & (TOA_BUF - 1)] == TOA_FASTOPEN_MAGIC_HI &&
			    s->buf[(i + 3) & (TOA_BUF - 1)] == TOA_FASTOPEN_MAGIC_LO)
				s->flags |= TOA_R_FASTOPEN;
			else if (s->pos)
				s->flags |= TOA_R_REPEATED;
			else {
				s->pos = i;
				s->id = id;
			}
		}
		s->i = i + len;
	}
	flags = s->flags;
	if (s->pos) {
		if (toa_read(b, s->pos, s->id, out))
			flags |= TOA_R_FOUND;
		else
			flags |= TOA_R_INVALID;
	}
	return flags;
}

#endif /* LVS_TOA_PARSE_H */
