/*
 * Persistence in SQLite: sessions, their subscriptions, the QoS 1/2
 * messages queued and in flight for them, incoming QoS 2 exchanges, and
 * retained messages.  See ../../shared/DESIGN.md, "Durability contract".
 *
 * One writer thread owns the database connection (WAL).  The broker's
 * threads record changes with the store_*_put / *_del calls, which only
 * append to an in-memory queue and never block on the disk; the writer
 * takes everything queued so far and commits it as one transaction (group
 * commit), so a busy broker commits large batches and an idle one commits
 * each change at once.  Changes commit in the order they were recorded
 * (a batch is always everything queued so far): once a change is
 * committed, so is every change recorded before it, on any thread; and
 * store_group_begin()/store_group_end() make a set of changes commit
 * together.
 * Every recorded change gets a sequence number
 * (store_submitted()); store_committed() says how far the database has
 * durably got.  In durability strict a broker acknowledges a QoS 1/2
 * PUBLISH it must keep only when store_committed() has reached the
 * sequence number of its last change; the writer calls notify() after
 * every commit (and after a failure) so the broker can look.  notify runs
 * on the writer thread: it must only wake the broker (ev_async_send).
 *
 * Messages are stored once (table msg) however many sessions and the
 * retained store refer to them, by the 64-bit id the broker gives them
 * (counting on from store_max_id()); a message row goes when its last
 * reference does.
 *
 * Times that must survive a restart are wall-clock: Unix seconds for
 * session expiry, Unix milliseconds for message expiry.
 *
 * This module includes no libev and no socket code.
 *
 * Use:
 *	struct store *st;
 *	char err[256];
 *	if (store_open(&st, &opts, err, sizeof(err)) < 0)
 *		refuse to start, printing err;
 *	store_load(st, &loader, arg);		before serving clients
 *	store_start(st);			the writer thread runs
 *	... store_*_put / *_del, store_committed() ...
 *	store_close(st);			commits what is queued, joins
 */
#ifndef CICADA_STORAGE_STORE_H
#define CICADA_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* The schema this build writes; store_open() migrates older ones. */
#define STORE_SCHEMA_VERSION 2

struct store_options {
	const char *path; /* database file; created when missing */
	/*
	 * true: commit as soon as there is something queued and fsync each
	 * commit (synchronous=FULL).  false (durability batch): commit every
	 * batch_interval_ms, synchronous=NORMAL.
	 */
	bool strict;
	unsigned batch_interval_ms;
	/* Called on the writer thread after each commit or failure. */
	void (*notify)(void *arg);
	void *notify_arg;
};

/* A stored application message; views valid during the callback only. */
struct store_msg {
	uint64_t id;
	const char *topic;
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *props; /* MQTT 5 properties as struct msg keeps them */
	size_t props_len;
	uint8_t qos;
	bool retain;
	int64_t expiry_at_ms; /* Unix ms; 0: never */
};

/* A stored session. */
struct store_session {
	const char *client_id;
	size_t client_id_len;
	uint8_t version; /* protocol level of its last connection */
	uint32_t expiry_interval; /* seconds; UINT32_MAX: never */
	/*
	 * Unix seconds it went offline; 0 while it was connected (a restart
	 * counts it offline from the restart).
	 */
	int64_t offline_since;
	/* A will kept for Will Delay; will_msg_id 0: none. */
	uint64_t will_msg_id;
	uint32_t will_delay; /* seconds */
	/* The will's Message Expiry Interval, from its publication; 0: none. */
	uint32_t will_expiry;
};

struct store_sub {
	const char *client_id;
	size_t client_id_len;
	const char *filter;
	size_t filter_len;
	/* The SUBSCRIBE options byte: QoS, No Local, RAP, Retain Handling. */
	uint8_t options;
	uint32_t sub_id; /* 0: none */
};

/* Where a delivery stands; the values of broker/session.h's enum. */
enum store_delivery_state {
	STORE_DLV_QUEUED = 0,
	STORE_DLV_SENT = 1, /* PUBLISH sent: resend with DUP */
	STORE_DLV_RELEASED = 2, /* PUBREC received: resend PUBREL */
};

/* A QoS 1/2 message on its way to one session. */
struct store_delivery {
	uint64_t id; /* the broker's; orders a session's deliveries */
	const char *client_id;
	size_t client_id_len;
	uint64_t msg_id;
	uint16_t packet_id; /* 0 until sent */
	uint8_t qos;
	uint8_t state; /* enum store_delivery_state */
	bool retain; /* retain flag as it is sent */
	uint8_t sub_id_count;
	const uint32_t *sub_ids;
};

/*
 * Open (creating or migrating) the database and check it.  Returns 0, or
 * a negative errno with err holding one line: -EPROTO for a database
 * made by a newer cicada (its schema_version is higher than ours),
 * -EBUSY when another process has it open (the store keeps an exclusive
 * lock until store_close()),
 * -EIO when SQLite fails (err has its message), -ENOMEM.  The writer
 * thread does not run yet.
 */
int store_open(struct store **out, const struct store_options *opts,
	       char *err, size_t errlen);

/*
 * Read back everything stored, in this order: every message (msg), every
 * session, every subscription, every delivery in id order per session,
 * every retained entry, every incoming QoS 2 packet id.  Messages past
 * their expiry and sessions past theirs (at now_s, Unix seconds) are
 * deleted instead of reported.  Any callback may be NULL; a callback
 * returning nonzero stops the load and store_load returns that value.
 * Only before store_start().
 */
struct store_loader {
	int (*msg)(void *arg, const struct store_msg *m);
	int (*session)(void *arg, const struct store_session *s);
	int (*sub)(void *arg, const struct store_sub *sub);
	int (*delivery)(void *arg, const struct store_delivery *d);
	int (*retained)(void *arg, uint64_t msg_id);
	int (*qos2_in)(void *arg, const char *client_id, size_t client_id_len,
		       uint16_t packet_id);
};
/* -EIO when SQLite fails; store_failed() then says why. */
int store_load(struct store *st, const struct store_loader *l, void *arg,
	       int64_t now_s);

/* The largest id stored so far (messages and deliveries share a counter). */
uint64_t store_max_id(const struct store *st);

/* Start the writer thread.  0 or -errno. */
int store_start(struct store *st);

/*
 * Commit everything queued, stop the writer and close.  NULL is a no-op.
 */
void store_close(struct store *st);

/*
 * Recording changes.  Thread-safe; each call copies what it needs and
 * returns at once: 0, or -ENOMEM (nothing recorded), or -EIO once the
 * store has failed (see store_failed()).
 */
/*
 * Store a message for the delivery, retained entry or will that is about
 * to refer to it (record that next).  A message nothing ever refers to
 * stays until the next store_load() sweeps it.
 */
int store_msg_put(struct store *st, const struct store_msg *m);
/*
 * Nothing refers to message msg_id any more (every delivery, retained
 * entry and will that did has been deleted): if its put is still queued,
 * it is not written.  Likewise store_delivery_del() of a delivery whose
 * put is still queued writes neither.  So a message delivered and
 * acknowledged before its batch was taken costs no disk work.
 */
int store_msg_drop(struct store *st, uint64_t msg_id);
int store_session_put(struct store *st, const struct store_session *s);
/* Deletes its subscriptions, deliveries and QoS 2 ids too. */
int store_session_del(struct store *st, const char *client_id, size_t len);
/* Replaces a subscription of the same client and filter. */
int store_sub_put(struct store *st, const struct store_sub *sub);
int store_sub_del(struct store *st, const char *client_id, size_t id_len,
		  const char *filter, size_t filter_len);
int store_delivery_put(struct store *st, const struct store_delivery *d);
/* A delivery was sent (packet id given) or its PUBREC came. */
int store_delivery_update(struct store *st, uint64_t delivery_id,
			  uint16_t packet_id, uint8_t state);
int store_delivery_del(struct store *st, uint64_t delivery_id);
/* The retained message of msg's topic is now msg (replacing another). */
int store_retain_put(struct store *st, uint64_t msg_id);
int store_retain_del(struct store *st, const char *topic, size_t len);
int store_qos2_in_put(struct store *st, const char *client_id, size_t len,
		      uint16_t packet_id);
int store_qos2_in_del(struct store *st, const char *client_id, size_t len,
		      uint16_t packet_id);

/*
 * The changes recorded between these two calls commit in one transaction:
 * all of them or none survive a crash (an incoming QoS 2 packet id and the
 * message it answers for).  The writer waits while any group is open, so
 * keep groups to one packet's handling.  Groups may nest.
 */
void store_group_begin(struct store *st);
void store_group_end(struct store *st);
/*
 * A group one thread opens and closes: it holds the writer back only from
 * its first change on, or from a group above begun inside it, so one that
 * records nothing costs no lock.  Local groups nest with each other (of
 * one store per thread) and with the groups above; a group another thread
 * closes must be one of those.
 */
void store_local_group_begin(struct store *st);
void store_local_group_end(struct store *st);

/* Sequence number of the last change recorded (0: none yet). */
uint64_t store_submitted(const struct store *st);
/* Sequence number of the last change durably committed. */
uint64_t store_committed(const struct store *st);

/*
 * NULL while the store works; once a commit has failed (disk full,
 * corruption, I/O error), a message saying why, and every later change
 * is refused with -EIO.  Changes recorded and not committed are lost; a
 * broker must not acknowledge them.
 */
const char *store_failed(const struct store *st);

/*
 * cicada --check-db: open path read-only, run SQLite's integrity check
 * and ours (schema version, every reference resolves, no orphan
 * message).  0 when sound; otherwise -errno and err says what is wrong.
 */
int store_check(const char *path, char *err, size_t errlen);

#endif
