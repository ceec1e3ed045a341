/* The filter API. A filter is one file in filters/ exporting one const
 * struct filter_ops; filters/filters.c lists them in chain order.
 *
 * Config: a filter's YAML key (its name) may appear at the top level and/or in a
 * route (scope bits). conf_parse turns that node into read-only state once per
 * snapshot; errors go through cfg_error() so they carry FILE:LINE:COL.
 *
 * Per stream: state_size bytes, zeroed, on the stream's arena; attach runs when
 * the route is known, detach when the stream ends. Request hooks run in chain
 * order, response hooks in reverse. A hook returning FILTER_STOP pauses the
 * chain; the filter later calls stream_resume(). A filter that answers locally
 * calls stream_local_reply() and returns FILTER_STOP. Any hook may be NULL. */
#ifndef WM_FILTER_H
#define WM_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct stream;
struct evbuffer;
struct ynode;
struct cfg_parse;

enum filter_status {
	FILTER_CONTINUE,	/* go on to the next filter */
	FILTER_STOP,		/* pause iteration; stream_resume() continues it */
	FILTER_ERROR,		/* fail the stream with a 500 */
};

#define FILTER_SCOPE_TOP	0x01	/* key allowed at the top level of the config */
#define FILTER_SCOPE_ROUTE	0x02	/* key allowed in a route */

struct filter_ops {
	const char *name;
	unsigned scope;
	/* Returns the parsed config (allocated on pc's arena) or NULL after cfg_error(). */
	void *(*conf_parse)(struct cfg_parse *pc, const struct ynode *node, unsigned scope);
	size_t state_size;
	int (*attach)(struct stream *s, const void *conf, void *state);
	void (*detach)(struct stream *s, const void *conf, void *state);
	enum filter_status (*on_request_headers)(struct stream *s, const void *conf, void *state);
	enum filter_status (*on_request_data)(struct stream *s, const void *conf, void *state,
					      struct evbuffer *buf, bool end);
	enum filter_status (*on_response_headers)(struct stream *s, const void *conf, void *state);
	enum filter_status (*on_response_data)(struct stream *s, const void *conf, void *state,
					       struct evbuffer *buf, bool end);
	/* After the response is complete or the stream failed; for logs, stats, spans. */
	void (*on_log)(struct stream *s, const void *conf, void *state);
	/* On each worker thread as it exits, for worker-local state a filter
	 * created lazily (batches, connections, tables). */
	void (*thread_exit)(void);
};

/* The table, in chain order, NULL-terminated (filters/filters.c). */
extern const struct filter_ops *const filter_table[];

/* Looks a filter up by its YAML key; NULL if none. */
const struct filter_ops *filter_find(const char *name);

/* Runs every filter's thread_exit hook; called by each worker on its way out. */
void filters_thread_exit(void);

#endif
