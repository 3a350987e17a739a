/*
 * Cross-shard inbox (see inbox.h): per-producer SPSC rings with a locked
 * overflow list behind each.
 *
 * Ordering across the boundary.  Each ring has an overflow list and a
 * flag, overflowing, that is true exactly while that list is non-empty
 * (both change only under the ring's lock).  The producer posts to the
 * ring only while the flag is false, so at any time every item in the ring
 * was posted before every item in the list; the consumer therefore takes
 * from the list only after seeing the ring empty while holding the lock
 * (the lock makes every ring post that preceded a listed node visible).
 * Only the producer sets the flag, so it never misses its own true; a
 * stale true costs one needless trip through the lock, nothing more.
 *
 * Indices run free (size_t, wrapping) and are masked on use, so full is
 * tail - head == cap and empty is tail == head with no slot wasted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "broker/inbox.h"

#define CACHE_LINE 64

/* One spilled item; the list is FIFO through next. */
struct inbox_node {
	struct inbox_node *next;
	struct inbox_item item;
};

/*
 * Each group on its own cache line: the producer's writes to tail do not
 * evict the consumer's head and the other way round, and the read-only
 * line stays shared in both caches.
 */
struct inbox_ring {
	/* Read-only after inbox_init. */
	alignas(CACHE_LINE) struct inbox_item *slot;
	size_t mask; /* capacity - 1 */

	/* Written by the producer on every post. */
	alignas(CACHE_LINE) atomic_size_t tail; /* next slot to fill */
	size_t head_cache; /* producer's last look at head */
	/*
	 * Next to tail because the producer reads it on every post and the
	 * consumer reads it whenever the ring looks empty: one line for both.
	 * The consumer writes it only when the list empties, which is rare.
	 */
	atomic_bool overflowing;

	/* Written by the consumer on every take. */
	alignas(CACHE_LINE) atomic_size_t head; /* next slot to take */
	size_t tail_cache; /* consumer's last look at tail */

	/* Touched only while overflowing. */
	alignas(CACHE_LINE) pthread_mutex_t lock;
	struct inbox_node *first; /* oldest spilled item, under lock */
	struct inbox_node *last;
};

/*
 * Producer side.  head is read only when the cached copy says full: the
 * consumer's line then moves once per capacity items, not once per post.
 */
static bool ring_push(struct inbox_ring *r, const struct inbox_item *it)
{
	size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (t - r->head_cache > r->mask) {
		/* Acquire: the consumer's copy out of the slot we reuse
		 * happens-before we overwrite it. */
		r->head_cache =
			atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - r->head_cache > r->mask)
			return false;
	}
	r->slot[t & r->mask] = *it;
	/* Release: the slot's contents before the index that shows them. */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return true;
}

/* Consumer side, the mirror image of ring_push(). */
static bool ring_pop(struct inbox_ring *r, struct inbox_item *out)
{
	size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (h == r->tail_cache) {
		r->tail_cache =
			atomic_load_explicit(&r->tail, memory_order_acquire);
		if (h == r->tail_cache)
			return false;
	}
	/* Copy out before releasing the slot: fn may run long, and the
	 * producer may refill the slot the moment head moves. */
	*out = r->slot[h & r->mask];
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return true;
}

static int overflow_push(struct inbox_ring *r, const struct inbox_item *it)
{
	struct inbox_node *n = malloc(sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->next = NULL;
	n->item = *it;
	pthread_mutex_lock(&r->lock);
	if (r->last)
		r->last->next = n;
	else
		r->first = n;
	r->last = n;
	/* Release pairs with inbox_empty(), which reads it without the lock. */
	atomic_store_explicit(&r->overflowing, true, memory_order_release);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Consumer side, once the ring looked empty and the flag was set. */
static bool overflow_pop(struct inbox_ring *r, struct inbox_item *out)
{
	struct inbox_node *n;
	bool got;

	pthread_mutex_lock(&r->lock);
	/*
	 * Items may have reached the ring between our first look and the
	 * lock; those precede every listed node, so they go first.
	 */
	got = ring_pop(r, out);
	n = got ? NULL : r->first;
	if (n) {
		r->first = n->next;
		if (!r->first) {
			r->last = NULL;
			/* The producer may use the ring again: every item
			 * it posted so far has now been taken. */
			atomic_store_explicit(&r->overflowing, false,
					      memory_order_release);
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (!n)
		return got;
	*out = n->item;
	free(n);
	return true;
}

static bool inbox_take(struct inbox_ring *r, struct inbox_item *out)
{
	if (ring_pop(r, out))
		return true;
	if (!atomic_load_explicit(&r->overflowing, memory_order_acquire))
		return false;
	return overflow_pop(r, out);
}

static void ring_fini(struct inbox_ring *r)
{
	struct inbox_node *n, *next;

	for (n = r->first; n; n = next) {
		next = n->next;
		free(n);
	}
	pthread_mutex_destroy(&r->lock);
	free(r->slot);
}

static int ring_init(struct inbox_ring *r, size_t cap)
{
	/* aligned_alloc wants a multiple of the alignment; the rounding
	 * also keeps the last slots off a neighbour's cache line. */
	size_t bytes = (cap * sizeof(struct inbox_item) + CACHE_LINE - 1) &
		       ~(size_t)(CACHE_LINE - 1);

	r->slot = aligned_alloc(CACHE_LINE, bytes);
	if (!r->slot)
		return -ENOMEM;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r->slot);
		return -ENOMEM;
	}
	r->mask = cap - 1;
	atomic_init(&r->tail, 0);
	r->head_cache = 0;
	atomic_init(&r->overflowing, false);
	atomic_init(&r->head, 0);
	r->tail_cache = 0;
	r->first = NULL;
	r->last = NULL;
	return 0;
}

int inbox_init(struct inbox *ib, unsigned producers, unsigned capacity_pow2)
{
	unsigned i;
	int rc;

	if (producers == 0 || capacity_pow2 == 0 ||
	    (capacity_pow2 & (capacity_pow2 - 1)) != 0)
		return -EINVAL;
	/* The struct's alignment makes its size a multiple of the line. */
	ib->ring = aligned_alloc(CACHE_LINE,
				 producers * sizeof(struct inbox_ring));
	if (!ib->ring)
		return -ENOMEM;
	for (i = 0; i < producers; i++) {
		rc = ring_init(&ib->ring[i], capacity_pow2);
		if (rc < 0)
			goto out_fini_rings;
	}
	ib->producers = producers;
	ib->next = 0;
	return 0;

out_fini_rings:
	while (i-- > 0)
		ring_fini(&ib->ring[i]);
	free(ib->ring);
	ib->ring = NULL;
	return rc;
}

void inbox_fini(struct inbox *ib)
{
	unsigned i;

	if (!ib->ring)
		return;
	for (i = 0; i < ib->producers; i++)
		ring_fini(&ib->ring[i]);
	free(ib->ring);
	ib->ring = NULL;
	ib->producers = 0;
}

int inbox_post(struct inbox *ib, unsigned producer,
	       const struct inbox_item *it)
{
	struct inbox_ring *r = &ib->ring[producer];

	/* Relaxed: only we set the flag, so a false here was the consumer
	 * emptying the list, and then our ring is the right place. */
	if (!atomic_load_explicit(&r->overflowing, memory_order_relaxed) &&
	    ring_push(r, it))
		return 0;
	return overflow_push(r, it);
}

size_t inbox_drain(struct inbox *ib,
		   void (*fn)(void *arg, const struct inbox_item *it),
		   void *arg, size_t max)
{
	struct inbox_item it;
	unsigned p = ib->next, idle = 0;
	size_t done = 0;

	/* One item per producer per turn: a busy producer cannot starve
	 * the others of the consumer's max. */
	while (done < max && idle < ib->producers) {
		if (inbox_take(&ib->ring[p], &it)) {
			fn(arg, &it);
			done++;
			idle = 0;
		} else {
			idle++;
		}
		p = p + 1 == ib->producers ? 0 : p + 1;
	}
	ib->next = p;
	return done;
}

bool inbox_empty(const struct inbox *ib)
{
	const struct inbox_ring *r;
	unsigned i;

	for (i = 0; i < ib->producers; i++) {
		r = &ib->ring[i];
		/* Acquire, so that a post which happens-before us is seen;
		 * head is ours and needs no ordering. */
		if (atomic_load_explicit(&r->tail, memory_order_acquire) !=
			    atomic_load_explicit(&r->head,
						 memory_order_relaxed) ||
		    atomic_load_explicit(&r->overflowing,
					 memory_order_acquire))
			return false;
	}
	return true;
}
