/*
 * A free list of objects of one size, kept by one thread (a shard) so the
 * hot path does not go to malloc for every message, delivery and buffer:
 * glibc's per-thread cache holds 7 objects of a size, far fewer than a
 * window of messages in flight, and past it malloc and free take the
 * arena's slow path.  What one second of traffic did not need goes back
 * to malloc at the next trim (the low-water mark), so a burst does not
 * keep its memory.
 *
 * Objects are plain malloc memory: free() is always right for one, and
 * one may be given to another thread's cache of the same size.
 *
 * Another thread may also give an object back to the cache it came from
 * (objcache_put_remote()): a shard that only publishes would otherwise
 * malloc every message while the shards that free them keep or free
 * them.  Those wait on a lock-free stack that the owner takes whole when
 * its own list runs out, so the owner's get and put stay unsynchronised.
 */
#ifndef CICADA_BROKER_OBJCACHE_H
#define CICADA_BROKER_OBJCACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct objcache {
	void *free; /* a stack linked through each object's first word */
	uint32_t count;
	uint32_t low; /* fewest kept since the last trim: nobody needed them */
	uint32_t max; /* most kept */
	uint32_t size; /* of each object, at least a pointer's */
	/*
	 * Given back by other threads, linked the same way; not counted.
	 * A cache line away from the owner's fields above and from the next
	 * cache's in an array, so that other threads' pushes do not take
	 * the owner's line on every message (a line is at most 64 bytes
	 * here; aligning instead would need aligned allocation of shards).
	 */
	char apart[64];
	_Atomic(void *) returned;
	char apart_after[64 - sizeof(void *)];
};

void objcache_init(struct objcache *c, size_t size, uint32_t max);

/* An object of c->size bytes; NULL when out of memory. */
void *objcache_get(struct objcache *c);
/* Give back an object of c->size bytes; NULL is a no-op. */
void objcache_put(struct objcache *c, void *obj);
/*
 * Give back, from any thread, an object of c->size bytes that came from
 * c, while c's owner may still use it (before objcache_fini()).
 */
void objcache_put_remote(struct objcache *c, void *obj);
/* Free what stayed unused since the last trim (once a second). */
void objcache_trim(struct objcache *c);
/* Free everything kept. */
void objcache_fini(struct objcache *c);

#endif
