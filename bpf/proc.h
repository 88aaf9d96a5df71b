/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between the socket tracing programs (proc.bpf.c) and user space:
 * who owns the local socket of a 5-tuple.
 *
 * Fixed-width types only and explicit padding, as tcflows.h.
 */
#ifndef TCFLOWS_PROC_ABI_H
#define TCFLOWS_PROC_ABI_H

/*
 * A socket's 5-tuple as the socket sees it: local endpoint first. Addresses
 * in network byte order, IPv4 in [0] only (IPv4-mapped IPv6 addresses are
 * stored as IPv4), ports in host byte order, as in tcf_flow_key. A local
 * address of all zeros means any: an unconnected UDP socket bound to the
 * wildcard address, whose source address the route picks per datagram.
 */
struct tcf_proc_key {
	__u32 local[4];
	__u32 remote[4];
	__u16 local_port;
	__u16 remote_port;
	__u16 ethertype; /* ETH_P_IP or ETH_P_IPV6, as tcf_flow_key; 0: either (an
			    unconnected socket bound to the any address) */
	__u8 proto;	 /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

#define TCF_COMM_LEN 16

/* The task that last sent or received on the socket. */
struct tcf_proc_owner {
	__u64 cgroup_id;	 /* bpf_get_current_cgroup_id(): the cgroup v2 id */
	__u64 time_ns;		 /* CLOCK_BOOTTIME, the packet clock of tcf_conn */
	__u32 tgid;		 /* process id (root pid namespace) */
	__u32 tid;		 /* thread id */
	char comm[TCF_COMM_LEN]; /* the task's name, NUL-terminated */
};

/* Indices of the per-CPU proc_counters map. */
enum tcf_proc_counter {
	TCF_PROC_CTR_RECORDED = 0, /* owners written to the map */
	TCF_PROC_CTR_MAP_FULL,	   /* owners the map refused (update failed) */
	TCF_PROC_CTR_MAX,
};

#endif /* TCFLOWS_PROC_ABI_H */
