// SPDX-License-Identifier: GPL-2.0
/* cgroup/getsockopt: answers SO_ORIGINAL_DST (IPv4) and IP6T_SO_ORIGINAL_DST
 * (IPv6) on a connection the proxy accepted from a redirected client, exactly
 * like conntrack does after an iptables REDIRECT, so the proxy has one way to
 * ask for both kinds of interception. Other options pass through untouched. */
#include "maps.bpf.h"

#define SOL_IP			0
#define SOL_IPV6		41
#define SO_ORIGINAL_DST		80	/* same value as IP6T_SO_ORIGINAL_DST */

struct sa4 {
	__u16 family;
	__u16 port;
	__u32 addr;
	__u8 zero[8];
};

struct sa6 {
	__u16 family;
	__u16 port;
	__u32 flowinfo;
	__u32 addr[4];
	__u32 scope_id;
};

SEC("cgroup/getsockopt")
int wm_getsockopt(struct bpf_sockopt *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct wm_tuple t = {};
	struct wm_orig *o;

	if (ctx->optname != SO_ORIGINAL_DST || !sk)
		return 1;
	if (ctx->level == SOL_IP && sk->family == AF_INET) {
		t.family = AF_INET;
		t.saddr[0] = sk->dst_ip4;
		t.daddr[0] = sk->src_ip4;
	} else if (ctx->level == SOL_IPV6 && sk->family == AF_INET6) {
		t.family = AF_INET6;
		WM_IP6_COPY(t.saddr, sk->dst_ip6);
		WM_IP6_COPY(t.daddr, sk->src_ip6);
	} else {
		return 1;
	}
	t.sport = bpf_ntohs(sk->dst_port);
	t.dport = (__u16)sk->src_port;
	o = bpf_map_lookup_elem(&wm_pair, &t);
	if (!o || o->family != t.family)
		return 1;
	if (t.family == AF_INET) {
		struct sa4 *sa = ctx->optval;

		if ((void *)(sa + 1) > ctx->optval_end)
			return 1;
		sa->family = AF_INET;
		sa->port = bpf_htons(o->port);
		sa->addr = o->addr[0];
		__builtin_memset(sa->zero, 0, sizeof(sa->zero));
		ctx->optlen = sizeof(*sa);
	} else {
		struct sa6 *sa = ctx->optval;

		if ((void *)(sa + 1) > ctx->optval_end)
			return 1;
		sa->family = AF_INET6;
		sa->port = bpf_htons(o->port);
		sa->flowinfo = 0;
		sa->addr[0] = o->addr[0];
		sa->addr[1] = o->addr[1];
		sa->addr[2] = o->addr[2];
		sa->addr[3] = o->addr[3];
		sa->scope_id = 0;
		ctx->optlen = sizeof(*sa);
	}
	ctx->retval = 0;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
