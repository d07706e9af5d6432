// SPDX-License-Identifier: GPL-2.0
/* netkit-bpf's two programs, Cilium's netkit datapath reduced to one container:
 *
 *   nk_peer_out  attached to the netkit pair's peer (BPF_NETKIT_PEER): runs when the container
 *                transmits, with skb->dev already the primary, in the node's namespace. A FIB
 *                lookup there; when the route leaves through the node's NIC, bpf_redirect_neigh
 *                puts the packet on the NIC (neighbour resolved by the node), skipping the
 *                backlog hop into the node's stack. Anything else (the node's own addresses, no
 *                route) goes on to the pair's policy: forward, through the backlog.
 *   nk_nic_in    attached to the node NIC's ingress (TCX, BPF_TCX_INGRESS): packets for the
 *                container's address go by bpf_redirect_peer straight into the container's
 *                device (the pair's peer), skipping the node's stack and the pair's backlog hop.
 *                Anything else goes on (TCX_NEXT) to the node's stack.
 *
 * Constants (.rodata) are set by the loader before the programs load: the NIC's and the netkit
 * primary's interface indexes and the container's addresses, in network byte order.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

volatile const __u32 nic_ifindex = 0;
volatile const __u32 primary_ifindex = 0;
volatile const __u32 ctr_ip4 = 0;
volatile const __u32 ctr_ip6[4] = { 0, 0, 0, 0 };

SEC("classifier")
int nk_peer_out(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct bpf_fib_lookup fib = {};
	long rc;

	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return TC_ACT_UNSPEC;
		fib.family = AF_INET;
		fib.tos = ip->tos;
		fib.l4_protocol = ip->protocol;
		fib.tot_len = bpf_ntohs(ip->tot_len);
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return TC_ACT_UNSPEC;
		fib.family = AF_INET6;
		fib.l4_protocol = ip6->nexthdr;
		fib.tot_len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
	} else {
		return TC_ACT_UNSPEC;
	}
	fib.ifindex = skb->ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if ((rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) &&
	    fib.ifindex == nic_ifindex)
		return bpf_redirect_neigh(nic_ifindex, NULL, 0, 0);
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int nk_nic_in(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return TC_ACT_UNSPEC;
		if (ip->daddr == ctr_ip4)
			return bpf_redirect_peer(primary_ifindex, 0);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return TC_ACT_UNSPEC;
		if (ip6->daddr.in6_u.u6_addr32[0] == ctr_ip6[0] &&
		    ip6->daddr.in6_u.u6_addr32[1] == ctr_ip6[1] &&
		    ip6->daddr.in6_u.u6_addr32[2] == ctr_ip6[2] &&
		    ip6->daddr.in6_u.u6_addr32[3] == ctr_ip6[3])
			return bpf_redirect_peer(primary_ifindex, 0);
	}
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
