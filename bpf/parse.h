/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Packet parsing for the TC program: Ethernet and VLAN tags, or no link-layer
 * header at all (tun, WireGuard, PPP, IP tunnels), IPv4 (IHL, fragments),
 * IPv6 (extension header chain, fragments), transport headers, and the inner
 * headers every segment of a tunnel's super-packet repeats.
 *
 * The same parser reads a live packet's skb and, offline, a capture's frames
 * in the read_frames array (struct frame). Parsing works on offsets from the
 * frame's start, never on pointers kept across calls, so that pkt_ptr() may
 * pull non-linear data at any point. Every header access goes through
 * frame_ptr() and is bounds-checked there. A parse function returns 0, or the
 * index of the malformed-frame counter to bump.
 */
#ifndef TCFLOWS_PARSE_H
#define TCFLOWS_PARSE_H

#include <asm-generic/errno-base.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "tcflows.h"

/* Headers deeper than this are not parsed (an over-long IPv6 chain). */
#define TCF_MAX_HDR_OFF 1024
/* IPv6 extension headers followed before giving up. */
#define TCF_MAX_EXT_HDRS 8
/* In-band VLAN tags followed (the flow key keeps the outer two ids). */
#define TCF_MAX_VLAN_TAGS 4

/* IPv6 extension headers with the hop-by-hop layout (linux/in6.h has only the first). */
#define IPV6_MOBILITY 135
#define IPV6_HIP      139
#define IPV6_SHIM6    140

/* UDP ports of the tunnels whose super-packets carry inner headers per segment. */
#define VXLAN_PORT	 4789
#define VXLAN_LINUX_PORT 8472 /* the Linux default before IANA's */
#define GENEVE_PORT	 6081
#define ETH_P_TEB	 0x6558 /* Ethernet inside GRE or Geneve */

/* ICMP echo types (linux/icmp.h would pull in libc headers). */
#define ICMP_ECHOREPLY	    0
#define ICMP_ECHO	    8
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY   129

/* TCP flags in byte 13 of the header. */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define IPV4_MF		 0x2000
#define IPV4_OFFSET	 0x1fff
#define IPV6_FRAG_OFFSET 0xfff8
#define IPV6_FRAG_MF	 0x0001

/* Not in the UAPI headers: one 802.1Q/802.1ad tag after the MAC addresses. */
struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* 802.2 LLC header, and the SNAP extension used by CDP and PVST+. */
struct llc_snap {
	__u8 dsap;
	__u8 ssap;
	__u8 ctrl;
	__u8 oui[3];
	__be16 pid;
};

/* The IPv6 fragment header (struct frag_hdr is kernel-internal). */
struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* What parsing learns about one frame (one GSO super-packet). */
struct pkt {
	struct tcf_flow_key key; /* endpoint 0 = sender, until canonicalised */
	__u64 bytes;		 /* IP-level bytes (frame bytes for link flows) */
	__u32 frame_len;	 /* skb->len, or offline a cut frame's whole length */
	__u32 hdr_len;		 /* header bytes every GSO segment repeats, from L3 on */
	__u32 frag_id;		 /* IP identification of a fragment */
	__u8 frag;		 /* enum pkt_frag */
	__u8 frag_last;		 /* a later fragment with no more fragments after it */
	__u8 frag_proto;	 /* IPv4 protocol, or next header of the fragment header */
	__u32 tcp_seq;		 /* sequence number of a TCP segment */
	__u32 tcp_ack;		 /* its acknowledgement number */
	__u32 tcp_payload;	 /* its payload bytes (all segments of a super-packet) */
	__u16 tcp_window;	 /* the window field, unscaled */
	__u8 tcp_flags;
	__u8 has_data;
	__u8 icmp_type;
	__u8 icmp_code;
};

enum pkt_frag {
	PKT_NOT_FRAG = 0,
	PKT_FRAG_FIRST = 1, /* offset 0, more fragments follow: has L4 header */
	PKT_FRAG_LATER = 2, /* offset > 0: no L4 header */
};

/*
 * skb->data and skb->data_end loaded in asm: with alu32, clang would reuse an
 * earlier load through a 32-bit zero extension, which turns the verifier's
 * packet pointer into a scalar.
 */
#define SKB_PTR(skb, field)                                                                        \
	({                                                                                         \
		void *__ptr;                                                                       \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                                              \
			     : "=r"(__ptr)                                                         \
			     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, field)));        \
		__ptr;                                                                             \
	})

/* Pointer to `size` bytes at `off` in the linear part of the frame, or NULL. */
static __always_inline void *pkt_linear(struct __sk_buff *skb, __u32 off, __u32 size)
{
	void *data = SKB_PTR(skb, data);
	void *end = SKB_PTR(skb, data_end);
	void *ptr;

	if (off > TCF_MAX_HDR_OFF)
		return NULL;
	ptr = data + off;
	/* One register: clang would otherwise compute data + off again for the
	 * caller, a pointer the verifier has not seen checked against end. */
	asm volatile("" : "+r"(ptr));
	if (ptr + size > end)
		return NULL;
	return ptr;
}

/*
 * Pointer to `size` bytes at `off` in the frame, or NULL when the frame is
 * shorter. Pulls non-linear data into the head when the frame has the bytes
 * but the linear part does not; that invalidates earlier packet pointers.
 */
static __always_inline void *pkt_ptr(struct __sk_buff *skb, __u32 off, __u32 size)
{
	void *ptr = pkt_linear(skb, off, size);

	if (ptr || off + size > skb->len)
		return ptr;
	if (bpf_skb_pull_data(skb, off + size))
		return NULL;
	return pkt_linear(skb, off, size);
}

/*
 * A GSO/GRO super-packet: several wire packets in one skb. virtio and tap
 * hand GSO packets over with gso_segs 0 (the kernel counts the segments only
 * when it cuts them), so gso_size tells those apart.
 */
static __always_inline int skb_is_gso(const struct __sk_buff *skb)
{
	return skb->gso_segs > 1 || (skb->gso_segs == 0 && skb->gso_size);
}

/*
 * Where the network header is. TC shows a frame from its link-layer header
 * on: Ethernet on most devices; nothing on tun, WireGuard, PPP and on IP
 * tunnels sending (the frame starts at the network header); and on ingress
 * of IP tunnels that leave them (ipip, gre), the outer headers the kernel
 * took off. skb->protocol names what the network header holds. No
 * __sk_buff field gives the header's offset, but
 * bpf_skb_load_bytes_relative() reads relative to it and only within the
 * linear data: the byte at (headlen - 1 - x) there is readable exactly when
 * the network header starts at most x bytes into the frame.
 */
#define TCF_MAX_LINK_HDR 128 /* link-layer bytes looked past for the network header */

struct net_probe {
	struct __sk_buff *skb;
	__u32 headlen; /* bytes of linear data */
};

/* 1 if the network header starts at most x bytes in, 0 if not, -1 if untold. */
static __always_inline int net_header_within(const struct net_probe *np, int x)
{
	long off = (long)np->headlen - 1 - x;
	__u8 byte;

	if (off < 0 || off > 0xffff) /* the helper's limit */
		return -1;
	return bpf_skb_load_bytes_relative(np->skb, off, &byte, 1, BPF_HDR_START_NET) == 0;
}

/* The offset of the network header in [lo, hi], by halving; -1 if not there. */
static __always_inline int net_header_between(const struct net_probe *np, __u32 lo, __u32 hi)
{
	if (net_header_within(np, hi) != 1 || net_header_within(np, (int)lo - 1) != 0)
		return -1;
	for (int i = 0; i < 8 && lo < hi; i++) { /* 8 halvings cover TCF_MAX_LINK_HDR */
		__u32 mid = (lo + hi) >> 1;

		if (net_header_within(np, mid) == 1)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo == hi ? (int)lo : -1;
}

/*
 * The network header's offset when it is not where the Ethernet header (and
 * the tags read after it) leave it: from 14 up to `eth_end` bytes in (a tag
 * the kernel reads as the network protocol stays in front of it). -1: it is
 * there, or it cannot be told (then the frame is read as Ethernet).
 */
static __always_inline int moved_net_header(struct __sk_buff *skb, __u32 eth_end)
{
	struct net_probe np = {skb, (long)SKB_PTR(skb, data_end) - (long)SKB_PTR(skb, data)};
	int after_eth = net_header_within(&np, eth_end), before_eth = net_header_within(&np, 13);

	if (after_eth < 0) /* too short for Ethernet (or too long to probe): tell only 0 */
		return net_header_between(&np, 0, 0);
	if (before_eth < 0 || (after_eth == 1 && before_eth == 0))
		return -1;
	if (before_eth == 1) /* no link-layer header, or a short one */
		return net_header_between(&np, 0, ETH_HLEN - 1);
	/* The network header lies within the linear data. */
	return net_header_between(
	    &np, eth_end + 1, np.headlen <= TCF_MAX_LINK_HDR ? np.headlen - 1 : TCF_MAX_LINK_HDR);
}

/*
 * The frame a parse reads: a packet's skb (live, or one test run), or a
 * frame of a capture in the read_frames array. Each entry point sets one of
 * the two as a constant, which the compiler folds: each accessor below
 * compiles to the skb's code or to the array's, not both.
 */
struct frame {
	struct __sk_buff *skb;
	struct tcf_read_frame *rf;
};

/* Pointer to `size` bytes at `off` in a frame of the read_frames array, or NULL. */
static __always_inline void *read_ptr(struct tcf_read_frame *rf, __u32 off, __u32 size)
{
	__u32 caplen = rf->caplen;

	if (off > TCF_MAX_HDR_OFF)
		return NULL;
	/* The bounded offset is the one added: the verifier checks that one. */
	asm volatile("" : "+r"(off));
	if (off + size > caplen || off + size > TCF_READ_FRAME_BYTES)
		return NULL;
	return rf->data + off;
}

/* Pointer to `size` bytes at `off` in the frame, or NULL (see pkt_ptr). */
static __always_inline void *frame_ptr(const struct frame *f, __u32 off, __u32 size)
{
	return f->rf ? read_ptr(f->rf, off, size) : pkt_ptr(f->skb, off, size);
}

/* A super-packet (a capture's frames are what was captured: one each). */
static __always_inline int frame_is_gso(const struct frame *f)
{
	return f->rf ? 0 : skb_is_gso(f->skb);
}

/* Whether the driver took a VLAN tag out of the frame (never in a capture). */
static __always_inline int frame_has_vlan_tag(const struct frame *f)
{
	return f->rf ? 0 : f->skb->vlan_present;
}

/* Keeps the first two VLAN ids of a frame, outermost first. */
static __always_inline void keep_vlan(struct pkt *p, int *tags, __u16 tci)
{
	/* Constant indices: the verifier rejects a variable offset into the stack key. */
	if (*tags == 0)
		p->key.vlan[0] = tci & 0x0fff;
	else if (*tags == 1)
		p->key.vlan[1] = tci & 0x0fff;
	(*tags)++;
}

/*
 * Ethernet header and up to TCF_MAX_VLAN_TAGS in-band VLAN tags, of which the
 * outer two ids are kept; *proto is network order.
 */
static __always_inline int parse_eth(const struct frame *f, struct pkt *p, __u32 *off,
				     __be16 *proto)
{
	struct ethhdr *eth = frame_ptr(f, 0, sizeof(*eth));
	int tags = 0;

	if (!eth)
		return TCF_CTR_MAL_L2;
	*proto = eth->h_proto;
	__builtin_memcpy(p->key.addr[0], eth->h_source, ETH_ALEN);
	__builtin_memcpy(p->key.addr[1], eth->h_dest, ETH_ALEN);
	*off = sizeof(*eth);

	/*
	 * A tag the driver took out of the frame comes first, and counts as one
	 * of the two tags followed: a frame reads the same on ingress (outer tag
	 * in metadata) as on egress (all tags in the frame).
	 */
	if (frame_has_vlan_tag(f))
		keep_vlan(p, &tags, f->skb->vlan_tci);

#pragma unroll
	for (int i = 0; i < TCF_MAX_VLAN_TAGS; i++) {
		struct vlan_tag *tag;

		if (*proto != bpf_htons(ETH_P_8021Q) && *proto != bpf_htons(ETH_P_8021AD))
			break;
		tag = frame_ptr(f, *off, sizeof(*tag));
		if (!tag)
			return TCF_CTR_MAL_L2;
		keep_vlan(p, &tags, bpf_ntohs(tag->tci));
		*proto = tag->encapsulated_proto;
		*off += sizeof(*tag);
	}
	return 0;
}

/*
 * A non-IP frame: a link-layer flow keyed by MAC addresses and EtherType
 * (or the 802.2 LLC SAPs and SNAP protocol id of an 802.3 frame).
 */
static __always_inline int parse_link(const struct frame *f, struct pkt *p, __u32 off, __be16 proto)
{
	__u16 type = bpf_ntohs(proto);

	p->key.kind = TCF_KIND_LINK;
	p->bytes = p->frame_len + (frame_has_vlan_tag(f) ? sizeof(struct vlan_tag) : 0);
	if (type >= ETH_P_802_3_MIN) {
		p->key.ethertype = type;
		return 0;
	}
	struct llc_snap *llc = frame_ptr(f, off, 3);

	if (!llc)
		return TCF_CTR_MAL_L2;
	p->key.ethertype = TCF_ETH_LLC;
	p->key.port[0] = p->key.port[1] = llc->dsap << 8 | llc->ssap;
	if (llc->dsap != 0xaa || llc->ssap != 0xaa)
		return 0;
	llc = frame_ptr(f, off, sizeof(*llc));
	if (!llc)
		return TCF_CTR_MAL_L2;
	p->key.ethertype = bpf_ntohs(llc->pid);
	return 0;
}

static __always_inline int is_echo(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP)
		return type == ICMP_ECHO || type == ICMP_ECHOREPLY;
	return type == ICMPV6_ECHO_REQUEST || type == ICMPV6_ECHO_REPLY;
}

static __always_inline int parse_tcp(const struct frame *f, struct pkt *p, __u32 off, __u32 l4_len)
{
	struct tcphdr *th = frame_ptr(f, off, sizeof(*th));
	__u32 doff;

	if (!th || l4_len < sizeof(*th))
		return TCF_CTR_MAL_L4;
	doff = th->doff * 4;
	if (doff < sizeof(*th) || doff > l4_len)
		return TCF_CTR_MAL_L4;
	p->key.port[0] = bpf_ntohs(th->source);
	p->key.port[1] = bpf_ntohs(th->dest);
	p->tcp_flags = ((__u8 *)th)[13];
	p->tcp_seq = bpf_ntohl(th->seq);
	p->tcp_ack = bpf_ntohl(th->ack_seq);
	p->tcp_window = bpf_ntohs(th->window);
	p->tcp_payload = l4_len - doff;
	p->has_data = l4_len > doff;
	p->hdr_len += doff;
	return 0;
}

static __always_inline int parse_udp(const struct frame *f, struct pkt *p, __u32 off, __u32 l4_len)
{
	struct udphdr *uh = frame_ptr(f, off, sizeof(*uh));
	__u32 ulen;

	if (!uh || l4_len < sizeof(*uh))
		return TCF_CTR_MAL_L4;
	ulen = bpf_ntohs(uh->len);
	/*
	 * A super-packet's or jumbogram's length field is not the datagram's,
	 * and a first fragment holds only the start of the datagram.
	 */
	if (p->key.proto == IPPROTO_UDP && !frame_is_gso(f) && ulen &&
	    (ulen < sizeof(*uh) || (ulen > l4_len && p->frag != PKT_FRAG_FIRST)))
		return TCF_CTR_MAL_L4;
	p->key.port[0] = bpf_ntohs(uh->source);
	p->key.port[1] = bpf_ntohs(uh->dest);
	p->has_data = l4_len > sizeof(*uh);
	p->hdr_len += sizeof(*uh);
	return 0;
}

/* SCTP (12-byte common header) and DCCP (ports first, data offset at byte 4). */
static __always_inline int parse_ports_only(const struct frame *f, struct pkt *p, __u32 off,
					    __u32 l4_len)
{
	__be16 *ports = frame_ptr(f, off, 12);
	__u32 hlen = 12;

	if (!ports || l4_len < 12)
		return TCF_CTR_MAL_L4;
	if (p->key.proto == IPPROTO_DCCP)
		hlen = ((__u8 *)ports)[4] * 4;
	if (hlen < 12 || hlen > l4_len)
		return TCF_CTR_MAL_L4;
	p->key.port[0] = bpf_ntohs(ports[0]);
	p->key.port[1] = bpf_ntohs(ports[1]);
	p->has_data = l4_len > hlen;
	p->hdr_len += hlen;
	return 0;
}

static __always_inline int parse_icmp(const struct frame *f, struct pkt *p, __u32 off, __u32 l4_len)
{
	/* Type, code, checksum and the 4-byte rest: identifier and sequence. */
	__u8 *icmp = frame_ptr(f, off, 8);

	if (!icmp || l4_len < 8)
		return TCF_CTR_MAL_L4;
	p->icmp_type = icmp[0];
	p->icmp_code = icmp[1];
	p->has_data = l4_len > 8;
	p->hdr_len += 8;
	if (is_echo(p->key.proto, icmp[0])) {
		p->key.kind = TCF_KIND_ICMP_ECHO;
		p->key.port[0] = p->key.port[1] = bpf_ntohs(*(__be16 *)(icmp + 4));
	} else {
		p->key.kind = TCF_KIND_ICMP;
		p->key.port[0] = icmp[0] << 8 | icmp[1];
	}
	return 0;
}

/* The transport header at `off`; `l4_len` bytes of transport data follow. */
static __always_inline int parse_transport(const struct frame *f, struct pkt *p, __u32 off,
					   __u32 l4_len)
{
	switch (p->key.proto) {
	case IPPROTO_TCP:
		return parse_tcp(f, p, off, l4_len);
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return parse_udp(f, p, off, l4_len);
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		return parse_ports_only(f, p, off, l4_len);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return parse_icmp(f, p, off, l4_len);
	default:
		p->key.kind = TCF_KIND_IP;
		return 0;
	}
}

/* What a tunnel carries: enum inner_type, and where it starts. */
enum inner_type {
	INNER_NONE = 0,
	INNER_ETH,
	INNER_IPV4,
	INNER_IPV6,
};

static __always_inline int inner_of_type(__be16 type)
{
	if (type == bpf_htons(ETH_P_TEB))
		return INNER_ETH;
	if (type == bpf_htons(ETH_P_IP))
		return INNER_IPV4;
	return type == bpf_htons(ETH_P_IPV6) ? INNER_IPV6 : INNER_NONE;
}

/* A UDP tunnel: VXLAN (8-byte header, Ethernet inside) or Geneve (options, a type). */
static __always_inline int udp_tunnel(const struct frame *f, struct pkt *p, __u32 off, __u32 *inner)
{
	__u16 port = p->key.port[1];
	__u8 *h;

	if (port == VXLAN_PORT || port == VXLAN_LINUX_PORT) {
		*inner = off + sizeof(struct udphdr) + 8;
		return INNER_ETH;
	}
	if (port != GENEVE_PORT)
		return INNER_NONE;
	h = frame_ptr(f, off + sizeof(struct udphdr), 4);
	if (!h || h[0] >> 6) /* version 0 only */
		return INNER_NONE;
	*inner = off + sizeof(struct udphdr) + 8 + (h[0] & 0x3f) * 4;
	return inner_of_type(*(__be16 *)(h + 2));
}

/* GRE version 0: 4 bytes, and 4 more for each of checksum, key and sequence. */
static __always_inline int gre_tunnel(const struct frame *f, __u32 off, __u32 *inner)
{
	__u8 *h = frame_ptr(f, off, 4);

	if (!h || (h[1] & 0x07))
		return INNER_NONE;
	*inner = off + 4 + (h[0] & 0x80 ? 4 : 0) + (h[0] & 0x20 ? 4 : 0) + (h[0] & 0x10 ? 4 : 0);
	return inner_of_type(*(__be16 *)(h + 2));
}

/* The tunnel whose payload starts at the transport header `off`, if any. */
static __always_inline int tunnel_inner(const struct frame *f, struct pkt *p, __u32 off,
					__u32 *inner)
{
	*inner = off;
	switch (p->key.proto) {
	case IPPROTO_UDP:
		return udp_tunnel(f, p, off, inner);
	case IPPROTO_GRE:
		return gre_tunnel(f, off, inner);
	case IPPROTO_IPIP:
		return INNER_IPV4;
	case IPPROTO_IPV6:
		return INNER_IPV6;
	}
	return INNER_NONE;
}

/* The inner network header at `off`: its length and transport protocol, or 0. */
static __always_inline __u32 inner_ip_len(const struct frame *f, int type, __u32 off, __u8 *proto)
{
	if (type == INNER_IPV4) {
		struct iphdr *ip = frame_ptr(f, off, sizeof(*ip));

		if (!ip || ip->version != 4 || ip->ihl < 5)
			return 0;
		*proto = ip->protocol;
		return ip->ihl * 4;
	}
	struct ipv6hdr *ip6 = frame_ptr(f, off, sizeof(*ip6));

	if (!ip6 || ip6->version != 6)
		return 0;
	*proto = ip6->nexthdr;
	return sizeof(*ip6);
}

/*
 * Header bytes from `off` to the end of the inner transport header of what a
 * tunnel carries, or 0 when they cannot be read (the super-packet is then
 * counted with its outer headers per segment only).
 */
static __always_inline __u32 inner_headers(const struct frame *f, int type, __u32 off)
{
	__u32 start = off, len;
	__u8 proto = 0;

	if (type == INNER_ETH) {
		struct ethhdr *eth = frame_ptr(f, off, sizeof(*eth));

		if (!eth)
			return 0;
		type = inner_of_type(eth->h_proto);
		off += sizeof(*eth);
	}
	if (type != INNER_IPV4 && type != INNER_IPV6)
		return 0;
	len = inner_ip_len(f, type, off, &proto);
	if (!len)
		return 0;
	off += len;
	if (proto == IPPROTO_UDP)
		return off + sizeof(struct udphdr) - start;
	struct tcphdr *th = frame_ptr(f, off, sizeof(*th));

	if (proto != IPPROTO_TCP || !th || th->doff < 5)
		return 0;
	return off + th->doff * 4 - start;
}

/*
 * The transport header, and for a tunnel's super-packet the headers that
 * every segment repeats besides the outer ones: the tunnel's, and those of
 * the packet inside it (VXLAN, Geneve, GRE, IPIP, IPv6 in IP).
 */
static __always_inline int parse_l4(const struct frame *f, struct pkt *p, __u32 off, __u32 l4_len)
{
	int err = parse_transport(f, p, off, l4_len);
	__u32 inner, extra;
	int type;

	if (err || !frame_is_gso(f))
		return err;
	type = tunnel_inner(f, p, off, &inner);
	if (type == INNER_NONE)
		return 0;
	extra = inner_headers(f, type, inner);
	if (extra)
		p->hdr_len +=
		    inner - off - (p->key.proto == IPPROTO_UDP ? sizeof(struct udphdr) : 0) + extra;
	return 0;
}

/*
 * IP-level bytes: the header's length field, or what the frame holds for a
 * super-packet (whose length field may be stale) and for a length field of 0
 * (`len_field` is 0 only for BIG TCP and jumbograms).
 */
static __always_inline int ip_bytes(const struct frame *f, struct pkt *p, __u32 off,
				    __u32 len_field, __u32 min_len)
{
	__u32 avail = p->frame_len > off ? p->frame_len - off : 0;

	if (frame_is_gso(f) || len_field == 0) {
		if (avail < min_len)
			return -1;
		p->bytes = avail;
		return 0;
	}
	if (len_field < min_len || len_field > avail)
		return -1;
	p->bytes = len_field;
	return 0;
}

static __always_inline int parse_ipv4(const struct frame *f, struct pkt *p, __u32 off)
{
	struct iphdr *ip = frame_ptr(f, off, sizeof(*ip));
	__u32 ihl, frag_off;

	if (!ip || ip->version != 4 || ip->ihl < 5)
		return TCF_CTR_MAL_IPV4;
	ihl = ip->ihl * 4;
	p->key.ethertype = ETH_P_IP;
	p->key.proto = ip->protocol;
	p->key.addr[0][0] = ip->saddr;
	p->key.addr[1][0] = ip->daddr;
	__builtin_memset(&p->key.addr[0][1], 0, 3 * sizeof(__u32));
	__builtin_memset(&p->key.addr[1][1], 0, 3 * sizeof(__u32));
	p->frag_id = bpf_ntohs(ip->id);
	frag_off = bpf_ntohs(ip->frag_off);
	if (!ip->tot_len && !frame_is_gso(f))
		return TCF_CTR_MAL_IPV4;
	if (ip_bytes(f, p, off, bpf_ntohs(ip->tot_len), ihl))
		return TCF_CTR_MAL_IPV4;
	p->hdr_len = ihl;

	p->frag_proto = ip->protocol;
	if (frag_off & IPV4_OFFSET) {
		p->frag = PKT_FRAG_LATER;
		p->frag_last = !(frag_off & IPV4_MF);
		p->has_data = p->bytes > ihl;
		return 0;
	}
	if (frag_off & IPV4_MF)
		p->frag = PKT_FRAG_FIRST;
	return parse_l4(f, p, off + ihl, p->bytes - ihl);
}

/* One IPv6 extension header at *off: advances *off and *nexthdr, or fails. */
static __always_inline int parse_ipv6_ext(const struct frame *f, struct pkt *p, __u32 *off,
					  __u8 *nexthdr)
{
	__u8 *h = frame_ptr(f, *off, 2);

	if (!h)
		return TCF_CTR_MAL_IPV6_EXT;
	switch (*nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPV6_MOBILITY:
	case IPV6_HIP:
	case IPV6_SHIM6:
		*nexthdr = h[0];
		*off += (h[1] + 1) * 8;
		return 0;
	case IPPROTO_AH:
		*nexthdr = h[0];
		*off += (h[1] + 2) * 4;
		return 0;
	}
	/* IPPROTO_FRAGMENT */
	struct ipv6_frag *fh = frame_ptr(f, *off, sizeof(*fh));

	if (!fh)
		return TCF_CTR_MAL_IPV6_EXT;
	*nexthdr = fh->nexthdr;
	*off += sizeof(*fh);
	p->frag_proto = fh->nexthdr;
	p->frag_id = bpf_ntohl(fh->identification);
	if (bpf_ntohs(fh->frag_off) & IPV6_FRAG_OFFSET) {
		p->frag = PKT_FRAG_LATER;
		p->frag_last = !(bpf_ntohs(fh->frag_off) & IPV6_FRAG_MF);
	} else if (bpf_ntohs(fh->frag_off) & IPV6_FRAG_MF) {
		p->frag = PKT_FRAG_FIRST;
	}
	return 0;
}

static __always_inline int is_ipv6_ext(__u8 nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
	case IPV6_MOBILITY:
	case IPV6_HIP:
	case IPV6_SHIM6:
		return 1;
	}
	return 0;
}

static __always_inline int parse_ipv6(const struct frame *f, struct pkt *p, __u32 off)
{
	struct ipv6hdr *ip6 = frame_ptr(f, off, sizeof(*ip6));
	__u32 l3_off = off, len_field;
	__u8 nexthdr;
	int err;

	if (!ip6 || ip6->version != 6)
		return TCF_CTR_MAL_IPV6;
	p->key.ethertype = ETH_P_IPV6;
	__builtin_memcpy(p->key.addr[0], &ip6->saddr, sizeof(ip6->saddr));
	__builtin_memcpy(p->key.addr[1], &ip6->daddr, sizeof(ip6->daddr));
	nexthdr = ip6->nexthdr;
	/* A zero payload length is a jumbogram only with a hop-by-hop header. */
	len_field = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	if (!ip6->payload_len && nexthdr == IPPROTO_HOPOPTS)
		len_field = 0;
	if (ip_bytes(f, p, off, len_field, sizeof(*ip6)))
		return TCF_CTR_MAL_IPV6;
	off += sizeof(*ip6);

	for (int i = 0; i < TCF_MAX_EXT_HDRS; i++) {
		if (!is_ipv6_ext(nexthdr) || p->frag == PKT_FRAG_LATER)
			break;
		err = parse_ipv6_ext(f, p, &off, &nexthdr);
		if (err)
			return err;
	}
	if (is_ipv6_ext(nexthdr) && p->frag != PKT_FRAG_LATER)
		return TCF_CTR_MAL_IPV6_EXT;
	if (off - l3_off > p->bytes)
		return TCF_CTR_MAL_IPV6_EXT;
	p->key.proto = nexthdr;
	p->hdr_len = off - l3_off;
	if (p->frag == PKT_FRAG_LATER) {
		p->has_data = p->bytes > p->hdr_len;
		return 0;
	}
	/* A transport header deeper than frame_ptr() reaches: an over-long chain. */
	if (off > TCF_MAX_HDR_OFF)
		return TCF_CTR_MAL_IPV6_EXT;
	return parse_l4(f, p, off, p->bytes - p->hdr_len);
}

/*
 * The IP header at `off` and what follows. A global function: the verifier
 * checks it once, not once for every way of reaching it (no link-layer
 * header, Ethernet, each number of VLAN tags).
 */
__attribute__((noinline)) int tcf_parse_ip(struct __sk_buff *skb, struct pkt *p, __u32 off,
					   int ipv6)
{
	struct frame f = {.skb = skb};

	if (!p)
		return TCF_CTR_MAL_L2;
	return ipv6 ? parse_ipv6(&f, p, off) : parse_ipv4(&f, p, off);
}

/* The same for a frame of the read_frames array. */
__attribute__((noinline)) int tcf_parse_read_ip(struct tcf_read_frame *rf, struct pkt *p, __u32 off,
						int ipv6)
{
	struct frame f = {.rf = rf};

	if (!rf || !p)
		return TCF_CTR_MAL_L2;
	return ipv6 ? parse_ipv6(&f, p, off) : parse_ipv4(&f, p, off);
}

/*
 * A frame whose link-layer header is not Ethernet, with a network protocol
 * that is not IP: a link-layer flow of skb->protocol, without addresses.
 */
static __always_inline int parse_raw_link(struct __sk_buff *skb, struct pkt *p, __u32 off)
{
	p->key.kind = TCF_KIND_LINK;
	p->key.ethertype = bpf_ntohs(skb->protocol);
	p->bytes = p->frame_len - off;
	return 0;
}

/*
 * Whether the frame may not be read as Ethernet, so that the network
 * header's place is worth the probes (a few helper calls): Ethernet is the
 * rule, and an Ethernet frame's EtherType is skb->protocol (or a length,
 * for 802.3), its first byte is a MAC's, not what IP headers start with,
 * and it carries an IP tunnel's packet only on the tunnel's underlay, where
 * the probes find Ethernet again.
 */
static __always_inline int may_not_be_ethernet(struct __sk_buff *skb, __u32 off, __be16 proto)
{
	__be16 ip = bpf_htons(ETH_P_IP), ip6 = bpf_htons(ETH_P_IPV6), type = skb->protocol;
	__u8 *h = pkt_ptr(skb, 0, ETH_HLEN), *l3;
	__be16 h_proto;

	if (!h)
		return 1;
	if ((type == ip && h[0] >> 4 == 4) || (type == ip6 && h[0] >> 4 == 6))
		return 1;
	h_proto = *(__be16 *)(h + 12);
	if (h_proto != type && (bpf_ntohs(h_proto) >= ETH_P_802_3_MIN ||
				(type != bpf_htons(ETH_P_802_2) && type != bpf_htons(ETH_P_802_3))))
		return 1;
	if (proto != ip && proto != ip6)
		return 0;
	l3 = pkt_ptr(skb, off, sizeof(struct iphdr));
	if (!l3)
		return 0;
	switch (l3[proto == ip ? 9 : 6]) { /* IPv4 protocol, IPv6 next header */
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
	case IPPROTO_GRE:
		return 1;
	}
	return 0;
}

/* The whole frame; the key's ifindex and direction are the caller's. */
static __always_inline int parse_frame(struct __sk_buff *skb, struct pkt *p)
{
	struct frame f = {.skb = skb};
	/* Set before every use, but clang must see it set: it may spill an
	 * undefined value from a register the verifier knows is unset. */
	__be16 proto = 0;
	__u32 off = ETH_HLEN;
	int err = parse_eth(&f, p, &off, &proto);
	int moved = err || may_not_be_ethernet(skb, off, proto) ? moved_net_header(skb, off) : -1;

	if (moved >= 0) {
		/* Not Ethernet: what parse_eth read is not addresses nor tags. */
		__builtin_memset(&p->key, 0, sizeof(p->key));
		off = moved;
		proto = skb->protocol;
		err = 0;
	}
	if (err)
		return err;
	if (proto == bpf_htons(ETH_P_IP) || proto == bpf_htons(ETH_P_IPV6))
		return tcf_parse_ip(skb, p, off, proto == bpf_htons(ETH_P_IPV6));
	return moved >= 0 ? parse_raw_link(skb, p, off) : parse_link(&f, p, off, proto);
}

/*
 * A frame of a capture in the read_frames array: Ethernet, always (user
 * space gives other link types an Ethernet header).
 */
static __always_inline int parse_read_frame(struct tcf_read_frame *rf, struct pkt *p)
{
	struct frame f = {.rf = rf};
	__be16 proto = 0;
	__u32 off = ETH_HLEN;
	int err = parse_eth(&f, p, &off, &proto);

	if (err)
		return err;
	if (proto == bpf_htons(ETH_P_IP) || proto == bpf_htons(ETH_P_IPV6))
		return tcf_parse_read_ip(rf, p, off, proto == bpf_htons(ETH_P_IPV6));
	return parse_link(&f, p, off, proto);
}

#endif /* TCFLOWS_PARSE_H */
