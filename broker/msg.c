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
	m->refs = 1;
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic_len;
	m->payload_len = (uint32_t)payload_len;
	m->props_len = (uint32_t)props_len;
	m->expiry_at = 0;
	m->origin = NULL;
	m->store_id = 0;
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
	 * Single-threaded for now: a message is only touched by the shard
	 * that made it.  Once shards hand messages to one another this
	 * becomes an atomic decrement (release, then an acquire fence before
	 * free), and msg_ref() an atomic relaxed increment.
	 */
	if (--m->refs == 0)
		free(m);
}
