/* The published config snapshot and its reference counting. */
#include <stdatomic.h>

#include "config/cfg.h"
#include "config/snapshot.h"
#include "core/log.h"
#include "core/worker.h"

static _Atomic(struct cfg *) current;
static cfg_snapshot_destroy_cb destroy;

void cfg_snapshot_init(struct cfg *c, cfg_snapshot_destroy_cb fn)
{
	destroy = fn;
	atomic_store(&current, c);
}

struct cfg *cfg_snapshot_current(void)
{
	return atomic_load(&current);
}

struct cfg *cfg_snapshot_get(void)
{
	/* Safe without a lock: a replaced snapshot keeps its published reference
	 * until every worker passed a barrier (see cfg_snapshot_publish()). */
	return cfg_ref(atomic_load_explicit(&current, memory_order_acquire));
}

static void destroy_main(void *arg)
{
	destroy(arg);
}

void cfg_snapshot_release(struct cfg *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (main_is_self())
		destroy(c);
	else if (main_post(destroy_main, c))
		log_err("out of memory releasing config generation %llu", (unsigned long long)c->generation);
}

static void release_published(void *arg)
{
	cfg_snapshot_release(arg);
}

void cfg_snapshot_publish(struct cfg *c)
{
	atomic_store_explicit(&current, c, memory_order_release);
}

void cfg_snapshot_retire(struct cfg *old)
{
	/* Streams that started on the old snapshot hold their own references. */
	if (worker_barrier(release_published, old))
		cfg_snapshot_release(old);
}
