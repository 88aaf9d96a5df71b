// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Foreign TC programs for the device tests (not part of tcflows): each puts
 * bytes in front of the frame and makes them its link-layer header, the
 * network header staying where it was. That is what the ingress of an IP
 * tunnel device can show a later program: the outer headers the kernel took
 * off (gre: the outer IP and GRE headers; ipip: the underlay's Ethernet and
 * outer IP headers), or any bytes that are not Ethernet.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int push(struct __sk_buff *skb, const void *hdr, __u32 len)
{
	if (bpf_skb_change_head(skb, len, 0) || bpf_skb_store_bytes(skb, 0, hdr, len, 0))
		return TC_ACT_SHOT; /* the test sees the frame missing */
	return TC_ACT_UNSPEC;
}

/* Ethernet (type IPv4) and an outer IPv4 header of protocol 4 (IPIP). */
SEC("tc")
int push_ipip(struct __sk_buff *skb)
{
	const __u8 hdr[34] = {2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a, 0x08, 0x00,
			      0x45, 0, 0, 0, 0, 0, 0, 0, 64, 4, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2};

	return push(skb, hdr, sizeof(hdr));
}

/* An outer IPv4 header of protocol 47 and a GRE header carrying IPv4. */
SEC("tc")
int push_gre(struct __sk_buff *skb)
{
	const __u8 hdr[24] = {0x45, 0, 0, 0, 0, 0, 0, 0, 64, 47, 0, 0,
			      192,  0, 2, 1, 192, 0, 2, 2, 0, 0, 0x08, 0x00};

	return push(skb, hdr, sizeof(hdr));
}

/* Sixteen zero bytes. */
SEC("tc")
int push_zeros(struct __sk_buff *skb)
{
	const __u8 hdr[16] = {};

	return push(skb, hdr, sizeof(hdr));
}
