// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A foreign TC program for the coexistence lab test (not part of tcflows):
 * drops IPv4 UDP datagrams to port 7779 and lets everything else pass.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define DROP_PORT 7779

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int foreign_drop(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	return udp->dest == bpf_htons(DROP_PORT) ? TC_ACT_SHOT : TC_ACT_OK;
}
