/*
 * An application message: built once when a PUBLISH (or a will) arrives,
 * immutable after, and shared by reference by every subscriber queue and
 * the retained store.  The payload is never copied per subscriber.
 */
#ifndef CICADA_BROKER_MSG_H
#define CICADA_BROKER_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct objcache;

struct msg {
	/* References held, from any shard; freed at 0. */
	atomic_uint refs;
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
	/*
	 * Durability strict across shards (route.h, route_confirm()): the
	 * publisher's shard + 1 when its acknowledgement waits for the other
	 * shards to have recorded their deliveries (0: nobody waits); how
	 * many have yet to, the storage sequence number their records need,
	 * and whether storage refused one.  confirm_group: they close a
	 * storage group the publisher's shard opened for them (QoS 2).
	 */
	uint8_t confirm_from;
	bool confirm_group;
	/* The free list it came from (msg_cache_bind()); NULL: malloc. */
	struct objcache *home;
	/* Picks the shard of a $share group's member: the same everywhere. */
	uint32_t share_key;
	atomic_uint remote_pending;
	atomic_bool remote_refused;
	atomic_uint_fast64_t remote_seq;
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
 * Take one more reference.  Relaxed: a reference is only ever taken by a
 * thread that already holds one, and handing the message to another shard
 * goes through the inbox, which orders everything before it.
 */
static inline struct msg *msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

/* Drop a reference, freeing the message with the last one; NULL is a no-op. */
void msg_unref(struct msg *m);

/*
 * Free lists for messages of up to 256, 512 and 1,024 bytes in all (struct
 * and data): a shard keeps MSG_CACHE_CLASSES of them and binds them to its
 * thread, whose msg_new() and last msg_unref() then use them instead of
 * malloc and free.  A message freed by another shard's thread goes back
 * to the list it came from (objcache_put_remote()), so a shard that only
 * publishes reuses its messages too; one made where no list was bound
 * goes to the freeing thread's list of its size.  On a thread with none
 * bound (start-up, shutdown, storage) the last msg_unref() frees.  Finish
 * the lists with objcache_fini() only once no thread has lists bound.
 */
#define MSG_CACHE_CLASSES 3
void msg_cache_init(struct objcache *caches);
void msg_cache_bind(struct objcache *caches);

#endif
