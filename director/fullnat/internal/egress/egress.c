//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Full-NAT TOA writer: a tc egress program on the director's interfaces
 * towards the real servers. IPVS (NAT) has sent the client's packet to a
 * real server and nftables has replaced the client's address with one of
 * the director's local addresses; this program writes the client's
 * address and port into a TCP option (TOA) so that the real server can
 * hand it to the application.
 *
 * Which packets:
 *  - only TCP from a local address in fullnat_laddrs (the map says which
 *    TOA format that address writes);
 *  - at the SYN, the client is looked up in conntrack: the packet is the
 *    inverse of the entry's reply tuple, and the entry's original tuple
 *    holds the client. Formats carried in the SYN (kind 28) are written
 *    there; for the others the client and the first sequence number are
 *    remembered (fullnat_conns);
 *  - the option goes into every later packet whose sequence number is the
 *    first one: the handshake-completing ACK and the first data (with
 *    their retransmissions); the entry is dropped once the sequence moves
 *    on, or at FIN or RST.
 *
 * How: the option is placed right after the 20-byte TCP header, ahead of
 * the options already there. The packet grows at its tail
 * (bpf_skb_change_tail), the options and payload move up by the option's
 * length (a multiple of four), and the data offset, IP length and
 * checksums are fixed incrementally: with checksum offload pending
 * (CHECKSUM_PARTIAL) only the pseudo-header part changes, otherwise the
 * full checksum does. A packet that would not fit (40 bytes of options,
 * the device MTU or the route's path MTU) or that is a GSO packet is left
 * as it is and counted.
 *
 * The program never drops a packet it did not change. It returns
 * TC_ACT_UNSPEC, so programs after it (tcx) and the default action (tc
 * clsact) still apply.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "toa_format.h"
#include "nf_conn.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define TCP_HDR_MIN 20
#define TCP_HDR_MAX 60
#define TCPOPT_NOP 1

/* Bytes moved per load/store, and the most bytes moved (jumbo frames). */
#define MOVE_CHUNK 64
#define MOVE_CHUNKS 150

#define PASS TC_ACT_UNSPEC

/* Counters (fullnat_stats indexes). */
enum fullnat_counter {
	C_INSERTED = 0, /* an option was written */
	C_NO_ROOM,      /* the TCP header had no room for it */
	C_MTU,          /* it would have grown the packet past the MTU */
	C_NO_CT,        /* a SYN from a local address had no conntrack entry */
	C_GSO,          /* a GSO packet: left alone */
	C_ERROR,        /* a helper refused; the packet was left or dropped */
	C_MAX = 8,
};

/* fullnat_laddrs: a local address and the format it writes. */
struct laddr_key {
	__u32 family; /* 4 or 6 */
	__u8 addr[16]; /* IPv4 in the first four bytes */
};

struct laddr_conf {
	__u32 format; /* enum toa_format_id */
	__u32 flags;
};

/* fullnat_conns: a connection between the SYN and the first data, keyed
 * as its packets leave (local address and port, real server and port). */
struct conn_key {
	__u8 laddr[16];
	__u8 raddr[16];
	__be16 lport;
	__be16 rport;
	__u32 family;
};

struct conn_state {
	__u32 next_seq; /* the client's first sequence number after the SYN */
	__u32 format;
	struct toa_addr client;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct laddr_key);
	__type(value, struct laddr_conf);
} fullnat_laddrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} fullnat_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fullnat_stats SEC(".maps");

struct iph4 {
	__u8 vihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag;
	__u8 ttl;
	__u8 proto;
	__u16 check;
	__be32 saddr;
	__be32 daddr;
};

struct iph6 {
	__be32 vtcfl;
	__be16 plen;
	__u8 nexthdr;
	__u8 hops;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct tcph {
	__be16 sport;
	__be16 dport;
	__be32 seq;
	__be32 ack;
	__u8 doff; /* data offset in the high nibble */
	__u8 flags;
	__be16 window;
	__u16 check;
	__be16 urg;
};

/* One packet as parsed. */
struct pkt {
	__u32 family;
	__u32 l4;    /* offset of the TCP header */
	__u32 l3len; /* IP length (IPv4 total length, IPv6 40 + payload) */
	__u8 tos;
	__u8 saddr[16];
	__u8 daddr[16];
	struct tcph th;
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&fullnat_stats, &idx);

	if (v)
		*v += 1; /* per-CPU */
}

/* path_fits reports whether an IP packet of length l3len leaves by the
 * device and the route without exceeding their MTU (the route's metric,
 * or a learnt path MTU). */
static __always_inline int path_fits(struct __sk_buff *skb,
				     const struct pkt *p, __u32 l3len)
{
	struct bpf_fib_lookup f = {};
	__u32 mtu = l3len;
	long rc;

	if (bpf_check_mtu(skb, 0, &mtu, 0, 0) != 0)
		return 0;
	f.l4_protocol = IPPROTO_TCP;
	f.sport = p->th.sport;
	f.dport = p->th.dport;
	f.tot_len = l3len;
	f.ifindex = skb->ifindex;
	if (p->family == 4) {
		f.family = AF_INET;
		f.tos = p->tos;
		__builtin_memcpy(&f.ipv4_src, p->saddr, 4);
		__builtin_memcpy(&f.ipv4_dst, p->daddr, 4);
	} else {
		f.family = AF_INET6;
		__builtin_memcpy(f.ipv6_src, p->saddr, 16);
		__builtin_memcpy(f.ipv6_dst, p->daddr, 16);
	}
	rc = bpf_fib_lookup(skb, &f, sizeof(f), BPF_FIB_LOOKUP_OUTPUT);
	return rc != BPF_FIB_LKUP_RET_FRAG_NEEDED;
}

/* shift_up moves the bytes [from, end) of the packet up by n, last chunk
 * first so that nothing is overwritten before it is read. A global
 * function: the verifier checks its loop once, not at every exit. */
__attribute__((noinline)) int shift_up(struct __sk_buff *skb, __u32 from,
				       __u32 end, __u32 n)
{
	__u8 buf[MOVE_CHUNK];

	for (int i = 0; i < MOVE_CHUNKS; i++) {
		__u32 len;

		if (end <= from)
			return 0;
		len = end - from;
		if (len > MOVE_CHUNK)
			len = MOVE_CHUNK;
		/* 1 to MOVE_CHUNK in a form every verifier bounds (len is
		 * never 0 here: end > from). */
		len = ((len - 1) & (MOVE_CHUNK - 1)) + 1;
		end -= len;
		if (bpf_skb_load_bytes(skb, end, buf, len))
			return -1;
		if (bpf_skb_store_bytes(skb, end + n, buf, len, 0))
			return -1;
	}
	return end <= from ? 0 : -1;
}

/* insert writes the option of format for client right after the TCP
 * header of the packet p. It returns TC_ACT_SHOT only when the packet was
 * changed half-way (it cannot be sent as it is). */
static __always_inline int insert(struct __sk_buff *skb, const struct pkt *p,
				  __u32 format, const struct toa_addr *client)
{
	__u8 opt[20] = {};
	__u32 len, n, hl, tcplen, from, old_len;
	__u16 w_old, w_new;
	__s64 diff;

	len = toa_encode(opt, format, client);
	if (len == 0 || len > 20) {
		count(C_ERROR);
		return PASS;
	}
	/* Padded to four bytes: 7 and 8 take 8, 19 and 20 take 20. */
	if (len > 8)
		n = 20;
	else
		n = 8;
	if (len < n)
		opt[len] = TCPOPT_NOP; /* kinds 28/7 and 28/19 */
	hl = (p->th.doff >> 4) * 4;
	if (hl < TCP_HDR_MIN || hl + n > TCP_HDR_MAX) {
		count(C_NO_ROOM);
		return PASS;
	}
	if (skb->gso_size) {
		count(C_GSO);
		return PASS;
	}
	old_len = skb->len;
	if (old_len != ETH_HLEN + p->l3len || p->l3len < p->l4 - ETH_HLEN + hl) {
		count(C_ERROR); /* trailing bytes or a short packet */
		return PASS;
	}
	from = p->l4 + TCP_HDR_MIN;
	if (old_len - from > MOVE_CHUNK * MOVE_CHUNKS) {
		count(C_MTU);
		return PASS;
	}
	if (!path_fits(skb, p, p->l3len + n)) {
		count(C_MTU);
		return PASS;
	}
	if (bpf_skb_change_tail(skb, old_len + n, 0)) {
		count(C_ERROR);
		return PASS;
	}
	/* From here on the packet is changed: a failure drops it. */
	if (shift_up(skb, from, old_len, n))
		goto broken;
	if (bpf_skb_store_bytes(skb, from, opt, n, 0))
		goto broken;

	/* TCP: the new option bytes, the data offset, the length in the
	 * pseudo-header. */
	diff = bpf_csum_diff(0, 0, (__be32 *)opt, n, 0);
	if (diff < 0)
		goto broken;
	if (bpf_l4_csum_replace(skb, p->l4 + 16, 0, diff, 0))
		goto broken;
	w_old = bpf_htons(((__u16)p->th.doff << 8) | p->th.flags);
	w_new = bpf_htons(((__u16)(((hl + n) / 4) << 4 | (p->th.doff & 15)) << 8) | p->th.flags);
	if (bpf_skb_store_bytes(skb, p->l4 + 12, &w_new, 2, 0))
		goto broken;
	if (bpf_l4_csum_replace(skb, p->l4 + 16, w_old, w_new, 2))
		goto broken;
	tcplen = p->l3len - (p->l4 - ETH_HLEN);
	if (bpf_l4_csum_replace(skb, p->l4 + 16, bpf_htons(tcplen), bpf_htons(tcplen + n),
				BPF_F_PSEUDO_HDR | 2))
		goto broken;

	/* IP: the length (and the IPv4 header checksum). */
	if (p->family == 4) {
		__be16 o = bpf_htons(p->l3len), v = bpf_htons(p->l3len + n);

		if (bpf_skb_store_bytes(skb, ETH_HLEN + 2, &v, 2, 0))
			goto broken;
		if (bpf_l3_csum_replace(skb, ETH_HLEN + 10, o, v, 2))
			goto broken;
	} else {
		__be16 v = bpf_htons(p->l3len - 40 + n);

		if (bpf_skb_store_bytes(skb, ETH_HLEN + 4, &v, 2, 0))
			goto broken;
	}
	count(C_INSERTED);
	return PASS;
broken:
	count(C_ERROR);
	return TC_ACT_SHOT;
}

/* client_of looks up the connection of the SYN p in conntrack and returns
 * its client (the original tuple's source). It returns 0 when the packet
 * is not a translated one (a local connection), -1 when conntrack has no
 * entry, 1 with the client filled in. */
static __always_inline int client_of(struct __sk_buff *skb, const struct pkt *p,
				     __u32 format, struct toa_addr *client)
{
	struct bpf_ct_opts___local o = {.netns_id = CT_CURRENT_NETNS, .l4proto = IPPROTO_TCP};
	struct bpf_sock_tuple t = {};
	struct nf_conn *ct;
	__u32 src[4], dst[4], sz;
	__be16 sport, dport;
	int translated;

	/* The packet is the inverse of the entry's reply tuple. */
	if (p->family == 4) {
		__builtin_memcpy(&t.ipv4.saddr, p->daddr, 4);
		__builtin_memcpy(&t.ipv4.daddr, p->saddr, 4);
		t.ipv4.sport = p->th.dport;
		t.ipv4.dport = p->th.sport;
		sz = sizeof(t.ipv4);
	} else {
		__builtin_memcpy(t.ipv6.saddr, p->daddr, 16);
		__builtin_memcpy(t.ipv6.daddr, p->saddr, 16);
		t.ipv6.sport = p->th.dport;
		t.ipv6.dport = p->th.sport;
		sz = sizeof(t.ipv6);
	}
	ct = bpf_skb_ct_lookup(skb, &t, sz, &o, CT_OPTS_SZ);
	if (!ct)
		return -1;
	src[0] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.src.u3.all[0];
	src[1] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.src.u3.all[1];
	src[2] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.src.u3.all[2];
	src[3] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.src.u3.all[3];
	sport = ct->tuplehash[CT_DIR_ORIGINAL].tuple.src.u.all;
	dst[0] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.dst.u3.all[0];
	dst[1] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.dst.u3.all[1];
	dst[2] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.dst.u3.all[2];
	dst[3] = ct->tuplehash[CT_DIR_ORIGINAL].tuple.dst.u3.all[3];
	dport = ct->tuplehash[CT_DIR_ORIGINAL].tuple.dst.u.all;
	bpf_ct_release(ct);

	/* A connection the director opened itself from a local address
	 * was not translated: its original destination is the real
	 * server. */
	if (p->family == 4)
		translated = dst[0] != *(__u32 *)p->daddr;
	else
		translated = __builtin_memcmp(dst, p->daddr, 16) != 0;
	if (!translated && dport == p->th.dport)
		return 0;

	client->family = p->family;
	client->format = format;
	client->has_port = 1;
	client->port = sport;
	__builtin_memcpy(client->addr, src, 16);
	return 1;
}

static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iph4 ip;
		__u32 ihl;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		ihl = (ip.vihl & 15) * 4;
		if (ip.vihl >> 4 != 4 || ihl < 20 || ip.proto != IPPROTO_TCP)
			return -1;
		if (ip.frag & bpf_htons(0x3fff)) /* a fragment */
			return -1;
		p->family = 4;
		p->l4 = ETH_HLEN + ihl;
		p->l3len = bpf_ntohs(ip.tot_len);
		p->tos = ip.tos;
		__builtin_memcpy(p->saddr, &ip.saddr, 4);
		__builtin_memcpy(p->daddr, &ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct iph6 ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		if (bpf_ntohl(ip.vtcfl) >> 28 != 6 || ip.nexthdr != IPPROTO_TCP)
			return -1;
		p->family = 6;
		p->l4 = ETH_HLEN + 40;
		p->l3len = 40 + bpf_ntohs(ip.plen);
		__builtin_memcpy(p->saddr, ip.saddr, 16);
		__builtin_memcpy(p->daddr, ip.daddr, 16);
	} else {
		return -1;
	}
	if (bpf_skb_load_bytes(skb, p->l4, &p->th, sizeof(p->th)))
		return -1;
	return 0;
}

SEC("tc")
int fullnat_toa(struct __sk_buff *skb)
{
	struct laddr_key lk = {};
	struct conn_key ck = {};
	struct toa_addr client = {};
	struct laddr_conf *conf;
	struct conn_state *st;
	struct pkt p = {};
	__u32 format, seq;
	__s32 ahead;
	int rc;

	if (parse(skb, &p))
		return PASS;
	lk.family = p.family;
	__builtin_memcpy(lk.addr, p.saddr, 16);
	conf = bpf_map_lookup_elem(&fullnat_laddrs, &lk);
	if (!conf || conf->format == TOA_F_NONE)
		return PASS;
	format = conf->format;

	__builtin_memcpy(ck.laddr, p.saddr, 16);
	__builtin_memcpy(ck.raddr, p.daddr, 16);
	ck.lport = p.th.sport;
	ck.rport = p.th.dport;
	ck.family = p.family;
	seq = bpf_ntohl(p.th.seq);

	if (p.th.flags & TCP_SYN) {
		struct conn_state s = {};

		if (p.th.flags & (TCP_ACK | TCP_RST))
			return PASS;
		rc = client_of(skb, &p, format, &client);
		if (rc < 0)
			count(C_NO_CT);
		if (rc <= 0)
			return PASS;
		if (TOA_FMASK(format) & TOA_FMASK_SYN)
			return insert(skb, &p, format, &client);
		s.next_seq = seq + 1;
		s.format = format;
		s.client = client;
		bpf_map_update_elem(&fullnat_conns, &ck, &s, BPF_ANY);
		return PASS;
	}

	st = bpf_map_lookup_elem(&fullnat_conns, &ck);
	if (!st)
		return PASS;
	ahead = (__s32)(seq - st->next_seq);
	if (ahead != 0 || (p.th.flags & TCP_RST)) {
		/* Past the first data (or reset): done with it. */
		if (ahead >= 0)
			bpf_map_delete_elem(&fullnat_conns, &ck);
		return PASS;
	}
	client = st->client;
	format = st->format;
	if (p.th.flags & TCP_FIN)
		bpf_map_delete_elem(&fullnat_conns, &ck);
	return insert(skb, &p, format, &client);
}

char _license[] SEC("license") = "Dual BSD/GPL";
