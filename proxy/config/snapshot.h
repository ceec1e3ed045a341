/* The published config snapshot: one immutable struct cfg that every new
 * connection and stream starts from. Reload publishes a new one; the old one
 * dies with its last reference, always on the main thread. */
#ifndef WM_SNAPSHOT_H
#define WM_SNAPSHOT_H

struct cfg;

/* Frees a snapshot whose last reference is gone (its runtime, then its arena).
 * Main thread. */
typedef void (*cfg_snapshot_destroy_cb)(struct cfg *c);

/* Publishes the first snapshot c; destroy frees each snapshot at its end. Main
 * thread, after main_init(). */
void cfg_snapshot_init(struct cfg *c, cfg_snapshot_destroy_cb destroy);

/* Publishes c in place of the current snapshot. Main thread. */
void cfg_snapshot_publish(struct cfg *c);

/* Drops the published reference of old, a snapshot replaced by
 * cfg_snapshot_publish(), once every worker has passed a barrier (a worker may
 * have loaded the old pointer but not yet taken its reference). Main thread. */
void cfg_snapshot_retire(struct cfg *old);

/* The current snapshot without a reference. Main thread. */
struct cfg *cfg_snapshot_current(void);

/* Current snapshot with a reference taken; release with cfg_snapshot_release().
 * Any thread. */
struct cfg *cfg_snapshot_get(void);

/* Drops a snapshot reference from any thread. The last reference is freed on
 * the main thread, which owns the cluster runtime the snapshot points to. */
void cfg_snapshot_release(struct cfg *c);

#endif
