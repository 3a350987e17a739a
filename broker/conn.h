/*
 * A client's network connection on one shard: reading and framing bytes
 * into packets, the output buffer flushed once per loop turn, keep alive,
 * and the single place where a connection is closed (with a DISCONNECT
 * reason in MQTT 5 when one is due).
 */
#ifndef CICADA_BROKER_CONN_H
#define CICADA_BROKER_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/log.h"
#include "protocol/mqtt.h"

struct auth_conn;
struct broker;
struct conn_alias;
struct listener;
struct sockaddr;
struct msg;

/* Most topic aliases cicada assigns on one connection. */
#define CONN_TOPIC_ALIASES_OUT 64
struct session;
struct shard;

/* A will, kept apart: most connections have none. */
struct conn_will {
	struct msg *msg;
	uint32_t delay; /* MQTT 5 Will Delay Interval, seconds */
	/* Its Message Expiry Interval counts from publication; 0: none. */
	uint32_t expiry;
};

enum conn_state {
	CONN_NEW, /* accepted, waiting for CONNECT */
	CONN_ACTIVE, /* CONNACK sent */
	CONN_CLOSING, /* closed as soon as the output is flushed */
	CONN_AUTH, /* CONNECT received, enhanced authentication running */
	CONN_MOVING, /* handed to another shard (conn_handoff) */
};

/*
 * Laid out so an idle connection fits one 256-byte allocation (248 bytes
 * of struct and malloc's 8): small fields first, grouped by size.
 */
struct conn {
	struct shard *shard;
	struct listener *listener; /* accepted on; NULL for tests */
	struct conn *prev, *next; /* the shard's list of connections */
	ev_io io; /* read, and write while the socket pushes back */
	uint8_t state; /* enum conn_state */
	uint8_t version; /* protocol level, 0 before CONNECT */
	bool flush_queued : 1; /* on the shard's flush list */
	bool will_suppressed : 1; /* normal DISCONNECT: no will */
	bool broken : 1; /* output failed: closed by the next flush pass */
	bool want_write : 1; /* io watches EV_WRITE too */
	bool client_id_borrowed : 1; /* client_id is the session's */
	bool held : 1; /* on the shard's held list (see hold_seq) */
	bool request_problem_info : 1;
	/* The peer, for logs (conn_peer()): IPv4 or IPv6 in binary. */
	uint8_t peer_family; /* AF_INET, AF_INET6; 0: unknown */
	uint16_t peer_port;
	uint8_t peer_addr[16];
	int16_t wheel_slot; /* -1: not in the timeout wheel */
	/* MQTT 5 limits the client asked for. */
	uint16_t topic_alias_max_in; /* aliases we accept */
	/*
	 * Topic aliases we send [MQTT-3.3.2.3.4]: the first topics sent get
	 * aliases 1..topic_alias_max_out and keep them for the connection's
	 * life (no reassignment, so no churn with many topics).
	 */
	uint16_t topic_alias_max_out; /* min(client's maximum, ours) */
	uint16_t topic_alias_out_count;
	uint16_t qos2_quota; /* our Receive Maximum */
	/* Buffer sizes: base << (log2 - 1), 0: none (see in_cap()). */
	uint8_t in_cap_log2, out_cap_log2;
	uint32_t max_packet_out; /* the client's Maximum Packet Size; 0: none */
	float timeout; /* seconds of silence allowed; 0: none */
	/* Input: bytes of at most one partial packet between reads. */
	uint32_t in_len;
	/* For logs: our copy until a session holds it, then the session's. */
	char *client_id;
	struct auth_conn *auth; /* user, enhanced auth method and exchange */

	struct session *session;
	struct conn_will *will; /* published on abnormal close; NULL: none */

	uint8_t *in;
	/* Output: encoded packets not yet written (4 GiB at most). */
	uint8_t *out;
	uint32_t out_off, out_len;
	struct conn *flush_next;
	struct conn *held_next;
	/*
	 * And not before the other shards confirmed the deliveries of this
	 * message, the latest one published here that needs it (route.h).
	 */
	struct msg *wait_msg;
	/* Keep alive and connect timeout, checked by the shard's wheel. */
	struct conn *wheel_prev, *wheel_next;
	/*
	 * Both alias tables in one block made when first needed (see
	 * conn_alias_tables()): the topics of the aliases we accept,
	 * [topic_alias_max_in + 1], then those we send, [..._max_out].
	 */
	char **topic_aliases;
	/*
	 * Durability strict: the output may not be written before the
	 * storage commit of this sequence number (0: no wait); while it
	 * waits the connection is on the shard's held list.
	 */
	uint64_t hold_seq;
	double last_activity; /* monotonic seconds */
};


/*
 * A connection on its way to the shard of its client id, taken after its
 * CONNECT (see hand_over() in conn.c): the connection itself, off every
 * list of the shard it leaves, and every byte read from the CONNECT on.
 */
struct conn_handoff {
	struct conn *conn;
	struct conn_handoff *next; /* the leaving shard's list, until posted */
	unsigned to; /* the shard it goes to */
	uint32_t len;
	uint8_t bytes[];
};

/* On the shard it was posted to: the connection goes on here. */
void conn_adopt(struct shard *sh, struct conn_handoff *h);
/* Nobody takes it (shutdown): close the connection and free. */
void conn_handoff_drop(struct conn_handoff *h);

/* Accepted socket -> connection on the shard; NULL on failure (fd closed). */
struct conn *conn_new(struct shard *sh, int fd, const struct sockaddr *peer);
/* "address:port" of the peer ("[v6]:port"), written into buf. */
const char *conn_peer(const struct conn *c, char *buf, size_t len);

/*
 * Encode a packet into the output buffer and schedule a flush.  Returns 0,
 * or a negative error (encoding failure or out of memory: the connection
 * is then closed).
 */
int conn_send(struct conn *c, const struct mqtt_packet *pkt);
/* PUBLISH of a stored message; false when it was dropped (too large). */
bool conn_send_publish(struct conn *c, struct msg *msg, uint8_t qos,
		       bool retain, bool dup, uint16_t packet_id,
		       const uint32_t *sub_ids, uint8_t sub_id_count);
/*
 * End of the loop turn: forget the PUBLISH headers encoded during it
 * (conn_send_publish() reuses one for every subscriber of a message).
 */
void conn_headers_release(struct shard *sh);
/* The output written from now on waits for route_confirm() of msg. */
void conn_wait_confirm(struct conn *c, struct msg *msg);
/* Make c->topic_aliases if need be; false when out of memory. */
bool conn_alias_tables(struct conn *c);

/* Bytes queued for output and not yet written. */
static inline size_t conn_pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

/*
 * Close: in MQTT 5, after CONNACK, send DISCONNECT with reason first
 * (reason < 0: none) and why as its Reason String.  Publishes the will
 * unless suppressed, detaches the session (destroying it if it does not
 * outlive the connection), and frees the connection once its output is
 * flushed.
 */
void conn_close(struct conn *c, int reason, const char *why);

/*
 * A handler about to return reason code rc says why, in short lower-case
 * English: the connection layer logs it and, in MQTT 5, sends it as the
 * DISCONNECT's Reason String.  Returns rc.
 */
int conn_why(struct conn *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Give an outgoing packet's properties the Reason String s (MQTT 5; s must
 * live until conn_send() returns).  A string cut short by snprintf() loses
 * its incomplete last character, so it stays UTF-8.  conn_send() drops it,
 * and any User Property, when the client asked for no problem information
 * [MQTT-3.1.2-29] or when it would make the packet larger than the client
 * accepts [MQTT-3.2.2-19, MQTT-3.4.2-2, MQTT-3.9.2-1, MQTT-3.14.2-3 ...].
 */
void conn_set_reason(struct mqtt_props *p, const char *s);

/* Write the output buffer now; used by the shard's flush pass. */
void conn_flush(struct conn *c);
/* Release a closed connection (the shard calls it after the loop turn). */
void conn_free(struct conn *c);
/* The wheel found c silent past its timeout. */
void conn_timed_out(struct conn *c);

#define conn_log(level, c, fmt, ...)                                      \
	do {                                                              \
		char conn_log_peer_[64];                                  \
		log_at((level), "%s %s: " fmt,                            \
		       (c)->client_id ? (c)->client_id : "-",             \
		       conn_peer((c), conn_log_peer_,                     \
				 sizeof(conn_log_peer_)),                 \
		       ##__VA_ARGS__);                                    \
	} while (0)

#endif
