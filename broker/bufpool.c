/*
 * Connection buffers kept per shard: a free list per power-of-two size.
 */
#include <stdlib.h>

#include "broker/bufpool.h"

void bufpool_init(struct bufpool *p)
{
	for (int k = 0; k < BUFPOOL_CLASSES; k++) {
		size_t size = (size_t)1 << (BUFPOOL_MIN_LOG2 + k);

		objcache_init(&p->size[k], size,
			      (uint32_t)(BUFPOOL_CLASS_BYTES / size));
	}
}

/* The free list of a pooled size, or NULL for sizes malloc handles. */
static struct objcache *cache_of(struct bufpool *p, size_t size)
{
	for (int k = 0; k < BUFPOOL_CLASSES; k++)
		if (size == p->size[k].size)
			return &p->size[k];
	return NULL;
}

void *bufpool_get(struct bufpool *p, size_t size)
{
	struct objcache *c = cache_of(p, size);

	return c ? objcache_get(c) : malloc(size);
}

void bufpool_put(struct bufpool *p, void *buf, size_t size)
{
	struct objcache *c = cache_of(p, size);

	if (c)
		objcache_put(c, buf);
	else
		free(buf);
}

void bufpool_trim(struct bufpool *p)
{
	for (int k = 0; k < BUFPOOL_CLASSES; k++)
		objcache_trim(&p->size[k]);
}

void bufpool_fini(struct bufpool *p)
{
	for (int k = 0; k < BUFPOOL_CLASSES; k++)
		objcache_fini(&p->size[k]);
}
