/*
 * Shared subscriptions across shards.  Each shard's subscription tree
 * holds the members of "$share/group/filter" whose sessions live on that
 * shard, so a group can have members on several shards; every shard with
 * members receives a matching message, and exactly one of them must
 * deliver it.  The registry counts each group's members per shard, and
 * every shard picks the same one for a message from those counts alone,
 * without a lock: share_group_mine().
 */
#ifndef CICADA_BROKER_SHARE_H
#define CICADA_BROKER_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most shards a broker runs (the width of the per-shard counts). */
#define SHARE_MAX_SHARDS 64

struct share_registry;
struct share_group;

struct share_registry *share_registry_new(unsigned shards);
void share_registry_free(struct share_registry *r);

/*
 * The group of a "$share/group/filter" filter, created at first use, with
 * one more reference (one per shard whose tree has the group); NULL when
 * out of memory.  Any thread.
 */
struct share_group *share_group_get(struct share_registry *r,
				    const char *filter, size_t len);
void share_group_put(struct share_registry *r, struct share_group *g);

/* Members of g on shard went up or down by one.  Any thread. */
void share_group_member(struct share_registry *r, struct share_group *g,
			unsigned shard, int delta);

/*
 * Whether shard delivers the message with this key (the same on every
 * shard for one message) to g: members are picked in proportion to their
 * number on each shard.  true when shard is the only one with members.
 */
bool share_group_mine(const struct share_registry *r,
		      const struct share_group *g, unsigned shard,
		      uint64_t key);

/*
 * A shard other than except with members of g (chosen by key among
 * them), or -1 when there is none.
 */
int share_group_other_shard(const struct share_registry *r,
			    const struct share_group *g, unsigned except,
			    uint64_t key);
/* The "$share/group/filter" filter g was made for. */
const char *share_group_filter(const struct share_group *g, size_t *len);

#endif
