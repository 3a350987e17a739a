/*
 * Routing: hand one message to every session subscribed to its topic,
 * once per session at the highest QoS its matching subscriptions grant
 * (with all their subscription identifiers), and once per shared group.
 * Also keeps the retained store up to date.
 */
#ifndef CICADA_BROKER_ROUTE_H
#define CICADA_BROKER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

struct msg;
struct shard;

/*
 * Retain (if flagged) and deliver msg to its subscribers on every shard;
 * returns the sessions reached on this one plus the other shards it went
 * to (0: no subscriber anywhere).
 */
size_t route_message(struct shard *sh, struct msg *msg);
/* Deliver msg to the subscribers of this shard only (posted by another). */
size_t route_local(struct shard *sh, struct msg *msg);
/*
 * On a shard that took msg from its inbox (or dropped it): when its
 * publisher waits for confirmation (msg->confirm_from), say that this
 * shard's deliveries are recorded, and wake the publisher's shard after
 * the last one; refused: storage refused a record (or the message was
 * dropped), so the publisher must not be acknowledged.  In durability
 * strict an acknowledgement may not leave before every delivery it covers
 * is stored, wherever that session lives.
 */
void route_confirm(struct shard *sh, struct msg *msg, bool refused);

/*
 * Publish a will now and drop the caller's reference.  Its Message Expiry
 * Interval (seconds, 0: none) counts from this moment.
 */
void route_will(struct shard *sh, struct msg *will, uint32_t expiry_interval);

#endif
