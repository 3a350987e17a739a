/*
 * A shard: one thread, one libev loop, the connections it accepted and the
 * subscription tree of their sessions.  One shard for now; the layout keeps
 * everything a connection touches here so more shards add threads, not
 * locks.
 */
#ifndef CICADA_BROKER_SHARD_H
#define CICADA_BROKER_SHARD_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct conn;
struct subtree;

#define SHARD_WHEEL_SLOTS 512
/* Every read of the shard lands here first (see conn_read_cb). */
#define SHARD_RBUF_SIZE (64u * 1024u)

struct shard {
	struct broker *broker;
	struct ev_loop *loop;
	struct subtree *subs;
	uint8_t *rbuf; /* SHARD_RBUF_SIZE bytes, shared by all reads */
	struct conn *conns; /* every connection of this shard */
	size_t conn_count;
	struct conn *flush_list; /* connections with output to write */
	struct conn *held; /* output waiting for a storage commit */
	struct conn *closing; /* closed, freed after this loop turn */
	ev_prepare flush_watcher;
	ev_timer tick; /* once a second: timeouts, session expiry, $SYS */
	/* Timeout wheel: slot = deadline second mod SHARD_WHEEL_SLOTS. */
	struct conn *wheel[SHARD_WHEEL_SLOTS];
	long wheel_pos; /* last second processed */
	uint64_t match_stamp; /* route() generation */
	double last_sys;
	bool stopping;
};

int shard_init(struct shard *sh, struct broker *b, struct ev_loop *loop);
void shard_fini(struct shard *sh);

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
