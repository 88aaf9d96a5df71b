// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcflows: who owns a connection's local socket. BTF tracepoints on the
 * socket send and receive calls, and on TCP's connect (its state changes),
 * write the calling task into `owners`, keyed by the socket's 5-tuple; the
 * agent looks a connection up there when it makes the connection's record
 * (see proc.h). Off the per-packet path: a send or receive call on an IP
 * socket costs one map lookup, and an update only when another process than
 * the last one uses the socket; a TCP connect two updates. An iterator over
 * every task's open files, run once at start, seeds the sockets open then.
 *
 * Why tracepoints and not fentry/fexit on tcp_connect, inet_csk_accept and
 * udp_sendmsg: kernels may refuse BPF trampolines (the machine tcflows was
 * written on answers EPERM to every fentry program), and kprobes may be
 * compiled out; BTF tracepoints load wherever CAP_BPF and CAP_PERFMON do.
 * sock_send_length and sock_recv_length exist since Linux 6.3.
 *
 * Kernel structures are declared here with only the fields read, and read
 * with CO-RE, so that the build needs no vmlinux.h and the offsets follow
 * the running kernel.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "proc.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET	     2
#define AF_INET6     10
#define ETH_P_IP     0x0800
#define ETH_P_IPV6   0x86DD
#define IPPROTO_TCP  6
#define IPPROTO_UDP  17
#define TCP_SYN_SENT 2
#define S_IFMT	     0170000
#define S_IFSOCK     0140000

struct tcf_in6 {
	__u32 a[4];
};

/* Anonymous unions of the kernel's struct flattened: CO-RE finds fields by name. */
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct tcf_in6 skc_v6_daddr;
	struct tcf_in6 skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct inet_sock {
	struct sock sk;
	__be16 inet_sport;
} __attribute__((preserve_access_index));

/* What the iterator over open files reads (seed below). */
struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data; /* the struct socket of a socket's file */
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	char comm[TCF_COMM_LEN];
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

struct bpf_iter_meta {
	void *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* set by the loader */
	__type(key, struct tcf_proc_key);
	__type(value, struct tcf_proc_owner);
} owners SEC(".maps");

/*
 * TCP sockets in SYN_SENT, by address, and the task that called connect():
 * the source port may still be unset when the socket enters SYN_SENT
 * (tcp_v4_connect picks it after), so the owner waits here until the socket
 * leaves SYN_SENT with its full tuple (established, refused, timed out or
 * closed).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct tcf_proc_owner);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCF_PROC_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} proc_counters SEC(".maps");

static __always_inline void proc_ctr_inc(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&proc_counters, &idx);

	if (c)
		*c += 1;
}

/* Sets an address of the key; an IPv4-mapped IPv6 address becomes IPv4. */
static __always_inline void set_addr(__u32 to[4], const struct tcf_in6 *from, __u16 *ethertype)
{
	if (!from->a[0] && !from->a[1] && from->a[2] == bpf_htonl(0xffff)) {
		to[0] = from->a[3];
		*ethertype = ETH_P_IP;
		return;
	}
	__builtin_memcpy(to, from->a, sizeof(from->a));
	*ethertype = ETH_P_IPV6;
}

/*
 * The local endpoint of `sk`: its bound address (zeros when any) and port,
 * and the address's family as the key's ethertype.
 */
static __always_inline void local_of(struct sock *sk, struct tcf_proc_key *k)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	k->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	/* A TCP socket entering CLOSE has left the bind table: skc_num is 0 there. */
	if (!k->local_port)
		k->local_port = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	if (family == AF_INET6) {
		struct tcf_in6 a = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);

		set_addr(k->local, &a, &k->ethertype);
		return;
	}
	k->local[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	k->ethertype = ETH_P_IP;
}

/* The socket's own tuple: a connected socket's. */
static __always_inline void tuple_of(struct sock *sk, __u8 proto, struct tcf_proc_key *k)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	local_of(sk, k);
	k->proto = proto;
	k->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	k->ethertype = ETH_P_IP;
	if (family == AF_INET6) {
		struct tcf_in6 a = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);

		set_addr(k->remote, &a, &k->ethertype);
		return;
	}
	k->remote[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
}

/* The current task, as the owner of a socket it uses now. */
static __always_inline void current_owner(struct tcf_proc_owner *o)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	o->tgid = pid_tgid >> 32;
	o->tid = (__u32)pid_tgid;
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->time_ns = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

static __always_inline void put(const struct tcf_proc_key *k, const struct tcf_proc_owner *o)
{
	if (bpf_map_update_elem(&owners, k, o, BPF_ANY))
		proc_ctr_inc(TCF_PROC_CTR_MAP_FULL);
	else
		proc_ctr_inc(TCF_PROC_CTR_RECORDED);
}

/*
 * The current task uses the socket of `k`: it becomes the owner unless the
 * owner is of the same process already (then nothing is written, so that a
 * busy socket costs one lookup per call).
 */
static __always_inline void own(const struct tcf_proc_key *k)
{
	struct tcf_proc_owner *old = bpf_map_lookup_elem(&owners, k);
	struct tcf_proc_owner o = {};

	if (old && old->tgid == bpf_get_current_pid_tgid() >> 32)
		return;
	current_owner(&o);
	put(k, &o);
}

/*
 * The key of a TCP or UDP socket with a local port (0 for others). A
 * connected socket (TCP, or UDP after connect()) is keyed by its full
 * tuple; an unconnected UDP socket by its local endpoint alone (remote all
 * zeros), which is its own within a network namespace.
 */
static __always_inline int socket_key(struct sock *sk, struct tcf_proc_key *k)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 proto;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	tuple_of(sk, proto, k);
	if (!k->local_port || (proto == IPPROTO_TCP && !k->remote_port))
		return 0;
	if (!k->remote_port) {
		/* Unconnected: the local endpoint alone; bound to the any address,
		 * of either family (an IPv6 socket takes IPv4 too). */
		__builtin_memset(k, 0, sizeof(*k));
		local_of(sk, k);
		k->proto = proto;
		if (!(k->local[0] | k->local[1] | k->local[2] | k->local[3]))
			k->ethertype = 0;
	}
	return 1;
}

/* A socket sent or received: the caller owns it. */
static __always_inline void used(struct sock *sk, int ret)
{
	struct tcf_proc_key k = {};

	if (ret >= 0 && socket_key(sk, &k))
		own(&k);
}

/* sock_sendmsg_nosec: every send(2), sendto(2), sendmsg(2), write(2) on a socket, after it. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(tcf_sock_send, struct sock *sk, int ret, int flags)
{
	used(sk, ret);
	return 0;
}

/* sock_recvmsg_nosec: every recv(2), recvfrom(2), recvmsg(2), read(2) on a socket. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(tcf_sock_recv, struct sock *sk, int ret, int flags)
{
	used(sk, ret);
	return 0;
}

/*
 * A TCP socket's state changed. Entering SYN_SENT happens in connect(), in
 * the caller's context: the caller is remembered. Leaving it (in softirq
 * context, or in close()) the socket has its tuple: the caller becomes its
 * owner, so that connections that never carry data (refused, unanswered)
 * have one too.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcf_tcp_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 id = (__u64)sk;
	struct tcf_proc_owner *o;
	struct tcf_proc_key k = {};

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_SYN_SENT) {
		struct tcf_proc_owner caller = {};

		current_owner(&caller);
		bpf_map_update_elem(&connecting, &id, &caller, BPF_ANY);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;
	o = bpf_map_lookup_elem(&connecting, &id);
	if (!o)
		return 0;
	tuple_of(sk, IPPROTO_TCP, &k);
	put(&k, o);
	bpf_map_delete_elem(&connecting, &id);
	return 0;
}

/*
 * Run once by the agent at start, over every task's open files: each TCP
 * and UDP socket open then gets the task holding it as owner, unless one
 * is known already (the tracepoints run meanwhile; they saw it in use).
 * Of several tasks holding one socket, the first the iterator visits (the
 * lowest pid) is kept.
 */
SEC("iter/task_file")
int tcf_seed(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct tcf_proc_owner o = {};
	struct tcf_proc_key k = {};
	struct socket *sock;
	struct sock *sk;

	if (!file || !task || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || !socket_key(sk, &k))
		return 0;
	o.tgid = BPF_CORE_READ(task, tgid);
	o.tid = BPF_CORE_READ(task, pid);
	BPF_CORE_READ_INTO(&o.comm, task, comm);
	o.cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	o.time_ns = bpf_ktime_get_boot_ns();
	if (!bpf_map_update_elem(&owners, &k, &o, BPF_NOEXIST))
		proc_ctr_inc(TCF_PROC_CTR_RECORDED);
	return 0;
}
