/*
 * The registry of shared groups: a hash of filters under one mutex, taken
 * only when a shard's tree gains or loses a group or a member.  The
 * per-shard member counts are atomics, read without the lock by
 * share_group_mine() on the publish path.
 *
 * While a member joins or leaves on one shard, another shard may read the
 * counts before the change and this one after; for that instant a message
 * can be delivered by two shards or by none.  The window is one
 * SUBSCRIBE or UNSUBSCRIBE; docs/decisions.md #13 says why this is
 * accepted.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "broker/share.h"

#define SHARE_BUCKETS 256

struct share_group {
	struct share_group *next;
	unsigned refs; /* shards whose tree has the group; under the lock */
	atomic_uint members[SHARE_MAX_SHARDS];
	size_t len;
	char filter[];
};

struct share_registry {
	pthread_mutex_t lock;
	unsigned shards;
	struct share_group *bucket[SHARE_BUCKETS];
};

static size_t filter_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 1099511628211ull;
	}
	return (size_t)(h % SHARE_BUCKETS);
}

struct share_registry *share_registry_new(unsigned shards)
{
	struct share_registry *r;

	if (shards == 0 || shards > SHARE_MAX_SHARDS)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r);
		return NULL;
	}
	r->shards = shards;
	return r;
}

void share_registry_free(struct share_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < SHARE_BUCKETS; i++) {
		struct share_group *g = r->bucket[i], *next;

		for (; g; g = next) {
			next = g->next;
			free(g);
		}
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct share_group *share_group_get(struct share_registry *r,
				    const char *filter, size_t len)
{
	struct share_group **head = &r->bucket[filter_hash(filter, len)], *g;

	pthread_mutex_lock(&r->lock);
	for (g = *head; g; g = g->next)
		if (g->len == len && memcmp(g->filter, filter, len) == 0)
			break;
	if (!g) {
		g = calloc(1, sizeof(*g) + len);
		if (g) {
			memcpy(g->filter, filter, len);
			g->len = len;
			g->next = *head;
			*head = g;
		}
	}
	if (g)
		g->refs++;
	pthread_mutex_unlock(&r->lock);
	return g;
}

void share_group_put(struct share_registry *r, struct share_group *g)
{
	struct share_group **pp;

	if (!g)
		return;
	pthread_mutex_lock(&r->lock);
	if (--g->refs == 0) {
		pp = &r->bucket[filter_hash(g->filter, g->len)];
		while (*pp != g)
			pp = &(*pp)->next;
		*pp = g->next;
		free(g);
	}
	pthread_mutex_unlock(&r->lock);
}

void share_group_member(struct share_registry *r, struct share_group *g,
			unsigned shard, int delta)
{
	(void)r;
	if (!g || shard >= SHARE_MAX_SHARDS)
		return;
	if (delta > 0)
		atomic_fetch_add_explicit(&g->members[shard], 1,
					  memory_order_release);
	else
		atomic_fetch_sub_explicit(&g->members[shard], 1,
					  memory_order_release);
}

bool share_group_mine(const struct share_registry *r,
		      const struct share_group *g, unsigned shard,
		      uint64_t key)
{
	unsigned counts[SHARE_MAX_SHARDS];
	uint64_t total = 0, pick;

	if (!g || r->shards == 1)
		return true;
	for (unsigned i = 0; i < r->shards; i++) {
		counts[i] = atomic_load_explicit(&g->members[i],
						 memory_order_acquire);
		total += counts[i];
	}
	if (total == 0 || counts[shard] == total)
		return true;
	pick = key % total;
	for (unsigned i = 0; i < r->shards; i++) {
		if (pick < counts[i])
			return i == shard;
		pick -= counts[i];
	}
	return false;
}

int share_group_other_shard(const struct share_registry *r,
			    const struct share_group *g, unsigned except,
			    uint64_t key)
{
	unsigned with[SHARE_MAX_SHARDS], n = 0;

	if (!g)
		return -1;
	for (unsigned i = 0; i < r->shards; i++)
		if (i != except &&
		    atomic_load_explicit(&g->members[i], memory_order_acquire))
			with[n++] = i;
	return n ? (int)with[key % n] : -1;
}

const char *share_group_filter(const struct share_group *g, size_t *len)
{
	*len = g->len;
	return g->filter;
}
