/*
 * What the broker keeps in storage (storage/store.h) and how it keeps the
 * durability promise of DESIGN.md: durable sessions (session expiry > 0),
 * their subscriptions, their QoS 1/2 deliveries, incoming QoS 2 packet
 * ids and parked wills, and every retained message.
 *
 * The core calls the persist_*() recorders where its state changes; each
 * is a no-op when persistence is off.  A change is recorded before any
 * packet that depends on it is written to a connection's output.
 *
 * Output commit (durability strict, decisions #10): output that reports
 * stored state, written while recorded changes are not yet committed, is
 * held until they are (persist_hold_seq(), shard_release_held()), so no
 * PUBACK, PUBREC, PUBCOMP, SUBACK, CONNACK, QoS 2 PUBLISH or PUBREL
 * leaves the broker before the state it reports is on disk.  QoS 0/1
 * PUBLISHes do not wait (a crash can only cause a QoS 1 duplicate).  With
 * nothing durable going on, nothing waits.
 */
#ifndef CICADA_BROKER_PERSIST_H
#define CICADA_BROKER_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct config;
struct delivery;
struct msg;
struct session;
struct session_sub;
struct shard;

/*
 * With cfg->persistence: open the database, restore its state into b
 * (whose shard and retained store exist) and start the writer.  Logs what
 * it restored.  0, or -1 after logging why the broker cannot start.
 */
int persist_open(struct broker *b, const struct config *cfg);
/*
 * On each shard's wake-up: write the output whose commit came, or close
 * the connections that waited for a commit storage failed to make.
 */
void persist_poll(struct shard *sh);
/* Commit what is recorded and close; sessions stay stored.  Idempotent. */
void persist_close(struct broker *b);

/* cicada --check-db: print the verdict; returns the exit status. */
int persist_check_db(const char *path);

/*
 * The records made between persist_group_begin() and _end() survive a
 * crash together or not at all (a QoS 2 packet id and its message).
 */
void persist_group_begin(struct broker *b);
void persist_group_end(struct broker *b);
/*
 * The same for a group this thread closes itself (store.h's local
 * groups): free when it records nothing.
 */
void persist_local_group_begin(struct broker *b);
void persist_local_group_end(struct broker *b);

/* A session was attached, detached, or changed expiry or will. */
void persist_session(struct session *s);
/* Its parked will is sent or cancelled (s->will is still set). */
void persist_will_drop(struct session *s);
/* The session ends: forget it and all it held. */
void persist_session_end(struct session *s);
void persist_sub(struct session *s, const struct session_sub *sub);
void persist_unsub(struct session *s, const char *filter, size_t len);
/* A QoS 1/2 delivery was queued, sent or released, or is done. */
void persist_delivery_new(struct session *s, struct delivery *d);
void persist_delivery_state(struct session *s, const struct delivery *d);
void persist_delivery_done(struct session *s, struct delivery *d);
/* msg (retain flag set) replaces old (NULL: none) as its topic's retained. */
void persist_retain(struct broker *b, struct msg *old, struct msg *msg);
/* An incoming QoS 2 packet id was added (PUBREC) or released (PUBREL). */
void persist_qos2_in(struct session *s, uint16_t packet_id, bool add);

/*
 * The sequence number output written now must wait for, or 0 when it may
 * go at once (nothing uncommitted, durability batch, no persistence).
 */
uint64_t persist_hold_seq(const struct broker *b);
/* Whether everything up to seq is committed. */
bool persist_is_committed(const struct broker *b, uint64_t seq);
/* Persistence in durability strict: acknowledgements wait for commits. */
bool persist_is_strict(const struct broker *b);
/* Storage has failed: what waits for a commit will never get it. */
bool persist_failed(const struct broker *b);
/*
 * Whether the state changes a handler records can still be trusted to be
 * stored: take a mark before the work; persist_lost_since() says whether
 * storage refused one of them, or failed with one not yet committed, so
 * that what it would acknowledge must not be acknowledged.
 */
struct persist_mark {
	uint64_t refused; /* records refused so far */
	uint64_t submitted; /* storage's sequence number */
};
struct persist_mark persist_mark(const struct broker *b);
bool persist_lost_since(const struct broker *b, const struct persist_mark *m);

#endif
