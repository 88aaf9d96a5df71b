/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The connection protocol of the TC program: which slot of the conns array a
 * packet is counted in, when a packet starts the next connection on its flow
 * key, and how a slot is taken and published. See struct tcf_conn and enum
 * tcf_slot_state in tcflows.h for the data and its life.
 *
 * This file is compiled twice: into the TC program (tcflows.bpf.c), and into
 * the protocol tests (tests/unit/kernel_model.h), which interleave several
 * simulated CPUs and the agent step by step at every shared access. Both
 * define, before including it:
 *
 *   TCF_INLINE                          how these functions are declared
 *   struct tcf_env                      what the functions below pass around
 *   tcf_cfg_of(env)                     the struct tcf_config in force (in BPF a
 *                                       const volatile one: read at every use)
 *   env_index(env, position)            __u64 * of an index entry, or NULL
 *   env_slot(env, index)                struct tcf_conn * of a slot, or NULL
 *   env_pool(env)                       struct tcf_pool *, or NULL
 *   env_pop_slot(env, &index)           0, or -errno when no slot is free
 *   env_push_slot(env, index)           gives an unpublished slot back
 *   env_clock(env)                      the precise packet clock, ns
 *   env_count(env, counter, n)          adds n to a per-CPU counter
 *   env_doorbell(env, free)             0 when the doorbell event was sent
 *   tcf_load32/64(p), tcf_cas32/64(p, old, new) -> old, tcf_xchg32(p, v),
 *   tcf_or32(p, v) -> old, tcf_or64(p, v), tcf_add32(p, v), tcf_add64(p, v),
 *   tcf_adds64(p, v) -> old, tcf_adds32(p, v) -> old
 *
 * Every access to memory another CPU or the agent may write goes through
 * those: they are the points where the tests interleave. TCF_SUBPROG, when
 * defined, declares the functions the program has verified on their own.
 */
#ifndef TCFLOWS_CONN_H
#define TCFLOWS_CONN_H

#include "key.h"
#include "tcflows.h"

/* Times a packet looks for its connection before it is counted as untracked. */
#define TCF_TRIES 4

/* The errno values the protocol tells apart (no libc headers in BPF). */
#define TCF_EAGAIN 11
#define TCF_EINVAL 22
#define TCF_ENOSPC 28

#ifndef TCF_SUBPROG
#define TCF_SUBPROG TCF_INLINE
#endif

/* TCP flags as in byte 13 of the header. */
#define TCF_TCP_FIN 0x01
#define TCF_TCP_SYN 0x02
#define TCF_TCP_RST 0x04
#define TCF_TCP_ACK 0x10

/* What the protocol needs of one parsed frame. */
struct tcf_packet {
	struct tcf_flow_key key; /* canonical */
	__u64 pkts;		 /* wire packets (GSO segments) */
	__u64 bytes;		 /* wire IP bytes */
	__u64 now;		 /* the precise packet clock once read, else 0 */
	__u64 tstamp;		 /* the frame's own timestamp (the clock offline) */
	__u32 tcp_seq;
	__u32 tcp_ack;
	__u32 tcp_payload; /* payload bytes */
	__u16 tcp_window;  /* unscaled */
	__u8 dir;	   /* enum tcf_dir against the canonical key */
	__u8 egress;	   /* seen at TC egress */
	__u8 bits;	   /* enum tcf_seen this packet shows in its direction */
	__u8 tcp_flags;	   /* the TCP flags byte, 0 for other protocols */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 tcp; /* TCP with ports: the SYN rules apply */
};

/* The Zeek history letters (enum tcf_seen) a packet shows in its direction. */
TCF_INLINE __u8 tcf_seen_bits(int tcp, __u8 flags, int has_data)
{
	__u8 bits = TCF_SEEN_PKT;

	if (!tcp)
		return has_data ? bits | TCF_SEEN_DATA : bits;
	/* As Zeek's history: data counts only on a segment without SYN, FIN or RST. */
	if (has_data && !(flags & (TCF_TCP_SYN | TCF_TCP_FIN | TCF_TCP_RST)))
		bits |= TCF_SEEN_DATA;
	if (flags & TCF_TCP_SYN)
		bits |= (flags & TCF_TCP_ACK) ? TCF_SEEN_SYNACK : TCF_SEEN_SYN;
	else if (flags & TCF_TCP_ACK)
		bits |= TCF_SEEN_ACK;
	if (flags & TCF_TCP_FIN)
		bits |= TCF_SEEN_FIN;
	if (flags & TCF_TCP_RST)
		bits |= TCF_SEEN_RST;
	if ((flags & (TCF_TCP_ACK | TCF_TCP_SYN | TCF_TCP_FIN | TCF_TCP_RST)) == TCF_TCP_ACK &&
	    !has_data)
		bits |= TCF_SEEN_PUREACK;
	return bits;
}

/* The precise clock, read at most once per packet and only when needed. */
TCF_INLINE __u64 tcf_now(struct tcf_env *env, struct tcf_packet *p)
{
	if (!p->now)
		p->now = env_clock(env);
	return p->now;
}

TCF_INLINE __u32 tcf_popcount16(__u32 v)
{
	v &= 0xffff;
	v = v - ((v >> 1) & 0x5555);
	v = (v & 0x3333) + ((v >> 2) & 0x3333);
	v = (v + (v >> 4)) & 0x0f0f;
	return (v + (v >> 8)) & 0x1f;
}

TCF_INLINE __u64 tcf_idle_ns(struct tcf_env *env, const struct tcf_flow_key *k)
{
	return tcf_cfg_of(env)->idle_ns[tcf_idle_class(k->proto) & (TCF_IDLE_MAX - 1)];
}

/* Seen bits of one direction, and the closing ones of both. */
#define TCF_DIR_BITS(marks, d) (((marks) >> (8 * (d))) & 0xff)
#define TCF_RST_EITHER	       (TCF_SEEN_RST | TCF_SEEN_RST << 8)
#define TCF_FIN_BOTH	       (TCF_SEEN_FIN | TCF_SEEN_FIN << 8)

/*
 * Whether this packet starts the next connection on its key rather than
 * belonging to the slot's: after idleness, or for TCP a SYN after the close
 * (a RST, or FIN both ways), or a SYN with a new ISN after an unanswered SYN
 * or a half-close. Returns the enum tcf_end_reason of the slot's connection,
 * or TCF_END_NONE.
 */
TCF_INLINE __u32 tcf_starts_connection(struct tcf_env *env, struct tcf_conn *c,
				       struct tcf_packet *p)
{
	__u32 marks, seen, syn_dir;
	__u64 idle, now, last;

	idle = tcf_idle_ns(env, &p->key);
	now = tcf_now(env, p);
	last = tcf_load64(&c->last_ns);
	if (idle && now > last && now - last > idle)
		return TCF_END_IDLE;
	if (!p->tcp || !(p->bits & TCF_SEEN_SYN))
		return TCF_END_NONE;
	marks = tcf_load32(&c->marks);
	seen = marks & 0xffff;
	if ((seen & TCF_RST_EITHER) || (seen & TCF_FIN_BOTH) == TCF_FIN_BOTH)
		return TCF_END_REUSED;
	/* A SYN again from the side whose SYN opened it, with another ISN. */
	syn_dir = (c->first & TCF_FIRST_SYN_DIR) ? 1 : 0;
	if (!(c->first & TCF_FIRST_SYN) || p->dir != syn_dir || p->tcp_seq == c->syn_seq)
		return TCF_END_NONE;
	if (!(TCF_DIR_BITS(seen, 1 - syn_dir) & TCF_SEEN_SYNACK))
		return TCF_END_REUSED; /* the first SYN was never answered */
	if (seen & (TCF_SEEN_FIN | TCF_SEEN_FIN << 8))
		return TCF_END_REUSED; /* after a half-close */
	return TCF_END_NONE;
}

/*
 * The order of the bits this packet saw first: each gets the number of bits
 * seen before (the popcount of `old`), and the handshake's completing ACK
 * gets its time.
 */
TCF_INLINE void tcf_mark_first(struct tcf_env *env, struct tcf_conn *c, struct tcf_packet *p,
			       __u32 old)
{
	__u32 d = p->dir & 1, fresh = p->bits & ~TCF_DIR_BITS(old, d);
	__u64 rank = tcf_popcount16(old), add = 0;
	__u64 dt;
	int b;

	if (!fresh)
		return; /* only new TCP flags */
	for (b = 0; b < 8; b++)
		if (fresh & (1u << b))
			add |= rank << (4 * (8 * d + b));
	tcf_or64(&c->order, add);
	if ((fresh & TCF_SEEN_SYN) && !(old & (TCF_SEEN_SYN | TCF_SEEN_SYN << 8))) {
		c->syn_seq = p->tcp_seq;
		c->first |= TCF_FIRST_SYN | (d ? TCF_FIRST_SYN_DIR : 0);
	}
	/* The SYN sender's first ACK after the peer's SYN/ACK completes the handshake. */
	if ((fresh & TCF_SEEN_ACK) && (TCF_DIR_BITS(old, d) & TCF_SEEN_SYN) &&
	    (TCF_DIR_BITS(old, 1 - d) & TCF_SEEN_SYNACK)) {
		dt = tcf_now(env, p) - tcf_load64(&c->first_ns);
		c->ack_dt = dt >= 0xffffffffULL ? 0xffffffffu : (dt ? (__u32)dt : 1);
	}
}

/* Out of order, not retransmitted: this soon after the highest segment, without a handshake. */
#define TCF_OOO_NS (3ULL * 1000 * 1000)

/* Zeek repeats a health letter at 1, 10, 100, ... occurrences: the first two keep their place. */
TCF_INLINE void tcf_health_letter(struct tcf_conn *c, __u32 letter, __u32 d, __u32 old, __u32 n)
{
	__u32 first = old == 0, tenth = old < 10 && old + n >= 10, shift = 8 * (2 * letter + d);
	__u32 rank;

	if (!first && !tenth)
		return; /* a stalled receiver's zero windows come with every ACK */
	rank = tcf_popcount16(tcf_load32(&c->marks));
	if (rank > 15)
		rank = 15;
	if (first)
		tcf_or32(&c->health_order, rank << shift);
	if (tenth)
		tcf_or32(&c->health_order, rank << (shift + 4));
}

TCF_INLINE void tcf_rtt_sample(struct tcf_tcp_dir *t, __u64 rtt)
{
	__u32 ns = rtt > 0xffffffffULL ? 0xffffffffu : (__u32)rtt;

	tcf_add64(&t->rtt_sum_ns, rtt);
	if (tcf_adds32(&t->rtt_n, 1) == 0 || ns < tcf_load32(&t->rtt_min_ns))
		t->rtt_min_ns = ns;
	if (ns > tcf_load32(&t->rtt_max_ns))
		t->rtt_max_ns = ns;
}

/*
 * A round trip of the peer's: this segment acknowledges the end of the one
 * it times, as Wireshark's ack_rtt. Timestamps are not used: their clock
 * ticks in milliseconds, so an echo of a TSval can answer an earlier segment
 * sent in the same tick.
 */
TCF_INLINE void tcf_rtt_ack(struct tcf_tcp_dir *peer, struct tcf_packet *p, __u64 now)
{
	__u64 mark_ns = tcf_load64(&peer->rtt_mark_ns);

	if (!mark_ns || !(p->tcp_flags & TCF_TCP_ACK) ||
	    (__s32)(p->tcp_ack - tcf_load32(&peer->rtt_mark)) < 0)
		return;
	peer->rtt_mark_ns = 0;
	if (now >= mark_ns)
		tcf_rtt_sample(peer, now - mark_ns);
}

/* New data in a direction that waits for no ACK: time its round trip. */
TCF_INLINE void tcf_rtt_mark(struct tcf_tcp_dir *me, __u32 end, __u64 now)
{
	if (tcf_load64(&me->rtt_mark_ns) || !now)
		return;
	me->rtt_mark = end;
	me->rtt_mark_ns = now;
}

/*
 * A segment that takes `len` of sequence space (payload, SYN and FIN), as
 * Wireshark's TCP analysis judges data segments: one that starts below the
 * highest sequence already sent is out of order when it comes within a
 * handshake's round trip (3 ms without one) of the segment that set it, and
 * does not end where that one did; else a retransmission (keep-alives, and
 * SYNs or FINs sent again, are neither).
 */
TCF_INLINE void tcf_tcp_sequence(struct tcf_conn *c, struct tcf_packet *p, struct tcf_tcp_dir *me,
				 __u32 len, __u64 now)
{
	__u32 d = p->dir & 1, end = p->tcp_seq + len, hi, old;
	__u64 hi_ns = tcf_load64(&me->seq_hi_ns), ooo_ns;

	hi = tcf_load32(&me->seq_hi);
	if (!hi_ns || (__s32)(end - hi) > 0) {
		me->seq_hi = end;
		me->seq_hi_ns = now;
	}
	if (!hi_ns || (__s32)(p->tcp_seq - hi) >= 0) {
		tcf_rtt_mark(me, end, now);
		return;
	}
	if (!p->tcp_payload)
		return; /* a SYN or FIN again: no data */
	if (len <= 1 && !(p->tcp_flags & (TCF_TCP_SYN | TCF_TCP_FIN | TCF_TCP_RST)) &&
	    p->tcp_seq == hi - 1)
		return; /* a keep-alive */
	/*
	 * Karn: an ACK no longer tells which copy it answers, and the ACK of a
	 * hole's filling would time the wait for it too, for a segment sent
	 * again or out of order alike.
	 */
	me->rtt_mark_ns = 0;
	ooo_ns = c->ack_dt ? c->ack_dt : TCF_OOO_NS;
	if (now >= hi_ns && now - hi_ns < ooo_ns && end != hi) {
		tcf_add32(&me->ooo_pkts, p->pkts);
		return;
	}
	old = tcf_adds32(&me->retx_pkts, p->pkts);
	tcf_add64(&me->retx_bytes, p->bytes);
	tcf_health_letter(c, TCF_HEALTH_RETX, d, old, p->pkts);
}

/* Retransmissions, out-of-order segments, zero windows and round trips. */
TCF_INLINE void tcf_tcp_health(struct tcf_conn *c, struct tcf_packet *p, __u64 now)
{
	__u32 d = p->dir & 1, flags = p->tcp_flags, len, old;

	tcf_rtt_ack(&c->tcp[1 - d], p, now);
	if (!p->tcp_window && !(flags & (TCF_TCP_SYN | TCF_TCP_FIN | TCF_TCP_RST))) {
		old = tcf_adds32(&c->tcp[d].zero_win, p->pkts);
		tcf_health_letter(c, TCF_HEALTH_ZWIN, d, old, p->pkts);
	}
	len = p->tcp_payload + !!(flags & TCF_TCP_SYN) + !!(flags & TCF_TCP_FIN);
	if (len)
		tcf_tcp_sequence(c, p, &c->tcp[d], len, now);
}

/* Counts the packet in an ACTIVE slot. */
TCF_INLINE void tcf_add(struct tcf_env *env, struct tcf_conn *c, struct tcf_packet *p)
{
	__u32 d = p->dir & 1;
	__u32 mine = (__u32)p->bits << (8 * d) | (__u32)p->tcp_flags << (16 + 8 * d);
	__u32 marks, old;
	__u64 now;

	tcf_add64(&c->pkts[d], p->pkts);
	tcf_add64(&c->bytes[d], p->bytes);
	/*
	 * The precise clock for every packet: a connection's end is its last
	 * packet's time. (A coarse clock such as jiffies would put it up to a
	 * tick early: 4 ms at HZ=250.)
	 */
	now = tcf_now(env, p);
	if (now > tcf_load64(&c->last_ns))
		c->last_ns = now;
	marks = tcf_load32(&c->marks);
	if ((marks & mine) != mine) {
		old = tcf_or32(&c->marks, mine);
		tcf_mark_first(env, c, p, old);
	}
	if (p->tcp)
		tcf_tcp_health(c, p, now);
}

/* Rings the doorbell once per arming: user space re-arms it when it sweeps. */
TCF_INLINE void tcf_ring(struct tcf_env *env, struct tcf_pool *pool, __s64 free)
{
	if (tcf_cas32(&pool->bell_armed, 1, 0) != 1)
		return;
	if (env_doorbell(env, free) == 0) {
		env_count(env, TCF_CTR_DOORBELLS, 1);
		return;
	}
	env_count(env, TCF_CTR_DOORBELLS_LOST, 1);
	tcf_xchg32(&pool->bell_armed, 1);
}

/*
 * Takes a free slot and fills it for the packet's new connection, ACTIVE but
 * not yet reachable: the caller publishes it in a flow map, or gives it back.
 */
TCF_INLINE struct tcf_conn *tcf_take(struct tcf_env *env, struct tcf_packet *p, __u32 *index)
{
	struct tcf_pool *pool = env_pool(env);
	struct tcf_conn *c;
	__s64 free;
	__u32 inc;

	if (!pool)
		return NULL;
	if (env_pop_slot(env, index) == 0) {
		free = tcf_adds64(&pool->free, -1) - 1;
	} else {
		/* The stack is empty: a slot never used, if one is left. */
		if (tcf_load32(&pool->used) >= tcf_cfg_of(env)->slots ||
		    (*index = tcf_adds32(&pool->used, 1)) >= tcf_cfg_of(env)->slots) {
			env_count(env, TCF_CTR_FLOW_FULL, 1);
			tcf_ring(env, pool, 0);
			return NULL;
		}
		free = 0;
	}
	free += (__s64)tcf_cfg_of(env)->slots - tcf_load32(&pool->used);
	if (free < (__s64)tcf_cfg_of(env)->bell_below)
		tcf_ring(env, pool, free);
	c = env_slot(env, *index);
	if (!c)
		return NULL;
	inc = tcf_load32(&c->state) & ~TCF_STATE_MASK & ~(0xfu << TCF_REASON_SHIFT);
	c->key = p->key;
	c->pkts[0] = c->pkts[1] = 0;
	c->bytes[0] = c->bytes[1] = 0;
	c->first_ns = c->last_ns = tcf_now(env, p);
	c->order = 0;
	c->marks = 0;
	c->ack_dt = 0;
	c->health_order = 0;
	c->syn_seq = 0;
	if (p->tcp)
		__builtin_memset(c->tcp, 0, sizeof(c->tcp));
	c->first = (p->dir & 1) | (p->egress ? TCF_FIRST_EGRESS : 0);
	c->icmp_type = p->icmp_type;
	c->icmp_code = p->icmp_code;
	/* Published last, and atomically: whoever sees ACTIVE sees the rest. */
	tcf_xchg32(&c->state, inc | TCF_SLOT_ACTIVE);
	return c;
}

/* A slot taken but never published goes back as it was. */
TCF_INLINE void tcf_give_back(struct tcf_env *env, struct tcf_conn *c, __u32 index)
{
	struct tcf_pool *pool = env_pool(env);

	tcf_xchg32(&c->state, tcf_load32(&c->state) & ~TCF_STATE_MASK);
	env_push_slot(env, index);
	if (pool)
		tcf_adds64(&pool->free, 1);
}

/* Counts a frame that no connection took. */
TCF_INLINE void tcf_untracked(struct tcf_env *env, struct tcf_packet *p)
{
	env_count(env, TCF_CTR_UNTRACKED_PKTS, p->pkts);
	env_count(env, TCF_CTR_UNTRACKED_BYTES, p->bytes);
}

/*
 * Where a key is in the index: the entry naming its slot; else where a new
 * connection of the key goes, the first tombstone of its probe or the empty
 * entry that ends it.
 */
struct tcf_place {
	__u64 value;	/* the entry as read */
	__u32 position; /* of the entry */
	__u32 dist;	/* its distance from the key's home */
	__u32 slot;	/* the slot it names */
	__u32 found;	/* 1: it names the key's slot; 0: a tombstone or the empty entry */
};

/*
 * Looks the packet's key up: 0, or -TCF_ENOSPC when no entry within reach is
 * the key's, a tombstone or empty. A new key takes the first tombstone: new
 * keys would otherwise always extend a run at its end, where the agent can
 * never prune the tombstones inside it, and runs would grow past the probe
 * under churn of new 5-tuples. A function of its own in BPF (TCF_SUBPROG),
 * verified once: its result holds no pointers, the caller looks them up again.
 */
TCF_SUBPROG int tcf_lookup(struct tcf_env *env, struct tcf_packet *p, __u64 digest,
			   struct tcf_place *at)
{
	__u32 mask, home, tag, i, slot;
	struct tcf_conn *c;
	__u64 *e, v;

	if (!env || !p || !at)
		return -TCF_EINVAL;
	mask = tcf_cfg_of(env)->index_mask;
	home = (__u32)digest & mask;
	tag = TCF_DIGEST_TAG(digest);
	at->found = 0;
	at->dist = TCF_PROBES; /* no tombstone yet */
	for (i = 0; i < TCF_PROBES; i++) {
		e = env_index(env, (home + i) & mask);
		if (!e)
			return -TCF_EINVAL;
		v = tcf_load64(e);
		if (v == TCF_INDEX_TOMB && at->dist == TCF_PROBES) {
			at->value = v;
			at->position = (home + i) & mask;
			at->dist = i;
			at->slot = 0;
		}
		if (v && (!TCF_INDEX_SLOT(v) || TCF_INDEX_TAG(v) != tag))
			continue; /* a tombstone, or another key's entry */
		slot = v ? TCF_INDEX_SLOT(v) - 1 : 0;
		if (v) {
			c = env_slot(env, slot);
			if (!c || !tcf_key_eq(&c->key, &p->key))
				continue;
		}
		if (i)
			env_count(env, TCF_CTR_PROBES, i);
		if (!v && at->dist < TCF_PROBES)
			return 0; /* not found: the first tombstone */
		at->value = v;
		at->position = (home + i) & mask;
		at->dist = i;
		at->slot = slot;
		at->found = v != 0;
		return 0;
	}
	return at->dist < TCF_PROBES ? 0 : -TCF_ENOSPC;
}

/*
 * A new connection for the packet at `at`: in the empty entry that ended the
 * probe, or in place of the slot `old` the entry names (over, so the packet
 * starts the next one; with a `reason`, that slot, ACTIVE, becomes ENDED with
 * it). The entry changes only if it still holds what was read. Returns 0 when
 * the packet is counted, -TCF_EAGAIN when the entry changed meanwhile.
 */
TCF_INLINE int tcf_start(struct tcf_env *env, struct tcf_packet *p, __u64 digest, __u64 *entry,
			 const struct tcf_place *at, struct tcf_conn *old, __u32 state,
			 __u32 reason)
{
	struct tcf_conn *c;
	__u32 fresh;
	__u64 next;

	c = tcf_take(env, p, &fresh);
	if (!c)
		return -TCF_ENOSPC;
	next = at->found ? (at->value & ~0xffffffffULL) | (__u64)(fresh + 1)
			 : TCF_INDEX_ENTRY(TCF_DIGEST_TAG(digest), at->dist, fresh);
	if (tcf_cas64(entry, at->value, next) != at->value) {
		tcf_give_back(env, c, fresh);
		return -TCF_EAGAIN;
	}
	if (old && reason)
		tcf_cas32(&old->state, state,
			  (state & ~0xffu) | TCF_SLOT_ENDED | reason << TCF_REASON_SHIFT);
	env_count(env, TCF_CTR_CONNECTIONS, 1);
	tcf_add(env, c, p);
	return 0;
}

/*
 * One look for the packet's connection: 0 when counted, else why not yet.
 * A function of its own in BPF, like tcf_lookup.
 */
TCF_SUBPROG int tcf_try(struct tcf_env *env, struct tcf_packet *p, __u64 digest)
{
	struct tcf_place at = {0, 0, 0, 0, 0};
	struct tcf_conn *c = 0;
	__u32 state = 0, reason;
	__u64 *entry;
	int err;

	if (!env || !p)
		return -TCF_EINVAL;
	err = tcf_lookup(env, p, digest, &at);
	if (err) {
		env_count(env, TCF_CTR_FLOW_FULL, 1);
		return err;
	}
	entry = env_index(env, at.position);
	if (!entry)
		return -TCF_EINVAL;
	if (at.found) {
		c = env_slot(env, at.slot);
		if (!c)
			return -TCF_EINVAL;
		state = tcf_load32(&c->state);
	}
	if (!c || (state & TCF_STATE_MASK) != TCF_SLOT_ACTIVE)
		return tcf_start(env, p, digest, entry, &at, c, state, TCF_END_NONE);
	reason = tcf_starts_connection(env, c, p);
	if (reason)
		return tcf_start(env, p, digest, entry, &at, c, state, reason);
	tcf_add(env, c, p);
	return 0;
}

/*
 * The common case, inline: the key's entry is at its home and its connection
 * goes on. Returns 1 when the packet is counted, 0 for tcf_try to decide.
 */
TCF_INLINE int tcf_fast(struct tcf_env *env, struct tcf_packet *p, __u64 digest)
{
	__u32 home = (__u32)digest & tcf_cfg_of(env)->index_mask, state;
	struct tcf_conn *c;
	__u64 *e, v;

	e = env_index(env, home);
	if (!e)
		return 0;
	v = tcf_load64(e);
	if (!TCF_INDEX_SLOT(v) || TCF_INDEX_TAG(v) != TCF_DIGEST_TAG(digest))
		return 0;
	c = env_slot(env, TCF_INDEX_SLOT(v) - 1);
	if (!c || !tcf_key_eq(&c->key, &p->key))
		return 0;
	state = tcf_load32(&c->state);
	if ((state & TCF_STATE_MASK) != TCF_SLOT_ACTIVE || tcf_starts_connection(env, c, p))
		return 0;
	tcf_add(env, c, p);
	return 1;
}

/* Counts the packet in its connection, starting one when it is the first. */
TCF_INLINE void tcf_account(struct tcf_env *env, struct tcf_packet *p)
{
	__u64 digest = tcf_digest(&p->key, tcf_cfg_of(env)->digest_mask);
	int i, err = 0;

	if (tcf_fast(env, p, digest))
		return;
	for (i = 0; i < TCF_TRIES; i++) {
		err = tcf_try(env, p, digest);
		if (err != -TCF_EAGAIN)
			break;
		env_count(env, TCF_CTR_RETRIES, 1);
	}
	if (err)
		tcf_untracked(env, p);
}

#endif /* TCFLOWS_CONN_H */
