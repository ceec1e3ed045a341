// SPDX-License-Identifier: GPL-2.0
/* sk_lookup on the pod's network namespace: a TCP connection arriving for any
 * port of the pod (but the excluded ones and the proxy's own) is handed to
 * the proxy's inbound listening socket, without NAT: the proxy's
 * getsockname() on the accepted socket is the address the peer dialled.
 * Loopback peers are left alone: that is the proxy reaching the app from
 * 127.0.0.6, or the app talking to itself. */
#include "maps.bpf.h"

#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif

SEC("sk_lookup")
int wm_sk_lookup(struct bpf_sk_lookup *ctx)
{
	struct wm_conf *c = wm_get_conf();
	__u32 base = 0;

	if (!c || !c->inbound_port || ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if (wm_port_excluded(c, (__u16)ctx->local_port))
		return SK_PASS;
	if (ctx->family == AF_INET) {
		if (wm_v4_loopback(ctx->remote_ip4))
			return SK_PASS;
	} else {
		__u32 a[4] = { ctx->remote_ip6[0], ctx->remote_ip6[1], ctx->remote_ip6[2], ctx->remote_ip6[3] };

		if (wm_v6_loopback(a) || (wm_v6_v4mapped(a) && wm_v4_loopback(a[3])))
			return SK_PASS;
		base = WM_BPF_LISTEN_SLOTS;
	}
	for (__u32 i = 0; i < WM_BPF_LISTEN_SLOTS; i++) {
		__u32 slot = base + i;
		struct bpf_sock *sk = bpf_map_lookup_elem(&wm_listen, &slot);
		long err;

		if (!sk)
			continue;
		err = bpf_sk_assign(ctx, sk, 0);
		bpf_sk_release(sk);
		if (!err)
			break;
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
