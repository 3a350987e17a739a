/*
 * The writer thread: the only user of the connection once started.
 *
 * It sleeps until the queue holds something, takes all of it, and
 * applies it in one transaction (BEGIN IMMEDIATE ... COMMIT); whatever is
 * queued meanwhile waits for the next one, so the busier the broker, the
 * larger the batches.  In durability batch it also waits for
 * batch_interval_ms since the previous commit, so at most one commit (one
 * fsync) happens per interval.
 *
 * Messages are stored once and go with their last reference.  Rather
 * than count references, each batch remembers the ids of messages that
 * lost one and, before COMMIT, deletes those that nothing refers to any
 * more: three indexed EXISTS probes per candidate, none per untouched
 * message.  A message just stored is no candidate: the writer may take
 * the queue between store_msg_put() and the delivery or retained entry
 * that follows it (even from the same thread), and would delete it.  So
 * a message stored and never referred to stays until store_load()
 * sweeps it; one stored, delivered and acknowledged in one batch goes,
 * because the delivery's delete makes it a candidate.
 *
 * A failed batch is rolled back and the store stops for good: committed
 * never moves again, puts fail with -EIO, and store_failed() says why.
 * Retrying could commit later changes without earlier ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "storage/store_int.h"

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_MSG_PUT] =
		"INSERT OR REPLACE INTO msg(id, topic, payload, props, qos,"
		" retain, expiry_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_SESSION_WILL] =
		"SELECT will_msg_id FROM session WHERE client_id = ?1"
		" AND will_msg_id IS NOT NULL",
	[STMT_SESSION_PUT] =
		"INSERT OR REPLACE INTO session(client_id, version,"
		" expiry_interval, offline_since, will_msg_id, will_delay,"
		" will_expiry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_SESSION_MSGS] =
		"SELECT msg_id FROM delivery WHERE client_id = ?1",
	[STMT_SESSION_DEL_DELIVERIES] =
		"DELETE FROM delivery WHERE client_id = ?1",
	[STMT_SESSION_DEL_SUBS] = "DELETE FROM sub WHERE client_id = ?1",
	[STMT_SESSION_DEL_QOS2] = "DELETE FROM qos2_in WHERE client_id = ?1",
	[STMT_SESSION_DEL] = "DELETE FROM session WHERE client_id = ?1",
	[STMT_SUB_PUT] =
		"INSERT OR REPLACE INTO sub(client_id, filter, options,"
		" sub_id) VALUES (?1, ?2, ?3, ?4)",
	[STMT_SUB_DEL] = "DELETE FROM sub WHERE client_id = ?1 AND filter = ?2",
	[STMT_DELIVERY_PUT] =
		"INSERT OR REPLACE INTO delivery(id, client_id, msg_id,"
		" packet_id, qos, state, retain, sub_ids)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[STMT_DELIVERY_UPDATE] =
		"UPDATE delivery SET packet_id = ?2, state = ?3 WHERE id = ?1",
	[STMT_DELIVERY_MSG] = "SELECT msg_id FROM delivery WHERE id = ?1",
	[STMT_DELIVERY_DEL] = "DELETE FROM delivery WHERE id = ?1",
	/* The retained entry that msg ?1 replaces, if any. */
	[STMT_RETAIN_OLD] = "SELECT r.msg_id FROM msg m JOIN retained r"
			    " ON r.topic = m.topic WHERE m.id = ?1",
	[STMT_RETAIN_PUT] = "INSERT OR REPLACE INTO retained(topic, msg_id)"
			    " SELECT topic, id FROM msg WHERE id = ?1",
	[STMT_RETAIN_GET] = "SELECT msg_id FROM retained WHERE topic = ?1",
	[STMT_RETAIN_DEL] = "DELETE FROM retained WHERE topic = ?1",
	[STMT_QOS2_PUT] = "INSERT OR IGNORE INTO qos2_in(client_id, packet_id)"
			  " VALUES (?1, ?2)",
	[STMT_QOS2_DEL] =
		"DELETE FROM qos2_in WHERE client_id = ?1 AND packet_id = ?2",
	[STMT_GC] = "DELETE FROM msg WHERE id = ?1"
		    " AND NOT EXISTS (SELECT 1 FROM delivery WHERE msg_id = ?1)"
		    " AND NOT EXISTS (SELECT 1 FROM retained WHERE msg_id = ?1)"
		    " AND NOT EXISTS (SELECT 1 FROM session"
		    " WHERE will_msg_id = ?1)",
};

int store_writer_prepare(struct store *st)
{
	int i, rc;

	for (i = 0; i < STMT_COUNT; i++) {
		rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT,
					&st->stmt[i], NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

void store_writer_finalize(struct store *st)
{
	int i;

	for (i = 0; i < STMT_COUNT; i++) {
		sqlite3_finalize(st->stmt[i]);
		st->stmt[i] = NULL;
	}
}

/* ---------------------------------------------------------------- helpers */

static int bind_blob(sqlite3_stmt *s, int i, const struct op_blob *b)
{
	/* op blobs are never NULL, so an empty one stays an empty BLOB. */
	return sqlite3_bind_blob64(s, i, b->p, b->len, SQLITE_STATIC);
}

static int bind_int(sqlite3_stmt *s, int i, int64_t v)
{
	return sqlite3_bind_int64(s, i, v);
}

/* Run s to its end, then make it ready for the next op. */
static int run(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Remember msg_id: check at the end of the batch whether it is unused. */
static void gc_add(struct store *st, uint64_t msg_id)
{
	uint64_t *gc;
	size_t cap;

	if (!msg_id)
		return;
	if (st->gc_len == st->gc_cap) {
		cap = st->gc_cap ? 2 * st->gc_cap : 64;
		gc = realloc(st->gc, cap * sizeof(*gc));
		/*
		 * Failing the store over this would be far worse than a
		 * row left behind, which the next store_load() sweeps.
		 */
		if (!gc)
			return;
		st->gc = gc;
		st->gc_cap = cap;
	}
	st->gc[st->gc_len++] = msg_id;
}

/* Every row of s (one msg id column) into the GC candidates. */
static int gc_add_rows(struct store *st, sqlite3_stmt *s)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		gc_add(st, (uint64_t)sqlite3_column_int64(s, 0));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int gc_run(struct store *st)
{
	sqlite3_stmt *s = st->stmt[STMT_GC];
	size_t i;
	int rc = SQLITE_OK;

	if (!st->gc_len)
		return SQLITE_OK;
	qsort(st->gc, st->gc_len, sizeof(*st->gc), cmp_u64);
	for (i = 0; i < st->gc_len && rc == SQLITE_OK; i++) {
		if (i && st->gc[i] == st->gc[i - 1])
			continue;
		bind_int(s, 1, (int64_t)st->gc[i]);
		rc = run(s);
	}
	st->gc_len = 0;
	return rc;
}

/* ------------------------------------------------------------------- ops */

static int apply_session_put(struct store *st, const struct op *op)
{
	sqlite3_stmt *s = st->stmt[STMT_SESSION_WILL];
	int rc;

	/* The will it had may be going. */
	bind_blob(s, 1, &op->blob[0]);
	rc = gc_add_rows(st, s);
	if (rc != SQLITE_OK)
		return rc;
	s = st->stmt[STMT_SESSION_PUT];
	bind_blob(s, 1, &op->blob[0]);
	bind_int(s, 2, op->u.session.version);
	bind_int(s, 3, op->u.session.expiry_interval);
	bind_int(s, 4, op->u.session.offline_since);
	if (op->u.session.will_msg_id)
		bind_int(s, 5, (int64_t)op->u.session.will_msg_id);
	else
		sqlite3_bind_null(s, 5);
	bind_int(s, 6, op->u.session.will_delay);
	bind_int(s, 7, op->u.session.will_expiry);
	return run(s);
}

static int apply_session_del(struct store *st, const struct op *op)
{
	static const enum store_stmt del[] = {
		STMT_SESSION_DEL_DELIVERIES,
		STMT_SESSION_DEL_SUBS,
		STMT_SESSION_DEL_QOS2,
		STMT_SESSION_DEL,
	};
	sqlite3_stmt *s;
	size_t i;
	int rc;

	s = st->stmt[STMT_SESSION_WILL];
	bind_blob(s, 1, &op->blob[0]);
	rc = gc_add_rows(st, s);
	if (rc != SQLITE_OK)
		return rc;
	s = st->stmt[STMT_SESSION_MSGS];
	bind_blob(s, 1, &op->blob[0]);
	rc = gc_add_rows(st, s);
	for (i = 0; i < sizeof(del) / sizeof(del[0]) && rc == SQLITE_OK; i++) {
		s = st->stmt[del[i]];
		bind_blob(s, 1, &op->blob[0]);
		rc = run(s);
	}
	return rc;
}

static int apply_delivery_put(struct store *st, const struct op *op)
{
	sqlite3_stmt *s = st->stmt[STMT_DELIVERY_PUT];

	bind_int(s, 1, (int64_t)op->u.delivery.id);
	bind_blob(s, 2, &op->blob[0]);
	bind_int(s, 3, (int64_t)op->u.delivery.msg_id);
	bind_int(s, 4, op->u.delivery.packet_id);
	bind_int(s, 5, op->u.delivery.qos);
	bind_int(s, 6, op->u.delivery.state);
	bind_int(s, 7, op->u.delivery.retain);
	bind_blob(s, 8, &op->blob[1]);
	return run(s);
}

static int apply_delivery_del(struct store *st, const struct op *op)
{
	sqlite3_stmt *s = st->stmt[STMT_DELIVERY_MSG];
	int rc;

	bind_int(s, 1, (int64_t)op->u.delivery.id);
	rc = gc_add_rows(st, s);
	if (rc != SQLITE_OK)
		return rc;
	s = st->stmt[STMT_DELIVERY_DEL];
	bind_int(s, 1, (int64_t)op->u.delivery.id);
	return run(s);
}

static int apply_retain_put(struct store *st, const struct op *op)
{
	sqlite3_stmt *s = st->stmt[STMT_RETAIN_OLD];
	int rc;

	bind_int(s, 1, (int64_t)op->u.retain_msg_id);
	rc = gc_add_rows(st, s);
	if (rc != SQLITE_OK)
		return rc;
	/* The topic is the message's: no row when the message is unknown. */
	s = st->stmt[STMT_RETAIN_PUT];
	bind_int(s, 1, (int64_t)op->u.retain_msg_id);
	return run(s);
}

static int apply_retain_del(struct store *st, const struct op *op)
{
	sqlite3_stmt *s = st->stmt[STMT_RETAIN_GET];
	int rc;

	bind_blob(s, 1, &op->blob[0]);
	rc = gc_add_rows(st, s);
	if (rc != SQLITE_OK)
		return rc;
	s = st->stmt[STMT_RETAIN_DEL];
	bind_blob(s, 1, &op->blob[0]);
	return run(s);
}

static int apply(struct store *st, const struct op *op)
{
	sqlite3_stmt *s;

	switch (op->kind) {
	case OP_MSG_PUT:
		s = st->stmt[STMT_MSG_PUT];
		bind_int(s, 1, (int64_t)op->u.msg.id);
		bind_blob(s, 2, &op->blob[0]);
		bind_blob(s, 3, &op->blob[1]);
		bind_blob(s, 4, &op->blob[2]);
		bind_int(s, 5, op->u.msg.qos);
		bind_int(s, 6, op->u.msg.retain);
		bind_int(s, 7, op->u.msg.expiry_at_ms);
		/*
		 * Not a GC candidate: its reference may be queued a moment
		 * later, and the writer may take the queue in between.
		 */
		return run(s);
	case OP_SESSION_PUT:
		return apply_session_put(st, op);
	case OP_SESSION_DEL:
		return apply_session_del(st, op);
	case OP_SUB_PUT:
		s = st->stmt[STMT_SUB_PUT];
		bind_blob(s, 1, &op->blob[0]);
		bind_blob(s, 2, &op->blob[1]);
		bind_int(s, 3, op->u.sub.options);
		bind_int(s, 4, op->u.sub.sub_id);
		return run(s);
	case OP_SUB_DEL:
		s = st->stmt[STMT_SUB_DEL];
		bind_blob(s, 1, &op->blob[0]);
		bind_blob(s, 2, &op->blob[1]);
		return run(s);
	case OP_DELIVERY_PUT:
		return apply_delivery_put(st, op);
	case OP_DELIVERY_UPDATE:
		s = st->stmt[STMT_DELIVERY_UPDATE];
		bind_int(s, 1, (int64_t)op->u.delivery.id);
		bind_int(s, 2, op->u.delivery.packet_id);
		bind_int(s, 3, op->u.delivery.state);
		return run(s);
	case OP_DELIVERY_DEL:
		return apply_delivery_del(st, op);
	case OP_MSG_DROP:
		gc_add(st, op->u.msg.id);
		return SQLITE_OK;
	case OP_RETAIN_PUT:
		return apply_retain_put(st, op);
	case OP_RETAIN_DEL:
		return apply_retain_del(st, op);
	case OP_QOS2_PUT:
	case OP_QOS2_DEL:
		s = st->stmt[op->kind == OP_QOS2_PUT ? STMT_QOS2_PUT :
						       STMT_QOS2_DEL];
		bind_blob(s, 1, &op->blob[0]);
		bind_int(s, 2, op->u.packet_id);
		return run(s);
	}
	return SQLITE_MISUSE;
}

/* ----------------------------------------------------------------- batch */

static void fail(struct store *st, int rc)
{
	/* Read before ROLLBACK replaces it. */
	const char *why = sqlite3_errcode(st->db) == rc ?
				  sqlite3_errmsg(st->db) :
				  sqlite3_errstr(rc);

	store_set_failed(st, "%s (%s): persistent state is no longer saved",
			 why, st->path);
	if (!sqlite3_get_autocommit(st->db))
		run(st->stmt[STMT_ROLLBACK]);
}

void store_writer_batch(struct store *st, struct op *batch, uint64_t seq)
{
	const struct op *op;
	int rc;

	if (atomic_load(&st->failed)) {
		store_ops_free(batch);
		return;
	}
	for (op = batch; op && op->cancelled; op = op->next)
		;
	if (!op) {
		/* All undone before it was written: nothing to commit. */
		atomic_store(&st->committed, seq);
		store_ops_free(batch);
		if (st->notify)
			st->notify(st->notify_arg);
		return;
	}
	rc = run(st->stmt[STMT_BEGIN]);
	for (op = batch; op && rc == SQLITE_OK; op = op->next)
		if (!op->cancelled)
			rc = apply(st, op);
	if (rc == SQLITE_OK)
		rc = gc_run(st);
	if (rc == SQLITE_OK)
		rc = run(st->stmt[STMT_COMMIT]);
	st->gc_len = 0;
	if (rc == SQLITE_OK)
		atomic_store(&st->committed, seq);
	else
		fail(st, rc);
	store_ops_free(batch);
	if (st->notify)
		st->notify(st->notify_arg);
}

/* ------------------------------------------------------------------ thread */

static void ms_after(struct timespec *t, const struct timespec *from,
		     unsigned ms)
{
	t->tv_sec = from->tv_sec + (time_t)(ms / 1000);
	t->tv_nsec = from->tv_nsec + (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

void *store_writer_main(void *arg)
{
	struct store *st = arg;
	struct timespec last = { 0, 0 }, deadline;
	struct op *batch;
	uint64_t seq;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		/* An open group commits whole or not at all: wait for it. */
		while ((!st->head || st->group_depth) && !st->stop)
			pthread_cond_wait(&st->wake, &st->lock);
		if (!st->head)
			break;
		/* Durability batch: one commit per interval at most. */
		if (!st->strict && st->batch_interval_ms) {
			ms_after(&deadline, &last, st->batch_interval_ms);
			while (!st->stop &&
			       pthread_cond_timedwait(&st->wake, &st->lock,
						      &deadline) != ETIMEDOUT)
				;
		}
		while (st->group_depth && !st->stop)
			pthread_cond_wait(&st->wake, &st->lock);
		batch = st->head;
		st->head = st->tail = NULL;
		seq = atomic_load(&st->submitted);
		store_pending_reset(st);
		pthread_mutex_unlock(&st->lock);

		store_writer_batch(st, batch, seq);
		clock_gettime(CLOCK_MONOTONIC, &last);
		pthread_mutex_lock(&st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}
