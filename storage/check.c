/*
 * store_check(): cicada --check-db.  Reads the file only (it may belong to
 * a running cicada: WAL lets us read beside its writer) and reports the
 * first problem it finds, with how many rows have it, so that an operator
 * knows what a restart would sweep away (load.c repairs the same things).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/store_int.h"

/*
 * A rule every row of a table must keep.  sql yields the number of rows
 * that break it and a description of the first one.
 */
struct rule {
	const char *one, *many; /* after the count: "1 delivery refers ..." */
	const char *sql;
};

#define RULE(table, where, first, order)                                   \
	"SELECT count(*), (SELECT " first " FROM " table " WHERE " where \
	" ORDER BY " order " LIMIT 1) FROM " table " WHERE " where

static const struct rule rules[] = {
	{ "delivery refers to a missing message",
	  "deliveries refer to a missing message",
	  RULE("delivery", "msg_id NOT IN (SELECT id FROM msg)",
	       "'delivery ' || id || ', message ' || msg_id", "id") },
	{ "retained entry refers to a missing message",
	  "retained entries refer to a missing message",
	  RULE("retained", "msg_id NOT IN (SELECT id FROM msg)",
	       "'topic ' || CAST(topic AS TEXT) || ', message ' || msg_id",
	       "topic") },
	{ "session's will refers to a missing message",
	  "sessions' wills refer to a missing message",
	  RULE("session",
	       "will_msg_id IS NOT NULL AND will_msg_id NOT IN"
	       " (SELECT id FROM msg)",
	       "'client ' || CAST(client_id AS TEXT) || ', message ' ||"
	       " will_msg_id",
	       "client_id") },
	{ "delivery belongs to no session", "deliveries belong to no session",
	  RULE("delivery",
	       "client_id NOT IN (SELECT client_id FROM session)",
	       "'delivery ' || id || ', client ' || CAST(client_id AS TEXT)",
	       "id") },
	{ "subscription belongs to no session",
	  "subscriptions belong to no session",
	  RULE("sub", "client_id NOT IN (SELECT client_id FROM session)",
	       "'client ' || CAST(client_id AS TEXT) || ', filter ' ||"
	       " CAST(filter AS TEXT)",
	       "client_id, filter") },
	{ "QoS 2 packet id belongs to no session",
	  "QoS 2 packet ids belong to no session",
	  RULE("qos2_in", "client_id NOT IN (SELECT client_id FROM session)",
	       "'client ' || CAST(client_id AS TEXT) || ', packet id ' ||"
	       " packet_id",
	       "client_id, packet_id") },
	{ "message is referred to by nothing",
	  "messages are referred to by nothing",
	  RULE("msg",
	       "NOT EXISTS (SELECT 1 FROM delivery WHERE msg_id = msg.id)"
	       " AND NOT EXISTS (SELECT 1 FROM retained WHERE msg_id = msg.id)"
	       " AND NOT EXISTS (SELECT 1 FROM session"
	       " WHERE will_msg_id = msg.id)",
	       "'message ' || id", "id") },
};

/* Text of column i, control characters as '?', at most outlen - 1 bytes. */
static void col_printable(sqlite3_stmt *s, int i, char *out, size_t outlen)
{
	const unsigned char *p = sqlite3_column_text(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i), j;

	if (!p || !outlen) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	if (n > outlen - 1)
		n = outlen - 1;
	for (j = 0; j < n; j++)
		out[j] = p[j] < 0x20 || p[j] == 0x7f ? '?' : (char)p[j];
	out[n] = '\0';
}

static int check_integrity(sqlite3 *db, const char *path, char *err,
			   size_t errlen)
{
	char first[160] = "";
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_err(db, path, err, errlen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n++ == 0)
			col_printable(s, 0, first, sizeof(first));
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_sqlite_err(db, path, err, errlen);
	if (n == 1 && !strcmp(first, "ok"))
		return 0;
	snprintf(err, errlen,
		 "%s: SQLite's integrity check failed: %s (%" PRId64
		 " problem%s found)",
		 path, first, n, n == 1 ? "" : "s");
	return -EIO;
}

static int check_rule(sqlite3 *db, const char *path, const struct rule *r,
		      char *err, size_t errlen)
{
	char first[160];
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc;

	rc = sqlite3_prepare_v2(db, r->sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_err(db, path, err, errlen);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_int64(s, 0);
		col_printable(s, 1, first, sizeof(first));
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return store_sqlite_err(db, path, err, errlen);
	if (!n)
		return 0;
	snprintf(err, errlen, "%s: %" PRId64 " %s (first: %s)", path, n,
		 n == 1 ? r->one : r->many, first);
	return -EIO;
}

int store_check(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	sqlite3 *db = NULL;
	int64_t version;
	size_t i;
	int rc;

	/* SQLite would only say "unable to open database file". */
	if (stat(path, &sb) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		rc = db ? store_sqlite_err(db, path, err, errlen) : -ENOMEM;
		goto out_close;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = check_integrity(db, path, err, errlen);
	if (rc == 0)
		rc = store_schema_read(db, path, &version, err, errlen);
	if (rc == 0)
		rc = store_schema_refuse_newer(path, version, err, errlen);
	if (rc == 0 && version < STORE_SCHEMA_VERSION) {
		/* Empty, or older: our rules are about our tables. */
		if (version)
			snprintf(err, errlen,
				 "%s: schema version %" PRId64 " is older than "
				 "this cicada's (%d): cicada migrates it when "
				 "it opens it",
				 path, version, STORE_SCHEMA_VERSION);
		else
			snprintf(err, errlen,
				 "%s: not a cicada database (it is empty)",
				 path);
		rc = -EPROTO;
	}
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]) && rc == 0; i++)
		rc = check_rule(db, path, &rules[i], err, errlen);

out_close:
	sqlite3_close(db);
	return rc;
}
