/* Maps shared by every program of one installation. Each object declares them
 * pinned by name, and `wingman intercept install` opens every object with the
 * installation's directory as pin root, so libbpf creates them once and the
 * other objects reuse the pinned maps. */
#ifndef WM_MAPS_BPF_H
#define WM_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "wingman-bpf.h"

/* Copies an IPv6 address out of a context or socket field a word at a time:
 * the verifier allows only fixed-offset 32-bit loads there, so neither
 * memcpy nor a pointer to the field. */
#define WM_IP6_COPY(dst, src)							\
	do {									\
		(dst)[0] = (src)[0];						\
		(dst)[1] = (src)[1];						\
		(dst)[2] = (src)[2];						\
		(dst)[3] = (src)[3];						\
	} while (0)

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wm_conf);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wm_conf SEC(".maps");

/* Excluded ports (both directions): port → 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WM_BPF_MAX_PORTS);
	__type(key, __u16);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wm_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WM_BPF_MAX_CIDRS);
	__type(key, struct wm_lpm4);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wm_cidr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WM_BPF_MAX_CIDRS);
	__type(key, struct wm_lpm6);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wm_cidr6 SEC(".maps");

/* connect4/6 → sockops: socket cookie → original destination, until the
 * connection is established and its ports are known. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct wm_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wm_cookie SEC(".maps");

/* sockops → getsockopt: client 4-tuple → original destination. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct wm_tuple);
	__type(value, struct wm_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wm_pair SEC(".maps");

/* The proxy's inbound listening sockets, filled by sockops when they listen:
 * slots [0, N) IPv4, [N, 2N) IPv6. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2 * WM_BPF_LISTEN_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wm_listen SEC(".maps");

static __always_inline struct wm_conf *wm_get_conf(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&wm_conf, &k);
}

static __always_inline int wm_port_excluded(const struct wm_conf *c, __u16 port)
{
	if (port == c->outbound_port || port == c->inbound_port)
		return 1;
	return bpf_map_lookup_elem(&wm_ports, &port) != NULL;
}

static __always_inline int wm_v4_loopback(__u32 addr)
{
	return (bpf_ntohl(addr) >> 24) == 127;
}

static __always_inline int wm_v6_loopback(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1);
}

static __always_inline int wm_v6_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

#endif
