// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcflows: count every packet and byte per connection at TC ingress and
 * egress.
 *
 * Each connection has a slot in the `conns` array, which user space maps: the
 * slot holds its counters, times and history, and is the only truth. The
 * flow maps name the slot of each key's current connection. conn.h decides
 * which slot a packet is counted in and when it starts the next connection;
 * this file parses the frame and gives conn.h its maps and clocks. The only
 * event is a doorbell when free slots run low.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load. */
const volatile struct tcf_config tcf_cfg = {};

/* Sizes of conns, free_slots, index and events are set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct tcf_conn);
} conns SEC(".maps");

/* Slots user space has freed, taken last in first out so that few pages are in use. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 65536);
	__uint(value_size, sizeof(__u32));
} free_slots SEC(".maps");

/* Flow key -> slot: see TCF_INDEX_* in tcflows.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1 << 17);
	__type(key, __u32);
	__type(value, __u64);
} conn_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcf_pool);
} pool SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/*
 * Offline, the frames of a capture that one run of tcflows_read counts
 * (user space writes them through a mapping). Sized by the loader: one
 * entry when live.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, TCF_READ_BATCH);
	__type(key, __u32);
	__type(value, struct tcf_read_frame);
} read_frames SEC(".maps");

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

/* `tstamp`: the frame's, the packet clock offline. */
static __always_inline void track_fragments(struct pkt *p, __u64 tstamp)
{
	struct frag_key fk = {};
	struct frag_val *first, val = {};
	__u64 now;

	if (p->frag == PKT_NOT_FRAG)
		return;
	/* The packet clock, read here for fragments only (they are few). */
	now = (tcf_cfg.flags & TCF_CFG_SKB_TSTAMP) ? tstamp : bpf_ktime_get_boot_ns();
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

/*
 * The environment conn.h runs in: this program's maps, clocks and counters,
 * and the BPF atomics.
 */
#define TCF_INLINE  static __always_inline
#define TCF_SUBPROG __noinline

struct tcf_env {
	__u64 tstamp; /* the frame's, for the offline clock */
};

#define tcf_cfg_of(env)	       (&tcf_cfg)
#define tcf_load32(p)	       (*(volatile __u32 *)(p))
#define tcf_load64(p)	       (*(volatile __u64 *)(p))
#define tcf_cas32(p, old, new) __sync_val_compare_and_swap((p), (old), (new))
#define tcf_cas64(p, old, new) __sync_val_compare_and_swap((p), (old), (new))
#define tcf_xchg32(p, v)       __sync_lock_test_and_set((p), (v))
#define tcf_or32(p, v)	       __sync_fetch_and_or((p), (v))
#define tcf_or64(p, v)	       __sync_fetch_and_or((p), (v))
#define tcf_add32(p, v)	       __sync_fetch_and_add((p), (v))
#define tcf_add64(p, v)	       __sync_fetch_and_add((p), (v))
#define tcf_adds64(p, v)       __sync_fetch_and_add((p), (v))
#define tcf_adds32(p, v)       __sync_fetch_and_add((p), (v))
#define env_count(env, idx, n) ctr_add((idx), (n))

static __always_inline __u64 *env_index(struct tcf_env *env, __u32 position)
{
	return bpf_map_lookup_elem(&conn_index, &position);
}

static __always_inline struct tcf_conn *env_slot(struct tcf_env *env, __u32 index)
{
	return bpf_map_lookup_elem(&conns, &index);
}

static __always_inline struct tcf_pool *env_pool(struct tcf_env *env)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pool, &zero);
}

static __always_inline int env_pop_slot(struct tcf_env *env, __u32 *index)
{
	return bpf_map_pop_elem(&free_slots, index);
}

static __always_inline void env_push_slot(struct tcf_env *env, __u32 index)
{
	bpf_map_push_elem(&free_slots, &index, 0);
}

/* The packet clock: boot time, or the frame's timestamp offline. */
static __always_inline __u64 env_clock(struct tcf_env *env)
{
	if (tcf_cfg.flags & TCF_CFG_SKB_TSTAMP)
		return env->tstamp;
	return bpf_ktime_get_boot_ns();
}

static __always_inline int env_doorbell(struct tcf_env *env, __s64 free)
{
	struct tcf_doorbell bell = {.free = free};

	return bpf_ringbuf_output(&events, &bell, sizeof(bell), BPF_RB_FORCE_WAKEUP);
}

#include "conn.h"

/*
 * Counts a parsed frame (`pkts` wire packets, `bytes` wire bytes) in its
 * connection. conn.h's lookup and its use are functions of their own
 * (TCF_SUBPROG), verified once: inlined, their paths would multiply with
 * every path of the parser.
 */
static __always_inline void account(struct pkt *p, __u64 pkts, __u64 bytes, __u64 tstamp,
				    __u32 hook)
{
	struct tcf_env env = {.tstamp = tstamp};
	struct tcf_packet tp = {};

	tp.dir = canonicalise(&p->key);
	tp.key = p->key;
	tp.pkts = pkts;
	tp.bytes = bytes;
	tp.tcp_seq = p->tcp_seq;
	tp.tcp_ack = p->tcp_ack;
	tp.tcp_payload = p->tcp_payload;
	tp.tcp_window = p->tcp_window;
	tp.egress = hook == TCF_HOOK_EGRESS;
	tp.tcp = p->key.proto == IPPROTO_TCP && p->key.kind == TCF_KIND_PORTS;
	tp.tcp_flags = tp.tcp ? p->tcp_flags : 0;
	tp.bits = tcf_seen_bits(tp.tcp, tp.tcp_flags, p->has_data);
	tp.icmp_type = p->icmp_type;
	tp.icmp_code = p->icmp_code;
	tcf_account(&env, &tp);
}

/*
 * The frame's length: skb->len; offline, a frame cut to the bytes a test run
 * takes says its whole length in cb (TCF_CB_FRAME_LEN), so that its IP
 * header's length holds.
 */
static __always_inline __u32 frame_len(struct __sk_buff *skb)
{
	if (tcf_cfg.flags & TCF_CFG_SKB_TSTAMP && skb->cb[TCF_CB_FRAME_LEN] > skb->len)
		return skb->cb[TCF_CB_FRAME_LEN];
	return skb->len;
}

/* Counts a frame that could not be parsed (err, a malformed counter); 1 if so. */
static __always_inline int malformed(const struct pkt *p, int err)
{
	if (!err)
		return 0;
	ctr_add(TCF_CTR_MALFORMED, 1);
	ctr_add(TCF_CTR_MALFORMED_BYTES, p->frame_len);
	ctr_add(err, 1);
	return 1;
}

static __always_inline void handle(struct __sk_buff *skb, __u8 hook)
{
	struct pkt p = {.frame_len = frame_len(skb)};

	ctr_add(TCF_CTR_FRAMES, 1);
	if (skb_is_gso(skb))
		ctr_add(TCF_CTR_GSO_FRAMES, 1);
	if (malformed(&p, parse_frame(skb, &p)))
		return;
	p.key.ifindex = skb->ifindex;
	track_fragments(&p, skb->tstamp);
	account(&p, wire_packets(skb, &p), wire_bytes(skb, &p), skb->tstamp, hook);
}

/* A frame of a capture: one wire packet, as it was captured. */
static __always_inline void handle_read(struct tcf_read_frame *rf)
{
	struct pkt p = {.frame_len = rf->len > rf->caplen ? rf->len : rf->caplen};

	ctr_add(TCF_CTR_FRAMES, 1);
	if (malformed(&p, parse_read_frame(rf, &p)))
		return;
	p.key.ifindex = rf->ifindex;
	track_fragments(&p, rf->tstamp);
	account(&p, 1, p.bytes, rf->tstamp, rf->hook);
}

static long read_one(__u32 index, void *ctx)
{
	struct tcf_read_frame *rf = bpf_map_lookup_elem(&read_frames, &index);

	if (!rf)
		return 1;
	handle_read(rf);
	return 0;
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

/*
 * Offline only: counts the first skb->cb[TCF_CB_READ_FRAMES] frames of
 * read_frames, in order, in one test run (whose own frame it does not
 * read). Live, the loader's configuration leaves the loop out.
 */
SEC("tc")
int tcflows_read(struct __sk_buff *skb)
{
	if (tcf_cfg.flags & TCF_CFG_SKB_TSTAMP)
		bpf_loop(skb->cb[TCF_CB_READ_FRAMES], read_one, NULL, 0);
	return TC_ACT_UNSPEC;
}
