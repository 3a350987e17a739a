/*
 * Sessions [MQTT-4.1]: what outlives a network connection: subscriptions,
 * messages in flight and queued, QoS 2 packet ids awaiting PUBREL, the
 * will, and expiry.  Found by client id in the broker's registry.  A
 * session is driven by its connection's shard; while offline it only
 * queues.
 */
#ifndef CICADA_BROKER_SESSION_H
#define CICADA_BROKER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/msg.h"
#include "broker/objcache.h"
#include "broker/subtree.h"

/*
 * Subscription identifiers one delivery folds; a session matched through
 * more subscriptions with identifiers gets a copy for each of the rest
 * [MQTT-3.3.4-5].  Small: every slot of a shard's route scratch (see
 * broker/route.c) carries the room.
 */
#define SESSION_MATCH_IDS 4

struct broker;
struct conn;
struct shard;
struct msg;
struct sub_opts;

enum delivery_state {
	DLV_QUEUED = 0, /* not sent yet */
	DLV_SENT, /* PUBLISH sent, waiting for PUBACK / PUBREC */
	DLV_RELEASED, /* PUBREL sent, waiting for PUBCOMP */
};

/* One message on its way to one session. */
struct delivery {
	struct delivery *next;
	struct msg *msg;
	uint64_t store_id; /* its database row; 0: not stored */
	uint16_t packet_id;
	uint8_t qos; /* effective: min(published, granted) */
	uint8_t state; /* enum delivery_state */
	bool retain; /* retain flag as sent */
	/*
	 * Shared group it was chosen through (see subtree_group_pick), so it
	 * can go to another member if this session ends first; NULL if none.
	 */
	const char *shared_group;
	uint8_t sub_id_count;
	uint32_t sub_ids[]; /* MQTT 5 Subscription Identifiers */
};

/* A filter the session holds, kept to unsubscribe it at session end. */
struct session_sub {
	struct session_sub *next;
	uint8_t qos;
	uint8_t options; /* the SUBSCRIBE options byte, for storage */
	uint32_t sub_id; /* MQTT 5 Subscription Identifier; 0: none */
	size_t len;
	char filter[];
};

struct session {
	struct session *hnext; /* registry chain */
	struct shard *shard; /* the one its client id hashes to */
	struct conn *conn; /* NULL while offline */
	uint16_t client_id_len;
	uint8_t version; /* protocol level of the last connection */
	bool persisted : 1; /* written to storage (see broker/persist.h) */
	/* In-flight ids out of sequence: next_packet_id() must scan. */
	bool ids_unordered : 1;
	/* Seconds to keep the session after disconnect; UINT32_MAX: forever. */
	uint32_t expiry_interval;
	double expire_at; /* monotonic; valid while offline */
	struct session_sub *subs;

	struct delivery *inflight, *inflight_tail;
	struct delivery *queue, *queue_tail;
	uint32_t sub_count;
	uint32_t inflight_count;
	uint32_t queued_count;
	uint32_t queued_qos0; /* of those, QoS 0: what a full queue drops */
	uint64_t queued_bytes;
	uint16_t inflight_max; /* min(ours, client's Receive Maximum) */
	uint16_t last_packet_id;

	/*
	 * MQTT 5 Will Delay: a will waiting for will_at (monotonic seconds),
	 * sent then or at session end, whichever first, unless the client
	 * comes back [MQTT-3.1.3-9].
	 */
	uint32_t will_expiry; /* its Message Expiry Interval */
	struct msg *will;
	double will_at;

	/* QoS 2 packet ids received and PUBREC'd, awaiting PUBREL. */
	uint16_t *qos2_in;
	uint32_t qos2_in_count, qos2_in_cap;

	char client_id[]; /* NUL-terminated, in the same allocation */
};

/*
 * A shard's free list of deliveries (struct shard's deliveries), sized
 * for those with at most one subscription identifier: nearly all.
 */
#define DELIVERY_CACHED_IDS 1
static inline void session_delivery_cache_init(struct objcache *c)
{
	objcache_init(c, sizeof(struct delivery) +
			 DELIVERY_CACHED_IDS * sizeof(uint32_t), 16384);
}

/* The hash of a client id: registry buckets and shard_of_client(). */
uint64_t session_id_hash(const char *id, size_t len);
/* Find by client id in the shard's registry, or NULL. */
struct session *session_find(struct shard *sh, const char *id, size_t len);
/* Create and register; NULL when out of memory. */
struct session *session_new(struct shard *sh, const char *id, size_t len);
/* Unsubscribe everything, drop every message, unregister and free. */
void session_destroy(struct session *s);

/* Keep a will until will_at (replacing one kept before). */
void session_park_will(struct session *s, struct msg *will, double will_at,
		       uint32_t expiry_interval);
/* The client is back: a parked will is not sent. */
void session_cancel_will(struct session *s);
/* Send a parked will now, if any. */
void session_send_will(struct session *s);

/* At exit: destroy every session of the shard and its registry. */
void session_destroy_all(struct shard *sh);

/* Remember a subscription (or update its options); 0 or -ENOMEM. */
int session_add_sub(struct session *s, const char *filter, size_t len,
		    const struct sub_opts *opts);
/* Forget one; returns whether it was held. */
bool session_remove_sub(struct session *s, const char *filter, size_t len);

/*
 * Queue msg for this session at qos with the retain flag and subscription
 * identifiers given, then send what the in-flight window allows.  QoS 0
 * goes straight out when online (dropped when the connection's buffer is
 * over its limit), and is queued offline only with queue_qos0_messages.
 */
void session_deliver(struct session *s, struct msg *msg, uint8_t qos,
		     bool retain, const uint32_t *sub_ids, uint8_t sub_id_count,
		     const char *shared_group);
/*
 * session_deliver() as one subscription grants it alone: at most its QoS,
 * with its identifier if it has one.
 */
static inline void session_deliver_sub(struct session *s, struct msg *msg,
				       bool retain,
				       const struct sub_opts *opts,
				       const char *shared_group)
{
	uint32_t id = opts->subscription_id;

	session_deliver(s, msg, msg->qos < opts->qos ? msg->qos : opts->qos,
			retain, &id, id ? 1 : 0, shared_group);
}
/*
 * Before unsubscribing from a shared group: forget it in deliveries.
 * shared_group is the group's identity as subtree_group_of() gives it.
 */
void session_forget_group(struct session *s, const char *shared_group);
/* Send queued messages while the in-flight window has room. */
void session_pump(struct session *s);
/* Resend everything in flight (DUP set, PUBREL again) after a reconnect. */
void session_resend_inflight(struct session *s);

/*
 * At start-up, a delivery read back from storage: QoS 1/2 with its state
 * and packet id (in flight when sent), appended in stored order.  0 or
 * -ENOMEM.
 */
int session_restore_delivery(struct session *s, struct msg *msg,
			     uint64_t store_id, uint8_t qos, uint8_t state,
			     uint16_t packet_id, bool retain,
			     const uint32_t *sub_ids, uint8_t sub_id_count);

/*
 * PUBACK / PUBCOMP: done; PUBREC: move on to PUBREL; SESSION_PUBREC_REFUSED
 * (a PUBREC with a reason >= 0x80): done.  false: no such id in the state
 * that packet answers.
 */
#define SESSION_PUBREC_REFUSED (-1)
bool session_ack(struct session *s, uint16_t packet_id, int packet_type);

/* The incoming QoS 2 id set. */
bool session_qos2_has(const struct session *s, uint16_t id);
int session_qos2_add(struct session *s, uint16_t id);
bool session_qos2_remove(struct session *s, uint16_t id);

#endif
