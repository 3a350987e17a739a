/*
 * store_load(): at start-up, before the writer runs, sweep out what
 * expired while cicada was down, then read everything back.
 *
 * The sweep is one transaction of set-based statements, so a crash
 * during it changes nothing.  It also repairs what must not be there
 * (a delivery of a session that is gone, a reference to a message that
 * is gone, a message nothing refers to): the broker then never sees a
 * half record.  store_check() reports such damage instead of fixing it.
 *
 * An expired message loses its retained entry and the deliveries that
 * have not started; a delivery already sent (PUBLISH out, or PUBREC in)
 * continues, as MQTT 5 asks (3.3.2.3.3), and keeps its message, as does
 * a will waiting for its Will Delay, whose expiry only starts when it is
 * published.  The message row goes when nothing refers to it.
 */
#include <errno.h>
#include <stdlib.h>

#include "storage/store_int.h"

/* :now is Unix seconds, :now_ms Unix milliseconds. */
static const char *const sweep_sql[] = {
	/* Connected at the crash: offline from this restart. */
	"UPDATE session SET offline_since = :now WHERE offline_since = 0",
	"DELETE FROM session WHERE offline_since <> 0"
	" AND expiry_interval <> 4294967295"
	" AND offline_since + expiry_interval < :now",
	"DELETE FROM sub"
	" WHERE client_id NOT IN (SELECT client_id FROM session)",
	"DELETE FROM delivery"
	" WHERE client_id NOT IN (SELECT client_id FROM session)",
	"DELETE FROM qos2_in"
	" WHERE client_id NOT IN (SELECT client_id FROM session)",
	"DELETE FROM retained WHERE msg_id IN (SELECT id FROM msg"
	" WHERE expiry_at_ms <> 0 AND expiry_at_ms < :now_ms)",
	"DELETE FROM delivery WHERE state = 0 AND msg_id IN (SELECT id FROM msg"
	" WHERE expiry_at_ms <> 0 AND expiry_at_ms < :now_ms)",
	/* References to messages that are not there. */
	"DELETE FROM delivery WHERE msg_id NOT IN (SELECT id FROM msg)",
	"DELETE FROM retained WHERE msg_id NOT IN (SELECT id FROM msg)",
	"UPDATE session SET will_msg_id = NULL WHERE will_msg_id IS NOT NULL"
	" AND will_msg_id NOT IN (SELECT id FROM msg)",
	/* Messages nothing refers to. */
	"DELETE FROM msg"
	" WHERE NOT EXISTS (SELECT 1 FROM delivery WHERE msg_id = msg.id)"
	" AND NOT EXISTS (SELECT 1 FROM retained WHERE msg_id = msg.id)"
	" AND NOT EXISTS (SELECT 1 FROM session WHERE will_msg_id = msg.id)",
};

static int exec_sweep(sqlite3 *db, const char *sql, int64_t now_s)
{
	sqlite3_stmt *s;
	int i, rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	i = sqlite3_bind_parameter_index(s, ":now");
	if (i)
		sqlite3_bind_int64(s, i, now_s);
	i = sqlite3_bind_parameter_index(s, ":now_ms");
	if (i)
		sqlite3_bind_int64(s, i, now_s * 1000);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int sweep(sqlite3 *db, int64_t now_s)
{
	size_t i;
	int rc;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (i = 0; i < sizeof(sweep_sql) / sizeof(sweep_sql[0]) &&
		    rc == SQLITE_OK;
	     i++)
		rc = exec_sweep(db, sweep_sql[i], now_s);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* ------------------------------------------------------------ reporting */

/* Column i as bytes; "" rather than NULL for an empty BLOB. */
static const void *col_blob(sqlite3_stmt *s, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(s, i);

	*len = (size_t)sqlite3_column_bytes(s, i);
	return p ? p : "";
}

static uint8_t col_u8(sqlite3_stmt *s, int i)
{
	return (uint8_t)sqlite3_column_int(s, i);
}

static int64_t col_i64(sqlite3_stmt *s, int i)
{
	return sqlite3_column_int64(s, i);
}

static int report_msg(sqlite3_stmt *s, const struct store_loader *l,
		      void *arg)
{
	struct store_msg m;

	m.id = (uint64_t)col_i64(s, 0);
	m.topic = col_blob(s, 1, &m.topic_len);
	m.payload = col_blob(s, 2, &m.payload_len);
	m.props = col_blob(s, 3, &m.props_len);
	m.qos = col_u8(s, 4);
	m.retain = sqlite3_column_int(s, 5) != 0;
	m.expiry_at_ms = col_i64(s, 6);
	return l->msg(arg, &m);
}

static int report_session(sqlite3_stmt *s, const struct store_loader *l,
			  void *arg)
{
	struct store_session ss;

	ss.client_id = col_blob(s, 0, &ss.client_id_len);
	ss.version = col_u8(s, 1);
	ss.expiry_interval = (uint32_t)col_i64(s, 2);
	ss.offline_since = col_i64(s, 3);
	ss.will_msg_id = (uint64_t)col_i64(s, 4); /* NULL reads as 0 */
	ss.will_delay = (uint32_t)col_i64(s, 5);
	ss.will_expiry = (uint32_t)col_i64(s, 6);
	return l->session(arg, &ss);
}

static int report_sub(sqlite3_stmt *s, const struct store_loader *l,
		      void *arg)
{
	struct store_sub sub;

	sub.client_id = col_blob(s, 0, &sub.client_id_len);
	sub.filter = col_blob(s, 1, &sub.filter_len);
	sub.options = col_u8(s, 2);
	sub.sub_id = (uint32_t)col_i64(s, 3);
	return l->sub(arg, &sub);
}

static int report_delivery(sqlite3_stmt *s, const struct store_loader *l,
			   void *arg)
{
	uint32_t ids[UINT8_MAX];
	struct store_delivery d;
	const uint8_t *p;
	size_t len, i, n;

	d.id = (uint64_t)col_i64(s, 0);
	d.client_id = col_blob(s, 1, &d.client_id_len);
	d.msg_id = (uint64_t)col_i64(s, 2);
	d.packet_id = (uint16_t)col_i64(s, 3);
	d.qos = col_u8(s, 4);
	d.state = col_u8(s, 5);
	d.retain = sqlite3_column_int(s, 6) != 0;
	p = col_blob(s, 7, &len);
	n = len / 4 < UINT8_MAX ? len / 4 : UINT8_MAX;
	for (i = 0; i < n; i++)
		ids[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
			 (uint32_t)p[4 * i + 2] << 16 |
			 (uint32_t)p[4 * i + 3] << 24;
	d.sub_id_count = (uint8_t)n;
	d.sub_ids = ids;
	return l->delivery(arg, &d);
}

static int report_retained(sqlite3_stmt *s, const struct store_loader *l,
			   void *arg)
{
	return l->retained(arg, (uint64_t)col_i64(s, 0));
}

static int report_qos2_in(sqlite3_stmt *s, const struct store_loader *l,
			  void *arg)
{
	const char *id;
	size_t len;

	id = col_blob(s, 0, &len);
	return l->qos2_in(arg, id, len, (uint16_t)col_i64(s, 1));
}

struct report {
	const char *sql;
	int (*row)(sqlite3_stmt *s, const struct store_loader *l, void *arg);
};

/* In the order store.h promises; want[] in store_load() follows it. */
static const struct report reports[] = {
	{ "SELECT id, topic, payload, props, qos, retain, expiry_at_ms"
	  " FROM msg ORDER BY id",
	  report_msg },
	{ "SELECT client_id, version, expiry_interval, offline_since,"
	  " will_msg_id, will_delay, will_expiry FROM session",
	  report_session },
	{ "SELECT client_id, filter, options, sub_id FROM sub",
	  report_sub },
	{ "SELECT id, client_id, msg_id, packet_id, qos, state, retain,"
	  " sub_ids FROM delivery ORDER BY client_id, id",
	  report_delivery },
	{ "SELECT msg_id FROM retained",
	  report_retained },
	{ "SELECT client_id, packet_id FROM qos2_in",
	  report_qos2_in },
};

/* SQLite failed: 1 with rc set, 0 if each row went to its callback. */
static int report_table(sqlite3 *db, const struct report *r,
			const struct store_loader *l, void *arg, int *cb_rc)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(db, r->sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*cb_rc = r->row(s, l, arg);
		if (*cb_rc)
			break;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int store_load(struct store *st, const struct store_loader *l, void *arg,
	       int64_t now_s)
{
	/* A NULL callback skips its table. */
	const bool want[] = { l->msg, l->session, l->sub,
			      l->delivery, l->retained, l->qos2_in };
	int rc, cb_rc = 0;
	size_t i;

	_Static_assert(sizeof(want) / sizeof(want[0]) ==
			       sizeof(reports) / sizeof(reports[0]),
		       "one callback per table");

	rc = sweep(st->db, now_s);
	if (rc != SQLITE_OK)
		goto out_fail;
	/* One read transaction: one consistent picture, and faster. */
	rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL);
	for (i = 0; i < sizeof(reports) / sizeof(reports[0]) &&
		    rc == SQLITE_OK && !cb_rc;
	     i++) {
		if (want[i])
			rc = report_table(st->db, &reports[i], l, arg, &cb_rc);
	}
	if (rc != SQLITE_OK)
		goto out_fail;
	rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto out_fail;
	return cb_rc;

out_fail:
	store_set_failed(st, "%s (%s): cannot load the stored state",
			 sqlite3_errmsg(st->db), st->path);
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}
