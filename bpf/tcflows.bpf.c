// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcflows: count every packet and byte per connection at TC ingress and
 * egress, and report connection lifecycle events through a ring buffer.
 *
 * The flow map holds one entry per flow key (both directions) with the
 * counters of its current connection. When a new connection starts on the
 * same key (a SYN after close, or traffic after idleness), the program moves
 * the old connection's final counters to the ended map and starts from zero.
 * The maps are authoritative; events only add timing detail.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load. */
const volatile struct tcf_config tcf_cfg = {};

/* Sizes of the flow, ended and events maps are set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tcf_flow_key);
	__type(value, struct tcf_flow_val);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tcf_ended_key);
	__type(value, struct tcf_flow_val);
} ended SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCF_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/*
 * What the first fragment of a datagram was counted under (ports, kind and
 * upper-layer protocol), for the later fragments of the same datagram. The
 * last fragment removes the entry; an entry older than TCF_FRAG_MAX_AGE_NS
 * (its last fragment lost) is not used, so that a datagram that reuses the IP
 * identification after it wraps does not join the wrong flow.
 */
#define TCF_FRAG_MAX_AGE_NS (2ULL * 1000 * 1000 * 1000)

struct frag_key {
	__u32 addr[2][4];
	__u32 id;
	__u8 proto; /* IPv4 protocol, or next header of the IPv6 fragment header */
	__u8 pad[3];
};

struct frag_val {
	__u64 first_ns; /* packet clock of the first fragment */
	__u16 port[2];
	__u8 proto;
	__u8 kind;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct frag_key);
	__type(value, struct frag_val);
} frags SEC(".maps");

static __always_inline void ctr_add(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += n;
}

/* The one packet clock: boot time, or the frame's timestamp offline. */
static __always_inline __u64 packet_clock(const struct __sk_buff *skb)
{
	if (tcf_cfg.flags & TCF_CFG_SKB_TSTAMP)
		return skb->tstamp;
	return bpf_ktime_get_boot_ns();
}

/*
 * Wire packets of a frame: a GSO/GRO super-packet is gso_segs packets; one
 * with gso_segs 0 (virtio, tap) is as many as its payload fills segments of
 * gso_size.
 */
static __always_inline __u32 wire_packets(const struct __sk_buff *skb, const struct pkt *p)
{
	__u64 payload = p->bytes > p->hdr_len ? p->bytes - p->hdr_len : 0;
	__u32 size = skb->gso_size;

	if (skb->gso_segs > 1)
		return skb->gso_segs;
	if (skb->gso_segs || !size || payload <= size)
		return 1;
	return (payload + size - 1) / size;
}

/* IP bytes on the wire: every segment after the first repeats the headers. */
static __always_inline __u64 wire_bytes(const struct __sk_buff *skb, const struct pkt *p)
{
	return p->bytes + (__u64)(wire_packets(skb, p) - 1) * p->hdr_len;
}

static __always_inline void emit(const struct tcf_flow_key *key, __u8 type, __u32 gen, __u8 dir,
				 __u8 bits, __u8 hook, __u64 now)
{
	struct tcf_event *e;

	if (!(tcf_cfg.flags & TCF_CFG_EVENTS))
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		ctr_add(TCF_CTR_RINGBUF_FULL, 1);
		return;
	}
	e->key = *key;
	e->ts_ns = now;
	e->gen = gen;
	e->type = type;
	e->dir = dir;
	e->bits = bits;
	e->hook = hook;
	bpf_ringbuf_submit(e, 0);
}

/* Orders the endpoints (lower address, then port, first); returns the direction. */
static __always_inline __u8 canonicalise(struct tcf_flow_key *k)
{
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		__u32 a = bpf_ntohl(k->addr[0][i]), b = bpf_ntohl(k->addr[1][i]);

		if (a != b) {
			if (a < b)
				return TCF_DIR_FWD;
			goto swap;
		}
	}
	if (k->port[0] <= k->port[1])
		return TCF_DIR_FWD;
swap:
#pragma unroll
	for (i = 0; i < 4; i++) {
		__u32 t = k->addr[0][i];

		k->addr[0][i] = k->addr[1][i];
		k->addr[1][i] = t;
	}
	__u16 t = k->port[0];

	k->port[0] = k->port[1];
	k->port[1] = t;
	return TCF_DIR_REV;
}

/* Later fragments take the flow of their first fragment when it was seen. */
static __always_inline void frag_key_of(struct frag_key *fk, const struct pkt *p)
{
	__builtin_memcpy(fk->addr, p->key.addr, sizeof(fk->addr));
	fk->id = p->frag_id;
	fk->proto = p->frag_proto;
}

static __always_inline void track_fragments(struct pkt *p, __u64 now)
{
	struct frag_key fk = {};
	struct frag_val *first, val = {};

	if (p->frag == PKT_NOT_FRAG)
		return;
	frag_key_of(&fk, p);
	if (p->frag == PKT_FRAG_FIRST) {
		val.first_ns = now;
		val.port[0] = p->key.port[0];
		val.port[1] = p->key.port[1];
		val.proto = p->key.proto;
		val.kind = p->key.kind;
		if (bpf_map_update_elem(&frags, &fk, &val, BPF_ANY))
			ctr_add(TCF_CTR_FRAG_TRACK_FAILED, 1);
		return;
	}
	first = bpf_map_lookup_elem(&frags, &fk);
	/* A clock that went back (offline mode) leaves an entry in use. */
	if (first && (now < first->first_ns || now - first->first_ns <= TCF_FRAG_MAX_AGE_NS)) {
		p->key.port[0] = first->port[0];
		p->key.port[1] = first->port[1];
		p->key.proto = first->proto;
		p->key.kind = first->kind;
		if (p->frag_last)
			bpf_map_delete_elem(&frags, &fk);
		return;
	}
	if (first)
		bpf_map_delete_elem(&frags, &fk);
	p->key.kind = TCF_KIND_FRAG;
	ctr_add(TCF_CTR_FRAG_UNMATCHED, 1);
}

/* Zeek history letters this packet shows, for its direction. */
static __always_inline __u8 seen_bits(const struct pkt *p)
{
	__u8 f = p->tcp_flags, bits = TCF_SEEN_PKT;

	if (p->key.proto != IPPROTO_TCP || p->key.kind != TCF_KIND_PORTS)
		return p->has_data ? bits | TCF_SEEN_DATA : bits;
	/* As Zeek's history: data counts only on a segment without SYN, FIN or RST. */
	if (p->has_data && !(f & (TCP_SYN | TCP_FIN | TCP_RST)))
		bits |= TCF_SEEN_DATA;
	if (f & TCP_SYN)
		bits |= (f & TCP_ACK) ? TCF_SEEN_SYNACK : TCF_SEEN_SYN;
	else if (f & TCP_ACK)
		bits |= TCF_SEEN_ACK;
	if (f & TCP_FIN)
		bits |= TCF_SEEN_FIN;
	if (f & TCP_RST)
		bits |= TCF_SEEN_RST;
	if ((f & (TCP_ACK | TCP_SYN | TCP_FIN | TCP_RST)) == TCP_ACK && !p->has_data)
		bits |= TCF_SEEN_PUREACK;
	return bits;
}

static __always_inline __u64 idle_timeout(const struct tcf_flow_key *k)
{
	switch (k->proto) {
	case IPPROTO_TCP:
		return tcf_cfg.idle_ns[TCF_IDLE_TCP];
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return tcf_cfg.idle_ns[TCF_IDLE_UDP];
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return tcf_cfg.idle_ns[TCF_IDLE_ICMP];
	}
	return tcf_cfg.idle_ns[TCF_IDLE_OTHER];
}

/* Does this packet start a new connection on an existing entry? */
static __always_inline int starts_connection(const struct tcf_flow_val *v, const struct pkt *p,
					     __u8 bits, __u64 now)
{
	__u64 idle = idle_timeout(&p->key), last = v->last_ns;
	__u32 seen = v->seen;

	if (idle && now > last && now - last > idle)
		return 1;
	if (!(bits & TCF_SEEN_SYN) || p->key.kind != TCF_KIND_PORTS)
		return 0;
	/* A SYN after RST, or after FIN both ways. */
	if (seen & (TCF_SEEN_RST | TCF_SEEN_RST << 8))
		return 1;
	return (seen & TCF_SEEN_FIN) && (seen & TCF_SEEN_FIN << 8);
}

static __always_inline void fill_first(struct tcf_flow_val *v, const struct pkt *p, __u8 dir,
				       __u8 hook, __u64 now)
{
	v->first_ns = now;
	v->last_ns = now;
	v->first_dir = dir;
	v->first_hook = hook;
	v->icmp_type = p->icmp_type;
	v->icmp_code = p->icmp_code;
}

/*
 * Ends the entry's connection and starts a new one: the final counters go to
 * the ended map under {key, gen}. When that map is full, the counters stay
 * (the connections merge) so that no packet is lost, and the merge is counted.
 */
static __always_inline void split(struct tcf_flow_val *v, const struct pkt *p, __u8 dir, __u8 hook,
				  __u64 now)
{
	struct tcf_ended_key ek = {.flow = p->key};
	struct tcf_flow_val old = *v;
	__u32 gen = old.gen;

	/* Only one CPU ends a given connection. */
	if (__sync_val_compare_and_swap(&v->gen, gen, gen + 1) != gen)
		return;
	old.pkts[0] = __sync_lock_test_and_set(&v->pkts[0], 0);
	old.pkts[1] = __sync_lock_test_and_set(&v->pkts[1], 0);
	old.bytes[0] = __sync_lock_test_and_set(&v->bytes[0], 0);
	old.bytes[1] = __sync_lock_test_and_set(&v->bytes[1], 0);
	old.seen = __sync_lock_test_and_set(&v->seen, 0);
	old.tcp_flags = __sync_lock_test_and_set(&v->tcp_flags, 0);
	ek.gen = gen;
	if (bpf_map_update_elem(&ended, &ek, &old, BPF_NOEXIST)) {
		__sync_fetch_and_add(&v->pkts[0], old.pkts[0]);
		__sync_fetch_and_add(&v->pkts[1], old.pkts[1]);
		__sync_fetch_and_add(&v->bytes[0], old.bytes[0]);
		__sync_fetch_and_add(&v->bytes[1], old.bytes[1]);
		__sync_fetch_and_or(&v->seen, old.seen);
		__sync_fetch_and_or(&v->tcp_flags, old.tcp_flags);
		__sync_val_compare_and_swap(&v->gen, gen + 1, gen);
		ctr_add(TCF_CTR_SPLIT_FAILED, 1);
		return;
	}
	fill_first(v, p, dir, hook, now);
	emit(&p->key, TCF_EV_ENDED, gen, dir, 0, hook, now);
}

/* Creates the flow entry; NULL (counted) when the map cannot take it. */
static __always_inline struct tcf_flow_val *create(const struct pkt *p, __u8 dir, __u8 hook,
						   __u64 now, int *created)
{
	struct tcf_flow_val init = {};
	long err;

	fill_first(&init, p, dir, hook, now);
	err = bpf_map_update_elem(&flows, &p->key, &init, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		ctr_add(err == -E2BIG ? TCF_CTR_FLOW_FULL : TCF_CTR_FLOW_ERROR, 1);
		return NULL;
	}
	/* On -EEXIST another CPU created it first: count into theirs. */
	*created = !err;
	return bpf_map_lookup_elem(&flows, &p->key);
}

/* ORs the packet's TCP flags into its direction's (IPFIX tcpControlBits). */
static __always_inline void mark_flags(struct tcf_flow_val *v, const struct pkt *p, __u8 dir)
{
	__u32 mine = (__u32)p->tcp_flags << (8 * dir);

	if ((v->tcp_flags & mine) != mine)
		__sync_fetch_and_or(&v->tcp_flags, mine);
}

/* Records first occurrences of the packet's history letters. */
static __always_inline void mark_seen(struct tcf_flow_val *v, const struct pkt *p, __u8 dir,
				      __u8 bits, __u8 hook, __u64 now, int created)
{
	__u32 mine = (__u32)bits << (8 * dir), old;
	__u8 fresh;

	if ((v->seen & mine) == mine && !created)
		return;
	old = __sync_fetch_and_or(&v->seen, mine);
	fresh = (mine & ~old) >> (8 * dir);
	if (fresh || created)
		emit(&p->key, created ? TCF_EV_NEW_FLOW : TCF_EV_SEEN, v->gen, dir, fresh, hook,
		     now);
}

static __always_inline void count(struct __sk_buff *skb, struct pkt *p, __u8 hook)
{
	__u64 now = packet_clock(skb), pkts = wire_packets(skb, p), bytes = wire_bytes(skb, p);
	struct tcf_flow_val *v;
	int created = 0;
	__u8 bits, dir;

	track_fragments(p, now);
	bits = seen_bits(p);
	dir = canonicalise(&p->key);
	v = bpf_map_lookup_elem(&flows, &p->key);
	if (!v)
		v = create(p, dir, hook, now, &created);
	else if (starts_connection(v, p, bits, now))
		split(v, p, dir, hook, now);
	if (!v) {
		ctr_add(TCF_CTR_UNTRACKED_PKTS, pkts);
		ctr_add(TCF_CTR_UNTRACKED_BYTES, bytes);
		return;
	}
	__sync_fetch_and_add(&v->pkts[dir & 1], pkts);
	__sync_fetch_and_add(&v->bytes[dir & 1], bytes);
	if (now > v->last_ns)
		v->last_ns = now;
	mark_flags(v, p, dir & 1);
	mark_seen(v, p, dir & 1, bits, hook, now, created);
}

static __always_inline void handle(struct __sk_buff *skb, __u8 hook)
{
	struct pkt p = {};
	int err;

	ctr_add(TCF_CTR_FRAMES, 1);
	if (skb_is_gso(skb))
		ctr_add(TCF_CTR_GSO_FRAMES, 1);
	err = parse_frame(skb, &p);
	if (err) {
		ctr_add(TCF_CTR_MALFORMED, 1);
		ctr_add(TCF_CTR_MALFORMED_BYTES, skb->len);
		ctr_add(err, 1);
		return;
	}
	p.key.ifindex = skb->ifindex;
	count(skb, &p, hook);
}

/*
 * Observers return TC_ACT_UNSPEC: the packet goes on to the next filter as if
 * tcflows were not there, so filters of others keep working.
 */
SEC("tc")
int tcflows_ingress(struct __sk_buff *skb)
{
	handle(skb, TCF_HOOK_INGRESS);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tcflows_egress(struct __sk_buff *skb)
{
	handle(skb, TCF_HOOK_EGRESS);
	return TC_ACT_UNSPEC;
}
