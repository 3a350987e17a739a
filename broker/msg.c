/*
 * Application messages: one allocation per message holding the struct and
 * copies of its topic, payload and properties, freed when the last
 * reference goes.  Every subscriber queue, the retained store and the
 * routing code share that one copy; nothing is copied per subscriber.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "broker/objcache.h"

#define MSG_CACHE_MIN 256u

/* The thread's shard's lists (msg_cache_bind()); NULL: malloc. */
static _Thread_local struct objcache *bound_caches;

void msg_cache_init(struct objcache *caches)
{
	/* 2 MiB a size at most: a few windows of messages in flight. */
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++)
		objcache_init(&caches[k], MSG_CACHE_MIN << k,
			      (2u * 1024u * 1024u) / (MSG_CACHE_MIN << k));
}

void msg_cache_bind(struct objcache *caches)
{
	bound_caches = caches;
}

/*
 * Sizes up to the largest list's are rounded up to a list's size on
 * every thread: a message malloc'ed where no list is bound may be freed
 * into one of another thread's.
 */
static size_t alloc_size(size_t size)
{
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++)
		if (size <= MSG_CACHE_MIN << k)
			return MSG_CACHE_MIN << k;
	return size;
}

/* The bound list for an allocation of size bytes, or NULL. */
static struct objcache *cache_for(size_t size)
{
	if (!bound_caches)
		return NULL;
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++)
		if (size == MSG_CACHE_MIN << k)
			return &bound_caches[k];
	return NULL;
}

/* What msg_new() asked for m: its lengths never change after. */
static size_t msg_size(const struct msg *m)
{
	return sizeof(*m) + 1 + m->topic_len + (size_t)m->payload_len +
	       m->props_len;
}

struct msg *msg_new(const char *topic, size_t topic_len,
		    const uint8_t *payload, size_t payload_len,
		    const uint8_t *props, size_t props_len, uint8_t qos,
		    bool retain)
{
	struct msg *m = NULL;
	struct objcache *cache;
	unsigned char *p;
	size_t size = sizeof(*m) + 1; /* the topic's NUL */

	/* The lengths live in narrower fields; refuse what they cannot say. */
	if (topic_len > UINT16_MAX || payload_len > UINT32_MAX ||
	    props_len > UINT32_MAX)
		goto out;
	/* Cannot overflow on 64 bits; on 32 bits a 4 GiB payload could. */
	if (payload_len > SIZE_MAX - size - topic_len ||
	    props_len > SIZE_MAX - size - topic_len - payload_len)
		goto out;
	size += topic_len + payload_len + props_len;

	size = alloc_size(size);
	cache = cache_for(size);
	m = cache ? objcache_get(cache) : malloc(size);
	if (!m)
		goto out;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic_len;
	m->payload_len = (uint32_t)payload_len;
	m->props_len = (uint32_t)props_len;
	m->expiry_at = 0;
	m->origin = NULL;
	m->store_id = 0;
	m->confirm_from = 0;
	m->confirm_group = false;
	m->home = cache;
	m->share_key = 0;
	atomic_init(&m->remote_pending, 0);
	atomic_init(&m->remote_refused, false);
	atomic_init(&m->remote_seq, 0);
	m->store_refs = 0;

	/* Bytes only after the struct: no alignment to keep. */
	p = m->data;
	if (topic_len)
		memcpy(p, topic, topic_len);
	p[topic_len] = '\0';
	m->topic = (const char *)p;
	p += topic_len + 1;

	/* Never NULL, even when empty, so writers need no special case. */
	if (payload_len)
		memcpy(p, payload, payload_len);
	m->payload = p;
	p += payload_len;

	if (props_len)
		memcpy(p, props, props_len);
	m->props = p;
out:
	return m;
}

void msg_unref(struct msg *m)
{
	if (!m)
		return;
	/*
	 * Release so every use by this thread happens before the free, and
	 * acquire so the thread that frees sees every other thread's uses
	 * (acq_rel rather than release plus a fence: the same instruction on
	 * x86, and ThreadSanitizer understands it).
	 */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		struct objcache *cache = cache_for(alloc_size(msg_size(m)));

		/*
		 * Only a bound thread gives back to another's list: lists
		 * are finished once no thread is bound (msg.h).
		 */
		if (cache && m->home && m->home != cache)
			objcache_put_remote(m->home, m);
		else if (cache)
			objcache_put(cache, m);
		else
			free(m);
	}
}
