/* What the fuzz harnesses share: a config snapshot published as server_run()
 * would, one worker whose event loop the harness turns itself, and downstream
 * connections fed through a socketpair, so the codecs run exactly as they do
 * behind a listening socket whatever files they live in. */
#ifndef WM_FUZZ_HARNESS_H
#define WM_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Loads the harnesses' proxy config (a listener "h1" and a listener "h2" in
 * front of direct responses), sets up the worker on this thread and publishes
 * the config. Aborts on failure: a harness without its setup finds nothing. */
void harness_init(void);

/* The accept key of the listener called name (aborts when there is none). */
const char *harness_listener(const char *name);

/* Accepts one end of a socketpair on the listener with that key and writes
 * prefix (may be NULL) and then data to the other end. The first three bytes
 * of data, when there are that many, are not sent: each picks a split point
 * (byte/256 of the rest; 0: none) where the writes pause for a loop turn, so
 * the codec also sees requests, frames and headers cut in the middle. Then the
 * write side is shut down, the loop runs until the connection is gone (at
 * most a fixed number of turns), everything it answered is read and dropped,
 * and whatever is left is closed and freed. */
void harness_conn(const char *key, const void *prefix, size_t plen, const uint8_t *data, size_t len);

#endif
