/*
 * The subscription tree of one shard: topic filters (with '+', '#' and
 * $share groups) mapped to the subscribers that hold them, and the lookup
 * that finds every subscription matching a topic name.  It owns no
 * subscriber: a subscriber is an opaque pointer the caller keeps alive
 * until it removes the subscription.  Not thread-safe: one shard's own.
 *
 * Costs, for a filter or topic of L bytes (hash tables: expected times):
 * add and remove O(L), plus O(members + groups) for a shared filter;
 * match visits only nodes whose filter prefix matches the topic, at most
 * two children (literal, '+') of each visited node, hashing one level per
 * visit: O(L) without '+' filters, never more than the tree's own nodes,
 * plus one callback per match.
 */
#ifndef CICADA_BROKER_SUBTREE_H
#define CICADA_BROKER_SUBTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct subtree;

/* What a subscriber asked for with one filter. */
struct sub_opts {
	uint8_t qos; /* maximum QoS granted */
	bool no_local; /* MQTT 5: not to the publisher's own session */
	bool retain_as_published; /* MQTT 5: keep the retain flag */
	uint8_t retain_handling; /* MQTT 5: 0, 1 or 2 */
	uint32_t subscription_id; /* MQTT 5: 0 when none */
};

/*
 * Called once per matching subscription: once per (subscriber, filter) for
 * ordinary filters, and once per matching shared group with the member the
 * tree picked (round robin among the group's members).  shared_group is
 * NULL for ordinary subscriptions, else the group's name, NUL-terminated.
 * A subscriber with overlapping filters is reported once per filter; the
 * caller folds them.  The callback must not add or remove subscriptions.
 */
typedef void (*subtree_match_cb)(void *arg, void *subscriber,
				 const struct sub_opts *opts,
				 const char *shared_group);

struct subtree *subtree_new(void);
void subtree_free(struct subtree *t);

/*
 * Add or replace the subscription of subscriber to filter (a valid filter,
 * possibly "$share/group/f").  *replaced says whether one existed (so the
 * caller can apply Retain Handling 1); replacing changes only the options.
 * Returns 0, -ENOMEM (the tree is unchanged), or -EINVAL for an invalid
 * filter or a NULL subscriber.
 */
int subtree_add(struct subtree *t, const char *filter, size_t len,
		void *subscriber, const struct sub_opts *opts, bool *replaced);

/*
 * Remove it, and the nodes left holding nothing; returns 0, or -ENOENT
 * when there was none.  Removing a shared member keeps the rotation fair:
 * when the member removed was next in turn, the one after it is next.
 */
int subtree_remove(struct subtree *t, const char *filter, size_t len,
		   void *subscriber);

/*
 * Call cb for every subscription matching the topic name [MQTT-4.7]:
 * '+' takes one level (an empty one too), '#' the parent level and all
 * below, and neither matches a first level starting with '$'.  Does not
 * allocate; advances the round-robin cursor of every matching group.
 */
void subtree_match(struct subtree *t, const char *topic, size_t len,
		   subtree_match_cb cb, void *arg);

/*
 * The next member, other than exclude, of the shared group that
 * shared_group names (the pointer a match callback was given), in the
 * group's rotation: where a message in flight to a member that is going
 * away goes instead [MQTT 5.0 section 4.8.2].  The group must still exist,
 * which it does while exclude is a member.  false: exclude is alone.
 */
bool subtree_group_pick(const char *shared_group, const void *exclude,
			void **subscriber, struct sub_opts *opts);

/*
 * The identity of the shared group of a "$share/group/filter" (the same
 * pointer the match callback passes), or NULL when there is no such group.
 */
const char *subtree_group_of(struct subtree *t, const char *filter,
			     size_t len);

/*
 * A pointer the caller keeps with a shared group, NULL until set; it goes
 * with the group when its last member is removed.
 */
void *subtree_group_tag(const char *shared_group);
void subtree_group_set_tag(const char *shared_group, void *tag);
/* Number of subscriptions held (shared members count one each). */
size_t subtree_count(const struct subtree *t);

#endif
