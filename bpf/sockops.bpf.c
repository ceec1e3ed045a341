// SPDX-License-Identifier: GPL-2.0
/* sockops on the pod's cgroup, two jobs:
 * - a redirected connection is established: its ports are known now, so the
 *   original destination moves from the cookie map to the 4-tuple map that
 *   getsockopt.bpf.c answers SO_ORIGINAL_DST from;
 * - a socket starts listening on the inbound port: it goes into wm_listen,
 *   where inbound.bpf.c (sk_lookup) finds it. */
#include "maps.bpf.h"

static __always_inline void established(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	struct wm_orig *o = bpf_map_lookup_elem(&wm_cookie, &cookie);
	struct wm_tuple t = {};

	if (!o)
		return;
	t.sport = (__u16)skops->local_port;
	t.dport = (__u16)bpf_ntohl(skops->remote_port);
	if (skops->family == AF_INET) {
		t.family = AF_INET;
		t.saddr[0] = skops->local_ip4;
		t.daddr[0] = skops->remote_ip4;
	} else {
		__u32 l2 = skops->local_ip6[2];

		if (skops->local_ip6[0] == 0 && skops->local_ip6[1] == 0 && l2 == bpf_htonl(0xffff)) {
			t.family = AF_INET;
			t.saddr[0] = skops->local_ip6[3];
			t.daddr[0] = skops->remote_ip6[3];
		} else {
			t.family = AF_INET6;
			WM_IP6_COPY(t.saddr, skops->local_ip6);
			WM_IP6_COPY(t.daddr, skops->remote_ip6);
		}
	}
	bpf_map_update_elem(&wm_pair, &t, o, BPF_ANY);
	bpf_map_delete_elem(&wm_cookie, &cookie);
}

static __always_inline void listening(struct bpf_sock_ops *skops)
{
	struct wm_conf *c = wm_get_conf();
	__u32 slot;

	if (!c || !c->inbound_port || skops->local_port != c->inbound_port)
		return;
	/* Sockets of one SO_REUSEPORT group share the slots; sk_lookup picks any
	 * and the kernel balances over the group. Old slots get overwritten, and
	 * a lost increment between two racing listen() calls costs nothing. */
	slot = c->next_slot++ % WM_BPF_LISTEN_SLOTS;
	if (skops->family == AF_INET6)
		slot += WM_BPF_LISTEN_SLOTS;
	bpf_sock_map_update(skops, &wm_listen, &slot, BPF_ANY);
}

SEC("sockops")
int wm_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		established(skops);
	else if (skops->op == BPF_SOCK_OPS_TCP_LISTEN_CB)
		listening(skops);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
