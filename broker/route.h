/*
 * Routing: hand one message to every session subscribed to its topic,
 * once per session at the highest QoS its matching subscriptions grant
 * (with all their subscription identifiers), and once per shared group.
 * Also keeps the retained store up to date.
 */
#ifndef CICADA_BROKER_ROUTE_H
#define CICADA_BROKER_ROUTE_H

#include <stddef.h>

struct msg;
struct shard;

/* Retain (if flagged) and deliver msg; returns the sessions reached. */
size_t route_message(struct shard *sh, struct msg *msg);

/*
 * Publish a will now and drop the caller's reference.  Its Message Expiry
 * Interval (seconds, 0: none) counts from this moment.
 */
void route_will(struct shard *sh, struct msg *will, uint32_t expiry_interval);

#endif
