/*
 * Private to storage/: the store object and what its files share.
 *
 * store.c    open, close, the queue of changes and the store_*_put/del
 *            calls that fill it (any thread);
 * writer.c   the writer thread: applies a batch of changes in one
 *            transaction, collects unreferenced messages, commits;
 * schema.c   the schema, its version and the migrations;
 * load.c     store_load(): sweeps what expired, reads everything back;
 * check.c    store_check(): cicada --check-db.
 *
 * The unit tests include this header to reach the connection (st->db)
 * before store_start(), e.g. to make the disk "full".
 */
#ifndef CICADA_STORAGE_STORE_INT_H
#define CICADA_STORAGE_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

enum op_kind {
	OP_MSG_PUT,
	OP_MSG_DROP, /* u.msg.id: delete it if nothing refers to it */
	OP_SESSION_PUT,
	OP_SESSION_DEL,
	OP_SUB_PUT,
	OP_SUB_DEL,
	OP_DELIVERY_PUT,
	OP_DELIVERY_UPDATE,
	OP_DELIVERY_DEL,
	OP_RETAIN_PUT,
	OP_RETAIN_DEL,
	OP_QOS2_PUT,
	OP_QOS2_DEL,
};

/* Bytes an op owns (they follow the op in the same allocation). */
struct op_blob {
	const uint8_t *p; /* never NULL, even when len is 0 */
	size_t len;
};

/*
 * One recorded change, a copy of the caller's arguments, waiting in the
 * queue for the writer.  blob[] per kind: msg topic, payload, props;
 * session, qos2 client id; sub client id, filter; delivery client id,
 * sub ids (packed little-endian uint32s); retain_del topic.
 */
struct op {
	struct op *next; /* in submission (= sequence) order */
	enum op_kind kind;
	bool cancelled; /* undone while queued: the writer skips it */
	union {
		struct {
			uint64_t id;
			int64_t expiry_at_ms;
			uint8_t qos;
			bool retain;
		} msg;
		struct {
			int64_t offline_since;
			uint64_t will_msg_id;
			uint32_t expiry_interval;
			uint32_t will_delay;
			uint32_t will_expiry;
			uint8_t version;
		} session;
		struct {
			uint32_t sub_id;
			uint8_t options;
		} sub;
		struct {
			uint64_t id;
			uint64_t msg_id;
			uint16_t packet_id;
			uint8_t qos;
			uint8_t state;
			bool retain;
		} delivery; /* update: id, packet_id, state; del: id */
		uint64_t retain_msg_id;
		uint16_t packet_id; /* qos2_in */
	} u;
	struct op_blob blob[3];
	uint8_t data[];
};

/* The writer's prepared statements (writer.c), prepared once at open. */
enum store_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_MSG_PUT,
	STMT_SESSION_WILL,
	STMT_SESSION_PUT,
	STMT_SESSION_MSGS,
	STMT_SESSION_DEL_DELIVERIES,
	STMT_SESSION_DEL_SUBS,
	STMT_SESSION_DEL_QOS2,
	STMT_SESSION_DEL,
	STMT_SUB_PUT,
	STMT_SUB_DEL,
	STMT_DELIVERY_PUT,
	STMT_DELIVERY_UPDATE,
	STMT_DELIVERY_MSG,
	STMT_DELIVERY_DEL,
	STMT_RETAIN_OLD,
	STMT_RETAIN_PUT,
	STMT_RETAIN_GET,
	STMT_RETAIN_DEL,
	STMT_QOS2_PUT,
	STMT_QOS2_DEL,
	STMT_GC,
	STMT_COUNT
};

struct store {
	sqlite3 *db; /* the writer's once started; the opener's before */
	int lock_fd; /* flock()ed for the store's life; -1: none */
	char *path; /* as given, for messages */
	bool strict;
	unsigned batch_interval_ms;
	void (*notify)(void *arg);
	void *notify_arg;
	uint64_t max_id; /* at open */
	sqlite3_stmt *stmt[STMT_COUNT];

	/* Guards head, tail, stop, and the writes of submitted. */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the writer waits for work or stop (monotonic) */
	struct op *head, *tail; /* the queue */
	bool stop; /* store_close() wants the writer to finish */
	unsigned group_depth; /* open store_group_begin()s: do not commit */
	/*
	 * The queued message and delivery puts by id (open addressing, a
	 * power of two), so that a delivery deleted or a message dropped
	 * before the writer took it is never written at all.  Emptied when
	 * the writer takes the queue.
	 */
	struct op **pending;
	size_t pending_cap, pending_count;
	bool started; /* the writer thread runs (store_start()) */
	pthread_t thread;

	_Atomic uint64_t submitted; /* seq of the last op queued */
	_Atomic uint64_t committed; /* seq of the last op committed */
	/* NULL, then failed_msg once: written before, read-only after. */
	_Atomic(const char *) failed;
	char failed_msg[320];

	/*
	 * The writer's, during a batch: ids of messages that may have lost
	 * their last reference, checked after the batch's changes.
	 */
	uint64_t *gc;
	size_t gc_len, gc_cap;
};

/* writer.c */
int store_writer_prepare(struct store *st);
void store_writer_finalize(struct store *st);
/* Apply the ops of batch (seq: the last one's) and commit; frees batch. */
void store_writer_batch(struct store *st, struct op *batch, uint64_t seq);
void *store_writer_main(void *arg);

/* schema.c */
/*
 * The schema version of db: 0 for an empty database.  0, or -EPROTO for
 * a database that is not cicada's or is damaged, or -EIO when SQLite
 * fails; err says why, naming path.
 */
int store_schema_read(sqlite3 *db, const char *path, int64_t *version,
		      char *err, size_t errlen);
/* Create or migrate db to STORE_SCHEMA_VERSION, in one transaction. */
int store_schema_migrate(sqlite3 *db, const char *path, int64_t from,
			 char *err, size_t errlen);
/* -EPROTO with err when version is newer than ours, else 0. */
int store_schema_refuse_newer(const char *path, int64_t version, char *err,
			      size_t errlen);

/* store.c */
/* The writer took the queue: nothing in it can be undone any more. */
void store_pending_reset(struct store *st);
/* err = "PATH: SQLite's message of db[ (strerror)]"; returns -EIO. */
int store_sqlite_err(sqlite3 *db, const char *path, char *err,
		     size_t errlen);
/* Mark st failed with why (the first call wins); notify is not called. */
void store_set_failed(struct store *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void store_ops_free(struct op *op);

#endif
