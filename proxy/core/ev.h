/* libevent frees that take NULL, as free() does, for clean-up paths that
 * release whatever was made before a failure. */
#ifndef WM_EV_H
#define WM_EV_H

#include <event2/buffer.h>
#include <event2/event.h>

static inline void ev_free(struct event *ev)
{
	if (ev)
		event_free(ev);
}

static inline void evbuf_free(struct evbuffer *b)
{
	if (b)
		evbuffer_free(b);
}

#endif
