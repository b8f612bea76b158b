// Package format encodes and decodes TCP Option Address (TOA) options:
// the client address a full-NAT balancer writes into a TCP option for the
// real server. It is the Go reference for the C parser and encoder in
// toa/include (tests check both agree, byte for byte) and is meant for
// reuse by a balancer's writer.
//
// Formats (kind/length: layout after kind and length, network byte order):
//
//	254/8   port, IPv4       LVS FULLNAT, DPVS, Huawei ELB, Baidu TTM, UCloud
//	254/20  port, IPv6       DPVS (also to IPv4 sockets, for NAT64)
//	253/20  port, IPv6       Alibaba LVS FULLNAT
//	200/8   port, IPv4       Tencent CLB, UCloud
//	28/7    version 1, IPv4  Alibaba CDN (SYN only, no port)
//	28/19   version 1, IPv6  Alibaba CDN (SYN only, no port)
//
// Kind 254 is also the experimental kind: with the magic 0xF989 it is TCP
// Fast Open, so in a SYN such an option is not read as TOA.
package format
