/*
 * Reads cicada.conf(5) into a struct config: mosquitto's line format, one
 * table entry per option (its name, where it may appear, how its value is
 * parsed, which field it sets), and an error naming the file and line for
 * anything not understood.
 *
 * The parser stops at the first error: one precise message is more use to
 * an operator than a cascade, and a half-understood config must never run.
 */
#include "conf/config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol/mqtt.h"
#include "protocol/topic.h"

static_assert(CONFIG_MAX_PACKET_SIZE == 1u + 4u + MQTT_VARINT_MAX,
	      "largest packet: fixed header, 4 length bytes, varint max");
static_assert(TOPIC_MAX_LEN == UINT16_MAX, "MQTT strings are 16-bit");

/* Defaults that are not plain zero; cicada.conf.example repeats them. */
enum {
	DEFAULT_MAX_INFLIGHT = 20,
	DEFAULT_MAX_QUEUED = 1000,
	DEFAULT_MAX_KEEPALIVE = 65535,
	DEFAULT_CONNECT_TIMEOUT = 10,
	DEFAULT_MAX_TOPIC_LENGTH = 65535,
	/*
	 * Each level is one node visited per publish in the subscription
	 * tree; 128 is far beyond real hierarchies (AWS IoT allows 8,
	 * mosquitto hard-codes 200) yet bounds the work a client can make.
	 */
	DEFAULT_MAX_TOPIC_LEVELS = 128,
	DEFAULT_MAX_CLIENT_ID_LENGTH = 65535,
	DEFAULT_SYS_INTERVAL = 10,
	DEFAULT_AUTOSAVE_INTERVAL = 1,
	/* [MQTT-3.1.3-5]: a server must accept client ids of 1..23 bytes. */
	MIN_CLIENT_ID_LENGTH = 23,
	/* mosquitto refuses less: a CONNECT alone may need that much. */
	MIN_PACKET_SIZE = 20,
	/* shards: 0 (online CPUs, resolved by the broker) or 1..MAX_SHARDS. */
	MAX_SHARDS = 64,
	MAX_SECONDS = 86400,
};

#define DEFAULT_PERSISTENCE_FILE "cicada.db"

/* Suggest a known option for an unknown one at most this many edits away. */
#define SUGGEST_DISTANCE 2
#define SUGGEST_MAX_LEN 64

struct config_str {
	struct config_str *next;
	char s[];
};

struct parser {
	struct config *c;
	const char *file;	/* the file being read, owned by c */
	unsigned line;
	unsigned depth;		/* files open: 1 in the main file */
	bool in_listener;	/* inside a listener block of this file */
	size_t cur;		/* that listener's index */
	bool log_dest_set;	/* first log_dest replaces the default */
	bool log_type_set;	/* first log_type replaces the default */
	char *err;
	size_t errlen;
};

/* How a value is stored in its field. */
enum field_type {
	FT_BOOL,
	FT_TRIBOOL,		/* int: -1 unset, 0, 1 */
	FT_INT,
	FT_UNSIGNED,
	FT_U16,
	FT_U32,
	FT_U64,
	FT_STRING,
	FT_PROTOCOL,
	FT_DURABILITY,
};

/* Where an option may appear and what it sets there. */
enum option_scope {
	SC_GLOBAL = 1 << 0,	/* sets the struct config field */
	SC_LISTENER = 1 << 1,	/* in a listener block: that listener's */
	SC_AUTH = 1 << 2,	/* ... only with per_listener_settings true */
};

struct keyword {
	const char *word;
	long long value;
	bool reserved;		/* known, refused: "not supported yet" */
};

struct option_desc;
typedef int (*option_parse_fn)(struct parser *p, const struct option_desc *o,
			       char *args);

struct option_desc {
	const char *name;
	option_parse_fn parse;
	unsigned scope;
	size_t goff;		/* field in struct config */
	size_t loff;		/* field in struct config_listener */
	enum field_type type;
	long long min, max;	/* integers: the accepted range ... */
	bool has_special;	/* ... plus this one value outside it */
	long long special;
	const struct keyword *words;	/* keyword options */
};

static int perr(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->errlen == 0)
		return -EINVAL;
	n = snprintf(p->err, p->errlen, "%s:%u: ", p->file, p->line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int perr_nomem(struct parser *p)
{
	perr(p, "out of memory");
	return -ENOMEM;
}

static const char *config_strdup(struct config *c, const char *s)
{
	size_t len = strlen(s);
	struct config_str *str = malloc(sizeof(*str) + len + 1);

	if (!str)
		return NULL;
	memcpy(str->s, s, len + 1);
	str->next = c->strings;
	c->strings = str;
	return str->s;
}

void config_init(struct config *c)
{
	*c = (struct config){
		.allow_anonymous = -1,
		.max_connections = -1,
		.max_inflight_messages = DEFAULT_MAX_INFLIGHT,
		.max_queued_messages = DEFAULT_MAX_QUEUED,
		.max_keepalive = DEFAULT_MAX_KEEPALIVE,
		.connect_timeout = DEFAULT_CONNECT_TIMEOUT,
		.max_topic_length = DEFAULT_MAX_TOPIC_LENGTH,
		.max_topic_levels = DEFAULT_MAX_TOPIC_LEVELS,
		.max_client_id_length = DEFAULT_MAX_CLIENT_ID_LENGTH,
		.retain_available = true,
		.max_qos = 2,
		.sys_interval = DEFAULT_SYS_INTERVAL,
		.log_dest = CONFIG_LOG_DEST_STDERR,
		.log_type = CONFIG_LOG_DEFAULT,
		.log_timestamp = true,
		.persistence = true,
		/* A literal: the string list owns only what the file set. */
		.persistence_file = DEFAULT_PERSISTENCE_FILE,
		.autosave_interval = DEFAULT_AUTOSAVE_INTERVAL,
		.durability = CONFIG_DURABILITY_STRICT,
	};
}

void config_free(struct config *c)
{
	struct config_str *s = c->strings;

	while (s) {
		struct config_str *next = s->next;

		free(s);
		s = next;
	}
	free(c->listeners);
	config_init(c);
}

/* ------------------------------------------------------------ values */

/*
 * Decimal only, optional '-', nothing else: "10s", "0x10", " 1" and "+1"
 * are refused rather than half-read as atoi() would.  Returns 0, -EINVAL
 * for a malformed number, -ERANGE beyond long long.
 */
static int parse_ll(const char *s, long long *out)
{
	unsigned long long v = 0;
	bool neg = *s == '-';

	if (neg)
		s++;
	/* All digits first, so "99999999999999999999x" is junk, not range. */
	if (*s == '\0' || s[strspn(s, "0123456789")] != '\0')
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > ((unsigned long long)LLONG_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

static void *field_at(void *base, size_t off)
{
	return (char *)base + off;
}

static void field_store(void *f, enum field_type t, long long v)
{
	switch (t) {
	case FT_BOOL:
		*(bool *)f = v != 0;
		break;
	case FT_TRIBOOL:
	case FT_INT:
		*(int *)f = (int)v;
		break;
	case FT_UNSIGNED:
		*(unsigned *)f = (unsigned)v;
		break;
	case FT_U16:
		*(uint16_t *)f = (uint16_t)v;
		break;
	case FT_U32:
		*(uint32_t *)f = (uint32_t)v;
		break;
	case FT_U64:
		*(uint64_t *)f = (uint64_t)v;
		break;
	case FT_PROTOCOL:
		*(enum config_protocol *)f = (enum config_protocol)v;
		break;
	case FT_DURABILITY:
		*(enum config_durability *)f = (enum config_durability)v;
		break;
	case FT_STRING:
		/* Stored by parse_string(); never reached. */
		assert(t != FT_STRING);
		break;
	}
}

/*
 * The field an option sets on this line, or NULL when it may only appear
 * inside a listener block and this line is not in one.
 */
static void *option_field(struct parser *p, const struct option_desc *o)
{
	bool here = (o->scope & SC_LISTENER) ||
		    ((o->scope & SC_AUTH) && p->c->per_listener_settings);

	if (p->in_listener && here)
		return field_at(&p->c->listeners[p->cur], o->loff);
	if (o->scope & SC_GLOBAL)
		return field_at(p->c, o->goff);
	return NULL;
}

static int check_placement(struct parser *p, const struct option_desc *o,
			   void **field)
{
	*field = option_field(p, o);
	if (!*field)
		return perr(p, "'%s' must come after a 'listener' line",
			    o->name);
	return 0;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * Split the next whitespace-separated word off *args: NUL-terminate it and
 * advance *args to the word after.  Returns NULL when none is left.
 */
static char *next_word(char **args)
{
	char *w = *args;
	char *end;

	if (*w == '\0')
		return NULL;
	end = w;
	while (*end && !is_blank(*end))
		end++;
	if (*end) {
		*end++ = '\0';
		while (is_blank(*end))
			end++;
	}
	*args = end;
	return w;
}

static int extra_argument(struct parser *p, const char *name,
			  const char *extra)
{
	if (extra[0] == '#')
		return perr(p, "unexpected '%s' after '%s': comments must be "
			    "on a line of their own", extra, name);
	return perr(p, "unexpected extra argument '%s' for '%s'", extra,
		    name);
}

/* Exactly one word of value. */
static int one_word(struct parser *p, const char *name, char *args,
		    char **word)
{
	*word = next_word(&args);
	if (!*word)
		return perr(p, "missing value for '%s'", name);
	if (*args)
		return extra_argument(p, name, next_word(&args));
	return 0;
}

static int check_range(struct parser *p, const char *name, const char *text,
		       long long min, long long max, bool has_special,
		       long long special, long long *v)
{
	int rc = parse_ll(text, v);

	if (rc == -EINVAL)
		return perr(p, "invalid value '%s' for '%s': expected a "
			    "decimal integer", text, name);
	if (rc == 0 && ((*v >= min && *v <= max) ||
			(has_special && *v == special)))
		return 0;
	if (has_special)
		return perr(p, "'%s' must be %lld or between %lld and %lld, "
			    "not %s", name, special, min, max, text);
	return perr(p, "'%s' must be between %lld and %lld, not %s", name,
		    min, max, text);
}

/* ----------------------------------------------------- option parsers */

static int parse_bool(struct parser *p, const struct option_desc *o,
		      char *args)
{
	void *field;
	char *w;
	int rc;

	rc = check_placement(p, o, &field);
	if (rc)
		return rc;
	rc = one_word(p, o->name, args, &w);
	if (rc)
		return rc;
	/* mosquitto accepts exactly these two words; so do we. */
	if (strcmp(w, "true") == 0)
		field_store(field, o->type, 1);
	else if (strcmp(w, "false") == 0)
		field_store(field, o->type, 0);
	else
		return perr(p, "invalid value '%s' for '%s': expected true "
			    "or false", w, o->name);
	return 0;
}

static int parse_int(struct parser *p, const struct option_desc *o,
		     char *args)
{
	void *field;
	long long v;
	char *w;
	int rc;

	rc = check_placement(p, o, &field);
	if (rc)
		return rc;
	rc = one_word(p, o->name, args, &w);
	if (rc)
		return rc;
	rc = check_range(p, o->name, w, o->min, o->max, o->has_special,
			 o->special, &v);
	if (rc)
		return rc;
	field_store(field, o->type, v);
	return 0;
}

/*
 * A path or other string: the rest of the line, spaces included, as
 * mosquitto reads it.
 */
static int parse_string(struct parser *p, const struct option_desc *o,
			char *args)
{
	const char *s;
	void *field;
	int rc;

	rc = check_placement(p, o, &field);
	if (rc)
		return rc;
	if (*args == '\0')
		return perr(p, "missing value for '%s'", o->name);
	s = config_strdup(p->c, args);
	if (!s)
		return perr_nomem(p);
	*(const char **)field = s;
	return 0;
}

/*
 * An option whose value goes to clients as an MQTT UTF-8 string, so it
 * must be one: the rest of the line, spaces included (server_reference is
 * a space-separated list [MQTT 5.0 section 4.11]).  No value is allowed:
 * it means none (no redirection, no Response Information) in its scope.
 */
static int parse_mqtt_string(struct parser *p, const struct option_desc *o,
			     char *args)
{
	size_t len = strlen(args);
	const char *s;
	void *field;
	int rc;

	rc = check_placement(p, o, &field);
	if (rc)
		return rc;
	if (len > UINT16_MAX)
		return perr(p, "'%s' is longer than %d bytes", o->name,
			    UINT16_MAX);
	if (!mqtt_utf8_is_valid((const uint8_t *)args, len))
		return perr(p, "'%s' must be UTF-8 without control "
			    "characters", o->name);
	s = config_strdup(p->c, args);
	if (!s)
		return perr_nomem(p);
	*(const char **)field = s;
	return 0;
}

/* "a, b or c" for a keyword table, leaving out the reserved words. */
static void keywords_list(const struct keyword *k, char *buf, size_t len)
{
	size_t n = 0, used = 0, i = 0;

	buf[0] = '\0';
	for (const struct keyword *q = k; q->word; q++)
		n += !q->reserved;
	for (; k->word; k++) {
		const char *sep;
		int w;

		if (k->reserved)
			continue;
		sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
		i++;
		w = snprintf(buf + used, len - used, "%s%s", sep, k->word);
		if (w < 0 || (size_t)w >= len - used)
			return;
		used += (size_t)w;
	}
}

static int keyword_find(struct parser *p, const char *name,
			const struct keyword *words, const char *w,
			long long *value)
{
	char expected[128];

	for (const struct keyword *k = words; k->word; k++) {
		if (strcmp(k->word, w) != 0)
			continue;
		if (k->reserved)
			return perr(p, "%s '%s' is not supported yet", name,
				    w);
		*value = k->value;
		return 0;
	}
	keywords_list(words, expected, sizeof(expected));
	return perr(p, "invalid value '%s' for '%s': expected %s", w, name,
		    expected);
}

static int parse_keyword(struct parser *p, const struct option_desc *o,
			 char *args)
{
	void *field;
	long long v;
	char *w;
	int rc;

	rc = check_placement(p, o, &field);
	if (rc)
		return rc;
	rc = one_word(p, o->name, args, &w);
	if (rc)
		return rc;
	rc = keyword_find(p, o->name, o->words, w, &v);
	if (rc)
		return rc;
	field_store(field, o->type, v);
	return 0;
}

/* It changes how later lines are read, so it cannot follow a listener. */
static int parse_per_listener_settings(struct parser *p,
				       const struct option_desc *o,
				       char *args)
{
	if (p->c->listener_count > 0)
		return perr(p, "'%s' must come before the first 'listener'",
			    o->name);
	return parse_bool(p, o, args);
}

static const struct keyword log_dest_words[] = {
	{ "stderr", CONFIG_LOG_DEST_STDERR, false },
	{ "stdout", CONFIG_LOG_DEST_STDOUT, false },
	{ "file", CONFIG_LOG_DEST_FILE, false },
	{ "syslog", CONFIG_LOG_DEST_SYSLOG, false },
	{ "none", 0, false },
	{ "topic", 0, true },
	{ NULL, 0, false },
};

/* log_dest stderr | stdout | file PATH | syslog | none; may repeat. */
static int parse_log_dest(struct parser *p, const struct option_desc *o,
			  char *args)
{
	struct config *c = p->c;
	long long dest;
	char *w;
	int rc;

	w = next_word(&args);
	if (!w)
		return perr(p, "missing value for '%s'", o->name);
	rc = keyword_find(p, o->name, log_dest_words, w, &dest);
	if (rc)
		return rc;
	if (!p->log_dest_set) {
		c->log_dest = 0;
		c->log_file = NULL;
		p->log_dest_set = true;
	}
	if (dest == CONFIG_LOG_DEST_FILE) {
		if (*args == '\0')
			return perr(p, "missing path for '%s file'", o->name);
		if (c->log_dest & CONFIG_LOG_DEST_FILE)
			return perr(p, "only one '%s file' is supported",
				    o->name);
		c->log_file = config_strdup(c, args);
		if (!c->log_file)
			return perr_nomem(p);
		c->log_dest |= CONFIG_LOG_DEST_FILE;
		return 0;
	}
	if (*args)
		return extra_argument(p, o->name, next_word(&args));
	if (dest == 0) {
		c->log_dest = 0;
		c->log_file = NULL;
	} else {
		c->log_dest |= (unsigned)dest;
	}
	return 0;
}

static const struct keyword log_type_words[] = {
	{ "error", CONFIG_LOG_ERROR, false },
	{ "warning", CONFIG_LOG_WARNING, false },
	{ "notice", CONFIG_LOG_NOTICE, false },
	{ "information", CONFIG_LOG_INFO, false },
	{ "debug", CONFIG_LOG_DEBUG, false },
	{ "subscribe", CONFIG_LOG_SUBSCRIBE, false },
	{ "unsubscribe", CONFIG_LOG_UNSUBSCRIBE, false },
	{ "websockets", CONFIG_LOG_WEBSOCKETS, false },
	{ "all", CONFIG_LOG_ALL, false },
	{ "none", 0, false },
	{ NULL, 0, false },
};

/* One type a line, as mosquitto; the first line replaces the default. */
static int parse_log_type(struct parser *p, const struct option_desc *o,
			  char *args)
{
	long long bits;
	char *w;
	int rc;

	rc = one_word(p, o->name, args, &w);
	if (rc)
		return rc;
	rc = keyword_find(p, o->name, log_type_words, w, &bits);
	if (rc)
		return rc;
	if (!p->log_type_set) {
		p->c->log_type = 0;
		p->log_type_set = true;
	}
	if (bits == 0)
		p->c->log_type = 0;
	else
		p->c->log_type |= (unsigned)bits;
	return 0;
}

/* listener PORT [BIND_ADDRESS]: opens a block that runs to the next one. */
static int parse_listener(struct parser *p, const struct option_desc *o,
			  char *args)
{
	struct config *c = p->c;
	struct config_listener *l;
	const char *addr = NULL;
	char *port, *bind;
	long long v;
	int rc;

	port = next_word(&args);
	if (!port)
		return perr(p, "missing port for '%s'", o->name);
	bind = next_word(&args);
	if (*args)
		return extra_argument(p, o->name, next_word(&args));
	rc = check_range(p, "listener port", port, 1, UINT16_MAX, false, 0,
			 &v);
	if (rc)
		return rc;
	if (bind) {
		addr = config_strdup(c, bind);
		if (!addr)
			return perr_nomem(p);
	}
	l = realloc(c->listeners, (c->listener_count + 1) * sizeof(*l));
	if (!l)
		return perr_nomem(p);
	c->listeners = l;
	l += c->listener_count;
	*l = (struct config_listener){
		.port = (uint16_t)v,
		.bind_address = addr,
		.protocol = CONFIG_PROTOCOL_MQTT,
		.max_connections = -1,
		.allow_anonymous = -1,
		.server_moved = -1,
		.source = p->file,
		.line = p->line,
	};
	p->cur = c->listener_count++;
	p->in_listener = true;
	return 0;
}

static int parse_file(struct parser *p, const char *path, FILE *f);

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_conf_name(const char *name)
{
	size_t len = strlen(name);

	return len > 5 && strcmp(name + len - 5, ".conf") == 0;
}

/*
 * Every DIR/ *.conf, in strcmp order so the result does not depend on the
 * locale or on readdir's whim.
 */
static int collect_conf_names(DIR *d, char ***names, size_t *count)
{
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	errno = 0;
	while ((e = readdir(d))) {
		char **nv;

		if (!is_conf_name(e->d_name))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			goto out_nomem;
		v = nv;
		v[n] = strdup(e->d_name);
		if (!v[n])
			goto out_nomem;
		n++;
	}
	if (errno) {
		int err = -errno;

		while (n)
			free(v[--n]);
		free(v);
		return err;
	}
	if (n)
		qsort(v, n, sizeof(*v), name_cmp);
	*names = v;
	*count = n;
	return 0;

out_nomem:
	while (n)
		free(v[--n]);
	free(v);
	return -ENOMEM;
}

static int include_one(struct parser *p, const char *dir, const char *name)
{
	size_t dlen = strlen(dir);
	const char *sep = dlen && dir[dlen - 1] == '/' ? "" : "/";
	struct stat st;
	char *path;
	FILE *f;
	int rc;

	if (asprintf(&path, "%s%s%s", dir, sep, name) < 0)
		return perr_nomem(p);
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		perr(p, "include_dir: cannot open '%s': %s", path,
		     strerror(-rc));
		goto out_free_path;
	}
	/* A directory opens fine on Linux and fails only on read. */
	if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
		rc = perr(p, "include_dir: '%s' is not a regular file", path);
		goto out_close;
	}
	rc = parse_file(p, path, f);
out_close:
	fclose(f);
out_free_path:
	free(path);
	return rc;
}

static int parse_include_dir(struct parser *p, const struct option_desc *o,
			     char *args)
{
	char **names = NULL;
	size_t count = 0, i;
	DIR *d;
	int rc;

	/* mosquitto's rule; it also rules out include loops. */
	if (p->depth > 1)
		return perr(p, "'%s' is only allowed in the main "
			    "configuration file", o->name);
	if (*args == '\0')
		return perr(p, "missing value for '%s'", o->name);
	d = opendir(args);
	if (!d) {
		rc = -errno;
		perr(p, "%s: cannot open '%s': %s", o->name, args,
		     strerror(-rc));
		return rc;
	}
	rc = collect_conf_names(d, &names, &count);
	closedir(d);
	if (rc == -ENOMEM)
		return perr_nomem(p);
	if (rc) {
		perr(p, "%s: cannot read '%s': %s", o->name, args,
		     strerror(-rc));
		return rc;
	}
	for (i = 0; i < count && rc == 0; i++)
		rc = include_one(p, args, names[i]);
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ------------------------------------------------------------- tables */

static const struct keyword protocol_words[] = {
	{ "mqtt", CONFIG_PROTOCOL_MQTT, false },
	{ "websockets", 0, true },
	{ NULL, 0, false },
};

static const struct keyword socket_domain_words[] = {
	{ "ipv4", 4, false },
	{ "ipv6", 6, false },
	{ NULL, 0, false },
};

static const struct keyword durability_words[] = {
	{ "strict", CONFIG_DURABILITY_STRICT, false },
	{ "batch", CONFIG_DURABILITY_BATCH, false },
	{ NULL, 0, false },
};

#define G(f) offsetof(struct config, f)
#define L(f) offsetof(struct config_listener, f)

#define OPT_BOOL(n)                                                     \
	{ .name = #n, .parse = parse_bool, .scope = SC_GLOBAL,          \
	  .goff = G(n), .type = FT_BOOL }
#define OPT_INT(n, t, lo, hi)                                           \
	{ .name = #n, .parse = parse_int, .scope = SC_GLOBAL,           \
	  .goff = G(n), .type = (t), .min = (lo), .max = (hi) }
#define OPT_STRING(n)                                                   \
	{ .name = #n, .parse = parse_string, .scope = SC_GLOBAL,        \
	  .goff = G(n), .type = FT_STRING }

/* Sorted by name; the order is also the order of did-you-mean ties. */
static const struct option_desc options[] = {
	{ .name = "acl_file", .parse = parse_string,
	  .scope = SC_GLOBAL | SC_AUTH, .goff = G(acl_file),
	  .loff = L(acl_file), .type = FT_STRING },
	{ .name = "allow_anonymous", .parse = parse_bool,
	  .scope = SC_GLOBAL | SC_AUTH, .goff = G(allow_anonymous),
	  .loff = L(allow_anonymous), .type = FT_TRIBOOL },
	OPT_INT(autosave_interval, FT_UNSIGNED, 0, MAX_SECONDS),
	OPT_INT(connect_timeout, FT_UNSIGNED, 1, 3600),
	{ .name = "durability", .parse = parse_keyword, .scope = SC_GLOBAL,
	  .goff = G(durability), .type = FT_DURABILITY,
	  .words = durability_words },
	{ .name = "include_dir", .parse = parse_include_dir },
	{ .name = "listener", .parse = parse_listener },
	{ .name = "log_dest", .parse = parse_log_dest },
	OPT_BOOL(log_timestamp),
	{ .name = "log_type", .parse = parse_log_type },
	OPT_INT(max_client_id_length, FT_U16, MIN_CLIENT_ID_LENGTH,
		UINT16_MAX),
	/* 0 would lock every client out, and elsewhere 0 means unlimited. */
	{ .name = "max_connections", .parse = parse_int,
	  .scope = SC_GLOBAL | SC_LISTENER, .goff = G(max_connections),
	  .loff = L(max_connections), .type = FT_INT, .min = 1,
	  .max = INT_MAX, .has_special = true, .special = -1 },
	OPT_INT(max_inflight_messages, FT_U16, 0, UINT16_MAX),
	OPT_INT(max_keepalive, FT_U16, 0, UINT16_MAX),
	OPT_INT(max_qos, FT_U16, 0, 2),
	{ .name = "max_packet_size", .parse = parse_int, .scope = SC_GLOBAL,
	  .goff = G(max_packet_size), .type = FT_U32, .min = MIN_PACKET_SIZE,
	  .max = CONFIG_MAX_PACKET_SIZE, .has_special = true, .special = 0 },
	OPT_INT(max_queued_bytes, FT_U64, 0, LLONG_MAX),
	OPT_INT(max_queued_messages, FT_U32, 0, INT32_MAX),
	OPT_INT(max_topic_length, FT_U16, 1, UINT16_MAX),
	OPT_INT(max_topic_levels, FT_U16, 1, UINT16_MAX),
	{ .name = "password_file", .parse = parse_string,
	  .scope = SC_GLOBAL | SC_AUTH, .goff = G(password_file),
	  .loff = L(password_file), .type = FT_STRING },
	{ .name = "per_listener_settings",
	  .parse = parse_per_listener_settings, .scope = SC_GLOBAL,
	  .goff = G(per_listener_settings), .type = FT_BOOL },
	OPT_BOOL(persistence),
	OPT_STRING(persistence_file),
	OPT_STRING(persistence_location),
	OPT_STRING(pid_file),
	{ .name = "protocol", .parse = parse_keyword, .scope = SC_LISTENER,
	  .loff = L(protocol), .type = FT_PROTOCOL, .words = protocol_words },
	OPT_BOOL(queue_qos0_messages),
	OPT_BOOL(retain_available),
	{ .name = "server_moved", .parse = parse_bool,
	  .scope = SC_GLOBAL | SC_LISTENER, .goff = G(server_moved),
	  .loff = L(server_moved), .type = FT_TRIBOOL },
	{ .name = "response_information", .parse = parse_mqtt_string,
	  .scope = SC_GLOBAL, .goff = G(response_information),
	  .type = FT_STRING },
	{ .name = "server_reference", .parse = parse_mqtt_string,
	  .scope = SC_GLOBAL | SC_LISTENER, .goff = G(server_reference),
	  .loff = L(server_reference), .type = FT_STRING },
	/* Read at start only: a SIGHUP does not change it. */
	{ .name = "shards", .parse = parse_int, .scope = SC_GLOBAL,
	  .goff = G(shards), .type = FT_UNSIGNED, .min = 1,
	  .max = MAX_SHARDS, .has_special = true, .special = 0 },
	{ .name = "socket_domain", .parse = parse_keyword,
	  .scope = SC_LISTENER, .loff = L(socket_domain), .type = FT_INT,
	  .words = socket_domain_words },
	OPT_INT(sys_interval, FT_UNSIGNED, 0, UINT16_MAX),
};

/*
 * mosquitto options cicada does not have (yet): a mosquitto.conf carrying
 * one gets a plainer message than "unknown option".
 */
static const char *const mosquitto_only[] = {
	"address", "allow_duplicate_messages", "allow_zero_length_clientid",
	"auth_plugin", "auto_id_prefix", "autosave_on_changes",
	"bind_address", "bind_interface", "cafile", "capath", "certfile",
	"check_retain_source", "ciphers", "ciphers_tls1.3",
	"clientid_prefixes", "connection", "connection_messages", "crlfile",
	"dhparamfile", "global_plugin", "http_dir", "keyfile", "log_facility",
	"log_timestamp_format", "max_inflight_bytes", "max_qos",
	"memory_limit", "message_size_limit", "mount_point",
	"persistent_client_expiration", "plugin", "port",
	"psk_file", "psk_hint", "require_certificate", "retry_interval",
	"set_tcp_nodelay", "tls_version", "topic", "upgrade_outgoing_qos",
	"use_identity_as_username", "use_subject_as_username",
	"use_username_as_clientid", "user", "websockets_headers_size",
	"websockets_log_level",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct option_desc *option_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

/* Levenshtein distance; both strings at most SUGGEST_MAX_LEN bytes. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t prev[SUGGEST_MAX_LEN + 1], cur[SUGGEST_MAX_LEN + 1];

	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1;
			size_t ins = cur[j - 1] + 1;
			size_t m = sub < del ? sub : del;

			cur[j] = m < ins ? m : ins;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

static const char *option_suggest(const char *name)
{
	size_t len = strlen(name), best = SUGGEST_DISTANCE + 1;
	const char *found = NULL;

	if (len > SUGGEST_MAX_LEN)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		size_t d;

		if (strlen(options[i].name) > SUGGEST_MAX_LEN)
			continue;
		d = edit_distance(name, options[i].name);
		/* "x" is one edit from nothing useful: need d < len. */
		if (d < best && d < len) {
			best = d;
			found = options[i].name;
		}
	}
	return found;
}

static int unknown_option(struct parser *p, const char *name)
{
	const char *hint;

	for (size_t i = 0; i < ARRAY_SIZE(mosquitto_only); i++)
		if (strcmp(mosquitto_only[i], name) == 0)
			return perr(p, "mosquitto option '%s' is not "
				    "supported yet", name);
	hint = option_suggest(name);
	if (hint)
		return perr(p, "unknown option '%s' (did you mean '%s'?)",
			    name, hint);
	return perr(p, "unknown option '%s'", name);
}

/* ------------------------------------------------------------ reading */

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
	       ch == '\v' || ch == '\f';
}

static int parse_line(struct parser *p, char *line, size_t len)
{
	const struct option_desc *o;
	char *end, *key;

	if (strlen(line) != len)
		return perr(p, "NUL byte in line");
	/* Editors on Windows like to start UTF-8 files with a BOM. */
	if (p->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	end = line + strlen(line);
	while (end > line && is_space(end[-1]))
		*--end = '\0';
	while (is_space(*line))
		line++;
	if (*line == '\0' || *line == '#')
		return 0;

	key = next_word(&line);
	o = option_find(key);
	if (!o)
		return unknown_option(p, key);
	return o->parse(p, o, line);
}

/*
 * Read one open file.  A listener block does not continue into another
 * file: each file starts outside any block, and the includer's block
 * resumes after its include_dir line.
 */
static int parse_file(struct parser *p, const char *path, FILE *f)
{
	const char *saved_file = p->file;
	unsigned saved_line = p->line;
	bool saved_in = p->in_listener;
	size_t saved_cur = p->cur;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	p->file = config_strdup(p->c, path);
	if (!p->file) {
		p->file = path;
		rc = perr_nomem(p);
		goto out;
	}
	p->line = 0;
	p->in_listener = false;
	p->depth++;
	errno = 0;
	while ((n = getline(&buf, &cap, f)) >= 0) {
		p->line++;
		rc = parse_line(p, buf, (size_t)n);
		if (rc)
			goto out_depth;
	}
	if (ferror(f)) {
		rc = errno ? -errno : -EIO;
		p->line++;
		perr(p, "read error: %s", strerror(-rc));
	}
out_depth:
	p->depth--;
	free(buf);
out:
	p->file = saved_file;
	p->line = saved_line;
	p->in_listener = saved_in;
	p->cur = saved_cur;
	return rc;
}

static bool listeners_overlap(const struct config_listener *a,
			      const struct config_listener *b)
{
	if (a->port != b->port)
		return false;
	if (!a->bind_address != !b->bind_address)
		return false;
	if (a->bind_address && strcmp(a->bind_address, b->bind_address))
		return false;
	return a->socket_domain == 0 || b->socket_domain == 0 ||
	       a->socket_domain == b->socket_domain;
}

/*
 * Two listeners on one port and address would both bind, silently,
 * because every shard opens its sockets with SO_REUSEPORT.
 */
static int check_listeners(struct parser *p)
{
	const struct config *c = p->c;

	for (size_t j = 1; j < c->listener_count; j++) {
		const struct config_listener *b = &c->listeners[j];

		for (size_t i = 0; i < j; i++) {
			const struct config_listener *a = &c->listeners[i];

			if (!listeners_overlap(a, b))
				continue;
			p->file = b->source;
			p->line = b->line;
			return perr(p, "duplicate listener %s%s%u (first "
				    "defined at %s:%u)",
				    b->bind_address ? b->bind_address : "",
				    b->bind_address ? " port " : "port ",
				    b->port, a->source, a->line);
		}
	}
	return 0;
}

int config_load(struct config *c, const char *path, char *err,
		size_t errlen)
{
	struct parser p = {
		.c = c,
		.file = path,
		.err = err,
		.errlen = errlen,
	};
	FILE *f;
	int rc;

	if (errlen)
		err[0] = '\0';
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		if (errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path,
				 strerror(-rc));
		return rc;
	}
	rc = parse_file(&p, path, f);
	fclose(f);
	if (rc)
		return rc;
	return check_listeners(&p);
}

/* ------------------------------------------------------------ finish */

static int add_default_listener(struct config *c)
{
	struct config_listener *l = malloc(sizeof(*l));

	if (!l)
		return -ENOMEM;
	*l = (struct config_listener){
		.port = CONFIG_DEFAULT_PORT,
		.protocol = CONFIG_PROTOCOL_MQTT,
		.max_connections = -1,
		.allow_anonymous = -1,
		.server_moved = -1,
	};
	free(c->listeners);
	c->listeners = l;
	c->listener_count = 1;
	c->default_listener = true;
	return 0;
}

int config_finish(struct config *c)
{
	int rc;

	if (c->listener_count == 0) {
		rc = add_default_listener(c);
		if (rc)
			return rc;
	}
	/* Open by default only for the embedded development listener. */
	if (c->allow_anonymous < 0 && c->default_listener)
		c->allow_anonymous = 1;

	for (size_t i = 0; i < c->listener_count; i++) {
		struct config_listener *l = &c->listeners[i];

		/* Redirection: the block's own, else the general section's. */
		if (!l->server_reference)
			l->server_reference = c->server_reference;
		if (l->server_moved < 0)
			l->server_moved = c->server_moved;
		/*
		 * Per-listener settings keep a listener's own values; the
		 * general section speaks for the default listener only.
		 */
		if (c->per_listener_settings && !c->default_listener) {
			if (l->allow_anonymous < 0)
				l->allow_anonymous = 0;
			continue;
		}
		l->allow_anonymous = c->allow_anonymous < 0 ?
					     0 : c->allow_anonymous;
		l->password_file = c->password_file;
		l->acl_file = c->acl_file;
	}
	if (c->allow_anonymous < 0)
		c->allow_anonymous = 0;
	return 0;
}

int config_persistence_path(const struct config *c, char *buf, size_t len)
{
	const char *loc = c->persistence_location;
	const char *file = c->persistence_file;
	const char *sep = "";
	int n;

	if (!loc || !*loc || file[0] == '/') {
		loc = "";
	} else if (loc[strlen(loc) - 1] != '/') {
		sep = "/";
	}
	n = snprintf(buf, len, "%s%s%s", loc, sep, file);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}
