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

struct msg *msg_new(const char *topic, size_t topic_len,
		    const uint8_t *payload, size_t payload_len,
		    const uint8_t *props, size_t props_len, uint8_t qos,
		    bool retain)
{
	struct msg *m = NULL;
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

	m = malloc(size);
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
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}
