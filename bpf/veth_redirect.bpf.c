// SPDX-License-Identifier: MIT OR GPL-2.0
//
// veth-bpf: eBPF host routing for a routed veth (as Cilium's), two tc programs.
//
//   nic_ingress   on the node's NIC ingress: an IPv4 packet for the container's address is
//                 handed straight to the container's end of its veth (bpf_redirect_peer), so it
//                 skips the node's IP forwarding, netfilter and the veth's backlog hop.
//   veth_ingress  on the host-side veth's ingress: a packet the node would route out of the NIC
//                 is sent out of the NIC directly (bpf_redirect_neigh: the kernel fills in the
//                 MACs), skipping the node's IP forwarding and netfilter.
//
// Everything else passes (TC_ACT_OK). The loader sets the read-only globals below; with
// PASS_ONLY set both programs parse as usual but always pass (the variant tests use to prove
// that the redirects, not the attachment, make the difference).
//
// Built by build.rs with `clang -O2 -g -target bpf`; loaded by src/bpf (aya).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2

/* The container's IPv4 address, network byte order. */
volatile const __u32 CTR_ADDR = 0;
/* The host-side veth (its peer is the container's eth0). */
volatile const __u32 HOST_VETH_IFINDEX = 0;
/* The node's NIC. */
volatile const __u32 NIC_IFINDEX = 0;
/* Non-zero: never redirect. */
volatile const __u32 PASS_ONLY = 0;

static __always_inline struct iphdr *ipv4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return 0;
	return ip;
}

SEC("classifier")
int nic_ingress(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4(skb);

	if (!ip || ip->daddr != CTR_ADDR || PASS_ONLY)
		return TC_ACT_OK;
	return bpf_redirect_peer(HOST_VETH_IFINDEX, 0);
}

SEC("classifier")
int veth_ingress(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	struct iphdr *ip = ipv4(skb);
	long rc;

	if (!ip || PASS_ONLY)
		return TC_ACT_OK;
	fib.family = AF_INET;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ingress_ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	/* Only what the node would forward out of the NIC; local and other traffic passes. */
	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) ||
	    fib.ifindex != NIC_IFINDEX)
		return TC_ACT_OK;
	return bpf_redirect_neigh(NIC_IFINDEX, 0, 0, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
