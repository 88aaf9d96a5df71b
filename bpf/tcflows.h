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
 * First-occurrence bits, one byte per direction in tcf_conn.marks
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
 * TCP health of one direction of a connection: what the segments sent that
 * way show, seen where the program runs (see tcf_tcp_health in conn.h).
 * Sequence numbers compare modulo 2^32. The counters are updated
 * atomically, the rest by plain stores: two CPUs sending the same direction
 * at once may lose a round-trip sample, never a packet.
 */
struct tcf_tcp_dir {
	__u32 seq_hi;	   /* the highest sequence number sent, plus one */
	__u32 rtt_mark;	   /* the sequence end whose ACK is awaited */
	__u64 seq_hi_ns;   /* when seq_hi last advanced; 0 before the first segment */
	__u64 rtt_mark_ns; /* when rtt_mark was sent; 0: none */
	__u64 retx_bytes;  /* IP-level bytes of retx_pkts */
	__u64 rtt_sum_ns;  /* the sum of the rtt_n round trips */
	__u32 retx_pkts;   /* segments starting below seq_hi: retransmissions */
	__u32 ooo_pkts;	   /* segments starting below seq_hi soon after it advanced:
			      out of order (not in retx_pkts) */
	__u32 zero_win;	   /* segments advertising a zero window */
	__u32 rtt_n;	   /* round trips measured */
	__u32 rtt_min_ns;  /* the shortest and longest, capped at ~4.29 s */
	__u32 rtt_max_ns;
};

/*
 * tcf_conn.health_order: for each health letter (TCF_HEALTH_RETX,
 * TCF_HEALTH_ZWIN per direction: index 2 * letter + dir) and its 1st and 10th
 * occurrence, 4 bits holding how many seen bits (tcf_conn.order) came before
 * it; at bit 8 * index + 4 * (10th occurrence).
 */
enum tcf_health_letter {
	TCF_HEALTH_RETX = 0, /* Zeek's 't' */
	TCF_HEALTH_ZWIN = 1, /* Zeek's 'w' */
};
#define TCF_HEALTH_RANK(order, letter, dir, tenth)                                                 \
	(((order) >> (8 * (2 * (letter) + (dir)) + 4 * (tenth))) & 0xf)

/*
 * One connection: a slot of the `conns` array, which user space maps into its
 * memory. The `index` (see TCF_INDEX_*) says which slot holds the current
 * connection of a flow key; the slot holds everything about it. A slot is
 * taken from the `free_slots` stack (or from those never used) by the packet
 * that starts the connection
 * and given back by user space once the connection's final record is
 * written, so a slot never changes meaning while a program or the agent may
 * still look at it (see enum tcf_slot_state).
 *
 * Counters are 64-bit and updated atomically. The history of first
 * occurrences is the seen bits plus their order: `order` holds, for each of
 * the 16 seen bits (direction d, bit b at index 8*d + b), how many bits were
 * seen before it, so that sorting the bits by it replays the connection's
 * history without an event per letter.
 */
struct tcf_conn {
	struct tcf_flow_key key; /* canonical; set when the slot is taken */
	__u64 pkts[2];		 /* wire packets per enum tcf_dir */
	__u64 bytes[2];		 /* IP-level bytes (frame bytes for link flows) */
	__u64 first_ns;		 /* packet clock of the first packet */
	__u64 last_ns;		 /* packet clock of the latest packet */
	__u64 order;		 /* 4 bits per seen bit: bits seen before it */
	__u32 state;		 /* enum tcf_slot_state | reason << 4 | incarnation << 8 */
	__u32 marks;		 /* enum tcf_seen bits per direction (bits 0..15), and the
				    OR of the TCP flags per direction (bits 16..31) */
	__u32 ack_dt;		 /* ns from first_ns to the ACK that completed the
				    handshake; 0 when none, ~0 when later than 4.29 s */
	__u32 health_order;	 /* TCF_HEALTH_RANK: where the health letters go in the history */
	__u32 syn_seq;		 /* sequence number of the first SYN (its ISN) */
	__u8 first;		 /* enum tcf_first of the first packet */
	__u8 icmp_type;		 /* type and code of the first ICMP packet */
	__u8 icmp_code;
	__u8 pad;
	struct tcf_tcp_dir tcp[2]; /* TCP only, per enum tcf_dir: zero for other protocols */
};

/* tcf_conn.first: the first packet's direction and hook, and its first SYN's. */
enum tcf_first {
	TCF_FIRST_DIR = 1 << 0,	    /* enum tcf_dir */
	TCF_FIRST_EGRESS = 1 << 1,  /* seen at egress (else ingress) */
	TCF_FIRST_SYN_DIR = 1 << 3, /* enum tcf_dir of the first SYN */
	TCF_FIRST_SYN = 1 << 4,	    /* a SYN was seen: syn_seq is its ISN */
};

/*
 * A slot's life, in the low 4 bits of tcf_conn.state:
 *   FREE -> ACTIVE          a packet took it for a new connection
 *   ACTIVE -> ENDED         a packet started the next connection on its key
 *                           (a SYN after close or with a new ISN, idleness)
 *   ACTIVE -> SEALED        user space decided the connection is over (closed
 *                           and lingered, or idle): the next packet on the
 *                           key starts a new connection
 *   ENDED, SEALED -> FREE   user space read the final counters after every
 *                           program that could still add to them had run
 *                           (an RCU grace period) and wrote the record
 * Only ACTIVE slots take packets. The incarnation (state >> 8) grows each
 * time user space frees the slot.
 */
enum tcf_slot_state {
	TCF_SLOT_FREE = 0,
	TCF_SLOT_ACTIVE = 1,
	TCF_SLOT_ENDED = 2,
	TCF_SLOT_SEALED = 3,
};

/* Why a slot left ACTIVE: tcf_conn.state bits 4..7. */
enum tcf_end_reason {
	TCF_END_NONE = 0,
	TCF_END_REUSED = 1, /* a SYN after close, or with a new ISN, started the next one */
	TCF_END_IDLE = 2,   /* idle past its timeout */
	TCF_END_CLOSED = 3, /* closed (FIN both ways, or RST) and lingered */
};

#define TCF_STATE_MASK	      0xfu
#define TCF_REASON_SHIFT      4
#define TCF_INCARNATION_SHIFT 8

/*
 * The index (map conn_index): an open-addressing hash table from flow key to slot, an array of
 * 2^n 64-bit entries that user space maps too. A key's probe starts at its
 * digest's low bits (its home) and goes on linearly, at most TCF_PROBES
 * entries. An entry is empty (0), a tombstone (slot field 0, not empty), or
 * names a slot: the digest's top 24 bits as a tag, the distance from its home,
 * and the slot + 1. Programs fill empty entries and swap slots in entries
 * with a compare-and-swap (a new key takes the first tombstone of its probe,
 * else the empty entry that ends it); only user space turns an entry into a tombstone
 * (again a compare-and-swap: only if it still names the slot it removes), or
 * a tombstone back to empty (at the end of a run, so that no probe breaks).
 */
#define TCF_PROBES	  16
#define TCF_INDEX_TOMB	  0xffffffff00000000ULL
#define TCF_INDEX_SLOT(e) ((__u32)(e))
#define TCF_INDEX_DIST(e) ((__u32)((e) >> 32) & 0xff)
#define TCF_INDEX_TAG(e)  ((__u32)((e) >> 40))
#define TCF_INDEX_ENTRY(tag, dist, slot)                                                           \
	((__u64)(tag) << 40 | (__u64)(dist) << 32 | (__u64)((slot) + 1))
#define TCF_DIGEST_TAG(digest) ((__u32)((digest) >> 40))

/*
 * Shared by the program and user space: the one entry of the `pool` map.
 * Slots are taken from the free stack, and when it is empty from the ones
 * never used, in order: slots 0 .. used-1 have been taken at least once.
 */
struct tcf_pool {
	__s64 free;	  /* slots on the free stack */
	__u32 used;	  /* slots ever taken (may pass the table's size when it is full) */
	__u32 bell_armed; /* 1: the next slot taken below the watermark rings */
};

/* The one ring-buffer event: free slots run low, sweep now. */
struct tcf_doorbell {
	__s64 free; /* free slots when it rang */
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
	TCF_CTR_FLOW_FULL,	   /* no free slot, or no free index entry: not tracked */
	TCF_CTR_FLOW_ERROR,	   /* a map lookup failed (cannot happen): not tracked */
	TCF_CTR_UNTRACKED_PKTS,	   /* wire packets of frames no connection took */
	TCF_CTR_UNTRACKED_BYTES,   /* their bytes */
	TCF_CTR_FRAG_UNMATCHED,	   /* non-first fragments counted as fragment flows */
	TCF_CTR_FRAG_TRACK_FAILED, /* first fragment not remembered */
	TCF_CTR_CONNECTIONS,	   /* connections started (slots taken) */
	TCF_CTR_PROBES,		   /* index entries passed over to reach a connection */
	TCF_CTR_RETRIES,	   /* frames whose connection changed while they looked */
	TCF_CTR_DOORBELLS,	   /* doorbells rung (ring-buffer events) */
	TCF_CTR_DOORBELLS_LOST,	   /* doorbells the full ring buffer refused: latency only */
	TCF_CTR_MAX,
};

/* Configuration user space sets in .rodata before load. */
enum tcf_cfg_flags {
	TCF_CFG_SKB_TSTAMP = 1 << 0, /* packet clock = skb->tstamp (offline mode) */
};

/*
 * A test run of the hooks on a program loaded for offline use (the tests'
 * and bpf_cost's; `tcflows read` runs tcflows_read) may cut a frame longer
 * than a test run takes to its first bytes (its headers), as read_frames
 * does: skb->cb[TCF_CB_FRAME_LEN] then holds its whole length, which the
 * program counts. Live, the program never reads cb.
 */
enum { TCF_CB_FRAME_LEN = 0 };

/* tcflows_read's skb->cb[TCF_CB_READ_FRAMES]: frames of read_frames to run. */
enum { TCF_CB_READ_FRAMES = 1 };

/*
 * Offline, user space writes the frames of a capture into the read_frames
 * array (mmapped) and runs tcflows_read once for as many as it wrote: one
 * test run for a batch of frames, not one for each. A frame is Ethernet
 * (user space gives other link types an Ethernet header); a longer one keeps
 * its first TCF_READ_FRAME_BYTES bytes (its headers), and `len` says its
 * whole length.
 */
#define TCF_READ_FRAME_BYTES 3584 /* also what a test run's skb takes */

struct tcf_read_frame {
	__u64 tstamp; /* the packet clock: capture time, ns */
	__u32 len;    /* the whole frame's length */
	__u32 caplen; /* bytes in data: at most TCF_READ_FRAME_BYTES */
	__u8 hook;    /* TCF_HOOK_*: the way it went */
	__u8 pad[3];
	__u32 ifindex; /* the flow key's interface */
	__u8 data[TCF_READ_FRAME_BYTES];
};

/* Frames one run of tcflows_read takes: the size of the read_frames array. */
#define TCF_READ_BATCH 256

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
	__u64 digest_mask;	     /* flow digests are ANDed with this: all ones;
					tests keep a few bits to force collisions */
	__u32 flags;		     /* enum tcf_cfg_flags */
	__u32 slots;		     /* entries of the conns array */
	__u32 index_mask;	     /* entries of the index, less one (2^n - 1) */
	__u32 bell_below;	     /* ring the doorbell when fewer slots are free */
};

#endif /* TCFLOWS_ABI_H */
