// Package egress holds the full-NAT TOA writer (egress.c), a tc egress
// program for the director's interfaces towards the real servers, and
// its generated loader. It writes the client's address into the TCP
// option the real servers read (formats of toa/include/toa_format.h),
// looked up in conntrack with bpf_skb_ct_lookup. Run "make generate"
// after changing the C.
package egress
