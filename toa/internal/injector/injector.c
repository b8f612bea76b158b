//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TOA injector of "lvs-node toa verify" and of the tests: on the
 * active (client) side of connections in its cgroup, it writes the option
 * bytes it is given into the SYN, the handshake-completing ACK, the first
 * packet with data, or every packet up to and including the first data,
 * as a full-NAT balancer would.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TCP_FLAG_SYN 0x02
#define OPT_MAX 40

/* inject_conf.where */
#define W_SYN 1   /* the SYN */
#define W_ACK 2   /* the handshake-completing ACK */
#define W_DATA 4  /* the first packet with data */
#define W_EARLY 8 /* every packet after the SYN up to the first data */

/* Up to two options: each bpf_store_hdr_opt call writes one. */
struct inject_conf {
	__u8 opt[OPT_MAX];
	__u32 len;
	__u8 opt2[OPT_MAX];
	__u32 len2;
	__u32 where;
};

/* Per connection: which packets were seen. */
struct inject_state {
	__u32 acked; /* the handshake ACK went out */
	__u32 data;  /* a packet with data went out */
};

/* inject_stats indexes */
#define S_WRITTEN 0
#define S_FAILED 1
#define S_LAST_ERR 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct inject_conf);
} inject_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inject_state);
} inject_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __s64);
} inject_stats SEC(".maps");

static __always_inline void stat_add(__u32 idx, __s64 v, int set)
{
	__s64 *p = bpf_map_lookup_elem(&inject_stats, &idx);

	if (!p)
		return;
	if (set)
		*p = v;
	else
		__sync_fetch_and_add(p, v);
}

static __always_inline struct inject_conf *conf(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&inject_cfg, &zero);
}

static __always_inline void store(struct bpf_sock_ops *skops, __u8 *opt,
				  __u32 len)
{
	long err;

	if (len < 2 || len > OPT_MAX)
		return;
	/* The kernel copies the option's own length (opt[1]); a constant
	 * buffer size keeps older verifiers from seeing a size of zero. */
	err = bpf_store_hdr_opt(skops, opt, OPT_MAX, 0);
	if (err) {
		stat_add(S_FAILED, 1, 0);
		stat_add(S_LAST_ERR, err, 1);
		return;
	}
	stat_add(S_WRITTEN, 1, 0);
}

static __always_inline void write_opt(struct bpf_sock_ops *skops,
				      struct inject_conf *c)
{
	store(skops, c->opt, c->len);
	if (c->len2)
		store(skops, c->opt2, c->len2);
}

SEC("sockops")
int toa_inject(struct bpf_sock_ops *skops)
{
	struct inject_conf *c = conf();
	struct inject_state *st;
	__u32 syn;

	if (!c || c->len < 2 || c->len > OPT_MAX)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		if (!skops->sk)
			return 1;
		st = bpf_sk_storage_get(&inject_sk, skops->sk, 0,
					BPF_SK_STORAGE_GET_F_CREATE);
		if (!st)
			return 1;
		bpf_sock_ops_cb_flags_set(skops,
					  skops->bpf_sock_ops_cb_flags |
						  BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		syn = skops->skb_tcp_flags & TCP_FLAG_SYN;
		if (syn ? (c->where & W_SYN) : (c->where & ~W_SYN))
			bpf_reserve_hdr_opt(skops, c->len + c->len2, 0);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB: {
		void *data = (void *)(long)skops->skb_data;
		void *data_end = (void *)(long)skops->skb_data_end;
		__u32 hl, payload, write = 0;
		__u8 *th = data;

		if (!skops->sk)
			return 1;
		st = bpf_sk_storage_get(&inject_sk, skops->sk, 0, 0);
		if (!st)
			return 1;
		if (data + 14 > data_end)
			return 1;
		hl = (th[12] >> 4) * 4;
		payload = skops->skb_len > hl ? skops->skb_len - hl : 0;
		if (skops->skb_tcp_flags & TCP_FLAG_SYN) {
			write = c->where & W_SYN;
		} else {
			if (!st->acked) {
				st->acked = 1;
				if (c->where & W_ACK)
					write = 1;
			}
			if (!st->data && (c->where & W_EARLY))
				write = 1;
			if (payload && !st->data) {
				st->data = 1;
				if (c->where & W_DATA)
					write = 1;
			}
		}
		if (write)
			write_opt(skops, c);
		if (st->data)
			bpf_sock_ops_cb_flags_set(
				skops, skops->bpf_sock_ops_cb_flags &
					       ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	}
	}
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
