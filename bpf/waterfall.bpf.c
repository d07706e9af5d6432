// SPDX-License-Identifier: MIT OR GPL-2.0
//
// waterfall: where the microseconds of one round trip go, from tracepoints alone (tp_btf; no
// kprobes, no fentry). One state machine follows the round trip's critical path: the packet in
// flight (its skb address), the thread that runs (its tid), and on every tracepoint that moves
// the path on it closes the stage that was open and adds its length to a sum in a map. Nothing
// is streamed to user space: user space reads the sums (count, sum, sum of squares per stage).
//
// The same machine, rule by rule, is src/waterfall/machine.rs (its unit tests drive recorded
// event sequences through it). Change both or neither.
//
// Built by build.rs with `clang -O2 -g -target bpf`; loaded by src/bpf/waterfall.rs (aya).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* Only the fields we read; CO-RE relocates them against the running kernel's BTF. */
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct rtnl_link_ops {
	const char *kind;
} __attribute__((preserve_access_index));

struct net_device {
	int ifindex;
	struct {
		struct net *net;
	} nd_net;
	const struct rtnl_link_ops *rtnl_link_ops;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	unsigned char *data;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

struct pt_regs;

#define NET_RX_SOFTIRQ 3
/* A stage open longer than this lost an event: the time goes unattributed. */
#define STALE_NS 2000000ULL

enum phase {
	P_IDLE = 0,
	P_USER = 1,
	P_SYSCALL = 2,
	P_DEV_TX = 3,
	P_BACKLOG = 4,
	P_BACKLOG_RUN = 5,
	P_RX_PROC = 6,
	P_WAKING = 7,
	P_RUN_KERNEL = 8,
	P_REMOTE = 9,
};

enum stage {
	S_USER = 1,
	S_SEND = 2,
	S_DEVICE = 3,
	S_SOFTIRQ_DELAY = 4,
	S_BACKLOG_WAIT = 5,
	S_PROCESSING = 6,
	S_SOCKET_RX = 7,
	S_WAKEUP = 8,
	S_RECV_RETURN = 9,
	S_SYSCALL_OTHER = 10,
	S_REMOTE = 11,
};

enum stat {
	ST_STALE = 0,
	ST_RESYNC = 1,
	ST_LEFT = 2,
	ST_EVENTS = 3,
	ST_NSTATS = 4,
};

struct dev_id {
	__u32 ifindex;
	__u32 netns;
	char kind[8];
};

struct cursor {
	__u64 ts;
	__u64 skb;
	__u32 phase;
	__u32 tid;
	__u32 role;
	__u32 cpu;
	struct dev_id dev;
};

struct stage_key {
	__u32 stage;
	__u32 role;
	struct dev_id dev;
};

struct stage_val {
	__u64 count;
	__u64 sum_ns;
	__u64 sum_sq;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} TIDS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cursor);
} CURSOR SEC(".maps");

/* A server on another machine (or a process this one cannot follow): the path leaves by the
 * wire device (`net_dev_xmit` there) and comes back with the first TCP packet from the
 * server's address and port; the time between is the `remote` stage. `on` = 0: the server's
 * thread is followed instead. */
struct remote_cfg {
	__u32 on;
	__u32 ifindex;
	__u32 netns;
	__u16 port; /* network order */
	__u8 family; /* 4 or 6 */
	__u8 pad;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct remote_cfg);
} REMOTE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} IN_NET_RX SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct stage_key);
	__type(value, struct stage_val);
} STAGES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} STATS SEC(".maps");

static __always_inline void bump(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&STATS, &which);

	if (v)
		*v += 1;
}

static __always_inline struct cursor *cursor(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&CURSOR, &zero);
}

/* The cursor at `now`, reset to idle first if its stage has been open too long. */
static __always_inline struct cursor *cursor_at(__u64 now)
{
	struct cursor *c = cursor();

	if (!c)
		return 0;
	bump(ST_EVENTS);
	if (c->phase != P_IDLE && now - c->ts > STALE_NS) {
		c->phase = P_IDLE;
		bump(ST_STALE);
	}
	return c;
}

static __always_inline __u32 role_of(__u32 tid)
{
	__u32 *r = bpf_map_lookup_elem(&TIDS, &tid);

	return r ? *r : 0;
}

static __always_inline int in_net_rx(void)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&IN_NET_RX, &zero);

	return v && *v;
}

static __always_inline void dev_of(struct sk_buff *skb, struct dev_id *d)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	const char *kind;

	__builtin_memset(d, 0, sizeof(*d));
	if (!dev)
		return;
	d->ifindex = BPF_CORE_READ(dev, ifindex);
	d->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	kind = BPF_CORE_READ(dev, rtnl_link_ops, kind);
	if (kind)
		bpf_probe_read_kernel_str(d->kind, sizeof(d->kind), kind);
}

static __always_inline struct remote_cfg *remote(void)
{
	__u32 zero = 0;
	struct remote_cfg *r = bpf_map_lookup_elem(&REMOTE, &zero);

	return r && r->on ? r : 0;
}

/* The packet in flight is being transmitted by the wire device (remote mode). */
static __always_inline int on_wire(struct cursor *c)
{
	struct remote_cfg *r = remote();

	return r && c->dev.ifindex == r->ifindex && c->dev.netns == r->netns;
}

/* A TCP packet from the server's address and port (the stack's view: data at the IP header). */
static __always_inline int from_server(struct remote_cfg *r, struct sk_buff *skb)
{
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u8 h[40];
	__u16 sport = 0;
	__u32 off, n, i;

	if (!data)
		return 0;
	if (r->family == 4) {
		if (bpf_probe_read_kernel(h, 20, data))
			return 0;
		if ((h[0] >> 4) != 4 || h[9] != 6)
			return 0;
		off = 12;
		n = 4;
	} else {
		if (bpf_probe_read_kernel(h, 40, data))
			return 0;
		if ((h[0] >> 4) != 6 || h[6] != 6)
			return 0;
		off = 8;
		n = 16;
	}
#pragma unroll
	for (i = 0; i < 16; i++) {
		if (i < n && h[off + i] != r->addr[i])
			return 0;
	}
	off = r->family == 4 ? (__u32)(h[0] & 15) * 4 : 40;
	if (bpf_probe_read_kernel(&sport, sizeof(sport), data + off))
		return 0;
	return sport == r->port;
}

/* Closes the open stage as `stage` (device stages take the cursor's device, thread stages its
 * role) and moves the cursor to `now`. */
static __always_inline void close_stage(struct cursor *c, __u32 stage, __u64 now)
{
	struct stage_key k;
	struct stage_val zero = {}, *v;
	__u64 d = now - c->ts;

	__builtin_memset(&k, 0, sizeof(k));
	k.stage = stage;
	switch (stage) {
	case S_DEVICE:
	case S_SOFTIRQ_DELAY:
	case S_BACKLOG_WAIT:
	case S_PROCESSING:
	case S_REMOTE:
		k.dev = c->dev;
		break;
	case S_SOCKET_RX:
		k.dev = c->dev;
		k.role = c->role;
		break;
	default:
		k.role = c->role;
	}
	v = bpf_map_lookup_elem(&STAGES, &k);
	if (!v) {
		bpf_map_update_elem(&STAGES, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&STAGES, &k);
		if (!v)
			return;
	}
	/* Per-CPU values: no other CPU writes them. */
	v->count += 1;
	v->sum_ns += d;
	v->sum_sq += d * d;
}

static __always_inline void enter_thread(struct cursor *c, __u32 phase, __u32 tid, __u32 role,
				      __u64 now)
{
	c->phase = phase;
	c->tid = tid;
	c->role = role;
	c->ts = now;
}

static __always_inline void enter_dev(struct cursor *c, __u32 phase, struct dev_id *d, __u64 now)
{
	c->phase = phase;
	c->dev = *d;
	c->ts = now;
}

static __always_inline __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

SEC("tp_btf/sys_enter")
int BPF_PROG(wf_sys_enter, struct pt_regs *regs, long id)
{
	__u32 tid = current_tid(), role = role_of(tid);
	__u64 now;
	struct cursor *c;

	if (!role)
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c)
		return 0;
	if (c->phase == P_USER && c->tid == tid) {
		close_stage(c, S_USER, now);
		enter_thread(c, P_SYSCALL, tid, role, now);
	}
	return 0;
}

/* A receiver that was not asleep (preempted before its receive call): the packet waits in
 * its socket until the thread returns from the system call it was in. */
static __always_inline void unslept(struct cursor *c, __u32 tid, __u32 role, __u64 now)
{
	c->role = role;
	close_stage(c, S_SOCKET_RX, now);
	enter_thread(c, P_USER, tid, role, now);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(wf_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 tid = current_tid(), role = role_of(tid);
	__u64 now;
	struct cursor *c;

	if (!role)
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c)
		return 0;
	if (c->phase == P_RX_PROC && c->tid != tid) {
		unslept(c, tid, role, now);
		return 0;
	}
	if (c->tid != tid)
		return 0;
	if (c->phase == P_RUN_KERNEL)
		close_stage(c, S_RECV_RETURN, now);
	else if (c->phase == P_WAKING)
		close_stage(c, S_WAKEUP, now);
	else if (c->phase == P_SYSCALL)
		close_stage(c, S_SYSCALL_OTHER, now);
	else
		return 0;
	enter_thread(c, P_USER, tid, role, now);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wf_wakeup, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid), role = role_of(tid);
	__u64 now;
	struct cursor *c;

	if (!role)
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c)
		return 0;
	if (c->phase == P_RX_PROC) {
		c->role = role;
		close_stage(c, S_SOCKET_RX, now);
	} else if (c->phase != P_IDLE) {
		return 0;
	}
	enter_thread(c, P_WAKING, tid, role, now);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(wf_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 next_tid = BPF_CORE_READ(next, pid), prev_tid = BPF_CORE_READ(prev, pid);
	__u64 now;
	struct cursor *c;

	if (!role_of(next_tid) && !role_of(prev_tid))
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c)
		return 0;
	if (c->phase == P_WAKING && c->tid == next_tid) {
		close_stage(c, S_WAKEUP, now);
		enter_thread(c, P_RUN_KERNEL, next_tid, c->role, now);
	} else if (c->phase == P_SYSCALL && c->tid == prev_tid && prev_state != 0) {
		/* The thread blocked before sending: the path is not in it. */
		c->phase = P_IDLE;
		c->ts = now;
		bump(ST_LEFT);
	}
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(wf_softirq_entry, unsigned int vec)
{
	__u32 zero = 0, *flag;
	__u64 now;
	struct cursor *c;

	if (vec != NET_RX_SOFTIRQ)
		return 0;
	flag = bpf_map_lookup_elem(&IN_NET_RX, &zero);
	if (flag)
		*flag = 1;
	now = bpf_ktime_get_ns();
	c = cursor();
	if (!c || c->phase != P_BACKLOG || c->cpu != bpf_get_smp_processor_id())
		return 0;
	c = cursor_at(now);
	if (!c || c->phase != P_BACKLOG)
		return 0;
	close_stage(c, S_SOFTIRQ_DELAY, now);
	c->phase = P_BACKLOG_RUN;
	c->ts = now;
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(wf_softirq_exit, unsigned int vec)
{
	__u32 zero = 0, *flag;

	if (vec != NET_RX_SOFTIRQ)
		return 0;
	flag = bpf_map_lookup_elem(&IN_NET_RX, &zero);
	if (flag)
		*flag = 0;
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(wf_dev_queue, struct sk_buff *skb)
{
	__u32 tid = current_tid(), role;
	int softirq = in_net_rx();
	struct dev_id d;
	__u64 now;
	struct cursor *c = cursor();

	if (!c)
		return 0;
	role = softirq ? 0 : role_of(tid);
	if (!role && (__u64)skb != c->skb)
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c)
		return 0;
	dev_of(skb, &d);
	if ((__u64)skb == c->skb && c->phase == P_DEV_TX) {
		/* One device hands the packet to the next (bridge to port, macvlan or vxlan to
		 * the lower device), in a softirq or in the sender's system call. */
		close_stage(c, S_DEVICE, now);
	} else if ((__u64)skb == c->skb && c->phase == P_RX_PROC && softirq) {
		close_stage(c, S_PROCESSING, now);
	} else if (role) {
		/* A tracked thread sends a packet from its own system call. */
		if (c->phase == P_SYSCALL && c->tid == tid) {
			close_stage(c, S_SEND, now);
		} else if ((c->phase == P_RUN_KERNEL || c->phase == P_WAKING ||
			    c->phase == P_USER) && c->tid == tid) {
			return 0; /* an ACK sent while the thread receives */
		} else if (c->phase != P_IDLE) {
			bump(ST_RESYNC);
		}
		c->skb = (__u64)skb;
	} else {
		return 0;
	}
	enter_dev(c, P_DEV_TX, &d, now);
	return 0;
}

/* Remote mode: the first TCP packet back from the server ends the `remote` stage; the path
 * follows that packet from here on (no thread is in it until one is woken). */
static __always_inline void reply(struct sk_buff *skb, __u32 phase)
{
	struct remote_cfg *r = remote();
	struct dev_id d;
	__u64 now;
	struct cursor *c;

	if (!r || !from_server(r, skb))
		return;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c || c->phase != P_REMOTE)
		return;
	close_stage(c, S_REMOTE, now);
	dev_of(skb, &d);
	enter_dev(c, phase, &d, now);
	c->skb = (__u64)skb;
	c->tid = 0;
	c->cpu = bpf_get_smp_processor_id();
}

/* Remote mode: the wire device has sent the packet in flight off this machine. Only the
 * device pointer is read (the packet may be gone by now). */
SEC("tp_btf/net_dev_xmit")
int BPF_PROG(wf_dev_xmit, struct sk_buff *skb, int rc, struct net_device *dev, unsigned int len)
{
	struct remote_cfg *r = remote();
	__u64 now;
	struct cursor *c = cursor();

	if (!r || !c || (__u64)skb != c->skb || c->phase != P_DEV_TX)
		return 0;
	if ((__u32)BPF_CORE_READ(dev, ifindex) != r->ifindex ||
	    BPF_CORE_READ(dev, nd_net.net, ns.inum) != r->netns)
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c || c->phase != P_DEV_TX)
		return 0;
	close_stage(c, S_DEVICE, now);
	c->phase = P_REMOTE;
	c->ts = now;
	return 0;
}

SEC("tp_btf/netif_rx")
int BPF_PROG(wf_netif_rx, struct sk_buff *skb)
{
	struct dev_id d;
	__u64 now;
	struct cursor *c = cursor();

	if (c && c->phase == P_REMOTE) {
		reply(skb, P_BACKLOG);
		return 0;
	}
	if (!c || (__u64)skb != c->skb || c->phase != P_DEV_TX)
		return 0;
	/* A veth wire hands the packet to its peer before its net_dev_xmit: the other machine's. */
	if (on_wire(c))
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c || c->phase != P_DEV_TX)
		return 0;
	dev_of(skb, &d);
	close_stage(c, S_DEVICE, now);
	enter_dev(c, P_BACKLOG, &d, now);
	c->cpu = bpf_get_smp_processor_id();
	return 0;
}

static __always_inline int receive(struct sk_buff *skb, int gro)
{
	struct dev_id d;
	__u64 now;
	struct cursor *c = cursor();

	if (c && c->phase == P_REMOTE) {
		reply(skb, P_RX_PROC);
		return 0;
	}
	if (!c || (__u64)skb != c->skb)
		return 0;
	if (c->phase == P_DEV_TX && on_wire(c))
		return 0;
	now = bpf_ktime_get_ns();
	c = cursor_at(now);
	if (!c)
		return 0;
	if (c->phase == P_DEV_TX)
		close_stage(c, S_DEVICE, now);
	else if (gro)
		return 0;
	else if (c->phase == P_BACKLOG || c->phase == P_BACKLOG_RUN)
		close_stage(c, S_BACKLOG_WAIT, now);
	else if (c->phase == P_RX_PROC)
		close_stage(c, S_PROCESSING, now);
	else
		return 0;
	dev_of(skb, &d);
	enter_dev(c, P_RX_PROC, &d, now);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(wf_receive, struct sk_buff *skb)
{
	return receive(skb, 0);
}

SEC("tp_btf/napi_gro_receive_entry")
int BPF_PROG(wf_gro, struct sk_buff *skb)
{
	return receive(skb, 1);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
