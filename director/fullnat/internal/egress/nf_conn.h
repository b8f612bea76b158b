/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The parts of the kernel's conntrack entry (struct nf_conn) that the
 * full-NAT egress program reads, and the conntrack kfuncs it calls
 * (Linux 5.18+, nf_conntrack with BTF). The field offsets are relocated
 * against the running kernel's BTF (CO-RE), so no kernel header is
 * needed and the layout may differ between kernels.
 */
#ifndef LVS_NF_CONN_H
#define LVS_NF_CONN_H

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

union nf_inet_addr {
	__u32 all[4];
	__be32 ip;
	__be32 ip6[4];
};

union nf_conntrack_man_proto {
	__be16 all;
};

struct nf_conntrack_man {
	union nf_inet_addr u3;
	union nf_conntrack_man_proto u;
	__u16 l3num;
};

struct nf_conntrack_tuple {
	struct nf_conntrack_man src;
	struct {
		union nf_inet_addr u3;
		union {
			__be16 all;
		} u;
		__u8 protonum;
	} dst;
};

struct nf_conntrack_tuple_hash {
	struct nf_conntrack_tuple tuple;
};

struct nf_conn {
	struct nf_conntrack_tuple_hash tuplehash[2];
};

#pragma clang attribute pop

/* Directions of tuplehash. */
#define CT_DIR_ORIGINAL 0
#define CT_DIR_REPLY 1

/* Options of the lookup (struct bpf_ct_opts): 12 bytes on every kernel
 * that has the kfunc; later kernels accept this size too. */
struct bpf_ct_opts___local {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u8 reserved[2];
};

#define CT_OPTS_SZ 12
#define CT_CURRENT_NETNS (-1)

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb,
					 struct bpf_sock_tuple *tuple,
					 __u32 tuple__sz,
					 struct bpf_ct_opts___local *opts,
					 __u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

#endif /* LVS_NF_CONN_H */
