/*
 * Integration: a broker running several shards (threads, each with its
 * own event loop and its own SO_REUSEPORT socket per listener).  Clients
 * land on whatever shard the kernel picks and sessions live on the shard
 * their client id hashes to, so every test here has clients on several
 * shards whatever the placement: cross-shard fan-out and fan-in (QoS 1
 * and 2, MQTT 3.1.1 and 5.0), session takeover from shard to shard (one
 * after the other, and racing), shared subscriptions with members on
 * several shards (and one leaving), retained messages set, replaced and
 * cleared, a CONNECT pipelined with more packets (handed over with the
 * connection), max_connections counted over all shards, a port already in
 * use refused, $SYS counters summed over shards, assigned client ids,
 * wills, offline queues and subscribe/unsubscribe seen across shards.
 * The ids are picked so that their sessions spread over the shards (see
 * home_shard()); nothing is asserted about placement.  Raw sockets drive
 * the clients so that many can run from one thread; each test gets a
 * fresh broker.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

/* Loop tests run index 0 as MQTT 3.1.1 and index 1 as MQTT 5.0. */
#define VERSION(i) ((uint8_t)((i) == 0 ? MQTT_V311 : MQTT_V5))
#define V5 ((uint8_t)MQTT_V5)
#define WAIT_MS 3000
/* How long "nothing more arrives" is watched for. */
#define QUIET_MS 300
/* Bound of a whole message flow (hundreds of messages). */
#define FLOW_MS 20000

static struct broker_proc broker;

static void teardown(void)
{
	if (broker.pid > 0)
		ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker); /* kept when a test fails */
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * The shard a client id's session lives on (FNV-1a 64, mixed, modulo
 * the shard count), as the broker computes it.  Only used to check that
 * the ids a test picked spread over the shards: nothing is asserted
 * about where the broker puts anything.
 */
static unsigned home_shard(const char *id, unsigned shards)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = id; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 1099511628211ull;
	}
	h ^= h >> 30; /* splitmix64's finaliser, as shard_of_client() */
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (unsigned)(h % shards);
}

/* The ids fmt % 0..n-1 have sessions on every one of the shards. */
static void check_ids_spread(const char *fmt, int n, unsigned shards)
{
	bool seen[8] = { false };
	char id[64];

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), fmt, i);
		seen[home_shard(id, shards)] = true;
	}
	for (unsigned s = 0; s < shards; s++)
		ck_assert_msg(seen[s], "test ids %s: none on shard %u of %u",
			      fmt, s, shards);
}

/* Two ids whose sessions live on different shards of `shards`. */
static void ids_on_two_shards(const char *fmt, unsigned shards, char *a,
			      char *b, size_t len)
{
	snprintf(a, len, fmt, 0);
	for (int i = 1; i < 100; i++) {
		snprintf(b, len, fmt, i);
		if (home_shard(b, shards) != home_shard(a, shards))
			return;
	}
	ck_abort_msg("no two shards for %s", fmt);
}

/* ------------------------------------------------------------ raw side */

/*
 * Raw CONNECT (keep alive 60) expecting CONNACK 0.  5.0: Session Expiry
 * `expiry` when not 0.  *present (may be NULL) gets Session Present.
 */
static int rconnect(uint8_t v, const char *id, bool clean, uint32_t expiry,
		    bool *present)
{
	struct mqtt_connack ack;
	struct mqtt_connect con;
	uint8_t buf[512];
	int fd = raw_connect(&broker), rc;

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, v, id);
	con.clean_start = clean;
	if (v == MQTT_V5 && expiry) {
		con.props.session_expiry_interval = expiry;
		mqtt_props_set(&con.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	}
	rc = raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), &ack);
	ck_assert_msg(rc == 0, "CONNECT %s (v%u): CONNACK %d", id, v, rc);
	if (present)
		*present = ack.session_present;
	return fd;
}

static void rsubscribe(int fd, uint8_t v, uint16_t pid, const char *filter,
		       int qos)
{
	int rc = raw_subscribe(fd, v, pid, filter, (uint8_t)qos);

	ck_assert_msg(rc == qos, "SUBSCRIBE %s QoS %d: SUBACK %d", filter, qos,
		      rc);
}

static void rpublish(int fd, uint8_t v, const char *topic,
		     const void *payload, size_t len, int qos, bool retain,
		     uint16_t pid)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };

	pkt.u.publish.qos = (uint8_t)qos;
	pkt.u.publish.retain = retain;
	pkt.u.publish.packet_id = qos ? pid : 0;
	pkt.u.publish.topic.data = (const uint8_t *)topic;
	pkt.u.publish.topic.len = strlen(topic);
	pkt.u.publish.payload.data = payload;
	pkt.u.publish.payload.len = len;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, v), 0);
}

/* DISCONNECT (reason 0) and close. */
static void rdisconnect(int fd, uint8_t v)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

	raw_send_packet(fd, &pkt, v);
	raw_wait_closed(fd, WAIT_MS);
	close(fd);
}

/* The next packet, decoded; its type is returned (fails on anything else
 * than a packet within WAIT_MS). */
static int rrecv(int fd, uint8_t v, uint8_t *buf, size_t cap,
		 struct mqtt_packet *pkt)
{
	int type = raw_recv_decoded(fd, buf, cap, WAIT_MS, v, pkt);

	ck_assert_msg(type > 0, "no packet within %d ms (%d)", WAIT_MS, type);
	return type;
}

/*
 * Publish QoS 1 and wait for its PUBACK: reason 0, or also 0x10 No
 * matching subscribers when none_ok.
 */
static void rpublish_acked(int fd, uint8_t v, const char *topic,
			   const char *payload, bool retain, uint16_t pid,
			   bool none_ok)
{
	struct mqtt_packet pkt;
	uint8_t buf[512];

	rpublish(fd, v, topic, payload, strlen(payload), 1, retain, pid);
	ck_assert_int_eq(rrecv(fd, v, buf, sizeof(buf), &pkt), MQTT_PUBACK);
	ck_assert_uint_eq(pkt.u.ack.packet_id, pid);
	ck_assert_msg(pkt.u.ack.reason == 0 ||
			      (none_ok && pkt.u.ack.reason ==
					      MQTT_RC_NO_MATCHING_SUBSCRIBERS),
		      "PUBACK to %s: reason 0x%02x", topic, pkt.u.ack.reason);
}

/* A decimal number from a payload; -1 when it is not one. */
static long payload_num(const struct mqtt_bytes *p)
{
	long n = 0;

	if (p->len == 0 || p->len > 9)
		return -1;
	for (size_t i = 0; i < p->len; i++) {
		if (p->data[i] < '0' || p->data[i] > '9')
			return -1;
		n = n * 10 + (p->data[i] - '0');
	}
	return n;
}

/* ------------------------------------------------------ message flows */

/*
 * Many raw clients in one poll loop.  Publishers send `count` messages
 * each (payload: the decimal sequence number, packet id seq + 1), at most
 * PUB_WINDOW unacknowledged; subscribers acknowledge what they get and
 * hand each PUBLISH to on_msg.  Both QoS 1 and QoS 2 flows are answered.
 */
#define MAX_CLIENTS 24
#define PUB_WINDOW 8

struct flow_client {
	int fd;
	uint8_t v;
	bool publisher;
	/* publisher */
	char topic[64];
	int qos, count, sent, done;
	/* subscriber */
	int got;
};

typedef void (*on_msg_fn)(int sub, const struct mqtt_publish *pub);

/* Handle the one packet that is waiting on client i. */
static void flow_packet(struct flow_client *cl, int i, on_msg_fn on_msg)
{
	struct flow_client *c = &cl[i];
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int type = rrecv(c->fd, c->v, buf, sizeof(buf), &pkt);

	switch (type) {
	case MQTT_PUBLISH:
		ck_assert_msg(!c->publisher, "publisher %d got a PUBLISH", i);
		c->got++;
		on_msg(i, &pkt.u.publish);
		if (pkt.u.publish.qos == 1)
			ck_assert_int_eq(raw_send_ack(c->fd, c->v, MQTT_PUBACK,
						      pkt.u.publish.packet_id),
					 0);
		else if (pkt.u.publish.qos == 2)
			ck_assert_int_eq(raw_send_ack(c->fd, c->v, MQTT_PUBREC,
						      pkt.u.publish.packet_id),
					 0);
		break;
	case MQTT_PUBREL:
		ck_assert_int_eq(raw_send_ack(c->fd, c->v, MQTT_PUBCOMP,
					      pkt.u.ack.packet_id),
				 0);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		ck_assert_msg(c->publisher, "subscriber %d got packet type %d",
			      i, type);
		ck_assert_msg(pkt.u.ack.reason == 0,
			      "publisher %d: ack type %d reason 0x%02x", i,
			      type, pkt.u.ack.reason);
		ck_assert(pkt.u.ack.packet_id >= 1 &&
			  pkt.u.ack.packet_id <= c->sent);
		if (type == MQTT_PUBREC) {
			ck_assert_int_eq(c->qos, 2);
			ck_assert_int_eq(raw_send_ack(c->fd, c->v, MQTT_PUBREL,
						      pkt.u.ack.packet_id),
					 0);
		} else {
			ck_assert_int_eq(type == MQTT_PUBACK ? 1 : 2, c->qos);
			c->done++;
		}
		break;
	default:
		ck_abort_msg("client %d: unexpected packet type %d", i, type);
	}
}

/*
 * Run until every publisher is done and done_fn() says the subscribers
 * have all they should, then watch QUIET_MS more for anything extra
 * (which on_msg judges).  Fails after FLOW_MS.
 */
static void flow_run(struct flow_client *cl, int n, on_msg_fn on_msg,
		     bool (*done_fn)(void))
{
	long deadline = harness_now_ms() + FLOW_MS, quiet_until = 0;
	struct pollfd pfd[MAX_CLIENTS];

	ck_assert_int_le(n, MAX_CLIENTS);
	for (;;) {
		bool pubs_done = true;
		int ready;

		for (int i = 0; i < n; i++) {
			struct flow_client *c = &cl[i];
			char payload[16];

			if (!c->publisher)
				continue;
			while (c->sent < c->count &&
			       c->sent - c->done < PUB_WINDOW) {
				snprintf(payload, sizeof(payload), "%d",
					 c->sent);
				rpublish(c->fd, c->v, c->topic, payload,
					 strlen(payload), c->qos, false,
					 (uint16_t)(c->sent + 1));
				c->sent++;
			}
			pubs_done &= c->done == c->count;
		}
		if (pubs_done && done_fn()) {
			if (!quiet_until)
				quiet_until = harness_now_ms() + QUIET_MS;
			else if (harness_now_ms() >= quiet_until)
				return;
		} else {
			quiet_until = 0;
		}
		if (!quiet_until) {
			long left = deadline - harness_now_ms();

			if (left <= 0) {
				for (int i = 0; i < n; i++)
					fprintf(stderr, "client %d: %s sent %d "
						"done %d got %d\n", i,
						cl[i].publisher ? "pub" : "sub",
						cl[i].sent, cl[i].done,
						cl[i].got);
				ck_abort_msg("message flow not finished "
					     "within %d ms", FLOW_MS);
			}
		}
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = cl[i].fd,
						  .events = POLLIN };
		ready = poll(pfd, (nfds_t)n, 20);
		if (ready < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(ready, 0);
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				flow_packet(cl, i, on_msg);
	}
}

/* --------------------------------------------------- fan-out / fan-in */

#define FAN_SUBS 12
#define FAN_PUBS 4
#define FAN_MSGS 50

static int fan_next[FAN_SUBS][FAN_PUBS];
static struct flow_client fan_cl[FAN_SUBS + FAN_PUBS];

/* Each subscriber gets each publisher's messages once, in order. */
static void fan_on_msg(int sub, const struct mqtt_publish *pub)
{
	long seq = payload_num(&pub->payload);
	int p;

	ck_assert_msg(pub->topic.len == 6 &&
			      memcmp(pub->topic.data, "sh/x/", 5) == 0 &&
			      pub->topic.data[5] >= '0' &&
			      pub->topic.data[5] < '0' + FAN_PUBS,
		      "subscriber %d: topic %.*s", sub, (int)pub->topic.len,
		      (const char *)pub->topic.data);
	p = pub->topic.data[5] - '0';
	ck_assert_msg(!pub->dup, "subscriber %d: DUP set on %d/%ld", sub, p,
		      seq);
	ck_assert_msg(seq == fan_next[sub][p],
		      "subscriber %d: publisher %d message %ld, expected %d "
		      "(%s)", sub, p, seq, fan_next[sub][p],
		      seq < fan_next[sub][p] ? "duplicate" : "gap or reorder");
	fan_next[sub][p]++;
}

static bool fan_done(void)
{
	for (int s = 0; s < FAN_SUBS; s++)
		if (fan_cl[s].got < FAN_PUBS * FAN_MSGS)
			return false;
	return true;
}

/*
 * 12 subscribers of sh/x/# and 4 publishers (each on its own topic
 * sh/x/<n>), all with distinct client ids spread over both shards: every
 * subscriber gets all 200 messages exactly once, each publisher's in the
 * order sent.
 */
static void fan(uint8_t v, int qos)
{
	char id[32];

	check_ids_spread("s%02d-fan", FAN_SUBS, 2);
	check_ids_spread("p%d-fan", FAN_PUBS, 2);
	broker_start_checked(&broker, "shards 2");
	memset(fan_next, 0, sizeof(fan_next));
	memset(fan_cl, 0, sizeof(fan_cl));
	for (int s = 0; s < FAN_SUBS; s++) {
		snprintf(id, sizeof(id), "s%02d-fan", s);
		fan_cl[s].v = v;
		fan_cl[s].fd = rconnect(v, id, true, 0, NULL);
		rsubscribe(fan_cl[s].fd, v, 1, "sh/x/#", qos);
	}
	for (int p = 0; p < FAN_PUBS; p++) {
		struct flow_client *c = &fan_cl[FAN_SUBS + p];

		snprintf(id, sizeof(id), "p%d-fan", p);
		c->v = v;
		c->publisher = true;
		c->qos = qos;
		c->count = FAN_MSGS;
		snprintf(c->topic, sizeof(c->topic), "sh/x/%d", p);
		c->fd = rconnect(v, id, true, 0, NULL);
	}
	flow_run(fan_cl, FAN_SUBS + FAN_PUBS, fan_on_msg, fan_done);
	for (int s = 0; s < FAN_SUBS; s++)
		for (int p = 0; p < FAN_PUBS; p++)
			ck_assert_int_eq(fan_next[s][p], FAN_MSGS);
	for (int i = 0; i < FAN_SUBS + FAN_PUBS; i++)
		rdisconnect(fan_cl[i].fd, v);
}

START_TEST(test_fan_qos1)
{
	fan(VERSION(_i), 1);
}
END_TEST

START_TEST(test_fan_qos2)
{
	fan(VERSION(_i), 2);
}
END_TEST

/* ---------------------------------------------------------- takeover */

/*
 * Read the previous connection of a taken-over session: any PUBLISH it
 * still got (left unacknowledged: the session must resend it) and then
 * DISCONNECT 0x8E Session taken over, and the close.
 */
static void expect_taken_over(int fd, int round)
{
	struct mqtt_packet pkt;
	uint8_t buf[1024];

	for (;;) {
		int type = raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, V5,
					    &pkt);

		ck_assert_msg(type > 0,
			      "takeover %d: previous connection got no "
			      "DISCONNECT (%d)", round, type);
		if (type == MQTT_PUBLISH)
			continue;
		ck_assert_msg(type == MQTT_DISCONNECT,
			      "takeover %d: previous connection got type %d",
			      round, type);
		ck_assert_msg(pkt.u.disconnect.reason ==
				      MQTT_RC_SESSION_TAKEN_OVER,
			      "takeover %d: DISCONNECT reason 0x%02x", round,
			      pkt.u.disconnect.reason);
		break;
	}
	raw_expect_closed(fd, WAIT_MS);
	close(fd);
}

#define TAKEOVERS 8

/*
 * One persistent session (5.0, Clean Start 0, Session Expiry 300) taken
 * over 8 times in a row, each new connection accepted by whichever shard
 * the kernel picks: the previous one gets DISCONNECT 0x8E, the new CONNACK
 * says Session Present, and the QoS 1 messages published between the
 * takeovers (to the subscription made on the first connection) all reach
 * the last connection.
 */
START_TEST(test_takeover_across_shards)
{
	bool present = false, seen[TAKEOVERS + 1] = { false };
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	char payload[16];
	int fd, pub, missing;
	long deadline;

	broker_start_checked(&broker, "shards 2");
	pub = rconnect(V5, "take-pub", true, 0, NULL);
	fd = rconnect(V5, "take-X", true, 300, &present);
	ck_assert(!present);
	rsubscribe(fd, V5, 1, "take/t", 1);
	for (int k = 0; k < TAKEOVERS; k++) {
		int next;

		snprintf(payload, sizeof(payload), "%d", k);
		rpublish_acked(pub, V5, "take/t", payload, false,
			       (uint16_t)(k + 1), false);
		next = rconnect(V5, "take-X", false, 300, &present);
		ck_assert_msg(present, "takeover %d: Session Present 0", k);
		expect_taken_over(fd, k);
		fd = next;
	}
	snprintf(payload, sizeof(payload), "%d", TAKEOVERS);
	rpublish_acked(pub, V5, "take/t", payload, false, TAKEOVERS + 1,
		       false);

	/* The last connection gets all, possibly some more than once. */
	missing = TAKEOVERS + 1;
	deadline = harness_now_ms() + WAIT_MS;
	while (missing > 0) {
		long left = deadline - harness_now_ms(), k;
		int type;

		ck_assert_msg(left > 0, "%d of %d messages never arrived",
			      missing, TAKEOVERS + 1);
		type = raw_recv_decoded(fd, buf, sizeof(buf), (int)left, V5,
					&pkt);
		ck_assert_msg(type == MQTT_PUBLISH,
			      "waiting for messages: got %d (%d missing)", type,
			      missing);
		ck_assert(pkt.u.publish.topic.len == 6 &&
			  memcmp(pkt.u.publish.topic.data, "take/t", 6) == 0);
		ck_assert_uint_eq(pkt.u.publish.qos, 1);
		k = payload_num(&pkt.u.publish.payload);
		ck_assert(k >= 0 && k <= TAKEOVERS);
		if (!seen[k]) {
			seen[k] = true;
			missing--;
		}
		ck_assert_int_eq(raw_send_ack(fd, V5, MQTT_PUBACK,
					      pkt.u.publish.packet_id),
				 0);
	}
	/* Still subscribed: a new message arrives at once. */
	rpublish_acked(pub, V5, "take/t", "after", false, 100, false);
	for (;;) {
		ck_assert_int_eq(rrecv(fd, V5, buf, sizeof(buf), &pkt),
				 MQTT_PUBLISH);
		ck_assert_int_eq(raw_send_ack(fd, V5, MQTT_PUBACK,
					      pkt.u.publish.packet_id),
				 0);
		if (pkt.u.publish.payload.len == 5 &&
		    memcmp(pkt.u.publish.payload.data, "after", 5) == 0)
			break;
		ck_assert(pkt.u.publish.dup); /* only a redelivery before */
	}
	rdisconnect(fd, V5);
	rdisconnect(pub, V5);
}
END_TEST

/* --------------------------------------------------- shared subscription */

#define SHARE_MEMBERS 8
#define SHARE_MSGS 400

static int share_count[SHARE_MSGS];
static int share_by_member[SHARE_MEMBERS];
static struct flow_client share_cl[SHARE_MEMBERS + 1];

static void share_on_msg(int sub, const struct mqtt_publish *pub)
{
	long seq = payload_num(&pub->payload);

	ck_assert_msg(seq >= 0 && seq < SHARE_MSGS, "member %d: payload %.*s",
		      sub, (int)pub->payload.len,
		      (const char *)pub->payload.data);
	ck_assert_msg(pub->topic.len == 4 &&
			      memcmp(pub->topic.data, "sh/s", 4) == 0,
		      "member %d: topic %.*s", sub, (int)pub->topic.len,
		      (const char *)pub->topic.data);
	share_count[seq]++;
	ck_assert_msg(share_count[seq] == 1,
		      "message %ld delivered %d times (now to member %d)", seq,
		      share_count[seq], sub);
	share_by_member[sub]++;
}

static bool share_done(void)
{
	int total = 0;

	for (int s = 0; s < SHARE_MEMBERS; s++)
		total += share_cl[s].got;
	return total >= SHARE_MSGS;
}

/*
 * 8 members of $share/g/sh/s with ids spread over 4 shards, one
 * publisher: each of the 400 messages reaches exactly one member, and
 * more than one member gets some.  QoS 1 (loop index 0) and 2 (1).
 */
START_TEST(test_shared_across_shards)
{
	int qos = _i + 1;
	struct flow_client *p = &share_cl[SHARE_MEMBERS];
	int members_used = 0;
	char id[32];

	check_ids_spread("m%02d-share", SHARE_MEMBERS, 4);
	broker_start_checked(&broker, "shards 4");
	memset(share_count, 0, sizeof(share_count));
	memset(share_by_member, 0, sizeof(share_by_member));
	memset(share_cl, 0, sizeof(share_cl));
	for (int s = 0; s < SHARE_MEMBERS; s++) {
		snprintf(id, sizeof(id), "m%02d-share", s);
		share_cl[s].v = V5;
		share_cl[s].fd = rconnect(V5, id, true, 0, NULL);
		rsubscribe(share_cl[s].fd, V5, 1, "$share/g/sh/s", qos);
	}
	p->v = V5;
	p->publisher = true;
	p->qos = qos;
	p->count = SHARE_MSGS;
	snprintf(p->topic, sizeof(p->topic), "sh/s");
	p->fd = rconnect(V5, "share-pub", true, 0, NULL);
	flow_run(share_cl, SHARE_MEMBERS + 1, share_on_msg, share_done);
	for (int i = 0; i < SHARE_MSGS; i++)
		ck_assert_msg(share_count[i] == 1, "message %d delivered %d "
			      "times", i, share_count[i]);
	for (int s = 0; s < SHARE_MEMBERS; s++)
		members_used += share_by_member[s] > 0;
	ck_assert_msg(members_used >= 2, "only %d member(s) got messages",
		      members_used);
	for (int i = 0; i <= SHARE_MEMBERS; i++)
		rdisconnect(share_cl[i].fd, V5);
}
END_TEST

/* ---------------------------------------------------------- retained */

#define RETAIN_SUBS 10

/*
 * A retained message set through one shard reaches the 10 subscribers
 * that subscribe afterwards (ids spread over both shards, both protocol
 * versions), retain flag set.
 */
START_TEST(test_retained_across_shards)
{
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	char id[32];
	int pub;

	check_ids_spread("s%d-ret", RETAIN_SUBS, 2);
	broker_start_checked(&broker, "shards 2");
	pub = rconnect(V5, "ret-pub", true, 0, NULL);
	rpublish_acked(pub, V5, "sh/r/1", "kept", true, 1, true);
	for (int s = 0; s < RETAIN_SUBS; s++) {
		uint8_t v = VERSION(s % 2);
		int fd;

		snprintf(id, sizeof(id), "s%d-ret", s);
		fd = rconnect(v, id, true, 0, NULL);
		rsubscribe(fd, v, 1, s % 3 ? "sh/r/1" : "sh/r/#", 1);
		ck_assert_msg(rrecv(fd, v, buf, sizeof(buf), &pkt) ==
				      MQTT_PUBLISH,
			      "%s: no retained message", id);
		ck_assert_msg(pkt.u.publish.retain, "%s: retain flag 0", id);
		ck_assert(pkt.u.publish.topic.len == 6 &&
			  memcmp(pkt.u.publish.topic.data, "sh/r/1", 6) == 0);
		ck_assert(pkt.u.publish.payload.len == 4 &&
			  memcmp(pkt.u.publish.payload.data, "kept", 4) == 0);
		ck_assert_uint_eq(pkt.u.publish.qos, 1);
		ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBACK,
					      pkt.u.publish.packet_id),
				 0);
		raw_expect_quiet(fd, 50);
		rdisconnect(fd, v);
	}
	rdisconnect(pub, V5);
}
END_TEST

/* A new subscriber of sh/r/1 gets the retained payload want (NULL: none). */
static void expect_retained(const char *id, const char *want)
{
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int fd = rconnect(V5, id, true, 0, NULL);

	rsubscribe(fd, V5, 1, "sh/r/1", 1);
	if (!want) {
		raw_expect_quiet(fd, QUIET_MS);
		rdisconnect(fd, V5);
		return;
	}
	ck_assert_msg(rrecv(fd, V5, buf, sizeof(buf), &pkt) == MQTT_PUBLISH,
		      "%s: no retained message", id);
	ck_assert(pkt.u.publish.retain);
	ck_assert_msg(pkt.u.publish.payload.len == strlen(want) &&
			      memcmp(pkt.u.publish.payload.data, want,
				     strlen(want)) == 0,
		      "%s: retained '%.*s', expected '%s'", id,
		      (int)pkt.u.publish.payload.len,
		      (const char *)pkt.u.publish.payload.data, want);
	raw_send_ack(fd, V5, MQTT_PUBACK, pkt.u.publish.packet_id);
	raw_expect_quiet(fd, 50);
	rdisconnect(fd, V5);
}

/*
 * A retained message replaced and then cleared by publishers on other
 * shards: each new subscriber (on either shard) sees the latest state.
 */
START_TEST(test_retained_replaced_across_shards)
{
	char a[32], b[32], id[32];
	int pa, pb;

	ids_on_two_shards("%d-rp", 2, a, b, sizeof(a));
	broker_start_checked(&broker, "shards 2");
	pa = rconnect(V5, a, true, 0, NULL);
	pb = rconnect(V5, b, true, 0, NULL);
	for (int round = 0; round < 5; round++) {
		char v1[16], v2[16];

		snprintf(v1, sizeof(v1), "a%d", round);
		snprintf(v2, sizeof(v2), "b%d", round);
		rpublish_acked(pa, V5, "sh/r/1", v1, true,
			       (uint16_t)(3 * round + 1), true);
		for (int s = 0; s < 2; s++) {
			snprintf(id, sizeof(id), "s%d-r%d-1", s, round);
			expect_retained(id, v1);
		}
		rpublish_acked(pb, V5, "sh/r/1", v2, true,
			       (uint16_t)(3 * round + 2), true);
		for (int s = 0; s < 2; s++) {
			snprintf(id, sizeof(id), "s%d-r%d-2", s, round);
			expect_retained(id, v2);
		}
		/* An empty retained message clears it [MQTT-3.3.1-6]. */
		rpublish_acked(round % 2 ? pa : pb, V5, "sh/r/1", "", true,
			       (uint16_t)(3 * round + 3), true);
		for (int s = 0; s < 2; s++) {
			snprintf(id, sizeof(id), "s%d-r%d-3", s, round);
			expect_retained(id, NULL);
		}
	}
	rdisconnect(pa, V5);
	rdisconnect(pb, V5);
}
END_TEST

/* ------------------------------------------------ pipelined handover */

/* Append the encoding of pkt to buf at *len. */
static void encode_into(const struct mqtt_packet *pkt, uint8_t v,
			uint8_t *buf, size_t cap, size_t *len)
{
	size_t size = mqtt_encoded_size(pkt, v);
	int n;

	ck_assert(size > 0 && *len + size <= cap);
	n = mqtt_encode(pkt, v, buf + *len, size);
	ck_assert_int_eq(n, (int)size);
	*len += size;
}

/*
 * CONNECT, SUBSCRIBE and a QoS 1 PUBLISH (payload_len bytes) to the
 * subscribed topic, sent in one write, or when split > 0 in two: the
 * first split bytes (part of the CONNECT), a pause, then the rest.  The
 * connection is handed over to its session's shard with the bytes after
 * the CONNECT, which must not be lost.  Expected: CONNACK, SUBACK, then
 * PUBACK and the message itself in either order.
 */
static void pipelined(uint8_t v, const char *id, const char *topic,
		      size_t payload_len, size_t split)
{
	struct mqtt_sub_entry e = { .qos = 1 };
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	size_t cap = payload_len + 1024, len = 0;
	uint8_t *out = malloc(cap), *buf = malloc(cap), *payload;
	bool puback = false, delivered = false;
	int fd;

	ck_assert(out && buf);
	payload = malloc(payload_len + 1);
	ck_assert_ptr_nonnull(payload);
	for (size_t i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)((size_t)(uint8_t)id[i % strlen(id)] + i / 7);
	raw_connect_init(&pkt.u.connect, v, id);
	encode_into(&pkt, v, out, cap, &len);
	ck_assert(split < len);
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_SUBSCRIBE;
	e.filter.data = (const uint8_t *)topic;
	e.filter.len = strlen(topic);
	pkt.u.subscribe.packet_id = 7;
	pkt.u.subscribe.count = 1;
	pkt.u.subscribe.subs = &e;
	encode_into(&pkt, v, out, cap, &len);
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.u.publish.qos = 1;
	pkt.u.publish.packet_id = 9;
	pkt.u.publish.topic.data = (const uint8_t *)topic;
	pkt.u.publish.topic.len = strlen(topic);
	pkt.u.publish.payload.data = payload;
	pkt.u.publish.payload.len = payload_len;
	encode_into(&pkt, v, out, cap, &len);

	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	if (split) {
		ck_assert_int_eq(raw_send(fd, out, split), 0);
		sleep_ms(30);
	}
	ck_assert_int_eq(raw_send(fd, out + split, len - split), 0);
	ck_assert_msg(raw_recv_decoded(fd, buf, cap, WAIT_MS, v, &pkt) ==
			      MQTT_CONNACK, "%s: no CONNACK first", id);
	ck_assert_uint_eq(pkt.u.connack.reason, 0);
	ck_assert_msg(raw_recv_decoded(fd, buf, cap, WAIT_MS, v, &pkt) ==
			      MQTT_SUBACK, "%s: no SUBACK second", id);
	ck_assert_uint_eq(pkt.u.suback.packet_id, 7);
	ck_assert_uint_eq(pkt.u.suback.reasons.len, 1);
	ck_assert_uint_eq(pkt.u.suback.reasons.data[0], 1);
	while (!puback || !delivered) {
		int type = raw_recv_decoded(fd, buf, cap, WAIT_MS, v, &pkt);

		if (type == MQTT_PUBACK) {
			ck_assert_msg(!puback, "%s: two PUBACKs", id);
			ck_assert_uint_eq(pkt.u.ack.packet_id, 9);
			ck_assert_uint_eq(pkt.u.ack.reason, 0);
			puback = true;
			continue;
		}
		ck_assert_msg(type == MQTT_PUBLISH,
			      "%s: packet type %d (PUBACK %d, message %d)", id,
			      type, puback, delivered);
		ck_assert_msg(!delivered, "%s: message twice", id);
		ck_assert(pkt.u.publish.topic.len == strlen(topic) &&
			  memcmp(pkt.u.publish.topic.data, topic,
				 strlen(topic)) == 0);
		ck_assert_msg(pkt.u.publish.payload.len == payload_len &&
				      memcmp(pkt.u.publish.payload.data,
					     payload, payload_len) == 0,
			      "%s: payload of %zu bytes differs (%zu sent)",
			      id, pkt.u.publish.payload.len, payload_len);
		ck_assert_uint_eq(pkt.u.publish.qos, 1);
		ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBACK,
					      pkt.u.publish.packet_id),
				 0);
		delivered = true;
	}
	raw_expect_quiet(fd, 50);
	rdisconnect(fd, v);
	free(payload);
	free(out);
	free(buf);
}

/*
 * The pipelined CONNECT for 10 client ids per protocol version, so some
 * go through a handover: in one write; with the CONNECT arriving in two
 * pieces; and with a 200 KB PUBLISH behind it (more than one read).
 */
START_TEST(test_pipelined_connect)
{
	uint8_t v = VERSION(_i);
	char id[32], topic[32];

	check_ids_spread("c%d-pipe", 10, 2);
	broker_start_checked(&broker, "shards 2");
	for (int k = 0; k < 10; k++) {
		snprintf(id, sizeof(id), "c%d-pipe", k);
		snprintf(topic, sizeof(topic), "sh/p/%d", k);
		pipelined(v, id, topic, strlen(id), 0);
		pipelined(v, id, topic, strlen(id), 5);
		pipelined(v, id, topic, 200000, 0);
	}
}
END_TEST

/* ---------------------------------------------------- max_connections */

/*
 * A connection that max_connections refuses: closed without CONNACK (or,
 * should the broker answer, with a refusal).  true when refused.
 */
static bool refused(int fd, const char *id)
{
	struct mqtt_connect con;
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	uint8_t buf[512];
	int type;

	raw_connect_init(&con, V5, id);
	pkt.u.connect = con;
	if (raw_send_packet(fd, &pkt, V5) < 0)
		return true; /* already closed by the broker */
	type = raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, V5, &pkt);
	if (type == 0 || type == -1)
		return true;
	ck_assert_int_eq(type, MQTT_CONNACK);
	return pkt.u.connack.reason >= 0x80;
}

/* A connection made while the limit has room (retried for WAIT_MS while
 * a connection just closed may still count). */
static int connect_within_limit(const char *id)
{
	long deadline = harness_now_ms() + WAIT_MS;

	for (;;) {
		int fd = raw_connect(&broker);

		ck_assert_int_ge(fd, 0);
		if (!refused(fd, id))
			return fd;
		close(fd);
		ck_assert_msg(harness_now_ms() < deadline,
			      "%s refused although under max_connections", id);
		sleep_ms(20);
	}
}

/*
 * max_connections 6 holds for the broker as a whole, whichever shards
 * accepted the connections and hold the sessions: a 7th is refused, and
 * once one closes a new one is accepted.
 */
START_TEST(test_max_connections_across_shards)
{
	int fds[6], fd;
	char id[32];

	check_ids_spread("c%d-max", 6, 2);
	broker_start_checked(&broker, "shards 2\nmax_connections 6");
	/* The harness's readiness probe must be gone first. */
	ck_assert(broker_wait_log(&broker, "closed before CONNECT", WAIT_MS));
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "c%d-max", i);
		fds[i] = connect_within_limit(id);
	}
	/* Several tries: each may be accepted by either shard. */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "max-extra-%d", i);
		fd = raw_connect(&broker);
		ck_assert_int_ge(fd, 0);
		ck_assert_msg(refused(fd, id), "%s accepted over "
			      "max_connections 6", id);
		close(fd);
	}
	/* The six still work. */
	for (int i = 0; i < 6; i++) {
		struct mqtt_packet pkt = { .type = MQTT_PINGREQ };
		uint8_t buf[64];

		ck_assert_int_eq(raw_send_packet(fds[i], &pkt, V5), 0);
		ck_assert_int_eq(rrecv(fds[i], V5, buf, sizeof(buf), &pkt),
				 MQTT_PINGRESP);
	}
	rdisconnect(fds[0], V5);
	fds[0] = connect_within_limit("max-again");
	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(refused(fd, "max-extra-again"),
		      "accepted over max_connections 6 after a close");
	close(fd);
	ck_assert(broker_log_contains(&broker, "max_connections reached"));
	/* All closed: nothing stays counted, handed over or not. */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 6; i++)
			rdisconnect(fds[i], V5);
		for (int i = 0; i < 6; i++) {
			snprintf(id, sizeof(id), "c%d-max", i + 6 * round);
			fds[i] = connect_within_limit(id);
		}
		fd = raw_connect(&broker);
		ck_assert_int_ge(fd, 0);
		ck_assert_msg(refused(fd, "max-extra-round"),
			      "round %d: accepted over max_connections 6",
			      round);
		close(fd);
	}
	for (int i = 0; i < 6; i++)
		rdisconnect(fds[i], V5);
}
END_TEST

/* ------------------------------------------------------- port in use */


/* A second cicada with `shards 2` on port: refused, "in use". */
static void expect_port_refused(int port, const char *what)
{
	char conf[256], text[256];
	const char *args[] = { "-c", conf, NULL };
	struct cicada_run r;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/second.conf", broker.dir);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\n"
		   "persistence false\nshards 2\n", port);
	fclose(f);
	harness_run_cicada(&r, args);
	ck_assert_msg(r.status != -1, "%s: second cicada still running "
		      "after 5 s:\n%s", what, r.err);
	ck_assert_msg(r.status != 0, "%s: second cicada exited 0:\n%s", what,
		      r.err);
	ck_assert_msg(strstr(r.err, "Address already in use") != NULL,
		      "%s: no 'Address already in use' (exit %d):\n%s", what,
		      r.status, r.err);
	snprintf(text, sizeof(text), "%d", port);
	ck_assert_msg(strstr(r.err, text) != NULL,
		      "%s: the message does not name port %d:\n%s", what, port,
		      r.err);
	unlink(conf);
}

/*
 * The shards share their port with SO_REUSEPORT, which must not let a
 * second cicada (nor anything else) take the same port: it refuses to
 * start.  The running broker keeps serving every connection.
 */
START_TEST(test_port_in_use)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int port, fd, one = 1;
	char id[32];

	broker_start_checked(&broker, "shards 2");
	expect_port_refused(broker.port, "port of a running cicada");
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "inuse-%d", i);
		rdisconnect(rconnect(V5, id, true, 0, NULL), V5);
	}

	/* A plain socket (SO_REUSEADDR, no SO_REUSEPORT) listening. */
	port = harness_free_port();
	ck_assert_int_gt(port, 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	expect_port_refused(port, "port of a plain listening socket");
	close(fd);
}
END_TEST

/* -------------------------------------------------------------- $SYS */

#define SYS_CONNECTED "$SYS/broker/clients/connected"
#define SYS_SESSIONS "$SYS/broker/clients/total"
#define SYS_SUBS "$SYS/broker/subscriptions/count"

static const char *const sys_topics[3] = { SYS_CONNECTED, SYS_SESSIONS,
					   SYS_SUBS };

/*
 * Wait (SYS_WAIT_MS) until the three counters read want[]; last[] gets
 * the last values seen (-1: none).  true when they all did.  The shards
 * copy their counts once a second and shard 0 publishes once a second
 * (sys_interval 1): up to about 2 s behind.
 */
#define SYS_WAIT_MS 5000

static bool wait_sys(int fd, const long want[3], long last[3])
{
	long deadline = harness_now_ms() + SYS_WAIT_MS;

	for (;;) {
		long left = deadline - harness_now_ms();
		struct mqtt_packet pkt;
		uint8_t buf[512];
		bool all = true;

		for (int t = 0; t < 3; t++)
			all &= last[t] == want[t];
		if (all)
			return true;
		if (left <= 0 ||
		    raw_recv_decoded(fd, buf, sizeof(buf), (int)left, V5,
				     &pkt) != MQTT_PUBLISH)
			return false;
		for (int t = 0; t < 3; t++)
			if (pkt.u.publish.topic.len == strlen(sys_topics[t]) &&
			    memcmp(pkt.u.publish.topic.data, sys_topics[t],
				   pkt.u.publish.topic.len) == 0)
				last[t] = payload_num(&pkt.u.publish.payload);
	}
}

static void expect_sys(int fd, long connected, long sessions, long subs)
{
	const long want[3] = { connected, sessions, subs };
	long last[3] = { -1, -1, -1 };

	ck_assert_msg(wait_sys(fd, want, last),
		      "$SYS: clients/connected %ld (expected %ld), "
		      "clients/total %ld (%ld), subscriptions/count %ld (%ld)",
		      last[0], want[0], last[1], want[1], last[2], want[2]);
}

/*
 * $SYS counters add up the shards: 9 clients (each subscribed once) and
 * the subscriber (3 subscriptions) make 10 connected clients, 10 sessions
 * and 12 subscriptions; after 4 clients leave (clean sessions), 6, 6, 8.
 */
START_TEST(test_sys_sums_shards)
{
	int fds[9], sub;
	char id[32];

	check_ids_spread("c%d-sys", 9, 2);
	broker_start_checked(&broker, "shards 2\nsys_interval 1");
	for (int i = 0; i < 9; i++) {
		uint8_t v = i % 2 ? V5 : MQTT_V311;

		snprintf(id, sizeof(id), "c%d-sys", i);
		fds[i] = rconnect(v, id, true, 0, NULL);
		snprintf(id, sizeof(id), "sh/sys/%d", i);
		rsubscribe(fds[i], v, 1, id, 1);
	}
	sub = rconnect(V5, "sys-sub", true, 0, NULL);
	for (int t = 0; t < 3; t++)
		rsubscribe(sub, V5, (uint16_t)(t + 1), sys_topics[t], 0);
	expect_sys(sub, 10, 10, 12);
	for (int i = 0; i < 4; i++)
		rdisconnect(fds[i], i % 2 ? V5 : MQTT_V311);
	expect_sys(sub, 6, 6, 8);
	for (int i = 4; i < 9; i++)
		rdisconnect(fds[i], i % 2 ? V5 : MQTT_V311);
	rdisconnect(sub, V5);
}
END_TEST

/* -------------------------------------------------- more across shards */

/*
 * 8 connections send CONNECT for one client id back to back, before any
 * CONNACK: each gets CONNACK 0 (Session Present 0 on exactly one, the
 * session's creation), all but one are then taken over, and the one left
 * works.
 */
START_TEST(test_takeover_race)
{
	broker_start_checked(&broker, "shards 2");
	for (int round = 0; round < 10; round++) {
		int fds[8], open_left = 0, fresh = 0, survivor = -1;
		char id[32];

		snprintf(id, sizeof(id), "%d-race", round);
		for (int i = 0; i < 8; i++) {
			struct mqtt_packet pkt = { .type = MQTT_CONNECT };

			fds[i] = raw_connect(&broker);
			ck_assert_int_ge(fds[i], 0);
			raw_connect_init(&pkt.u.connect, V5, id);
			pkt.u.connect.clean_start = false;
			pkt.u.connect.props.session_expiry_interval = 300;
			mqtt_props_set(&pkt.u.connect.props,
				       MQTT_PROP_SESSION_EXPIRY_INTERVAL);
			ck_assert_int_eq(raw_send_packet(fds[i], &pkt, V5), 0);
		}
		for (int i = 0; i < 8; i++) {
			struct mqtt_packet pkt;
			uint8_t buf[512];
			int type;

			ck_assert_msg(rrecv(fds[i], V5, buf, sizeof(buf), &pkt) ==
					      MQTT_CONNACK,
				      "%s #%d: no CONNACK", id, i);
			ck_assert_uint_eq(pkt.u.connack.reason, 0);
			fresh += !pkt.u.connack.session_present;
			type = raw_recv_decoded(fds[i], buf, sizeof(buf),
						QUIET_MS, V5, &pkt);
			if (type == -1) { /* still open */
				open_left++;
				survivor = i;
				continue;
			}
			ck_assert_msg(type == MQTT_DISCONNECT,
				      "%s #%d: type %d", id, i, type);
			ck_assert_uint_eq(pkt.u.disconnect.reason,
					  MQTT_RC_SESSION_TAKEN_OVER);
			raw_expect_closed(fds[i], WAIT_MS);
		}
		ck_assert_msg(fresh == 1, "%s: %d CONNACKs with Session "
			      "Present 0", id, fresh);
		ck_assert_msg(open_left == 1, "%s: %d connections left open",
			      id, open_left);
		{
			struct mqtt_packet pkt = { .type = MQTT_PINGREQ };
			uint8_t buf[64];

			ck_assert_int_eq(raw_send_packet(fds[survivor], &pkt,
							 V5), 0);
			ck_assert_int_eq(rrecv(fds[survivor], V5, buf,
					       sizeof(buf), &pkt),
					 MQTT_PINGRESP);
		}
		for (int i = 0; i < 8; i++)
			if (i == survivor)
				rdisconnect(fds[i], V5);
			else
				close(fds[i]);
	}
}
END_TEST

/*
 * An empty client id (5.0) gets an Assigned Client Identifier whose
 * session is found again when the client comes back with it, whichever
 * shard accepts either connection.
 */
START_TEST(test_assigned_id_across_shards)
{
	broker_start_checked(&broker, "shards 4");
	for (int k = 0; k < 12; k++) {
		struct mqtt_connack ack;
		struct mqtt_connect con;
		uint8_t buf[512];
		char id[64];
		bool present;
		int fd = raw_connect(&broker);

		ck_assert_int_ge(fd, 0);
		raw_connect_init(&con, V5, "");
		con.props.session_expiry_interval = 300;
		mqtt_props_set(&con.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
		ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf),
						     &ack), 0);
		ck_assert(mqtt_props_has(&ack.props,
				MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER));
		ck_assert(ack.props.assigned_client_identifier.len <
			  sizeof(id));
		memcpy(id, ack.props.assigned_client_identifier.data,
		       ack.props.assigned_client_identifier.len);
		id[ack.props.assigned_client_identifier.len] = 0;
		rsubscribe(fd, V5, 1, "sh/a/#", 1);
		rdisconnect(fd, V5);
		for (int again = 0; again < 3; again++) {
			struct mqtt_packet pkt;

			fd = rconnect(V5, id, false, 300, &present);
			ck_assert_msg(present, "%s: session not found (try %d)",
				      id, again);
			/* The subscription is there: own message back. */
			rpublish(fd, V5, "sh/a/x", id, strlen(id), 0, false, 0);
			ck_assert_int_eq(rrecv(fd, V5, buf, sizeof(buf), &pkt),
					 MQTT_PUBLISH);
			rdisconnect(fd, V5);
		}
	}
}
END_TEST

/*
 * Wills of clients spread over the shards reach a subscriber on
 * whichever shard when their connections break.
 */
START_TEST(test_will_across_shards)
{
	int fds[8], sub;
	bool seen[8] = { false };

	check_ids_spread("w%d-will", 8, 2);
	broker_start_checked(&broker, "shards 2");
	sub = rconnect(V5, "will-sub", true, 0, NULL);
	rsubscribe(sub, V5, 1, "sh/w/#", 1);
	for (int i = 0; i < 8; i++) {
		struct mqtt_connack ack;
		struct mqtt_connect con;
		uint8_t buf[512];
		char id[32], topic[32], pl[8];

		snprintf(id, sizeof(id), "w%d-will", i);
		snprintf(topic, sizeof(topic), "sh/w/%d", i);
		snprintf(pl, sizeof(pl), "%d", i);
		fds[i] = raw_connect(&broker);
		ck_assert_int_ge(fds[i], 0);
		raw_connect_init(&con, i % 2 ? V5 : MQTT_V311, id);
		con.will_flag = true;
		con.will_qos = 1;
		con.will_topic.data = (const uint8_t *)topic;
		con.will_topic.len = strlen(topic);
		con.will_payload.data = (const uint8_t *)pl;
		con.will_payload.len = strlen(pl);
		ck_assert_int_eq(raw_mqtt_connect_ex(fds[i], &con, buf,
						     sizeof(buf), &ack), 0);
	}
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	for (int n = 0; n < 8; n++) {
		struct mqtt_packet pkt;
		uint8_t buf[512];
		long k;

		ck_assert_int_eq(rrecv(sub, V5, buf, sizeof(buf), &pkt),
				 MQTT_PUBLISH);
		k = payload_num(&pkt.u.publish.payload);
		ck_assert(k >= 0 && k < 8 && !seen[k]);
		seen[k] = true;
		raw_send_ack(sub, V5, MQTT_PUBACK, pkt.u.publish.packet_id);
	}
	raw_expect_quiet(sub, QUIET_MS);
	rdisconnect(sub, V5);
}
END_TEST

/*
 * A subscription to an exact topic made on one shard is seen by a
 * publisher on another as soon as SUBACK has come back: 50 fresh topics,
 * each subscribed and at once published to.
 */
START_TEST(test_subscribe_then_publish)
{
	char subid[32], pubid[32], topic[32];
	int sub, pub;

	ids_on_two_shards("%d-sp", 2, subid, pubid, sizeof(subid));
	broker_start_checked(&broker, "shards 2");
	sub = rconnect(V5, subid, true, 0, NULL);
	pub = rconnect(V5, pubid, true, 0, NULL);
	for (int k = 0; k < 50; k++) {
		struct mqtt_packet pkt;
		uint8_t buf[512];

		snprintf(topic, sizeof(topic), "sh/e/%d", k);
		rsubscribe(sub, V5, (uint16_t)(k + 1), topic, 1);
		rpublish_acked(pub, V5, topic, topic, false,
			       (uint16_t)(k + 1), false);
		ck_assert_msg(rrecv(sub, V5, buf, sizeof(buf), &pkt) ==
				      MQTT_PUBLISH, "%s: nothing", topic);
		ck_assert(pkt.u.publish.topic.len == strlen(topic) &&
			  memcmp(pkt.u.publish.topic.data, topic,
				 strlen(topic)) == 0);
		raw_send_ack(sub, V5, MQTT_PUBACK, pkt.u.publish.packet_id);
	}
	/* Unsubscribed: published to at once, nothing arrives. */
	for (int k = 0; k < 50; k++) {
		struct mqtt_packet pkt = { .type = MQTT_UNSUBSCRIBE };
		struct mqtt_bytes f;
		uint8_t buf[512];

		snprintf(topic, sizeof(topic), "sh/e/%d", k);
		f.data = (const uint8_t *)topic;
		f.len = strlen(topic);
		pkt.u.subscribe.packet_id = (uint16_t)(100 + k);
		pkt.u.subscribe.count = 1;
		pkt.u.subscribe.filters = &f;
		ck_assert_int_eq(raw_send_packet(sub, &pkt, V5), 0);
		ck_assert_int_eq(rrecv(sub, V5, buf, sizeof(buf), &pkt),
				 MQTT_UNSUBACK);
		ck_assert_int_eq(pkt.u.suback.packet_id, 100 + k);
		ck_assert_uint_eq(pkt.u.suback.reasons.len, 1);
		ck_assert_uint_eq(pkt.u.suback.reasons.data[0], 0);
		rpublish_acked(pub, V5, topic, topic, false,
			       (uint16_t)(100 + k), true);
	}
	raw_expect_quiet(sub, QUIET_MS);
	rdisconnect(sub, V5);
	rdisconnect(pub, V5);
}
END_TEST

/*
 * Messages for a persistent session whose client is away are queued on
 * its shard while a publisher on another shard sends them, and all come,
 * in order, when it returns (accepted by whichever shard).
 */
START_TEST(test_offline_queue_across_shards)
{
	uint8_t v = VERSION(_i);
	char subid[32], pubid[32];
	struct mqtt_packet pkt;
	uint8_t buf[512];
	bool present;
	int sub, pub;

	ids_on_two_shards("%d-oq", 2, subid, pubid, sizeof(subid));
	broker_start_checked(&broker, "shards 2");
	for (int round = 0; round < 3; round++) {
		/* 3.1.1: Clean Session 0; 5.0: Clean Start 1 then 0. */
		sub = rconnect(v, subid, v == MQTT_V5 && round == 0, 300,
			       &present);
		ck_assert(present == (round > 0));
		if (round == 0)
			rsubscribe(sub, v, 1, "sh/q/#", 1);
		rdisconnect(sub, v);
		pub = rconnect(v, pubid, true, 0, NULL);
		for (int k = 0; k < 50; k++) {
			char pl[8];

			snprintf(pl, sizeof(pl), "%d", k);
			rpublish(pub, v, "sh/q/1", pl, strlen(pl), 1, false,
				 (uint16_t)(k + 1));
			ck_assert_int_eq(rrecv(pub, v, buf, sizeof(buf), &pkt),
					 MQTT_PUBACK);
		}
		rdisconnect(pub, v);
		sub = rconnect(v, subid, false, 300, &present);
		ck_assert(present);
		for (int k = 0; k < 50; k++) {
			ck_assert_msg(rrecv(sub, v, buf, sizeof(buf), &pkt) ==
					      MQTT_PUBLISH,
				      "round %d: message %d missing", round, k);
			ck_assert_int_eq(payload_num(&pkt.u.publish.payload),
					 k);
			raw_send_ack(sub, v, MQTT_PUBACK,
				     pkt.u.publish.packet_id);
		}
		raw_expect_quiet(sub, 100);
		rdisconnect(sub, v);
	}
}
END_TEST

/*
 * A shared member whose session ends with QoS 1 messages unacknowledged:
 * they go to the other member [MQTT 5.0 4.8.2: SHOULD], which lives on
 * another shard (loop index 1; index 0 runs one shard, for comparison).
 */
START_TEST(test_shared_member_leaves)
{
	const char *conf = _i == 0 ? "shards 1" : "shards 2";
	char a[32], b[32];
	bool seen[20] = { false };
	int fa, fb, pub, got_a = 0, seen_n = 0;
	long deadline;

	ids_on_two_shards("%d-leave", 2, a, b, sizeof(a));
	broker_start_checked(&broker, conf);
	fa = rconnect(V5, a, true, 0, NULL);
	fb = rconnect(V5, b, true, 0, NULL);
	rsubscribe(fa, V5, 1, "$share/g/sh/l", 1);
	rsubscribe(fb, V5, 1, "$share/g/sh/l", 1);
	pub = rconnect(V5, "leave-pub", true, 0, NULL);
	for (int k = 0; k < 20; k++) {
		char pl[8];

		snprintf(pl, sizeof(pl), "%d", k);
		rpublish_acked(pub, V5, "sh/l", pl, false, (uint16_t)(k + 1),
			       false);
	}
	/* a takes what it gets and acknowledges nothing. */
	for (;;) {
		struct mqtt_packet pkt;
		uint8_t buf[512];

		if (raw_recv_decoded(fa, buf, sizeof(buf), QUIET_MS, V5,
				     &pkt) != MQTT_PUBLISH)
			break;
		got_a++;
	}
	close(fa); /* session expiry 0: the session ends */
	deadline = harness_now_ms() + WAIT_MS;
	while (seen_n < 20) {
		struct mqtt_packet pkt;
		uint8_t buf[512];
		long k, left = deadline - harness_now_ms();

		ck_assert_msg(left > 0, "%s got %d of 20 (%s had %d)", b,
			      seen_n, a, got_a);
		if (raw_recv_decoded(fb, buf, sizeof(buf), (int)left, V5,
				     &pkt) != MQTT_PUBLISH)
			continue;
		k = payload_num(&pkt.u.publish.payload);
		ck_assert(k >= 0 && k < 20);
		if (!seen[k]) {
			seen[k] = true;
			seen_n++;
		}
		raw_send_ack(fb, V5, MQTT_PUBACK, pkt.u.publish.packet_id);
	}
	rdisconnect(fb, V5);
	rdisconnect(pub, V5);
}
END_TEST

/* ------------------------------------------------------------ runner */

static Suite *shards_suite(void)
{
	Suite *s = suite_create("shards");
	TCase *tc = tcase_create("shards");

	/* Each test starts the broker with the shards it needs. */
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_fan_qos1, 0, 2);
	tcase_add_loop_test(tc, test_fan_qos2, 0, 2);
	tcase_add_test(tc, test_takeover_across_shards);
	tcase_add_loop_test(tc, test_shared_across_shards, 0, 2);
	tcase_add_test(tc, test_retained_across_shards);
	tcase_add_test(tc, test_retained_replaced_across_shards);
	tcase_add_loop_test(tc, test_pipelined_connect, 0, 2);
	tcase_add_test(tc, test_max_connections_across_shards);
	tcase_add_test(tc, test_port_in_use);
	tcase_add_test(tc, test_sys_sums_shards);
	tcase_add_test(tc, test_takeover_race);
	tcase_add_test(tc, test_assigned_id_across_shards);
	tcase_add_test(tc, test_will_across_shards);
	tcase_add_test(tc, test_subscribe_then_publish);
	tcase_add_loop_test(tc, test_offline_queue_across_shards, 0, 2);
	tcase_add_loop_test(tc, test_shared_member_leaves, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(shards_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
