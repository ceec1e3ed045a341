/* Admin HTTP/1.1 endpoint on admin.address, served on the main thread
 * (evhttp), in Envoy's shapes; doc/admin.md lists the endpoints. */
#ifndef WM_ADMIN_H
#define WM_ADMIN_H

struct event_base;
struct addr_spec;

/* Binds and serves; 0 or -errno (the bind error is logged). */
int admin_start(struct event_base *base, const struct addr_spec *addr);
/* Rebinds when the admin address changed on reload; keeps the old one on error. */
int admin_update(const struct addr_spec *addr);
void admin_stop(void);
/* Keeps the last n finished requests for /tap without follow (0: none,
 * and the workers record nothing while nobody watches). 0 or -ENOMEM. */
int admin_tap_recent(unsigned n);

#endif
