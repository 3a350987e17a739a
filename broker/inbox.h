/*
 * A shard's inbox: how other shard threads hand it pointers.  One
 * single-producer/single-consumer ring per sending shard, so posting and
 * draining take no lock while the ring has room; a full ring spills to a
 * mutex-protected list of malloc'd nodes instead of blocking or dropping.
 *
 * Items from one producer come out in the order it posted them, across
 * the ring/overflow boundary too: the broker's per-publisher FIFO rests on
 * it.  Items of different producers have no order between them.
 *
 * Wake-ups are the caller's business (the broker coalesces one ev_async
 * per loop turn); this module knows nothing of libev.  It does not own
 * what ptr points to either: the broker gives kind, arg and ptr their
 * meaning.
 */
#ifndef CICADA_BROKER_INBOX_H
#define CICADA_BROKER_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copied in and out by value; 16 bytes on LP64. */
struct inbox_item {
	uint32_t kind;
	uint32_t arg;
	void *ptr;
};

struct inbox_ring;

/* Lives in the consumer's shard; the rings are allocated apart. */
struct inbox {
	struct inbox_ring *ring; /* one per producer, cache-line aligned */
	unsigned producers;
	unsigned next; /* consumer only: the producer drain serves first */
};

/*
 * Rings for producers 0..producers-1, each holding capacity_pow2 items
 * (a power of two, at least 1) before it overflows.  Returns 0, -EINVAL
 * for a bad size, or -ENOMEM with nothing allocated.
 */
int inbox_init(struct inbox *ib, unsigned producers, unsigned capacity_pow2);

/*
 * Free the rings and any overflow nodes.  Items still queued are dropped
 * without looking at their ptr: drain first if they own something.  No
 * thread may post or drain any more.
 */
void inbox_fini(struct inbox *ib);

/*
 * Queue a copy of *it.  Only thread `producer` may post as `producer`
 * (that is what makes its ring single-producer).  Never blocks on the
 * consumer; a full ring takes a mutex and a malloc.  Returns 0, or -ENOMEM
 * when that malloc fails: then *it was not queued and the order of what
 * was is unchanged.
 */
int inbox_post(struct inbox *ib, unsigned producer,
	       const struct inbox_item *it);

/*
 * Consumer thread only.  Call fn(arg, item) for up to max items, one
 * producer at a time in turn (round-robin, resumed by the next call), and
 * return how many.  Less than max means every producer was seen empty
 * during the call.  fn gets a copy that is valid only during the call; it
 * may post to any inbox, this one included, but must not drain this one.
 */
size_t inbox_drain(struct inbox *ib,
		   void (*fn)(void *arg, const struct inbox_item *it),
		   void *arg, size_t max);

/*
 * Consumer thread only.  false is exact: an item is there and stays until
 * drained.  true covers every post that happens-before this call (e.g. one
 * followed by the ev_async_send that woke us); a post racing with it may
 * be missed, and its poster's wake-up must then bring us back.
 */
bool inbox_empty(const struct inbox *ib);

#endif
