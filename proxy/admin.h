/* Admin HTTP/1.1 endpoint on admin.address, served on the main thread
 * (evhttp), in Envoy's shapes; doc/admin.md lists the endpoints. */
#ifndef WM_ADMIN_H
#define WM_ADMIN_H

struct event_base;
struct addr_spec;

/* Binds and serves; 0 or -errno (the bind error is logged). */
int admin_start(struct event_base *base, const struct addr_spec *addr);
/* Serves on fd, a listening socket bound to addr that a hot restart took
 * over (owned from then on); 0 or -ENOMEM. */
int admin_adopt(struct event_base *base, const struct addr_spec *addr, int fd);
/* The admin listening socket (for a hot restart to hand on), or -1. */
int admin_fd(void);
/* Rebinds when the admin address changed on reload; keeps the old one on error. */
int admin_update(const struct addr_spec *addr);
void admin_stop(void);
/* Keeps the last n finished requests for /tap without follow (0: none,
 * and the workers record nothing while nobody watches). 0 or -ENOMEM. */
int admin_tap_recent(unsigned n);

#endif
