//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TOA on a real server: a sock_ops program reads the client address a
 * full-NAT balancer put in a TCP option and keeps it; cgroup
 * getpeername4/6 programs hand it to getpeername() and accept(); a cgroup
 * getsockopt program answers the NAT64 lookup.
 *
 * Where the address is kept: in the slot of a preallocated array that the
 * socket cookie picks, claimed under the slot's lock with the cookie
 * written in it, and given back by a cgroup sock_release program when the
 * application closes the socket (after which nothing can ask for its
 * peer). A socket whose slot another socket holds, and an IPv6 address on
 * an IPv4 socket (the NAT64 getsockopt cannot get the cookie), go to
 * socket storage instead. A slot costs no allocation and no RCU free;
 * socket storage costs both, which was most of eBPF TOA's time per
 * connection. (The TCP state callback, the other way to learn of the
 * close, costs about as much as socket storage did.) A socket never
 * accepted (its listener closed first) keeps its slot; later sockets that
 * pick that slot use socket storage, counted as slot_taken.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../../include/toa_parse.h"

#define AF_INET 2
#define AF_INET6 10
#define SOL_IP 0
#define SOL_TCP 6
#define IPPROTO_TCP 6
#define TCP_SAVE_SYN 27
#define TCP_FLAG_SYN 0x02

/* Counters: the names of the modules' /proc/net/toa_stats, then ours. */
enum toa_counter {
	C_SYN_RECV_SOCK_TOA = 0,
	C_SYN_RECV_SOCK_NO_TOA,
	C_GETNAME_TOA_OK,
	C_GETNAME_TOA_MISMATCH,
	C_GETNAME_TOA_BYPASS,
	C_GETNAME_TOA_EMPTY,
	C_UNTRUSTED,
	C_MALFORMED,
	C_LATE_TOA,
	C_NAT64_LOOKUP,
	C_SLOT_TAKEN,
	C_MAX = 16,
};

/* toa_conf.flags */
#define CONF_SAVE_SYN 1

struct toa_conf {
	__u32 formats; /* TOA_FMASK bits */
	__u32 flags;
};

struct toa_trust_key {
	__u32 prefixlen;
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct toa_addr);
} toa_addrs SEC(".maps");

/* A slot: the cookie of the socket that holds it (0: free) and its
 * address. */
struct toa_slot_entry {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 cookie;
	struct toa_addr a;
};

/* The loader sets max_entries, a power of two, and slot_mask to match. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct toa_slot_entry);
} toa_slots SEC(".maps");

volatile const __u32 slot_mask = 65535;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} toa_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct toa_trust_key);
	__type(value, __u8);
} toa_trusted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct toa_conf);
} toa_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct toa_scratch);
} toa_scratch SEC(".maps");

/* The page size, set by the loader: larger getsockopt buffers must be
 * handed back to the kernel untouched (optlen 0). */
volatile const __u32 page_size = 4096;

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&toa_stats, &c);

	if (v)
		*v += 1;
}

static __always_inline struct toa_conf *conf(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&toa_config, &zero);
}

static __always_inline int trusted(struct bpf_sock_ops *skops)
{
	struct toa_trust_key key = { .prefixlen = 128 };

	if (skops->family == AF_INET) {
		__u32 ip = skops->remote_ip4;

		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &ip, 4);
	} else if (skops->family == AF_INET6) {
		__u32 w[4] = { skops->remote_ip6[0], skops->remote_ip6[1],
			       skops->remote_ip6[2], skops->remote_ip6[3] };

		__builtin_memcpy(key.addr, w, 16);
	} else {
		return 0;
	}
	return bpf_map_lookup_elem(&toa_trusted, &key) != NULL;
}

/*
 * parse_skb parses the header of the packet skops carries (the
 * handshake-completing ACK, or a later packet) and, when saved_syn is set
 * and the packet had no address, the saved SYN. It returns TOA_R_* flags.
 */
static __always_inline __u32 parse_skb(struct bpf_sock_ops *skops,
				       struct toa_conf *cf, int saved_syn,
				       struct toa_addr *out, __u32 *hdrlen)
{
	__u32 zero = 0, flags = 0, slot, hl = 0;
	int r;
	struct toa_scratch *sc = bpf_map_lookup_elem(&toa_scratch, &zero);
	volatile struct toa_slot *s;

	*hdrlen = 0;
	if (!sc)
		return 0;
	slot = sc->nest;
	if (slot >= TOA_NEST)
		return 0;
	sc->nest = slot + 1;
	s = &sc->slot[slot];

	r = toa_copy_hdr(s, (void *)(long)skops->skb_data,
			 (void *)(long)skops->skb_data_end);
	if (r >= 0) {
		hl = r;
		flags = toa_parse(s, hl, cf->formats,
				  !!(skops->skb_tcp_flags & TCP_FLAG_SYN), out);
	}
	*hdrlen = hl;
	if (saved_syn && !(flags & (TOA_R_FOUND | TOA_R_INVALID))) {
		long len = bpf_getsockopt(skops, SOL_TCP, TCP_BPF_SYN,
					  (void *)s->buf, TOA_HDR_MAX);

		if (len >= TOA_HDR_MIN && len <= TOA_HDR_MAX)
			flags |= toa_parse(s, len, cf->formats, 1, out);
	}
	sc->nest = slot;
	return flags;
}

/* slot_of returns the slot the socket cookie picks. */
static __always_inline struct toa_slot_entry *slot_of(__u64 cookie)
{
	__u32 k = (__u32)cookie & slot_mask;

	return bpf_map_lookup_elem(&toa_slots, &k);
}

/* store gives the socket its address: in its slot when that is free (or
 * its own), else in socket storage, created with the address in one call. */
static __always_inline void store(struct bpf_sock_ops *skops,
				  struct toa_addr *a)
{
	struct toa_slot_entry *e;
	__u64 ck;
	int ok = 0;

	if (a->family == 6 && skops->family == AF_INET)
		goto storage;
	ck = bpf_get_socket_cookie(skops);
	e = slot_of(ck);
	if (!e)
		goto storage;
	bpf_spin_lock(&e->lock);
	if (e->cookie == 0 || e->cookie == ck) {
		e->cookie = ck;
		e->a = *a;
		ok = 1;
	}
	bpf_spin_unlock(&e->lock);
	if (ok)
		return;
	count(C_SLOT_TAKEN);
storage:
	if (skops->sk)
		bpf_sk_storage_get(&toa_addrs, skops->sk, a,
				   BPF_SK_STORAGE_GET_F_CREATE);
}

/* has_addr tells whether the socket has an address already. */
static __always_inline int has_addr(struct bpf_sock_ops *skops)
{
	__u64 ck = bpf_get_socket_cookie(skops);
	struct toa_slot_entry *e = slot_of(ck);

	if (e && e->cookie == ck)
		return 1;
	return skops->sk && bpf_sk_storage_get(&toa_addrs, skops->sk, 0, 0);
}

static __always_inline void passive_established(struct bpf_sock_ops *skops)
{
	struct toa_addr a = {};
	struct toa_conf *cf = conf();
	__u32 flags, hl;

	if (!cf || !cf->formats)
		return;
	flags = parse_skb(skops, cf, cf->flags & CONF_SAVE_SYN, &a, &hl);
	if (!trusted(skops)) {
		if (flags & (TOA_R_FOUND | TOA_R_INVALID | TOA_R_REPEATED))
			count(C_UNTRUSTED);
		return;
	}
	if (flags & (TOA_R_MALFORMED | TOA_R_INVALID | TOA_R_REPEATED))
		count(C_MALFORMED);
	if (flags & TOA_R_FOUND) {
		store(skops, &a);
		count(C_SYN_RECV_SOCK_TOA);
		return;
	}
	count(C_SYN_RECV_SOCK_NO_TOA);
	/* Look at the next packets with options the kernel does not know,
	 * until one carries the address or data arrives. */
	bpf_sock_ops_cb_flags_set(skops,
				  skops->bpf_sock_ops_cb_flags |
					  BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
}

static __always_inline void parse_later(struct bpf_sock_ops *skops)
{
	struct toa_addr a = {};
	struct toa_conf *cf = conf();
	__u32 flags, hl;
	int done = 0;

	/* Untrusted packets are not counted here: no parse for them. */
	if (!cf || !trusted(skops))
		return;
	flags = parse_skb(skops, cf, 0, &a, &hl);
	if (flags & (TOA_R_MALFORMED | TOA_R_INVALID | TOA_R_REPEATED))
		count(C_MALFORMED);
	if (flags & TOA_R_FOUND) {
		if (!has_addr(skops)) {
			store(skops, &a);
			count(C_LATE_TOA);
		}
		done = 1;
	}
	if (flags & TOA_R_INVALID)
		done = 1;
	/* A packet with payload ends the early packets. */
	if (skops->skb_len > hl)
		done = 1;
	if (done)
		bpf_sock_ops_cb_flags_set(
			skops, skops->bpf_sock_ops_cb_flags &
				       ~BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
}

SEC("sockops")
int toa_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB: {
		struct toa_conf *cf = conf();
		int one = 1;

		if (cf && (cf->flags & CONF_SAVE_SYN))
			bpf_setsockopt(skops, SOL_TCP, TCP_SAVE_SYN, &one,
				       sizeof(one));
		break;
	}
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		passive_established(skops);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		parse_later(skops);
		break;
	}
	return 1;
}

/*
 * lookup copies the socket's address into out: from its slot, else from
 * socket storage. The getpeername hooks run in a system call that holds a
 * reference to the socket's file, so toa_release cannot give the slot
 * back meanwhile, and no other socket writes a slot this one holds: a
 * slot with this socket's cookie is read without its lock.
 */
static __always_inline int lookup(struct bpf_sock_addr *ctx,
				  struct toa_addr *out)
{
	__u64 ck = bpf_get_socket_cookie(ctx);
	struct toa_slot_entry *e = slot_of(ck);
	struct toa_addr *v;

	if (e && e->cookie == ck) {
		*out = e->a;
		return 1;
	}
	if (!ctx->sk)
		return 0;
	v = bpf_sk_storage_get(&toa_addrs, ctx->sk, 0, 0);
	if (!v)
		return 0;
	*out = *v;
	return 1;
}

/*
 * toa_release gives a TCP socket's slot back when the application closes
 * it. No lock: only the holder writes a held slot, and a claim (under the
 * lock) reads the one 8-byte cookie before or after this store.
 */
SEC("cgroup/sock_release")
int toa_release(struct bpf_sock *sk)
{
	struct toa_slot_entry *e;
	__u64 ck;

	if (sk->protocol != IPPROTO_TCP)
		return 1;
	ck = bpf_get_socket_cookie(sk);
	e = slot_of(ck);
	if (e && e->cookie == ck)
		e->cookie = 0;
	return 1;
}

SEC("cgroup/getpeername4")
int toa_getpeername4(struct bpf_sock_addr *ctx)
{
	struct toa_addr a, *v = &a;
	__u32 ip;

	if (ctx->protocol != IPPROTO_TCP) {
		count(C_GETNAME_TOA_BYPASS);
		return 1;
	}
	if (!lookup(ctx, v) || !v->family) {
		count(C_GETNAME_TOA_EMPTY);
		return 1;
	}
	if (v->family != 4) {
		count(C_GETNAME_TOA_MISMATCH);
		return 1;
	}
	__builtin_memcpy(&ip, v->addr, 4);
	ctx->user_ip4 = ip;
	if (v->has_port)
		ctx->user_port = v->port;
	count(C_GETNAME_TOA_OK);
	return 1;
}

SEC("cgroup/getpeername6")
int toa_getpeername6(struct bpf_sock_addr *ctx)
{
	struct toa_addr a, *v = &a;
	__u32 w[4];

	if (ctx->protocol != IPPROTO_TCP) {
		count(C_GETNAME_TOA_BYPASS);
		return 1;
	}
	if (!lookup(ctx, v) || !v->family) {
		count(C_GETNAME_TOA_EMPTY);
		return 1;
	}
	if (v->family == 4) {
		/* An IPv4 client on an IPv6 socket is ::ffff:a.b.c.d, as
		 * the kernel itself shows it: dual-stack servers unmap it. */
		w[0] = 0;
		w[1] = 0;
		w[2] = bpf_htonl(0x0000ffff);
		__builtin_memcpy(&w[3], v->addr, 4);
	} else {
		__builtin_memcpy(w, v->addr, 16);
	}
	ctx->user_ip6[0] = w[0];
	ctx->user_ip6[1] = w[1];
	ctx->user_ip6[2] = w[2];
	ctx->user_ip6[3] = w[3];
	if (v->has_port)
		ctx->user_port = v->port;
	count(C_GETNAME_TOA_OK);
	return 1;
}

SEC("cgroup/getsockopt")
int toa_getsockopt(struct bpf_sockopt *ctx)
{
	struct toa_nat64_peer *peer;
	struct toa_addr *v;

	if (ctx->level != SOL_IP || ctx->optname != TOA_SO_GET_LOOKUP) {
		/* Not ours. A buffer above a page reached the program only
		 * in part: let the kernel return its own. */
		if (ctx->optlen > (int)page_size)
			ctx->optlen = 0;
		return 1;
	}
	/* Only IPv4 sockets: an IPv6 one shows the address itself. */
	if (!ctx->sk || ctx->sk->family != AF_INET)
		return 1;
	/* Kept in socket storage only (see store). */
	v = bpf_sk_storage_get(&toa_addrs, ctx->sk, 0, 0);
	if (!v || v->family != 6)
		return 1;
	peer = ctx->optval;
	if ((void *)(peer + 1) > ctx->optval_end)
		return 1;
	__builtin_memcpy(peer->addr, v->addr, 16);
	peer->port = v->has_port ? v->port : 0;
	peer->pad = 0;
	ctx->optlen = sizeof(*peer);
	/* two 4-byte context stores: a merged 8-byte store is refused */
	asm volatile("" ::: "memory");
	ctx->retval = 0;
	count(C_NAT64_LOOKUP);
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
