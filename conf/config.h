/*
 * The broker's configuration: cicada.conf(5) read into one typed struct.
 *
 * The file uses mosquitto's line format ("key value", '#' comment lines,
 * "listener PORT [ADDRESS]" opening a listener block, "include_dir DIR"),
 * so a mosquitto.conf runs unchanged for the options both brokers have.
 * Anything cicada does not understand is an error naming the file and
 * line, never silently ignored: a misspelt limit must not quietly leave a
 * broker without one.
 *
 * Use:
 *	struct config c;
 *	char err[512];
 *
 *	config_init(&c);
 *	if (path && config_load(&c, path, err, sizeof(err)) < 0)
 *		fail with err;
 *	if (config_finish(&c) < 0)
 *		out of memory;
 *	... read the fields ...
 *	config_free(&c);
 *
 * Anonymous access.  mosquitto 2.x refuses anonymous clients once a
 * listener is configured, and with no listener at all it listens on
 * localhost only.  Cicada keeps the first rule and relaxes the second:
 *   - allow_anonymous set in the file: that value.
 *   - not set, at least one listener configured: false (as mosquitto 2.x).
 *   - not set, no listener configured: config_finish() adds one listener
 *     on port 1883 on every address (IPv4 and IPv6) and allows anonymous
 *     clients, so that the README's first run works with mosquitto_sub and
 *     mosquitto_pub from another host.  It sets default_listener so that
 *     the broker can warn that this is a development setting.
 * With per_listener_settings true, allow_anonymous, password_file and
 * acl_file inside a listener block belong to that listener alone and the
 * general section's values apply to the default listener only, as in
 * mosquitto; otherwise they are global wherever they appear.
 * config_finish() resolves all this into each listener, so the broker
 * reads a listener's allow_anonymous, password_file and acl_file and never
 * the global ones.
 *
 * Server redirection.  server_reference and server_moved in a listener
 * block belong to that listener (whatever per_listener_settings says);
 * in the general section they apply to every listener without its own.
 * A server_reference with no value sets "no redirection" in its scope,
 * so one listener can stay open while the others redirect.
 * config_finish() resolves them into each listener too.
 *
 * Strings are owned by the struct config and live until config_free().
 */
#ifndef CICADA_CONF_CONFIG_H
#define CICADA_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PORT 1883

/* Largest MQTT packet: 1 fixed header byte, 4 length bytes, 268435455. */
#define CONFIG_MAX_PACKET_SIZE 268435460u

/*
 * log_type bits.  The first five have the values of broker/log.h's
 * LOGL_* so the broker can pass the mask through; subscribe, unsubscribe
 * and websockets are mosquitto's, accepted so that its configs load.
 */
enum config_log_type {
	CONFIG_LOG_ERROR = 1 << 0,
	CONFIG_LOG_WARNING = 1 << 1,
	CONFIG_LOG_NOTICE = 1 << 2,
	CONFIG_LOG_INFO = 1 << 3,
	CONFIG_LOG_DEBUG = 1 << 4,
	CONFIG_LOG_SUBSCRIBE = 1 << 5,
	CONFIG_LOG_UNSUBSCRIBE = 1 << 6,
	CONFIG_LOG_WEBSOCKETS = 1 << 7,
	CONFIG_LOG_ALL = (1 << 8) - 1,
	CONFIG_LOG_DEFAULT = CONFIG_LOG_ERROR | CONFIG_LOG_WARNING |
			     CONFIG_LOG_NOTICE | CONFIG_LOG_INFO,
};

/*
 * log_dest bits, with the values of broker/log.h's LOGD_*.  A set, not a
 * list: order does not matter, a repeat adds nothing, and the logger
 * writes one file at most (log_file).
 */
enum config_log_dest {
	CONFIG_LOG_DEST_STDERR = 1 << 0,
	CONFIG_LOG_DEST_STDOUT = 1 << 1,
	CONFIG_LOG_DEST_FILE = 1 << 2,
	CONFIG_LOG_DEST_SYSLOG = 1 << 3,
};

enum config_durability {
	CONFIG_DURABILITY_STRICT,	/* acknowledge after commit */
	CONFIG_DURABILITY_BATCH,	/* commit every autosave_interval */
};

/* What a listener speaks; "websockets" is reserved and refused for now. */
enum config_protocol {
	CONFIG_PROTOCOL_MQTT,
};

struct config_listener {
	uint16_t port;
	const char *bind_address;	/* NULL: every address */
	int socket_domain;		/* 0: IPv4 and IPv6; 4, 6: only one */
	enum config_protocol protocol;
	int max_connections;		/* -1: no limit of its own */
	/* Resolved by config_finish(); see the top of this file. */
	int allow_anonymous;		/* 0/1; -1 before config_finish() */
	const char *password_file;	/* NULL: none */
	const char *acl_file;		/* NULL: none */
	/*
	 * Server redirection: the listener block's own, or the general
	 * section's once config_finish() ran.  NULL or "": none (before
	 * config_finish(), NULL: not set in the block).
	 */
	const char *server_reference;
	int server_moved;		/* 0/1; -1 before config_finish() */
	/* Its "listener" line, for messages; NULL, 0: the default. */
	const char *source;
	unsigned line;
};

struct config_str;

struct config {
	/* Authentication; the broker reads the listeners' copies. */
	int allow_anonymous;		/* -1: unset, see config_finish() */
	bool per_listener_settings;
	const char *password_file;	/* NULL: none */
	const char *acl_file;		/* NULL: none */

	/* Limits; cicada.conf(5) gives each range. */
	int max_connections;		/* broker-wide; -1: unlimited */
	uint32_t max_packet_size;	/* 0: CONFIG_MAX_PACKET_SIZE */
	uint16_t max_inflight_messages;	/* per client; 0: 65535 */
	uint32_t max_queued_messages;	/* per client; 0: unlimited */
	uint64_t max_queued_bytes;	/* per client; 0: unlimited */
	uint16_t max_keepalive;		/* seconds */
	unsigned connect_timeout;	/* seconds from accept to CONNECT */
	uint16_t max_topic_length;	/* bytes */
	uint16_t max_topic_levels;
	uint16_t max_client_id_length;	/* bytes; MQTT 3.1 caps at 23 */

	/* Features. */
	uint16_t max_qos;		/* 0, 1 or 2: the highest QoS served */
	bool retain_available;
	bool queue_qos0_messages;	/* queue QoS 0 while offline */
	unsigned sys_interval;		/* seconds between $SYS; 0: off */
	/*
	 * Server redirection [MQTT 5.0 section 4.11] for listeners without
	 * their own: NULL or "": none; server_moved 1 sends 0x9D Server
	 * moved rather than 0x9C Use another server.
	 */
	const char *server_reference;
	int server_moved;		/* 0/1 */
	/*
	 * MQTT 5 Response Information for clients that ask for it (Request
	 * Response Information 1): the base of their response topics.
	 * NULL or "": none is sent.
	 */
	const char *response_information;

	/* Logging. */
	unsigned log_dest;		/* enum config_log_dest bits */
	const char *log_file;		/* with CONFIG_LOG_DEST_FILE */
	unsigned log_type;		/* enum config_log_type bits */
	bool log_timestamp;

	/* Persistence. */
	bool persistence;
	const char *persistence_file;	/* see config_persistence_path() */
	const char *persistence_location; /* directory; NULL: none */
	const char *pid_file;		/* written at start; NULL: none */
	unsigned autosave_interval;	/* seconds; durability batch only */
	enum config_durability durability;

	/*
	 * Shard threads, each one libev loop: 1..64, or 0 (the default)
	 * for the number of online CPUs, which the broker resolves.  Read
	 * at start only: a SIGHUP does not change it.
	 */
	unsigned shards;

	struct config_listener *listeners;
	size_t listener_count;
	bool default_listener;		/* config_finish() added 1883 */

	struct config_str *strings;	/* private: owns the strings */
};

/* Fill *c with the embedded defaults and no listener.  Cannot fail. */
void config_init(struct config *c);

/*
 * Read the file at path (and any include_dir it names) on top of what *c
 * holds.  Returns 0, -EINVAL for a bad line, -ENOMEM, or -errno when a
 * file or directory cannot be read; on failure err holds one line without
 * a newline, "FILE:LINE: message" ("FILE: message" when the file itself
 * cannot be opened), truncated to errlen, and *c holds whatever was read
 * before the error: config_free() it.  err may be NULL when errlen is 0.
 */
int config_load(struct config *c, const char *path, char *err,
		size_t errlen);

/*
 * Complete *c after the last config_load(): add the default listener when
 * none is configured and resolve every listener's allow_anonymous,
 * password_file, acl_file, server_reference and server_moved.  Returns 0
 * or -ENOMEM.  Calling it twice
 * changes nothing.
 */
int config_finish(struct config *c);

/* Release everything *c owns and leave it as config_init() made it. */
void config_free(struct config *c);

/*
 * The database path: persistence_file, under persistence_location when
 * that is set and persistence_file is relative.  Returns 0, or
 * -ENAMETOOLONG when it does not fit in len bytes.
 */
int config_persistence_path(const struct config *c, char *buf, size_t len);

#endif
