/*
 * Connection buffers kept per shard: a free stack per power-of-two size,
 * trimmed to what the last second's traffic used.
 */
#include <stdlib.h>

#include "broker/bufpool.h"

/* The class of a pooled size, or -1 for sizes malloc handles alone. */
static int class_of(size_t size)
{
	for (int k = 0; k < BUFPOOL_CLASSES; k++)
		if (size == (size_t)1 << (BUFPOOL_MIN_LOG2 + k))
			return k;
	return -1;
}

void *bufpool_get(struct bufpool *p, size_t size)
{
	int k = class_of(size);
	void *buf;

	if (k < 0 || !p->free[k])
		return malloc(size);
	buf = p->free[k];
	p->free[k] = *(void **)buf;
	p->count[k]--;
	if (p->count[k] < p->low[k])
		p->low[k] = p->count[k];
	p->bytes -= size;
	return buf;
}

void bufpool_put(struct bufpool *p, void *buf, size_t size)
{
	int k = class_of(size);

	if (!buf)
		return;
	if (k < 0 || p->bytes + size > BUFPOOL_MAX_BYTES) {
		free(buf);
		return;
	}
	*(void **)buf = p->free[k];
	p->free[k] = buf;
	p->count[k]++;
	p->bytes += size;
}

void bufpool_trim(struct bufpool *p)
{
	for (int k = 0; k < BUFPOOL_CLASSES; k++) {
		/* The low-water mark: that many were never taken. */
		for (uint32_t n = p->low[k]; n > 0; n--) {
			void *buf = p->free[k];

			p->free[k] = *(void **)buf;
			free(buf);
			p->count[k]--;
			p->bytes -= (size_t)1 << (BUFPOOL_MIN_LOG2 + k);
		}
		p->low[k] = p->count[k];
	}
}

void bufpool_fini(struct bufpool *p)
{
	for (int k = 0; k < BUFPOOL_CLASSES; k++) {
		while (p->free[k]) {
			void *buf = p->free[k];

			p->free[k] = *(void **)buf;
			free(buf);
		}
		p->count[k] = p->low[k] = 0;
	}
	p->bytes = 0;
}
