/*
 * The retained message store: at most one message per topic name, found by
 * topic filter when a client subscribes.  The store holds one reference on
 * each message it keeps (msg_ref / msg_unref).  Not thread-safe: the
 * caller locks it (read-mostly, see DESIGN.md).
 */
#ifndef CICADA_BROKER_RETAIN_H
#define CICADA_BROKER_RETAIN_H

#include <stddef.h>

struct msg;
struct retain;

struct retain *retain_new(void);
void retain_free(struct retain *r);

/*
 * Keep msg as the retained message of its topic, replacing any; a message
 * with an empty payload clears the topic instead and is not kept
 * [MQTT-3.3.1-6, MQTT-3.3.1-7].  Returns 0, -ENOMEM (the store is
 * unchanged) or -EINVAL when msg->topic is not a valid topic name.
 */
int retain_set(struct retain *r, struct msg *msg);

/*
 * Call cb for every retained message whose topic matches filter [MQTT-4.7]
 * ('+' and '#' as in subtree_match(); a filter starting with either does
 * not match topics starting with '$' [MQTT-4.7.2-1]).  Messages whose
 * expiry (msg->expiry_at, monotonic ms) is at or before now_ms are dropped
 * from the store instead of being passed.  cb may take a reference on the
 * message but must not change the store.
 *
 * Shared subscriptions are never passed here: MQTT 5.0 section 3.3.1.3
 * sends retained messages only "when a new Non-shared Subscription is
 * made" (a sentence with no statement number), so a shared subscription
 * gets none when it is established.
 */
typedef void (*retain_match_cb)(void *arg, struct msg *msg);
void retain_match(struct retain *r, const char *filter, size_t len,
		  unsigned long long now_ms, retain_match_cb cb, void *arg);

/* The retained message of a topic name, or NULL; no reference taken. */
struct msg *retain_find(struct retain *r, const char *topic, size_t len);

/* Number of retained messages held. */
size_t retain_count(const struct retain *r);

#endif
