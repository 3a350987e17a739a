/*
 * A shard: one thread, one libev loop, its own listening sockets, the
 * sessions whose client ids hash to it (shard_of_client()), their
 * connections and the subscription tree of those sessions.  Nothing here
 * is locked: only the shard's thread touches it.  Other shards reach it
 * through its inbox (broker/inbox.h) and one coalesced ev_async wake-up:
 * messages to route to its subscribers, and connections handed over after
 * a CONNECT whose client id belongs here.
 */
#ifndef CICADA_BROKER_SHARD_H
#define CICADA_BROKER_SHARD_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct conn;
struct conn_handoff;
struct listener;
struct msg;
struct session;
struct sub_opts;
struct subtree;

#include "broker/broker.h"
#include "broker/bufpool.h"
#include "broker/inbox.h"
#include "broker/msg.h"
#include "broker/objcache.h"

/* What one shard posts to another (struct inbox_item.kind). */
enum shard_post {
	SHARD_POST_ROUTE = 1, /* ptr: struct msg, one reference given */
	SHARD_POST_CONN, /* ptr: struct conn_handoff (broker/conn.h) */
	SHARD_POST_SHARED, /* ptr: a message for a $share group's member */
};

#define SHARD_WHEEL_SLOTS 512
/* Slots of the interest index (a power of two). */
#define SHARD_INTEREST_SLOTS 1024u
/* Every read of the shard lands here first (see conn_read_cb). */
#define SHARD_RBUF_SIZE (64u * 1024u)

struct shard {
	struct broker *broker;
	struct ev_loop *loop;
	unsigned index; /* in broker->shards */
	pthread_t thread; /* shards past the first */
	bool thread_started;
	struct subtree *subs;
	/*
	 * The interest index, read by other shards to skip this one.  A
	 * $share filter counts as the filter after its group.  A filter
	 * without wildcards matches one topic, itself: counted by a hash
	 * of the filter.  One with wildcards whose first level is literal
	 * matches only topics of that first level (a/# matches a too, whose
	 * first level is also a): counted by a hash of that level, so a
	 * wildcard subscription does not draw every message.  Only a filter
	 * starting with + or # may match anything.
	 */
	atomic_uint interest_wild;
	atomic_uint interest_exact[SHARD_INTEREST_SLOTS];
	atomic_uint interest_first[SHARD_INTEREST_SLOTS];
	/* Sessions whose client ids hash here: chained hash by client id. */
	struct session **sessions;
	size_t session_buckets;
	size_t session_count;
	struct broker_stats stats;
	/* What $SYS reads: stats copied by this shard once a second. */
	pthread_mutex_t snap_lock;
	struct broker_stats snap;
	size_t snap_sessions, snap_subs;
	struct inbox inbox;
	ev_async wake; /* inbox, storage commits, pause and stop */
	uint64_t wake_mask; /* shards posted to this turn: woken at its end */
	atomic_bool stop_wanted;
	struct listener *listeners; /* the list main.c opened, for stop */
	uint8_t *rbuf; /* SHARD_RBUF_SIZE bytes, shared by all reads */
	struct bufpool bufs; /* connections' input and output buffers */
	/* Free lists of the hot path, kept and trimmed by this shard. */
	struct objcache deliveries; /* session.c's */
	struct objcache msgs[MSG_CACHE_CLASSES]; /* bound to its thread */
	struct conn *conns; /* every connection of this shard */
	size_t conn_count;
	struct conn *flush_list; /* connections with output to write */
	struct conn *held; /* output waiting for a storage commit */
	struct conn *closing; /* closed, freed after this loop turn */
	struct conn_handoff *moving; /* posted after this loop turn */
	ev_prepare flush_watcher;
	ev_timer tick; /* once a second: timeouts, session expiry, $SYS */
	/* Timeout wheel: slot = deadline second mod SHARD_WHEEL_SLOTS. */
	struct conn *wheel[SHARD_WHEEL_SLOTS];
	long wheel_pos; /* last second processed */
	uint64_t match_stamp; /* route() generation */
	struct route_scratch *route_scratch; /* route.c's, built on demand */
	struct header_cache *headers; /* conn.c's, made on first use */
	uint32_t share_seq; /* msg->share_key of what it publishes */
	double last_sys;
	bool stopping;
};

int shard_init(struct shard *sh, struct broker *b, unsigned index,
	       struct ev_loop *loop);
/* Drop what other shards posted and nobody took, then free. */
void shard_fini(struct shard *sh);
/* Run shards 1.. on threads of their own (signals blocked there). */
int shard_start_threads(struct broker *b);
/*
 * Every shard closes its connections (reason 0x8B) and stops its loop;
 * called on the main thread, which then joins with shard_join_threads().
 */
void shard_stop_all(struct broker *b);
void shard_join_threads(struct broker *b);

/* The shard a client id belongs to: its session lives there. */
unsigned shard_of_client(const struct broker *b, const char *id, size_t len);
/* Give one reference of msg to shard `to` (woken at the end of the turn). */
void shard_post_route(struct shard *sh, unsigned to, struct msg *msg);
void shard_post(struct shard *sh, unsigned to, const struct inbox_item *it);
/*
 * msg was on its way to a member of a $share group (shared_group, as the
 * match callback named it) whose session ends, and no other member is on
 * this shard: give it to a member on another shard, if any [MQTT 5.0
 * section 4.8.2].
 */
void shard_post_shared(struct shard *sh, const char *shared_group,
		       struct msg *msg, bool retain);

/*
 * From the main thread: park every other shard, so the caller may change
 * what they share (limits, listeners) or touch their connections, then
 * let them go.  Their wake-up runs once more after, to flush.
 */
void shard_pause_all(struct broker *b);
void shard_resume_all(struct broker *b);

/* The interest slot of a topic name or a filter without wildcards. */
unsigned shard_interest_slot(const char *topic, size_t len);
/*
 * The slot of a topic's or filter's first level (up to the first '/',
 * the whole of it without one; empty is a level too).  A topic of one
 * level is its own first level: hashed from another basis than
 * shard_interest_slot(), two such topics sharing a slot in one array need
 * not share one in the other.
 */
unsigned shard_interest_first_slot(const char *topic, size_t len);
/*
 * Whether shard may have a subscriber for a topic whose
 * shard_interest_slot() is slot and shard_interest_first_slot() first.
 */
static inline bool shard_interested(const struct shard *sh, unsigned slot,
				    unsigned first)
{
	return atomic_load_explicit(&sh->interest_wild,
				    memory_order_acquire) ||
	       atomic_load_explicit(&sh->interest_exact[slot],
				    memory_order_acquire) ||
	       atomic_load_explicit(&sh->interest_first[first],
				    memory_order_acquire);
}

/* subtree_add/remove plus the interest and $share bookkeeping. */
int shard_sub_add(struct shard *sh, const char *filter, size_t len,
		  struct session *s, const struct sub_opts *opts,
		  bool *replaced);
int shard_sub_remove(struct shard *sh, const char *filter, size_t len,
		     struct session *s);

/* Put c in the flush list (once). */
void shard_want_flush(struct shard *sh, struct conn *c);
/* c's output waits for a storage commit (see broker/persist.h). */
void shard_hold(struct shard *sh, struct conn *c);
/* Storage committed: write the output that waited for it. */
void shard_release_held(struct shard *sh);
/* Storage failed: close every connection whose output waits for it. */
void shard_drop_held(struct shard *sh);
/* (Re)insert c in the timeout wheel for its current deadline. */
void shard_watch_timeout(struct shard *sh, struct conn *c);
/* Take c out of the shard's lists before it is freed. */
void shard_forget(struct shard *sh, struct conn *c);
/*
 * c goes to shard `to` (h describes it): off this shard's lists now,
 * posted at the end of the loop turn.  shard_attach() takes it in there.
 */
void shard_move(struct shard *sh, struct conn *c, unsigned to,
		struct conn_handoff *h);
void shard_attach(struct shard *sh, struct conn *c);

/*
 * Monotonic seconds: keep alive, session and message expiry must not jump
 * when the wall clock is set (ev_now() follows the wall clock).
 */
double shard_now(struct shard *sh);

/* Now in milliseconds, the clock of msg->expiry_at. */
static inline uint64_t shard_now_ms(struct shard *sh)
{
	return (uint64_t)(shard_now(sh) * 1000.0);
}

#endif
