/*
 * An application message: built once when a PUBLISH (or a will) arrives,
 * immutable after, and shared by reference by every subscriber queue and
 * the retained store.  The payload is never copied per subscriber.
 */
#ifndef CICADA_BROKER_MSG_H
#define CICADA_BROKER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msg {
	uint32_t refs; /* references held; freed at 0 */
	uint8_t qos; /* as published */
	bool retain; /* as published */
	uint16_t topic_len;
	uint32_t payload_len;
	uint32_t props_len;
	/* Monotonic ms after which it is not delivered; 0: never expires. */
	uint64_t expiry_at;
	/* Who published it, for No Local; never dereferenced. */
	const void *origin;
	/*
	 * Its row in the database while stored sessions or the retained
	 * store refer to it (store_refs of them); 0: not stored.
	 */
	uint64_t store_id;
	uint32_t store_refs;
	const char *topic; /* NUL-terminated copy */
	const uint8_t *payload;
	/*
	 * MQTT 5 properties to forward, encoded, without Topic Alias,
	 * Subscription Identifier and Message Expiry Interval (the sender
	 * adds those per subscriber).
	 */
	const uint8_t *props;
	unsigned char data[]; /* topic, payload and props live here */
};

/*
 * One allocation holding copies of all three, with refs 1, expiry_at 0 and
 * origin NULL.  topic, payload and props may be NULL when their length is
 * 0; the copies are never NULL.  NULL when out of memory, or when a length
 * does not fit its field (topic 65535, payload and props UINT32_MAX bytes).
 */
struct msg *msg_new(const char *topic, size_t topic_len,
		    const uint8_t *payload, size_t payload_len,
		    const uint8_t *props, size_t props_len, uint8_t qos,
		    bool retain);

/*
 * Take one more reference.  Plain counting while a message stays on the
 * shard that made it; becomes atomic with cross-shard delivery (msg.c).
 */
static inline struct msg *msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}

/* Drop a reference, freeing the message with the last one; NULL is a no-op. */
void msg_unref(struct msg *m);

#endif
