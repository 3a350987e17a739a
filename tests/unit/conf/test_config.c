/*
 * Unit tests for conf/config.c.  Table-driven: each row is a config text
 * written to DIR/cicada.conf in a fresh temporary directory (with optional
 * files in DIR/conf.d/), the expected return code, a substring of the
 * expected message (file and line included) and expected field values,
 * checked after config_finish().  Cases that do not fit a row (embedded
 * defaults, unreadable files, NUL bytes, small error buffers, layering)
 * are tests of their own below.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct exp_int {
	const char *field;	/* see get_int() */
	long long value;
};

struct exp_str {
	const char *field;	/* see get_str() */
	const char *value;	/* NULL: the field must be NULL */
};

struct inc_file {
	const char *name;	/* under DIR/conf.d/ */
	const char *text;
};

struct row {
	const char *text;	/* "@DIR@" becomes the temporary directory */
	int rc;
	/*
	 * A substring of the message, or NULL for none; a trailing '$'
	 * anchors it at the end of the message.
	 */
	const char *err;
	struct exp_int ints[4];
	struct exp_str strs[3];
	struct inc_file inc[4];
};

/* ---------------------------------------------------------- fields */

enum ftype { T_BOOL, T_INT, T_UNS, T_U16, T_U32, T_U64, T_DUR };

struct field {
	const char *name;
	size_t off;
	enum ftype type;
};

#define FLD(n, t) { #n, offsetof(struct config, n), t }

static const struct field fields[] = {
	FLD(allow_anonymous, T_INT),
	FLD(per_listener_settings, T_BOOL),
	FLD(max_connections, T_INT),
	FLD(max_packet_size, T_U32),
	FLD(max_inflight_messages, T_U16),
	FLD(max_queued_messages, T_U32),
	FLD(max_queued_bytes, T_U64),
	FLD(max_keepalive, T_U16),
	FLD(max_qos, T_U16),
	FLD(connect_timeout, T_UNS),
	FLD(max_topic_length, T_U16),
	FLD(max_topic_levels, T_U16),
	FLD(max_client_id_length, T_U16),
	FLD(retain_available, T_BOOL),
	FLD(queue_qos0_messages, T_BOOL),
	FLD(sys_interval, T_UNS),
	FLD(server_moved, T_INT),
	FLD(log_dest, T_UNS),
	FLD(log_type, T_UNS),
	FLD(log_timestamp, T_BOOL),
	FLD(persistence, T_BOOL),
	FLD(autosave_interval, T_UNS),
	FLD(durability, T_DUR),
	FLD(shards, T_UNS),
	FLD(default_listener, T_BOOL),
};

/* "lN.field": listener N; the fields of struct config otherwise. */
static long long get_int(const struct config *c, const char *name)
{
	if (strcmp(name, "listener_count") == 0)
		return (long long)c->listener_count;
	if (name[0] == 'l' && name[1] >= '0' && name[1] <= '9' &&
	    name[2] == '.') {
		size_t i = (size_t)(name[1] - '0');
		const struct config_listener *l;

		ck_assert_msg(i < c->listener_count, "no listener %zu", i);
		l = &c->listeners[i];
		name += 3;
		if (strcmp(name, "port") == 0)
			return l->port;
		if (strcmp(name, "socket_domain") == 0)
			return l->socket_domain;
		if (strcmp(name, "protocol") == 0)
			return l->protocol;
		if (strcmp(name, "max_connections") == 0)
			return l->max_connections;
		if (strcmp(name, "allow_anonymous") == 0)
			return l->allow_anonymous;
		if (strcmp(name, "server_moved") == 0)
			return l->server_moved;
		if (strcmp(name, "line") == 0)
			return l->line;
		ck_abort_msg("no listener field %s", name);
	}
	for (size_t i = 0; i < NELEM(fields); i++) {
		const char *p = (const char *)c + fields[i].off;

		if (strcmp(fields[i].name, name) != 0)
			continue;
		switch (fields[i].type) {
		case T_BOOL:
			return *(const bool *)p;
		case T_INT:
			return *(const int *)p;
		case T_UNS:
			return *(const unsigned *)p;
		case T_U16:
			return *(const uint16_t *)p;
		case T_U32:
			return *(const uint32_t *)p;
		case T_U64:
			return (long long)*(const uint64_t *)p;
		case T_DUR:
			return *(const enum config_durability *)p;
		}
	}
	ck_abort_msg("no field %s", name);
	return 0;
}

static char path_buf[4096];

static const char *get_str(const struct config *c, const char *name)
{
	if (name[0] == 'l' && name[1] >= '0' && name[1] <= '9' &&
	    name[2] == '.') {
		size_t i = (size_t)(name[1] - '0');
		const struct config_listener *l;

		ck_assert_msg(i < c->listener_count, "no listener %zu", i);
		l = &c->listeners[i];
		name += 3;
		if (strcmp(name, "bind_address") == 0)
			return l->bind_address;
		if (strcmp(name, "password_file") == 0)
			return l->password_file;
		if (strcmp(name, "acl_file") == 0)
			return l->acl_file;
		if (strcmp(name, "source") == 0)
			return l->source;
		if (strcmp(name, "server_reference") == 0)
			return l->server_reference;
		ck_abort_msg("no listener field %s", name);
	}
	if (strcmp(name, "password_file") == 0)
		return c->password_file;
	if (strcmp(name, "acl_file") == 0)
		return c->acl_file;
	if (strcmp(name, "log_file") == 0)
		return c->log_file;
	if (strcmp(name, "persistence_file") == 0)
		return c->persistence_file;
	if (strcmp(name, "persistence_location") == 0)
		return c->persistence_location;
	if (strcmp(name, "pid_file") == 0)
		return c->pid_file;
	if (strcmp(name, "server_reference") == 0)
		return c->server_reference;
	if (strcmp(name, "response_information") == 0)
		return c->response_information;
	if (strcmp(name, "persistence_path") == 0) {
		ck_assert_int_eq(config_persistence_path(c, path_buf,
							 sizeof(path_buf)), 0);
		return path_buf;
	}
	ck_abort_msg("no string field %s", name);
	return NULL;
}

/* ------------------------------------------------------- temp files */

/*
 * One directory for the whole run, made and removed by an unchecked
 * fixture in the parent process, so a failed test (whose forked child never
 * reaches its own clean-up) still leaves nothing behind; each test makes
 * its own directory, dir, inside it.
 */
static char base[256];
static char dir[300];

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* text with every "@DIR@" replaced by dir; the caller frees it. */
static char *expand(const char *text)
{
	size_t dlen = strlen(dir), n = 0;
	const char *s;
	char *out, *o;

	for (s = text; (s = strstr(s, "@DIR@")); s += 5)
		n++;
	out = malloc(strlen(text) + n * dlen + 1);
	ck_assert_ptr_nonnull(out);
	for (o = out; *text;) {
		if (strncmp(text, "@DIR@", 5) == 0) {
			memcpy(o, dir, dlen);
			o += dlen;
			text += 5;
		} else {
			*o++ = *text++;
		}
	}
	*o = '\0';
	return out;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *path)
{
	nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void base_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base, sizeof(base), "%s/cicada-conf-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror(base);
		exit(EXIT_FAILURE);
	}
}

static void base_teardown(void)
{
	remove_tree(base);
}

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "%s/t-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
	remove_tree(dir);
}

/* Write the row's files; returns the path of the main file. */
static void write_row(const struct row *r, char *main_path, size_t len)
{
	char path[512];
	char *text;

	if (r->inc[0].name) {
		snprintf(path, sizeof(path), "%s/conf.d", dir);
		ck_assert_int_eq(mkdir(path, 0700), 0);
	}
	for (size_t i = 0; i < NELEM(r->inc) && r->inc[i].name; i++) {
		snprintf(path, sizeof(path), "%s/conf.d/%s", dir,
			 r->inc[i].name);
		text = expand(r->inc[i].text);
		write_file(path, text, strlen(text));
		free(text);
	}
	snprintf(main_path, len, "%s/cicada.conf", dir);
	text = expand(r->text);
	write_file(main_path, text, strlen(text));
	free(text);
}

static void check_err(const char *err, const char *want)
{
	size_t wlen = strlen(want);

	if (wlen && want[wlen - 1] == '$') {
		size_t elen = strlen(err);

		wlen--;
		ck_assert_msg(elen >= wlen &&
				      !strncmp(err + elen - wlen, want, wlen),
			      "message '%s' does not end with '%.*s'", err,
			      (int)wlen, want);
		return;
	}
	ck_assert_msg(strstr(err, want) != NULL,
		      "message '%s' does not contain '%s'", err, want);
}

/* ------------------------------------------------------------- rows */

static const struct row rows[] = {
	/* ---- the file format */
	{ .text = "",
	  .ints = { { "listener_count", 1 },
		    { "default_listener", 1 },
		    { "l0.port", 1883 },
		    { "allow_anonymous", 1 } },
	  .strs = { { "l0.bind_address", NULL },
		    { "persistence_path", "cicada.db" } } },
	{ .text = "# only a comment\n\n   \n\t\n# another\n",
	  .ints = { { "listener_count", 1 }, { "max_connections", -1 } } },
	{ .text = "max_connections 5\r\nmax_keepalive 60\r\n",
	  .ints = { { "max_connections", 5 }, { "max_keepalive", 60 } } },
	{ .text = "   max_connections   7   \n\tmax_keepalive\t61\t\n",
	  .ints = { { "max_connections", 7 }, { "max_keepalive", 61 } } },
	{ .text = "max_connections 9", .ints = { { "max_connections", 9 } } },
	{ .text = "\xEF\xBB\xBFmax_connections 3\n",
	  .ints = { { "max_connections", 3 } } },
	{ .text = "# c\r\n\r\n  \r\n#\r\nmax_conections 10\r\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:5: unknown option 'max_conections' "
		 "(did you mean 'max_connections'?)$" },
	{ .text = "  # indented comment\nmax_keepalive 1\n\n\nfrobnicate 1\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:5: unknown option 'frobnicate'$" },
	{ .text = "max_connections 5 # five\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: unexpected '#' after 'max_connections': "
		 "comments must be on a line of their own" },
	{ .text = "persistence true #yes\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: unexpected '#yes' after 'persistence'" },
	{ .text = "Persistence true\n",
	  .rc = -EINVAL,
	  .err = "unknown option 'Persistence' (did you mean 'persistence'?)" },
	{ .text = "persistance true\n",
	  .rc = -EINVAL,
	  .err = "(did you mean 'persistence'?)" },
	{ .text = "alow_anonymus true\n",
	  .rc = -EINVAL,
	  .err = "(did you mean 'allow_anonymous'?)" },
	{ .text = "log_typ debug\n",
	  .rc = -EINVAL,
	  .err = "(did you mean 'log_type'?)" },
	{ .text = "listner 1883\n",
	  .rc = -EINVAL,
	  .err = "(did you mean 'listener'?)" },
	{ .text = "x 1\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: unknown option 'x'$" },
	{ .text = "cafile /etc/ca.pem\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: mosquitto option 'cafile' is not supported "
		 "yet" },
	{ .text = "\n\nport 1883\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:3: mosquitto option 'port' is not supported "
		 "yet" },

	/* ---- booleans */
	{ .text = "allow_anonymous false\n",
	  .ints = { { "allow_anonymous", 0 }, { "l0.allow_anonymous", 0 } } },
	{ .text = "allow_anonymous yes\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: invalid value 'yes' for 'allow_anonymous': "
		 "expected true or false" },
	{ .text = "retain_available false\n",
	  .ints = { { "retain_available", 0 } } },
	{ .text = "retain_available 1\n",
	  .rc = -EINVAL,
	  .err = "invalid value '1' for 'retain_available'" },
	{ .text = "queue_qos0_messages true\n",
	  .ints = { { "queue_qos0_messages", 1 } } },
	{ .text = "queue_qos0_messages TRUE\n",
	  .rc = -EINVAL,
	  .err = "invalid value 'TRUE' for 'queue_qos0_messages'" },
	{ .text = "log_timestamp false\n", .ints = { { "log_timestamp", 0 } } },
	{ .text = "log_timestamp\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: missing value for 'log_timestamp'" },
	{ .text = "persistence false\n", .ints = { { "persistence", 0 } } },
	{ .text = "persistence true false\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: unexpected extra argument 'false' for "
		 "'persistence'" },
	{ .text = "per_listener_settings true\n",
	  .ints = { { "per_listener_settings", 1 } } },
	{ .text = "per_listener_settings on\n",
	  .rc = -EINVAL,
	  .err = "invalid value 'on' for 'per_listener_settings'" },

	/* ---- integers */
	{ .text = "max_connections -1\n",
	  .ints = { { "max_connections", -1 } } },
	{ .text = "max_connections 2147483647\n",
	  .ints = { { "max_connections", 2147483647 } } },
	{ .text = "max_connections 0\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: 'max_connections' must be -1 or between 1 and "
		 "2147483647, not 0" },
	{ .text = "max_connections 2147483648\n",
	  .rc = -EINVAL,
	  .err = "'max_connections' must be -1 or between 1 and 2147483647, "
		 "not 2147483648" },
	{ .text = "max_connections -2\n", .rc = -EINVAL, .err = "not -2" },
	{ .text = "max_connections 5x\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: invalid value '5x' for 'max_connections': "
		 "expected a decimal integer" },
	{ .text = "max_connections +5\n",
	  .rc = -EINVAL,
	  .err = "invalid value '+5'" },
	{ .text = "max_connections 0x10\n",
	  .rc = -EINVAL,
	  .err = "invalid value '0x10'" },
	{ .text = "max_connections -\n",
	  .rc = -EINVAL,
	  .err = "invalid value '-'" },
	{ .text = "max_connections 99999999999999999999999\n",
	  .rc = -EINVAL,
	  .err = "'max_connections' must be -1 or between 1 and 2147483647, "
		 "not 99999999999999999999999" },
	{ .text = "max_connections 99999999999999999999x\n",
	  .rc = -EINVAL,
	  .err = "invalid value '99999999999999999999x' for "
		 "'max_connections'" },
	{ .text = "max_connections 1 2\n",
	  .rc = -EINVAL,
	  .err = "unexpected extra argument '2' for 'max_connections'" },
	{ .text = "max_connections\n",
	  .rc = -EINVAL,
	  .err = "missing value for 'max_connections'" },
	{ .text = "max_packet_size 0\n", .ints = { { "max_packet_size", 0 } } },
	{ .text = "max_packet_size 20\n",
	  .ints = { { "max_packet_size", 20 } } },
	{ .text = "max_packet_size 268435460\n",
	  .ints = { { "max_packet_size", 268435460 } } },
	{ .text = "max_packet_size 19\n",
	  .rc = -EINVAL,
	  .err = "'max_packet_size' must be 0 or between 20 and 268435460, not "
		 "19" },
	{ .text = "max_packet_size 268435461\n",
	  .rc = -EINVAL,
	  .err = "not 268435461" },
	{ .text = "max_inflight_messages 0\n",
	  .ints = { { "max_inflight_messages", 0 } } },
	{ .text = "max_inflight_messages 65535\n",
	  .ints = { { "max_inflight_messages", 65535 } } },
	{ .text = "max_inflight_messages 65536\n",
	  .rc = -EINVAL,
	  .err = "'max_inflight_messages' must be between 0 and 65535, not "
		 "65536" },
	{ .text = "max_inflight_messages -1\n",
	  .rc = -EINVAL,
	  .err = "not -1" },
	{ .text = "max_queued_messages 0\n",
	  .ints = { { "max_queued_messages", 0 } } },
	{ .text = "max_queued_messages 2147483647\n",
	  .ints = { { "max_queued_messages", 2147483647 } } },
	{ .text = "max_queued_messages 2147483648\n",
	  .rc = -EINVAL,
	  .err = "'max_queued_messages' must be between 0 and 2147483647" },
	{ .text = "max_queued_bytes 1048576\n",
	  .ints = { { "max_queued_bytes", 1048576 } } },
	{ .text = "max_queued_bytes 9223372036854775807\n",
	  .ints = { { "max_queued_bytes", 9223372036854775807LL } } },
	{ .text = "max_queued_bytes 9223372036854775808\n",
	  .rc = -EINVAL,
	  .err = "'max_queued_bytes' must be between 0 and "
		 "9223372036854775807" },
	{ .text = "max_queued_bytes 10MB\n",
	  .rc = -EINVAL,
	  .err = "invalid value '10MB'" },
	{ .text = "max_keepalive 0\n", .ints = { { "max_keepalive", 0 } } },
	{ .text = "max_keepalive 65536\n",
	  .rc = -EINVAL,
	  .err = "'max_keepalive' must be between 0 and 65535, not 65536" },
	{ .text = "connect_timeout 1\n", .ints = { { "connect_timeout", 1 } } },
	{ .text = "connect_timeout 3600\n",
	  .ints = { { "connect_timeout", 3600 } } },
	{ .text = "connect_timeout 0\n",
	  .rc = -EINVAL,
	  .err = "'connect_timeout' must be between 1 and 3600, not 0" },
	{ .text = "connect_timeout 3601\n", .rc = -EINVAL, .err = "not 3601" },
	{ .text = "sys_interval 0\n", .ints = { { "sys_interval", 0 } } },
	{ .text = "sys_interval 65536\n",
	  .rc = -EINVAL,
	  .err = "'sys_interval' must be between 0 and 65535" },
	{ .text = "autosave_interval 0\n",
	  .ints = { { "autosave_interval", 0 } } },
	{ .text = "autosave_interval 1800\n",
	  .ints = { { "autosave_interval", 1800 } } },
	{ .text = "autosave_interval 86401\n",
	  .rc = -EINVAL,
	  .err = "'autosave_interval' must be between 0 and 86400" },
	/* shards: 1..64, or 0 (also the default) for the online CPUs. */
	{ .text = "shards 4\n", .ints = { { "shards", 4 } } },
	{ .text = "shards 1\n", .ints = { { "shards", 1 } } },
	{ .text = "shards 64\n", .ints = { { "shards", 64 } } },
	{ .text = "shards 0\n", .ints = { { "shards", 0 } } },
	{ .text = "shards 007\n", .ints = { { "shards", 7 } } },
	{ .text = "shards 8\nshards 2\n", .ints = { { "shards", 2 } } },
	/* Global: a listener block does not make it the listener's. */
	{ .text = "listener 1883\nshards 3\n",
	  .ints = { { "shards", 3 }, { "listener_count", 1 } } },
	{ .text = "shards 65\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: 'shards' must be 0 or between 1 and 64, "
		 "not 65$" },
	{ .text = "# threads\n\nshards 1024\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:3: 'shards' must be 0 or between 1 and 64, "
		 "not 1024$" },
	{ .text = "shards -1\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: 'shards' must be 0 or between 1 and 64, "
		 "not -1$" },
	{ .text = "shards x\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: invalid value 'x' for 'shards': expected a "
		 "decimal integer$" },
	{ .text = "shards 4x\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: invalid value '4x' for 'shards'" },
	{ .text = "shards\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: missing value for 'shards'$" },
	{ .text = "shards 4 2\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: unexpected extra argument '2' for 'shards'$" },
	{ .text = "max_topic_length 1\n",
	  .ints = { { "max_topic_length", 1 } } },
	{ .text = "max_topic_length 0\n",
	  .rc = -EINVAL,
	  .err = "'max_topic_length' must be between 1 and 65535, not 0" },
	{ .text = "max_topic_length 65536\n",
	  .rc = -EINVAL,
	  .err = "not 65536" },
	{ .text = "max_topic_levels 8\n",
	  .ints = { { "max_topic_levels", 8 } } },
	{ .text = "max_topic_levels 0\n",
	  .rc = -EINVAL,
	  .err = "'max_topic_levels' must be between 1 and 65535, not 0" },
	{ .text = "max_client_id_length 23\n",
	  .ints = { { "max_client_id_length", 23 } } },
	{ .text = "max_client_id_length 22\n",
	  .rc = -EINVAL,
	  .err = "'max_client_id_length' must be between 23 and 65535, not "
		 "22" },

	/* ---- strings */
	{ .text = "password_file /etc/cicada/passwd\nacl_file "
		  "/etc/cicada/acl\n",
	  .ints = { { "listener_count", 1 } },
	  .strs = { { "password_file", "/etc/cicada/passwd" },
		    { "acl_file", "/etc/cicada/acl" },
		    { "l0.password_file", "/etc/cicada/passwd" } } },
	{ .text = "acl_file /etc/my acl file  \n",
	  .ints = { { "shards", 0 } },
	  .strs = { { "acl_file", "/etc/my acl file" } } },
	{ .text = "password_file\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: missing value for 'password_file'" },
	{ .text = "persistence_file data.db\npersistence_location "
		  "/var/lib/cicada\n",
	  .ints = { { "persistence", 1 } },
	  .strs = { { "persistence_path", "/var/lib/cicada/data.db" } } },
	{ .text = "persistence_location /var/lib/cicada/\n",
	  .ints = { { "persistence", 1 } },
	  .strs = { { "persistence_path", "/var/lib/cicada/cicada.db" } } },
	{ .text = "persistence_location /var/lib\npersistence_file /srv/x.db\n",
	  .ints = { { "persistence", 1 } },
	  .strs = { { "persistence_path", "/srv/x.db" },
		    { "persistence_location", "/var/lib" } } },
	{ .text = "persistence_location\n",
	  .rc = -EINVAL,
	  .err = "missing value for 'persistence_location'" },
	{ .text = "pid_file /run/mosquitto/mosquitto.pid\n",
	  .strs = { { "pid_file", "/run/mosquitto/mosquitto.pid" } } },
	{ .text = "pid_file\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: missing value for 'pid_file'" },

	/* ---- keywords */
	{ .text = "durability batch\n",
	  .ints = { { "durability", CONFIG_DURABILITY_BATCH } } },
	{ .text = "durability batch\ndurability strict\n",
	  .ints = { { "durability", CONFIG_DURABILITY_STRICT } } },
	{ .text = "durability fast\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: invalid value 'fast' for 'durability': "
		 "expected "
		 "strict or batch" },
	{ .text = "durability\n",
	  .rc = -EINVAL,
	  .err = "missing value for 'durability'" },
	{ .text = "log_dest stdout\n",
	  .ints = { { "log_dest", CONFIG_LOG_DEST_STDOUT } } },
	{ .text = "log_dest stdout\nlog_dest syslog\nlog_dest stdout\n",
	  .ints = { { "log_dest",
		      CONFIG_LOG_DEST_STDOUT | CONFIG_LOG_DEST_SYSLOG } } },
	{ .text = "log_dest file /var/log/cicada log.txt\nlog_dest stderr\n",
	  .ints = { { "log_dest",
		      CONFIG_LOG_DEST_FILE | CONFIG_LOG_DEST_STDERR } },
	  .strs = { { "log_file", "/var/log/cicada log.txt" } } },
	{ .text = "log_dest stderr\nlog_dest none\n",
	  .ints = { { "log_dest", 0 } },
	  .strs = { { "log_file", NULL } } },
	{ .text = "log_dest file\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: missing path for 'log_dest file'" },
	{ .text = "log_dest file /a\nlog_dest file /b\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:2: only one 'log_dest file' is supported" },
	{ .text = "log_dest topic\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: log_dest 'topic' is not supported yet" },
	{ .text = "log_dest dlt\n",
	  .rc = -EINVAL,
	  .err = "invalid value 'dlt' for 'log_dest': expected stderr, stdout, "
		 "file, syslog or none" },
	{ .text = "log_dest stderr now\n",
	  .rc = -EINVAL,
	  .err = "unexpected extra argument 'now' for 'log_dest'" },
	{ .text = "log_dest\n",
	  .rc = -EINVAL,
	  .err = "missing value for 'log_dest'" },
	{ .text = "log_type debug\n",
	  .ints = { { "log_type", CONFIG_LOG_DEBUG } } },
	{ .text = "log_type error\nlog_type debug\nlog_type subscribe\n",
	  .ints = { { "log_type", CONFIG_LOG_ERROR | CONFIG_LOG_DEBUG |
					  CONFIG_LOG_SUBSCRIBE } } },
	{ .text = "log_type all\n",
	  .ints = { { "log_type", CONFIG_LOG_ALL } } },
	{ .text = "log_type all\nlog_type none\n",
	  .ints = { { "log_type", 0 } } },
	{ .text = "log_type verbose\n",
	  .rc = -EINVAL,
	  .err = "invalid value 'verbose' for 'log_type': expected error, "
		 "warning" },
	{ .text = "log_type error warning\n",
	  .rc = -EINVAL,
	  .err = "unexpected extra argument 'warning' for 'log_type'" },

	/* ---- max_qos */
	{ .text = "max_qos 1\n", .ints = { { "max_qos", 1 } } },
	{ .text = "max_qos 3\n", .rc = -EINVAL,
	  .err = "cicada.conf:1: " },

	/* ---- response information */
	{ .text = "response_information replies/ for me\n",
	  .strs = { { "response_information", "replies/ for me" } } },
	{ .text = "response_information\n",
	  .strs = { { "response_information", "" } } },
	{ .text = "\nresponse_information a\x01b\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:2: 'response_information' must be UTF-8" },
	/* Global wherever it appears, as mosquitto's general options. */
	{ .text = "listener 1883\nresponse_information r/\n",
	  .strs = { { "response_information", "r/" } } },

	/* ---- server redirection */
	{ .text = "server_reference mqtt2.example.com:1883\n",
	  .ints = { { "server_moved", 0 }, { "l0.server_moved", 0 } },
	  .strs = { { "server_reference", "mqtt2.example.com:1883" },
		    { "l0.server_reference", "mqtt2.example.com:1883" } } },
	/* A space-separated list, as section 4.11 of MQTT 5.0 has it. */
	{ .text = "server_reference  a.example:1883 [::1]:1884  \n"
		  "server_moved true\n",
	  .ints = { { "server_moved", 1 }, { "l0.server_moved", 1 } },
	  .strs = { { "server_reference", "a.example:1883 [::1]:1884" } } },
	{ .text = "server_reference s\xC3\xA9rveur.example\n",
	  .strs = { { "server_reference", "s\xC3\xA9rveur.example" } } },
	/* In a block: that listener's; the others take the general one. */
	{ .text = "server_reference g:1883\nlistener 1883\n"
		  "server_reference l:1883\nserver_moved true\n"
		  "listener 1884\nlistener 1885\nserver_reference\n",
	  .ints = { { "l0.server_moved", 1 },
		    { "l1.server_moved", 0 },
		    { "l2.server_moved", 0 },
		    { "server_moved", 0 } },
	  .strs = { { "l0.server_reference", "l:1883" },
		    { "l1.server_reference", "g:1883" },
		    { "l2.server_reference", "" } } },
	{ .text = "server_moved true\nlistener 1883\nlistener 1884\n"
		  "server_moved false\n",
	  .ints = { { "l0.server_moved", 1 }, { "l1.server_moved", 0 } },
	  .strs = { { "server_reference", NULL },
		    { "l0.server_reference", NULL } } },
	/* Not per_listener_settings: a block's value is its own anyway. */
	{ .text = "listener 1883\nserver_reference x:1\n",
	  .strs = { { "server_reference", NULL },
		    { "l0.server_reference", "x:1" } } },
	{ .text = "server_moved yes\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: invalid value 'yes' for 'server_moved': "
		 "expected true or false$" },
	{ .text = "listener 1883\n\nserver_reference a\tb\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:3: 'server_reference' must be UTF-8 without "
		 "control characters$" },
	{ .text = "server_reference \xC3\x28\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: 'server_reference' must be UTF-8" },
	{ .text = "server_referense x\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: unknown option 'server_referense' (did you "
		 "mean 'server_reference'?)$" },
	{ .text = "server_move true\n",
	  .rc = -EINVAL,
	  .err = "unknown option 'server_move' (did you mean "
		 "'server_moved'?)$" },

	/* ---- listeners */
	{ .text = "listener 1883\n",
	  .ints = { { "listener_count", 1 },
		    { "default_listener", 0 },
		    { "allow_anonymous", 0 },
		    { "l0.allow_anonymous", 0 } },
	  .strs = { { "l0.bind_address", NULL } } },
	{ .text = "\nlistener 8883 127.0.0.1\n",
	  .ints = { { "l0.port", 8883 },
		    { "l0.line", 2 },
		    { "l0.socket_domain", 0 },
		    { "l0.max_connections", -1 } },
	  .strs = { { "l0.bind_address", "127.0.0.1" } } },
	{ .text = "listener 1883\nallow_anonymous true\n",
	  .ints = { { "l0.allow_anonymous", 1 }, { "allow_anonymous", 1 } } },
	{ .text = "listener\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: missing port for 'listener'" },
	{ .text = "listener 0\n",
	  .rc = -EINVAL,
	  .err = "'listener port' must be between 1 and 65535, not 0" },
	{ .text = "listener 65536\n", .rc = -EINVAL, .err = "not 65536" },
	{ .text = "listener mqtt\n",
	  .rc = -EINVAL,
	  .err = "invalid value 'mqtt' for 'listener port'" },
	{ .text = "listener 1883 ::1 extra\n",
	  .rc = -EINVAL,
	  .err = "unexpected extra argument 'extra' for 'listener'" },
	{ .text = "max_connections 100\nlistener 1883\nmax_connections 10\n"
		  "listener 1884\npersistence false\n",
	  .ints = { { "max_connections", 100 },
		    { "l0.max_connections", 10 },
		    { "l1.max_connections", -1 },
		    { "persistence", 0 } } },
	{ .text = "listener 1883\nprotocol mqtt\nsocket_domain ipv6\n",
	  .ints = { { "l0.protocol", CONFIG_PROTOCOL_MQTT },
		    { "l0.socket_domain", 6 } } },
	{ .text = "listener 1883\nsocket_domain ipv4\n",
	  .ints = { { "l0.socket_domain", 4 } } },
	{ .text = "listener 1883\nsocket_domain ipv5\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:2: invalid value 'ipv5' for 'socket_domain': "
		 "expected ipv4 or ipv6" },
	{ .text = "listener 8080\n\nprotocol websockets\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:3: protocol 'websockets' is not supported yet" },
	{ .text = "listener 8080\nprotocol http\n",
	  .rc = -EINVAL,
	  .err = "invalid value 'http' for 'protocol': expected mqtt$" },
	{ .text = "# top\nprotocol mqtt\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:2: 'protocol' must come after a 'listener' "
		 "line" },
	{ .text = "socket_domain ipv4\nlistener 1883\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:1: 'socket_domain' must come after a 'listener' "
		 "line" },
	{ .text = "listener 1883\n# again\nlistener 1883\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:3: duplicate listener port 1883 (first defined "
		 "at " },
	{ .text = "listener 1883 127.0.0.1\nlistener 1883 127.0.0.1\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:2: duplicate listener 127.0.0.1 port 1883" },
	{ .text = "listener 1883\nsocket_domain ipv4\nlistener 1883\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:3: duplicate listener port 1883" },
	{ .text = "listener 1883 127.0.0.1\nlistener 1883 ::1\nlistener 1883\n"
		  "socket_domain ipv4\nlistener 1883\nsocket_domain ipv6\n",
	  .ints = { { "listener_count", 4 },
		    { "l2.socket_domain", 4 },
		    { "l3.socket_domain", 6 } } },
	{ .text = "per_listener_settings true\nallow_anonymous true\n"
		  "password_file /global\nlistener 1883\nlistener 1884\n"
		  "allow_anonymous true\npassword_file /p\n",
	  .ints = { { "allow_anonymous", 1 },
		    { "l0.allow_anonymous", 0 },
		    { "l1.allow_anonymous", 1 } },
	  .strs = { { "l0.password_file", NULL },
		    { "l1.password_file", "/p" },
		    { "password_file", "/global" } } },
	{ .text = "per_listener_settings true\nallow_anonymous false\n"
		  "acl_file /acl\n",
	  .ints = { { "default_listener", 1 }, { "l0.allow_anonymous", 0 } },
	  .strs = { { "l0.acl_file", "/acl" } } },
	{ .text = "listener 1883\nallow_anonymous true\nacl_file /a\nlistener "
		  "1884\n",
	  .ints = { { "l0.allow_anonymous", 1 }, { "l1.allow_anonymous", 1 } },
	  .strs = { { "l0.acl_file", "/a" }, { "l1.acl_file", "/a" } } },
	{ .text = "listener 1883\nper_listener_settings true\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:2: 'per_listener_settings' must come before the "
		 "first 'listener'" },

	/* ---- include_dir */
	{ .text = "include_dir @DIR@/conf.d\n",
	  .ints = { { "listener_count", 3 },
		    { "l0.port", 1000 },
		    { "l1.port", 1001 },
		    { "l2.port", 1002 } },
	  .strs = { { "l1.source", "@DIR@/conf.d/a.conf" } },
	  .inc = { { "b.conf", "listener 1002\n" },
		   { "a.conf", "listener 1001\n" },
		   { "Z.conf", "listener 1000\n" },
		   { "notes.txt", "this is not a config\n" } } },
	{ .text = "include_dir @DIR@/conf.d/\nmax_connections 3\n",
	  .ints = { { "max_connections", 3 }, { "max_keepalive", 20 } },
	  .strs = { { "persistence_file", "b.db" } },
	  .inc = { { "b.conf", "max_connections 2\npersistence_file b.db\n" },
		   { "a.conf", "max_connections 1\nmax_keepalive 20\n"
			       "persistence_file a.db\n" } } },
	{ .text = "# main\ninclude_dir @DIR@/conf.d\n",
	  .rc = -EINVAL,
	  .err = "conf.d/bad.conf:3: unknown option 'frobnicate'",
	  .ints = { { NULL, 0 } },
	  .strs = { { NULL, NULL } },
	  .inc = { { "bad.conf", "# bad\n\nfrobnicate 1\n" },
		   { "a.conf", "max_keepalive 1\n" } } },
	{ .text = "include_dir @DIR@/nonexistent\n",
	  .rc = -ENOENT,
	  .err = "cicada.conf:1: include_dir: cannot open '" },
	{ .text = "include_dir\n",
	  .rc = -EINVAL,
	  .err = "missing value for 'include_dir'" },
	{ .text = "\ninclude_dir @DIR@/conf.d\n",
	  .rc = -EINVAL,
	  .err = "conf.d/a.conf:1: 'include_dir' is only allowed in the main "
		 "configuration file",
	  .ints = { { NULL, 0 } },
	  .strs = { { NULL, NULL } },
	  .inc = { { "a.conf", "include_dir @DIR@/conf.d\n" } } },
	/* A listener block does not run into an included file... */
	{ .text = "listener 1883\ninclude_dir @DIR@/conf.d\n",
	  .rc = -EINVAL,
	  .err = "conf.d/a.conf:2: 'socket_domain' must come after a "
		 "'listener' line",
	  .ints = { { NULL, 0 } },
	  .strs = { { NULL, NULL } },
	  .inc = { { "a.conf", "persistence false\nsocket_domain ipv4\n" } } },
	/* ... nor out of one; the includer's block resumes after it. */
	{ .text = "listener 1883\ninclude_dir @DIR@/conf.d\nmax_connections "
		  "5\n",
	  .ints = { { "l0.max_connections", 5 },
		    { "l1.max_connections", 7 },
		    { "max_connections", -1 } },
	  .strs = { { NULL, NULL } },
	  .inc = { { "a.conf", "listener 1884\nmax_connections 7\n" } } },
	{ .text = "include_dir @DIR@/conf.d\nsocket_domain ipv4\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:2: 'socket_domain' must come after a 'listener' "
		 "line",
	  .ints = { { NULL, 0 } },
	  .strs = { { NULL, NULL } },
	  .inc = { { "a.conf", "listener 1884\n" } } },
	{ .text = "listener 1883\ninclude_dir @DIR@/conf.d\n",
	  .rc = -EINVAL,
	  .err = "conf.d/a.conf:2: duplicate listener port 1883 (first defined "
		 "at "
		 "@DIR@/cicada.conf:1)$",
	  .ints = { { NULL, 0 } },
	  .strs = { { NULL, NULL } },
	  .inc = { { "a.conf", "\nlistener 1883\n" } } },
	{ .text = "include_dir @DIR@/conf.d\n\n\nfoo 1\n",
	  .rc = -EINVAL,
	  .err = "cicada.conf:4: unknown option 'foo'",
	  .ints = { { NULL, 0 } },
	  .strs = { { NULL, NULL } },
	  .inc = { { "a.conf", "# one\n# two\n# three\n# four\n# five\n" } } },
};

static void check_fields(const struct config *c, const struct row *r,
			 int i)
{
	for (size_t k = 0; k < NELEM(r->ints) && r->ints[k].field; k++) {
		const struct exp_int *e = &r->ints[k];
		long long got = get_int(c, e->field);

		ck_assert_msg(got == e->value, "row %d: %s = %lld, want %lld",
			      i, e->field, got, e->value);
	}
	for (size_t k = 0; k < NELEM(r->strs) && r->strs[k].field; k++) {
		const struct exp_str *e = &r->strs[k];
		const char *got = get_str(c, e->field);
		char *want;

		if (!e->value) {
			ck_assert_msg(got == NULL, "row %d: %s = '%s'", i,
				      e->field, got);
			continue;
		}
		ck_assert_msg(got != NULL, "row %d: %s is NULL", i, e->field);
		want = expand(e->value);
		ck_assert_msg(strcmp(got, want) == 0,
			      "row %d: %s = '%s', want '%s'", i, e->field, got,
			      want);
		free(want);
	}
}

START_TEST(test_row)
{
	const struct row *r = &rows[_i];
	char main_path[512], err[512];
	struct config c;
	int rc;

	make_dir();
	write_row(r, main_path, sizeof(main_path));
	config_init(&c);
	memset(err, 'x', sizeof(err));
	rc = config_load(&c, main_path, err, sizeof(err));
	ck_assert_msg(rc == r->rc, "row %d: rc %d, want %d (%s)", _i, rc,
		      r->rc, err);
	if (r->err) {
		char *want = expand(r->err);

		ck_assert_msg(strncmp(err, dir, strlen(dir)) == 0,
			      "row %d: message '%s' does not start with the "
			      "file", _i, err);
		check_err(err, want);
		free(want);
	} else {
		ck_assert_str_eq(err, "");
	}
	if (rc == 0) {
		ck_assert_int_eq(config_finish(&c), 0);
		check_fields(&c, r, _i);
	}
	config_free(&c);
	remove_dir();
}
END_TEST

/* ------------------------------------------------------- one-offs */

START_TEST(test_embedded_defaults)
{
	struct config c;
	char path[64];

	config_init(&c);
	ck_assert_uint_eq(c.listener_count, 0);
	ck_assert_int_eq(c.allow_anonymous, -1);
	ck_assert_int_eq(config_finish(&c), 0);

	ck_assert_uint_eq(c.listener_count, 1);
	ck_assert(c.default_listener);
	ck_assert_uint_eq(c.listeners[0].port, CONFIG_DEFAULT_PORT);
	ck_assert_ptr_null(c.listeners[0].bind_address);
	ck_assert_int_eq(c.listeners[0].socket_domain, 0);
	ck_assert_int_eq(c.listeners[0].protocol, CONFIG_PROTOCOL_MQTT);
	ck_assert_int_eq(c.listeners[0].max_connections, -1);
	ck_assert_int_eq(c.listeners[0].allow_anonymous, 1);
	ck_assert_ptr_null(c.listeners[0].password_file);
	ck_assert_ptr_null(c.listeners[0].acl_file);
	ck_assert_ptr_null(c.listeners[0].source);
	ck_assert_int_eq(c.allow_anonymous, 1);
	ck_assert(!c.per_listener_settings);

	ck_assert_int_eq(c.max_connections, -1);
	ck_assert_uint_eq(c.max_packet_size, 0);
	ck_assert_uint_eq(c.max_inflight_messages, 20);
	ck_assert_uint_eq(c.max_queued_messages, 1000);
	ck_assert_uint_eq(c.max_queued_bytes, 0);
	ck_assert_uint_eq(c.max_keepalive, 65535);
	ck_assert_uint_eq(c.max_qos, 2);
	ck_assert_uint_eq(c.connect_timeout, 10);
	ck_assert_uint_eq(c.max_topic_length, 65535);
	ck_assert_uint_eq(c.max_topic_levels, 128);
	ck_assert_uint_eq(c.max_client_id_length, 65535);
	ck_assert(c.retain_available);
	ck_assert(!c.queue_qos0_messages);
	ck_assert_uint_eq(c.sys_interval, 10);
	ck_assert_uint_eq(c.log_dest, CONFIG_LOG_DEST_STDERR);
	ck_assert_ptr_null(c.log_file);
	ck_assert_uint_eq(c.log_type, CONFIG_LOG_ERROR | CONFIG_LOG_WARNING |
					      CONFIG_LOG_NOTICE |
					      CONFIG_LOG_INFO);
	ck_assert(c.log_timestamp);
	ck_assert(c.persistence);
	ck_assert_str_eq(c.persistence_file, "cicada.db");
	ck_assert_ptr_null(c.persistence_location);
	ck_assert_int_eq(config_persistence_path(&c, path, sizeof(path)), 0);
	ck_assert_str_eq(path, "cicada.db");
	ck_assert_uint_eq(c.autosave_interval, 1);
	ck_assert_int_eq(c.durability, CONFIG_DURABILITY_STRICT);
	ck_assert_uint_eq(c.shards, 0);
	ck_assert_ptr_null(c.password_file);
	ck_assert_ptr_null(c.acl_file);
	ck_assert_ptr_null(c.server_reference);
	ck_assert_int_eq(c.server_moved, 0);
	ck_assert_ptr_null(c.listeners[0].server_reference);
	ck_assert_int_eq(c.listeners[0].server_moved, 0);

	/* A second call changes nothing. */
	ck_assert_int_eq(config_finish(&c), 0);
	ck_assert_uint_eq(c.listener_count, 1);
	ck_assert_int_eq(c.listeners[0].allow_anonymous, 1);
	config_free(&c);
	/* config_free() leaves a fresh config behind; freeing again is fine. */
	ck_assert_uint_eq(c.listener_count, 0);
	ck_assert_ptr_null(c.listeners);
	config_free(&c);
}
END_TEST

START_TEST(test_missing_file)
{
	char path[512], err[256];
	struct config c;

	make_dir();
	config_init(&c);
	snprintf(path, sizeof(path), "%s/nonexistent.conf", dir);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -ENOENT);
	check_err(err, "nonexistent.conf: cannot open: No such file or "
		       "directory$");
	config_free(&c);
	remove_dir();
}
END_TEST

START_TEST(test_unreadable_file)
{
	char path[512], err[256];
	struct config c;

	if (geteuid() == 0)
		return;		/* root reads anything */
	make_dir();
	snprintf(path, sizeof(path), "%s/cicada.conf", dir);
	write_file(path, "persistence true\n", strlen("persistence true\n"));
	ck_assert_int_eq(chmod(path, 0), 0);
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -EACCES);
	check_err(err, "cicada.conf: cannot open: Permission denied$");
	config_free(&c);
	remove_dir();
}
END_TEST

/* A directory opens on Linux; reading it fails, and says so. */
START_TEST(test_main_is_directory)
{
	struct config c;
	char err[512];

	make_dir();
	config_init(&c);
	ck_assert_int_eq(config_load(&c, dir, err, sizeof(err)), -EISDIR);
	check_err(err, ":1: read error: Is a directory$");
	config_free(&c);
	remove_dir();
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "persistence true\nmax_conn\0ections 5\n";
	char path[512], err[256];
	struct config c;

	make_dir();
	snprintf(path, sizeof(path), "%s/cicada.conf", dir);
	write_file(path, text, sizeof(text) - 1);
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -EINVAL);
	check_err(err, "cicada.conf:2: NUL byte in line$");
	config_free(&c);
	remove_dir();
}
END_TEST

START_TEST(test_include_not_regular)
{
	char path[512], err[512];
	struct config c;

	make_dir();
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/conf.d/sub.conf", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/cicada.conf", dir);
	{
		char text[600];
		int n = snprintf(text, sizeof(text), "include_dir %s/conf.d\n",
				 dir);

		write_file(path, text, (size_t)n);
	}
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -EINVAL);
	check_err(err, "cicada.conf:1: include_dir: '");
	check_err(err, "conf.d/sub.conf' is not a regular file$");
	config_free(&c);
	remove_dir();
}
END_TEST

START_TEST(test_small_error_buffer)
{
	char path[512], err[16];
	struct config c;

	make_dir();
	snprintf(path, sizeof(path), "%s/cicada.conf", dir);
	write_file(path, "bogus 1\n", strlen("bogus 1\n"));
	config_init(&c);
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -EINVAL);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
	ck_assert_int_eq(strncmp(err, dir, sizeof(err) - 1), 0);
	/* No buffer at all is allowed too. */
	ck_assert_int_eq(config_load(&c, path, NULL, 0), -EINVAL);
	config_free(&c);
	remove_dir();
}
END_TEST

/* A second file loads on top of the first; listeners stay unique. */
START_TEST(test_layered_load)
{
	char a[512], b[512], err[512];
	struct config c;

	make_dir();
	snprintf(a, sizeof(a), "%s/a.conf", dir);
	snprintf(b, sizeof(b), "%s/b.conf", dir);
	static const char text_a[] =
		"max_connections 5\nlog_type debug\nlistener 1883\n";
	static const char text_b[] = "log_type error\nlistener 1883\n";

	write_file(a, text_a, strlen(text_a));
	write_file(b, text_b, strlen(text_b));
	config_init(&c);
	ck_assert_int_eq(config_load(&c, a, err, sizeof(err)), 0);
	ck_assert_int_eq(config_load(&c, b, err, sizeof(err)), -EINVAL);
	check_err(err, "b.conf:2: duplicate listener port 1883 (first "
		       "defined at ");
	check_err(err, "a.conf:3)$");
	ck_assert_int_eq(c.max_connections, 5);
	/* The second file's first log_type replaced the first file's. */
	ck_assert_uint_eq(c.log_type, CONFIG_LOG_ERROR);
	config_free(&c);
	remove_dir();
}
END_TEST

/* getline() has no line length limit; neither do we. */
START_TEST(test_long_line)
{
	size_t len = 100000;
	char path[512], err[256];
	char *text = malloc(len + 32);
	struct config c;
	int n;

	ck_assert_ptr_nonnull(text);
	make_dir();
	snprintf(path, sizeof(path), "%s/cicada.conf", dir);
	n = sprintf(text, "password_file /");
	memset(text + n, 'p', len);
	text[(size_t)n + len] = '\n';
	write_file(path, text, (size_t)n + len + 1);
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(c.password_file), len + 1);
	config_free(&c);
	free(text);
	remove_dir();
}
END_TEST

/* An MQTT string holds 65535 bytes: the Server Reference must fit. */
START_TEST(test_server_reference_too_long)
{
	size_t max = 65535;
	char path[512], err[256];
	char *text = malloc(max + 64);
	struct config c;
	int n;

	ck_assert_ptr_nonnull(text);
	make_dir();
	snprintf(path, sizeof(path), "%s/cicada.conf", dir);
	n = sprintf(text, "server_reference ");
	memset(text + n, 'r', max);
	text[(size_t)n + max] = '\n';
	write_file(path, text, (size_t)n + max + 1);
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(c.server_reference), max);
	config_free(&c);

	n = sprintf(text, "\nserver_reference r");
	memset(text + n, 'r', max);
	text[(size_t)n + max] = '\n';
	write_file(path, text, (size_t)n + max + 1);
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -EINVAL);
	check_err(err, "cicada.conf:2: 'server_reference' is longer than "
		  "65535 bytes$");
	config_free(&c);
	free(text);
	remove_dir();
}
END_TEST

START_TEST(test_persistence_path_too_long)
{
	struct config c;
	char buf[16];

	config_init(&c);
	c.persistence_location = "/var/lib";
	ck_assert_int_eq(config_persistence_path(&c, buf, sizeof(buf)),
			 -ENAMETOOLONG);
	/* An empty location is the current directory. */
	c.persistence_location = "";
	ck_assert_int_eq(config_persistence_path(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "cicada.db");
	ck_assert_int_eq(config_persistence_path(&c, buf, 9), -ENAMETOOLONG);
	config_free(&c);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);

	tcase_add_loop_test(tc, test_row, 0, (int)NELEM(rows));
	tcase_add_test(tc, test_embedded_defaults);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_unreadable_file);
	tcase_add_test(tc, test_main_is_directory);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_include_not_regular);
	tcase_add_test(tc, test_small_error_buffer);
	tcase_add_test(tc, test_layered_load);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_server_reference_too_long);
	tcase_add_test(tc, test_persistence_path_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
