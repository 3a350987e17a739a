/*
 * Free lists of one object size, trimmed to the last second's use, with a
 * lock-free stack for objects other threads give back.
 */
#include <stdlib.h>

#include "broker/objcache.h"

void objcache_init(struct objcache *c, size_t size, uint32_t max)
{
	c->free = NULL;
	c->count = c->low = 0;
	c->max = max;
	c->size = (uint32_t)(size < sizeof(void *) ? sizeof(void *) : size);
	atomic_init(&c->returned, NULL);
}

/*
 * Move what other threads gave back onto the owner's list, up to max.
 * Taking the whole stack at once needs no protection against ABA: no one
 * else ever takes from it.
 */
static void take_returned(struct objcache *c)
{
	void *obj = atomic_exchange_explicit(&c->returned, NULL,
					     memory_order_acquire);

	while (obj) {
		void *next = *(void **)obj;

		objcache_put(c, obj);
		obj = next;
	}
}

void *objcache_get(struct objcache *c)
{
	void *obj = c->free;

	if (!obj && atomic_load_explicit(&c->returned, memory_order_relaxed)) {
		take_returned(c);
		obj = c->free;
	}
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

void objcache_put_remote(struct objcache *c, void *obj)
{
	void *head = atomic_load_explicit(&c->returned, memory_order_relaxed);

	if (!obj)
		return;
	do
		*(void **)obj = head;
	while (!atomic_compare_exchange_weak_explicit(
		&c->returned, &head, obj, memory_order_release,
		memory_order_relaxed));
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

/*
 * What came back since the last trim was in use during it: it joins the
 * list after the drop, to go at the next trim if nobody takes it.
 */
void objcache_trim(struct objcache *c)
{
	objcache_drop(c, c->low);
	take_returned(c);
	c->low = c->count;
}

void objcache_fini(struct objcache *c)
{
	take_returned(c);
	objcache_drop(c, c->count);
	c->low = 0;
}
