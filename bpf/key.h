/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the TC program and user space both compute from a flow key: its
 * digest (where the index probe starts, and the entry's tag), equality, and
 * its idle timeout class. One copy, compiled into both.
 */
#ifndef TCFLOWS_KEY_H
#define TCFLOWS_KEY_H

#include "tcflows.h"

/* `mask` keeps all bits, but in tests that force digest collisions. */
static inline __u64 tcf_digest(const struct tcf_flow_key *key, __u64 mask)
{
	const __u64 *w = (const __u64 *)key;
	__u64 h = 0x9e3779b97f4a7c15ULL;
	int i;

	for (i = 0; i < 6; i++) {
		h ^= w[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	return h & mask;
}

static inline int tcf_key_eq(const struct tcf_flow_key *a, const struct tcf_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) |
		(x[5] ^ y[5])) == 0;
}

/* The idle timeout class (enum tcf_idle_class) of an IP protocol. */
static inline int tcf_idle_class(__u8 proto)
{
	switch (proto) {
	case 6: /* TCP */
		return TCF_IDLE_TCP;
	case 17:  /* UDP */
	case 136: /* UDP-Lite */
		return TCF_IDLE_UDP;
	case 1:	 /* ICMP */
	case 58: /* ICMPv6 */
		return TCF_IDLE_ICMP;
	}
	return TCF_IDLE_OTHER;
}

#endif /* TCFLOWS_KEY_H */
