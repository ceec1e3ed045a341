/* What the HTTP/2 server (h2.c) and client (upstream/upstream_h2.c) codecs
 * share around an nghttp2 session: building it from a side's callbacks,
 * our SETTINGS, pumping frames between the session and a sock, and the body
 * data provider. nghttp2 never touches the socket itself. */
#ifndef WM_H2_SESSION_H
#define WM_H2_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

struct event;
struct evbuffer;
struct http_headers;
struct sock;

/* One side of the protocol: its nghttp2 callbacks (NULL ones are not set)
 * and the limits that are the same for every connection of that side. */
struct h2_session_ops {
	bool server;
	nghttp2_on_begin_headers_callback on_begin_headers;
	nghttp2_on_header_callback on_header;
	nghttp2_on_frame_recv_callback on_frame_recv;
	nghttp2_on_data_chunk_recv_callback on_data_chunk_recv;
	nghttp2_on_stream_close_callback on_stream_close;
	nghttp2_on_frame_send_callback on_frame_send;
	nghttp2_on_invalid_frame_recv_callback on_invalid_frame_recv;
	size_t max_settings;		/* entries per SETTINGS frame; 0: nghttp2's default */
	uint64_t reset_burst, reset_rate;	/* peer resets allowed (token bucket); 0: nghttp2's */
};

/* A session for ops's side with user as the callbacks' user data. Window
 * updates are ours to send (nghttp2_session_consume once the other side took
 * the bytes), and at most max_outbound_ack SETTINGS/PING ACKs are queued.
 * 0 or -ENOMEM. */
int h2_session_new(nghttp2_session **out, const struct h2_session_ops *ops, size_t max_outbound_ack, void *user);

/* Frees a side's session with its deferred-run event and scratch buffer;
 * any may be NULL (a connection half built). */
void h2_session_free(nghttp2_session *sess, struct event *run_ev, struct evbuffer *scratch);

/* Queues our SETTINGS (iv) and sets the connection window. 0 or -ENOMEM. */
int h2_session_settings(nghttp2_session *sess, const nghttp2_settings_entry *iv, size_t niv, int32_t conn_window);

/* Feeds what sk->in holds to the session, draining what it took, until it is
 * empty or, with stop_flags, *stop_flags & stop (checked between chunks, as a
 * callback may have closed the owner). On an nghttp2 error all of sk->in is
 * dropped and the error returned; else 0. */
ssize_t h2_session_recv(nghttp2_session *sess, struct sock *sk, const uint32_t *stop_flags, uint32_t stop);

/* Pulls frames from the session into sk->out while it holds less than high
 * bytes; the caller flushes. 0, or the nghttp2 error. */
ssize_t h2_session_send(nghttp2_session *sess, struct sock *sk, size_t high);

/* One stream's outgoing body, the same pump for the server's responses and
 * the client's requests: bytes wait in buf until nghttp2 pulls them as DATA
 * frames through h2_out_read(), then the trailers if any. Embedded in each
 * side's stream struct; the owner keeps a count of streams with WANT_DRAIN. */
#define H2_OUT_FL_END		0x01	/* the last body byte is in buf */
#define H2_OUT_FL_DEFERRED	0x02	/* the data provider waits for bytes */
#define H2_OUT_FL_WANT_DRAIN	0x04	/* the owner wants to hear when buf drains */

#define H2_STREAM_OUT_HIGH (256 * 1024)	/* a stream's buf is full above this */
#define H2_STREAM_OUT_LOW (64 * 1024)	/* ... and drained at this or below */

struct h2_out {
	struct evbuffer *buf;
	nghttp2_nv *trailers;		/* submitted once buf is empty after END (h2_nv_copy) */
	size_t ntrailers;
	struct event *run_ev;		/* the session's deferred run: kicked when the stream has news */
	uint32_t flags;			/* H2_OUT_FL_* */
};

/* Allocates o->buf; o->run_ev is the owner's to set. 0 or -ENOMEM. */
int h2_out_init(struct h2_out *o);

/* Frees buf and trailers, leaving the owner's WANT_DRAIN count right. */
void h2_out_free(struct h2_out *o, unsigned *nwant_drain);

/* The data provider's read callback (src->ptr is the struct h2_out): moves up
 * to length bytes of buf into dst; once buf is empty after END, flags EOF and
 * submits the trailers if any; while buf is empty returns
 * NGHTTP2_ERR_DEFERRED until h2_out_resume(). Kicks run_ev when a stream that
 * wants to hear of it drained to H2_STREAM_OUT_LOW. */
ssize_t h2_out_read(nghttp2_session *sess, int32_t id, uint8_t *dst, size_t length, uint32_t *data_flags,
		    nghttp2_data_source *src, void *user);

/* Marks the body complete; trailers (may be NULL or empty) are copied to go
 * after the last DATA frame. 0 or -ENOMEM (then nothing is marked). */
int h2_out_end(struct h2_out *o, const struct http_headers *trailers);

/* After bytes or the end were added: wakes a deferred data provider and
 * kicks the session's run. */
void h2_out_resume(struct h2_out *o, nghttp2_session *sess, int32_t id);

/* Whether the body should stop coming: buf above H2_STREAM_OUT_HIGH or the
 * socket's out at conn_high. If so, the owner is told once it drains (counted
 * in *nwant_drain). */
bool h2_out_is_full(struct h2_out *o, struct sock *sk, size_t conn_high, unsigned *nwant_drain);

/* From the session's run, for each stream while *nwant_drain: true (once) when
 * the owner asked to hear that buf drained and it has. */
bool h2_out_drained(struct h2_out *o, unsigned *nwant_drain);

/* The owner no longer wants to hear of drains (it is detached). */
void h2_out_unwant(struct h2_out *o, unsigned *nwant_drain);

/* Inbound flow control of one stream, both sides (the sessions run without
 * automatic window updates): DATA goes back to the peer's window once the
 * stream's taker has the bytes; while the taker pushes back (paused) they are
 * held, and given back when it resumes or lets go of the stream. */
struct h2_in {
	size_t unconsumed;	/* bytes received while paused */
	bool paused;
};

/* len bytes of stream id were handed on: given back now, or held while the
 * taker (still there: taker) is paused. */
void h2_in_taken(struct h2_in *in, nghttp2_session *sess, int32_t id, size_t len, bool taker);

/* Gives back what was held, unless nghttp2 already closed the stream.
 * True when it gave anything back (the session has a WINDOW_UPDATE to send). */
bool h2_in_release(struct h2_in *in, nghttp2_session *sess, int32_t id, bool closed);

/* The taker's pause_read(): resuming gives back what was held. True when the
 * session has a WINDOW_UPDATE to send. */
bool h2_in_pause(struct h2_in *in, nghttp2_session *sess, int32_t id, bool pause, bool closed);

/* Trailers for a data provider: one malloc'd block holding the array and the
 * strings, since the stream's arena may be gone when the body ends. NULL on
 * out of memory; free() it. */
nghttp2_nv *h2_nv_copy(const struct http_headers *t);

static inline nghttp2_nv h2_nv(const char *n, size_t nlen, const char *v, size_t vlen)
{
	return (nghttp2_nv){ (uint8_t *)n, (uint8_t *)v, nlen, vlen, NGHTTP2_NV_FLAG_NONE };
}

#endif
