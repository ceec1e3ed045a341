/* The HTTP/1.1 server codec (h1-server.c): requests read from a downstream
 * connection with llhttp, answered through struct codec_ops (stream.h). Its
 * state lives in struct conn (conn.h). */
#ifndef WM_H1_SERVER_H
#define WM_H1_SERVER_H

struct conn;

/* The first bytes of c chose HTTP/1.1: sets up the parser and c->codec,
 * counts the connection as HTTP/1.x. The caller then has c->codec->process()
 * parse what came. 0 or -ENOMEM (c is left to close). */
int h1_server_start(struct conn *c);

#endif
