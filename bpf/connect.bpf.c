// SPDX-License-Identifier: GPL-2.0
/* cgroup/connect4 and cgroup/connect6: TCP connect() from the pod's cgroup
 * goes to the sidecar's outbound listener instead, and the original
 * destination is remembered under the socket's cookie (see sockops.bpf.c).
 * Not redirected: the excluded uid (the sidecar itself), loopback
 * destinations, excluded ports and CIDRs, anything that is not TCP. */
#include "maps.bpf.h"

#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#endif

static __always_inline int skip_uid(const struct wm_conf *c)
{
	return (c->flags & WM_CONF_FL_EXCLUDE_UID) && (__u32)bpf_get_current_uid_gid() == c->exclude_uid;
}

static __always_inline int cidr4_excluded(__u32 addr)
{
	struct wm_lpm4 k = { .prefixlen = 32, .addr = addr };

	return bpf_map_lookup_elem(&wm_cidr4, &k) != NULL;
}

static __always_inline void remember(void *ctx, const struct wm_orig *o)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);

	bpf_map_update_elem(&wm_cookie, &cookie, o, BPF_ANY);
}

SEC("cgroup/connect4")
int wm_connect4(struct bpf_sock_addr *ctx)
{
	struct wm_orig o = { .family = AF_INET };
	struct wm_conf *c = wm_get_conf();
	__u32 addr = ctx->user_ip4;
	__u16 port = bpf_ntohs((__u16)ctx->user_port);

	if (!c || !c->outbound_port || ctx->type != SOCK_STREAM || skip_uid(c))
		return 1;
	if (addr == 0 || wm_v4_loopback(addr) || wm_port_excluded(c, port) || cidr4_excluded(addr))
		return 1;
	o.port = port;
	o.addr[0] = addr;
	remember(ctx, &o);
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(c->outbound_port);
	return 1;
}

SEC("cgroup/connect6")
int wm_connect6(struct bpf_sock_addr *ctx)
{
	struct wm_orig o = { .family = AF_INET6 };
	struct wm_conf *c = wm_get_conf();
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	struct wm_lpm6 k = { .prefixlen = 128 };
	__u32 a[4];

	if (!c || !c->outbound_port || ctx->type != SOCK_STREAM || skip_uid(c))
		return 1;
	WM_IP6_COPY(a, ctx->user_ip6);
	if (wm_port_excluded(c, port))
		return 1;
	o.port = port;
	if (wm_v6_v4mapped(a)) {
		/* An IPv6 socket reaching an IPv4 peer: policy and proxy are IPv4's. */
		if (a[3] == 0 || wm_v4_loopback(a[3]) || cidr4_excluded(a[3]))
			return 1;
		o.family = AF_INET;
		o.addr[0] = a[3];
		remember(ctx, &o);
		ctx->user_ip6[3] = bpf_htonl(0x7f000001);
		ctx->user_port = bpf_htons(c->outbound_port);
		return 1;
	}
	if ((a[0] | a[1] | a[2] | a[3]) == 0 || wm_v6_loopback(a))
		return 1;
	__builtin_memcpy(k.addr, a, sizeof(a));
	if (bpf_map_lookup_elem(&wm_cidr6, &k))
		return 1;
	__builtin_memcpy(o.addr, a, sizeof(a));
	remember(ctx, &o);
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = 0;
	ctx->user_ip6[3] = bpf_htonl(1);
	ctx->user_port = bpf_htons(c->outbound_port);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
