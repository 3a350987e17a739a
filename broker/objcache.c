/*
 * Free lists of one object size, trimmed to the last second's use.
 */
#include <stdlib.h>

#include "broker/objcache.h"

void objcache_init(struct objcache *c, size_t size, uint32_t max)
{
	c->free = NULL;
	c->count = c->low = 0;
	c->max = max;
	c->size = (uint32_t)(size < sizeof(void *) ? sizeof(void *) : size);
}

void *objcache_get(struct objcache *c)
{
	void *obj = c->free;

	if (!obj)
		return malloc(c->size);
	c->free = *(void **)obj;
	if (--c->count < c->low)
		c->low = c->count;
	return obj;
}

void objcache_put(struct objcache *c, void *obj)
{
	if (!obj)
		return;
	if (c->count >= c->max) {
		free(obj);
		return;
	}
	*(void **)obj = c->free;
	c->free = obj;
	c->count++;
}

static void objcache_drop(struct objcache *c, uint32_t n)
{
	for (; n > 0 && c->free; n--) {
		void *obj = c->free;

		c->free = *(void **)obj;
		c->count--;
		free(obj);
	}
}

void objcache_trim(struct objcache *c)
{
	objcache_drop(c, c->low);
	c->low = c->count;
}

void objcache_fini(struct objcache *c)
{
	objcache_drop(c, c->count);
	c->low = 0;
}
