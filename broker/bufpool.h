/*
 * A shard's cache of connection buffers.  A connection gives its output
 * buffer back as soon as it is written (an idle connection holds none),
 * so a busy shard would otherwise malloc and free a buffer per
 * connection per loop turn, and glibc would give the heap's top back to
 * the kernel and fault it in again each time (a third of the CPU of a
 * 1 -> 1,000 fanout went there).  Buffers of 1 KiB to 64 KiB (powers of
 * two) are kept in one broker/objcache.h free list per size instead.
 *
 * One shard's thread only; a buffer is plain malloc memory, so one may
 * also be freed with free() or given to another shard's pool.
 */
#ifndef CICADA_BROKER_BUFPOOL_H
#define CICADA_BROKER_BUFPOOL_H

#include <stddef.h>

#include "broker/objcache.h"

#define BUFPOOL_MIN_LOG2 10 /* 1 KiB */
#define BUFPOOL_CLASSES 7 /* 1 KiB .. 64 KiB */
#define BUFPOOL_MAX_SIZE ((size_t)1 << (BUFPOOL_MIN_LOG2 + BUFPOOL_CLASSES - 1))
/*
 * Most bytes kept per size: enough for one loop turn of 1 KiB writes to
 * 16,000 subscribers; what a second does not use goes anyway.
 */
#define BUFPOOL_CLASS_BYTES (16u * 1024u * 1024u)

struct bufpool {
	struct objcache size[BUFPOOL_CLASSES];
};

void bufpool_init(struct bufpool *p);
/* A buffer of size bytes (any size; pooled ones are powers of two). */
void *bufpool_get(struct bufpool *p, size_t size);
/* Give back a buffer of size bytes from bufpool_get(); NULL is a no-op. */
void bufpool_put(struct bufpool *p, void *buf, size_t size);
/* Free what stayed unused since the last trim (once a second). */
void bufpool_trim(struct bufpool *p);
/* Free everything kept. */
void bufpool_fini(struct bufpool *p);

#endif
