/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between the TC program (tcflows.bpf.c) and user space.
 *
 * Fixed-width types only and explicit padding: user space includes this file
 * after <linux/types.h> and static_asserts every size. Nothing here may depend
 * on the compiler's struct layout choices.
 */
#ifndef TCFLOWS_ABI_H
#define TCFLOWS_ABI_H

/* What the two endpoint "ports" of a flow key hold. */
enum tcf_kind {
	TCF_KIND_PORTS = 0,	/* TCP, UDP, SCTP, DCCP, UDP-Lite: transport ports */
	TCF_KIND_ICMP_ECHO = 1, /* ICMP/ICMPv6 echo: both ports = echo identifier */
	TCF_KIND_ICMP = 2,	/* other ICMP: sender port = type << 8 | code, other 0 */
	TCF_KIND_IP = 3,	/* any other IP protocol: no ports */
	TCF_KIND_FRAG = 4,	/* non-first fragments of an unseen first fragment */
	TCF_KIND_LINK = 5,	/* non-IP frame: addresses are MACs, no ports */
};

/* Link-layer flows of 802.3 frames (length, not EtherType) use this ethertype. */
#define TCF_ETH_LLC 0x0000

/*
 * A canonical bidirectional flow key: endpoint 0 is the lower of the two
 * (address, port) pairs, so both directions of a connection share one entry.
 * Addresses are in network byte order; IPv4 uses addr[i][0] only, MACs the
 * first 6 bytes. Ports are in host byte order. For TCF_KIND_LINK frames the
 * ports hold the 802.2 LLC SAPs (DSAP << 8 | SSAP), or 0xAAAA for SNAP with
 * the SNAP protocol id in ethertype.
 */
struct tcf_flow_key {
	__u32 addr[2][4];
	__u16 port[2];
	__u32 ifindex;
	__u16 vlan[2];	 /* outer and inner VLAN id, 0 when untagged */
	__u16 ethertype; /* ETH_P_IP, ETH_P_IPV6, or the link-layer type */
	__u8 proto;	 /* IP protocol number, 0 for link-layer flows */
	__u8 kind;	 /* enum tcf_kind */
};

/* Packet directions within a flow: from endpoint 0 to 1, and back. */
enum tcf_dir {
	TCF_DIR_FWD = 0,
	TCF_DIR_REV = 1,
};

/* Where the program saw a packet. */
enum tcf_hook {
	TCF_HOOK_INGRESS = 0,
	TCF_HOOK_EGRESS = 1,
};

/*
 * First-occurrence bits, one byte per direction in tcf_flow_val.seen
 * (direction d at bits 8*d .. 8*d+7). They are Zeek's history letters.
 */
enum tcf_seen {
	TCF_SEEN_PKT = 1 << 0,	   /* any packet */
	TCF_SEEN_SYN = 1 << 1,	   /* TCP SYN without ACK: 's' */
	TCF_SEEN_SYNACK = 1 << 2,  /* TCP SYN with ACK: 'h' */
	TCF_SEEN_ACK = 1 << 3,	   /* TCP ACK without SYN, with or without data */
	TCF_SEEN_PUREACK = 1 << 4, /* TCP ACK without SYN, FIN, RST or data: 'a' */
	TCF_SEEN_DATA = 1 << 5,	   /* payload: 'd' */
	TCF_SEEN_FIN = 1 << 6,	   /* TCP FIN: 'f' */
	TCF_SEEN_RST = 1 << 7,	   /* TCP RST: 'r' */
};

/*
 * Counters of one connection on a flow key. All counters are 64-bit and
 * updated atomically, so both CPUs may count the same flow at once.
 */
struct tcf_flow_val {
	__u64 pkts[2];	 /* wire packets per enum tcf_dir */
	__u64 bytes[2];	 /* IP-level bytes (frame bytes for link flows) */
	__u64 first_ns;	 /* packet clock of the connection's first packet */
	__u64 last_ns;	 /* packet clock of the latest packet */
	__u32 seen;	 /* enum tcf_seen bits, per direction */
	__u32 gen;	 /* connection number on this key, bumped at reuse */
	__u8 first_dir;	 /* direction of the first packet */
	__u8 first_hook; /* enum tcf_hook of the first packet */
	__u8 icmp_type;	 /* type and code of the first ICMP packet */
	__u8 icmp_code;
	__u32 tcp_flags; /* OR of the TCP flags seen, direction d in bits 8*d..8*d+7 */
};

/* A connection that the program ended (reuse or idle) awaits user space. */
struct tcf_ended_key {
	struct tcf_flow_key flow;
	__u32 gen;
	__u32 pad;
};

/* Ring-buffer event types. */
enum tcf_event_type {
	TCF_EV_NEW_FLOW = 1, /* a flow entry was created */
	TCF_EV_SEEN = 2,     /* first occurrence of the `bits` in `dir` */
	TCF_EV_ENDED = 3,    /* connection `gen` ended; its final counters are in
				the ended map under {key, gen} */
};

struct tcf_event {
	struct tcf_flow_key key;
	__u64 ts_ns; /* packet clock */
	__u32 gen;
	__u8 type; /* enum tcf_event_type */
	__u8 dir;  /* enum tcf_dir of the packet */
	__u8 bits; /* enum tcf_seen bits that occurred first with this packet */
	__u8 hook; /* enum tcf_hook */
};

/* Indices of the per-CPU counters map: every place where data can be lost. */
enum tcf_counter {
	TCF_CTR_FRAMES = 0,	   /* frames the program saw */
	TCF_CTR_GSO_FRAMES,	   /* of which GSO/GRO super-packets */
	TCF_CTR_MALFORMED,	   /* frames not attributed: malformed or truncated */
	TCF_CTR_MALFORMED_BYTES,   /* their frame bytes */
	TCF_CTR_MAL_L2,		   /* truncated Ethernet or VLAN header */
	TCF_CTR_MAL_IPV4,	   /* bad IPv4 version, IHL or total length */
	TCF_CTR_MAL_IPV6,	   /* bad IPv6 version or payload length */
	TCF_CTR_MAL_IPV6_EXT,	   /* truncated or over-long extension header chain */
	TCF_CTR_MAL_L4,		   /* truncated transport header */
	TCF_CTR_FLOW_FULL,	   /* flow insert failed: map full */
	TCF_CTR_FLOW_ERROR,	   /* flow insert failed: other error */
	TCF_CTR_UNTRACKED_PKTS,	   /* wire packets of frames no flow took */
	TCF_CTR_UNTRACKED_BYTES,   /* their bytes */
	TCF_CTR_FRAG_UNMATCHED,	   /* non-first fragments counted as fragment flows */
	TCF_CTR_FRAG_TRACK_FAILED, /* first fragment not remembered */
	TCF_CTR_RINGBUF_FULL,	   /* ring-buffer events lost */
	TCF_CTR_SPLIT_FAILED,	   /* ended map full: connections merged, not split */
	TCF_CTR_MAX,
};

/* Configuration user space sets in .rodata before load. */
enum tcf_cfg_flags {
	TCF_CFG_EVENTS = 1 << 0,     /* emit ring-buffer events */
	TCF_CFG_SKB_TSTAMP = 1 << 1, /* packet clock = skb->tstamp (offline mode) */
};

/* Idle timeout classes, indices of tcf_config.idle_ns. */
enum tcf_idle_class {
	TCF_IDLE_TCP = 0,
	TCF_IDLE_UDP,
	TCF_IDLE_ICMP,
	TCF_IDLE_OTHER,
	TCF_IDLE_MAX,
};

struct tcf_config {
	__u64 idle_ns[TCF_IDLE_MAX]; /* a packet after this much idleness starts a
					new connection; 0 = never */
	__u32 flags;		     /* enum tcf_cfg_flags */
	__u32 pad;
};

#endif /* TCFLOWS_ABI_H */
