/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The flow digest: a 64-bit hash of a canonical flow key, the key of the
 * `flows` map. The TC program computes it per packet; user space computes
 * the same to remove a mapping. Cheaper to look up than the 48-byte key.
 */
#ifndef TCFLOWS_DIGEST_H
#define TCFLOWS_DIGEST_H

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

#endif /* TCFLOWS_DIGEST_H */
