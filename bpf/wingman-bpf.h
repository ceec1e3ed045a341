/* Structs shared by the BPF programs in bpf/ and `wingman intercept`
 * (proxy/intercept.c). Fixed-width types only: both sides see the same layout.
 * Addresses are in network byte order, ports in host byte order. */
#ifndef WM_BPF_H
#define WM_BPF_H

#include <linux/types.h>

#define WM_BPF_PIN_ROOT		"/sys/fs/bpf/wingman"
#define WM_BPF_LISTEN_SLOTS	8	/* inbound listening sockets remembered per family */
#define WM_BPF_MAX_PORTS	64	/* excluded ports */
#define WM_BPF_MAX_CIDRS	64	/* excluded CIDRs per family */

#define WM_CONF_FL_EXCLUDE_UID	0x01	/* connections of exclude_uid are never redirected */

/* wm_conf[0]: what install was asked for. The paths are only for status. */
struct wm_conf {
	__u32 flags;			/* WM_CONF_FL_* */
	__u32 exclude_uid;
	__u16 outbound_port;		/* connect() is rewritten to 127.0.0.1 / ::1 on this port */
	__u16 inbound_port;		/* sk_lookup steers to the socket listening on this port */
	__u32 next_slot;		/* sockops: next wm_listen slot to fill (wraps) */
	__u64 cgroup_id;
	__u64 netns_ino;
	char cgroup[192];
	char netns[64];
};

/* A redirected connection as its client socket sees it: key of wm_pair.
 * IPv4 uses addr[0] only; v4-mapped IPv6 sockets are stored as IPv4. */
struct wm_tuple {
	__u32 family;			/* AF_INET / AF_INET6 */
	__u16 sport, dport;		/* client port, proxy port */
	__u32 saddr[4], daddr[4];
};

/* The destination the client asked for before connect() was rewritten. */
struct wm_orig {
	__u32 family;
	__u16 port;
	__u16 pad;
	__u32 addr[4];
};

/* LPM trie keys of the excluded CIDRs. */
struct wm_lpm4 {
	__u32 prefixlen;
	__u32 addr;
};

struct wm_lpm6 {
	__u32 prefixlen;
	__u32 addr[4];
};

#endif
