/* nghttp2 session plumbing shared by the HTTP/2 server and client codecs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/ev.h"
#include "core/sock.h"
#include "http/h2-session.h"
#include "http/stream-t.h"

int h2_session_new(nghttp2_session **out, const struct h2_session_ops *ops, size_t max_outbound_ack, void *user)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	int rc;

	if (nghttp2_session_callbacks_new(&cbs))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, ops->on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, ops->on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, ops->on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, ops->on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, ops->on_stream_close);
	if (ops->on_frame_send)
		nghttp2_session_callbacks_set_on_frame_send_callback(cbs, ops->on_frame_send);
	if (ops->on_invalid_frame_recv)
		nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, ops->on_invalid_frame_recv);
	if (nghttp2_option_new(&opt)) {
		nghttp2_session_callbacks_del(cbs);
		return -ENOMEM;
	}
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, max_outbound_ack);
	if (ops->max_settings)
		nghttp2_option_set_max_settings(opt, ops->max_settings);
	if (ops->reset_burst)
		nghttp2_option_set_stream_reset_rate_limit(opt, ops->reset_burst, ops->reset_rate);
	rc = ops->server ? nghttp2_session_server_new2(out, cbs, user, opt) : nghttp2_session_client_new2(out, cbs, user, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	return rc ? -ENOMEM : 0;
}

void h2_session_free(nghttp2_session *sess, struct event *run_ev, struct evbuffer *scratch)
{
	if (sess)
		nghttp2_session_del(sess);
	ev_free(run_ev);
	evbuf_free(scratch);
}

int h2_session_settings(nghttp2_session *sess, const nghttp2_settings_entry *iv, size_t niv, int32_t conn_window)
{
	if (nghttp2_submit_settings(sess, NGHTTP2_FLAG_NONE, iv, niv) ||
	    nghttp2_session_set_local_window_size(sess, NGHTTP2_FLAG_NONE, 0, conn_window))
		return -ENOMEM;
	return 0;
}

ssize_t h2_session_recv(nghttp2_session *sess, struct sock *sk, const uint32_t *stop_flags, uint32_t stop)
{
	struct evbuffer *in = sk->in;
	size_t len;

	while (!(stop_flags && (*stop_flags & stop)) && (len = evbuffer_get_contiguous_space(in))) {
		const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)len);
		ssize_t n = nghttp2_session_mem_recv(sess, data, len);

		if (n < 0) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return n;
		}
		evbuffer_drain(in, (size_t)n);
	}
	return 0;
}

ssize_t h2_session_send(nghttp2_session *sess, struct sock *sk, size_t high)
{
	while (sock_out_len(sk) < high) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(sess, &data);

		if (n <= 0)
			return n;
		evbuffer_add(sk->out, data, (size_t)n);
	}
	return 0;
}

int h2_out_init(struct h2_out *o)
{
	return (o->buf = evbuffer_new()) ? 0 : -ENOMEM;
}

void h2_out_unwant(struct h2_out *o, unsigned *nwant_drain)
{
	if (o->flags & H2_OUT_FL_WANT_DRAIN) {
		o->flags &= ~H2_OUT_FL_WANT_DRAIN;
		(*nwant_drain)--;
	}
}

void h2_out_free(struct h2_out *o, unsigned *nwant_drain)
{
	h2_out_unwant(o, nwant_drain);
	evbuf_free(o->buf);
	free(o->trailers);
}

ssize_t h2_out_read(nghttp2_session *sess, int32_t id, uint8_t *dst, size_t length, uint32_t *data_flags,
		    nghttp2_data_source *src, void *user)
{
	struct h2_out *o = src->ptr;
	size_t have = evbuffer_get_length(o->buf);
	size_t n = have < length ? have : length;

	if (n)
		evbuffer_remove(o->buf, dst, n);
	if (have - n == 0 && (o->flags & H2_OUT_FL_END)) {
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		if (o->trailers) {
			*data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(sess, id, o->trailers, o->ntrailers))
				return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		return (ssize_t)n;
	}
	if (!n) {
		o->flags |= H2_OUT_FL_DEFERRED;
		return NGHTTP2_ERR_DEFERRED;
	}
	/* The run tells the owner, outside nghttp2. */
	if (have - n <= H2_STREAM_OUT_LOW && (o->flags & H2_OUT_FL_WANT_DRAIN))
		event_active(o->run_ev, EV_TIMEOUT, 0);
	return (ssize_t)n;
}

int h2_out_end(struct h2_out *o, const struct http_headers *trailers)
{
	if (trailers && trailers->n) {
		if (!(o->trailers = h2_nv_copy(trailers)))
			return -ENOMEM;
		o->ntrailers = trailers->n;
	}
	o->flags |= H2_OUT_FL_END;
	return 0;
}

void h2_out_resume(struct h2_out *o, nghttp2_session *sess, int32_t id)
{
	if (o->flags & H2_OUT_FL_DEFERRED) {
		o->flags &= ~H2_OUT_FL_DEFERRED;
		nghttp2_session_resume_data(sess, id);
	}
	event_active(o->run_ev, EV_TIMEOUT, 0);
}

bool h2_out_is_full(struct h2_out *o, struct sock *sk, size_t conn_high, unsigned *nwant_drain)
{
	if (evbuffer_get_length(o->buf) < H2_STREAM_OUT_HIGH && sock_out_len(sk) < conn_high)
		return false;
	if (!(o->flags & H2_OUT_FL_WANT_DRAIN)) {
		o->flags |= H2_OUT_FL_WANT_DRAIN;
		(*nwant_drain)++;
	}
	return true;
}

bool h2_out_drained(struct h2_out *o, unsigned *nwant_drain)
{
	if (!(o->flags & H2_OUT_FL_WANT_DRAIN) || evbuffer_get_length(o->buf) > H2_STREAM_OUT_LOW)
		return false;
	h2_out_unwant(o, nwant_drain);
	return true;
}

nghttp2_nv *h2_nv_copy(const struct http_headers *t)
{
	size_t bytes = 0;
	nghttp2_nv *nv;
	char *p;

	for (uint32_t i = 0; i < t->n; i++)
		bytes += t->v[i].nlen + t->v[i].vlen;
	if (!(nv = malloc(t->n * sizeof(*nv) + bytes)))
		return NULL;
	p = (char *)(nv + t->n);
	for (uint32_t i = 0; i < t->n; i++) {
		memcpy(p, t->v[i].name, t->v[i].nlen);
		memcpy(p + t->v[i].nlen, t->v[i].value, t->v[i].vlen);
		nv[i] = h2_nv(p, t->v[i].nlen, p + t->v[i].nlen, t->v[i].vlen);
		p += t->v[i].nlen + t->v[i].vlen;
	}
	return nv;
}

void h2_in_taken(struct h2_in *in, nghttp2_session *sess, int32_t id, size_t len, bool taker)
{
	if (taker && in->paused)
		in->unconsumed += len;
	else
		nghttp2_session_consume(sess, id, len);
}

bool h2_in_release(struct h2_in *in, nghttp2_session *sess, int32_t id, bool closed)
{
	size_t n = in->unconsumed;

	in->unconsumed = 0;
	if (!n || closed)
		return false;
	nghttp2_session_consume(sess, id, n);
	return true;
}

bool h2_in_pause(struct h2_in *in, nghttp2_session *sess, int32_t id, bool pause, bool closed)
{
	in->paused = pause;
	return !pause && h2_in_release(in, sess, id, closed);
}
