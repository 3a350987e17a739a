/*
 * System test of the durability contract (DESIGN.md, issue #6): with
 * "durability strict", a kill -9 at any moment loses no acknowledged
 * message.
 *
 * Two phases on one cicada and one database: QoS 1 over MQTT 3.1.1, then
 * QoS 2 over MQTT 5.0.  In each, a persistent subscriber holds the topic
 * and stays offline; a raw-socket publisher with a persistent session
 * sends numbered messages at full speed, 50 in flight; meanwhile cicada is
 * killed with SIGKILL after a random 100-600 ms (PRNG with a fixed, logged
 * seed), restarted on the same database, and the publisher reconnects,
 * expects Session Present, and resends what is unacknowledged as the spec
 * requires (PUBLISH with DUP and the same packet id, or PUBREL once PUBREC
 * came).  The publisher records each sequence number whose PUBACK (QoS 1)
 * or PUBCOMP (QoS 2) it received.  After the last kill it completes its
 * in-flight messages, then the subscriber connects and drains its queue.
 *
 * Passes when every acknowledged sequence number was delivered to the
 * subscriber, QoS 2 ones at most once (QoS 1 duplicates are counted, they
 * are allowed), every reconnection found its session, and no ack had a
 * failure reason.  Every loop is bounded by count and time (about 15-40 s
 * in all; a watchdog ends the program after 120 s).
 *
 * Environment: CICADA_BIN; PERSIST_SEED (default 20261206);
 * PERSIST_KILLS, kills per phase (default 12, so 24 in all);
 * PERSIST_NO_KILL=1, a self-check of the test on a broker without
 * persistence: instead of killing cicada, drop the publisher's TCP
 * connection at the same moments (the test must then pass).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"
#include "tests/system/persist.h"

#define WINDOW 50
#define MAX_SEQ 400000u /* per phase: bounds memory and the drain */
#define PHASE_MS 20000L /* kills of one phase must fit in this */
#define SETTLE_MS 5000L /* completing in-flight messages after it */
#define DRAIN_MS 30000L
#define DRAIN_QUIET_MS 3000L /* no packet for this long: drained */
#define RECONNECT_MS 10000L
#define EXPIRY 3600

static struct pbroker pb;
static uint64_t rng_state;
static bool no_kill; /* PERSIST_NO_KILL=1 */

/* xorshift64*: the same kill times for the same seed on every libc. */
static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static long env_long(const char *name, long def, long min, long max)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 10);
	if (*end || v < min || v > max) {
		fprintf(stderr, "%s=%s: ignored (%ld..%ld)\n", name, s, min,
			max);
		return def;
	}
	return v;
}

/* ------------------------------------------------------- packet reader */

struct conn {
	int fd;
	uint8_t v;
	uint8_t in[1 << 16];
	size_t len;
	bool closed; /* EOF or error */
};

/*
 * Wait up to timeout_ms for bytes, read what is there.  Returns false
 * when the connection is closed (c->closed set).
 */
static bool conn_fill(struct conn *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (c->closed)
		return false;
	if (poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
		return true;
	if (c->len == sizeof(c->in))
		return true;
	n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		c->closed = true;
		return false;
	}
	if (n > 0)
		c->len += (size_t)n;
	return true;
}

/*
 * The next whole packet in the buffer, decoded into *pkt (views into a
 * copy in out, cap bytes): its type, 0 when none is complete, -1 on bytes
 * that do not decode.
 */
static int conn_next(struct conn *c, uint8_t *out, size_t cap,
		     struct mqtt_packet *pkt)
{
	size_t plen = 0;
	int rc = mqtt_frame_peek(c->in, c->len, 0, &plen);

	if (rc == MQTT_E_INCOMPLETE)
		return 0;
	if (rc != MQTT_OK || plen > cap)
		return -1;
	memcpy(out, c->in, plen);
	memmove(c->in, c->in + plen, c->len - plen);
	c->len -= plen;
	if (mqtt_decode(out, plen, c->v, pkt) < 0)
		return -1;
	return pkt->type;
}

static bool conn_send_ack(struct conn *c, uint8_t type, uint16_t id)
{
	if (c->closed || raw_send_ack(c->fd, c->v, type, id) < 0) {
		c->closed = true;
		return false;
	}
	return true;
}

/*
 * Raw CONNECT of a persistent session (3.1.1 Clean Session 0; 5.0 Session
 * Expiry 3600, Clean Start when first).  Returns the fd or -1; *present
 * and *recv_max (the broker's Receive Maximum, 65535 if not sent) set.
 */
static int session_connect(const char *id, uint8_t v, bool first,
			   bool *present, int *recv_max)
{
	struct mqtt_connack ack;
	struct mqtt_connect con;
	uint8_t buf[512];
	int fd = raw_connect(&pb.b);

	if (fd < 0)
		return -1;
	raw_connect_init(&con, v, id);
	con.clean_start = v == MQTT_V5 && first;
	if (v == MQTT_V5) {
		con.props.session_expiry_interval = EXPIRY;
		mqtt_props_set(&con.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	}
	if (raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), &ack) != 0) {
		close(fd);
		return -1;
	}
	*present = ack.session_present;
	*recv_max = 65535;
	if (v == MQTT_V5 &&
	    mqtt_props_has(&ack.props, MQTT_PROP_RECEIVE_MAXIMUM) &&
	    ack.props.receive_maximum)
		*recv_max = ack.props.receive_maximum;
	return fd;
}

/* ----------------------------------------------------------- one phase */

struct phase {
	int qos;
	uint8_t v;
	const char *pub_id, *sub_id, *topic;
};

enum { FREE = 0, SENT, RECEIVED }; /* RECEIVED: PUBREC came, PUBREL sent */

struct slot {
	uint32_t seq;
	uint8_t stage;
};

struct stats {
	int kills, reconnects, sessions_lost, unexpected_closes, fail_reasons;
	int resent_publish, resent_pubrel, pubcomp_not_found, protocol_errors;
	uint32_t sent, acked, pubrec;
	uint32_t delivered, dup_deliveries, dup_seqs, out_of_order, bad;
	uint32_t missing;
	bool sub_present, broker_failed;
};

static struct slot slots[65536];
static uint8_t acked[MAX_SEQ], recd[MAX_SEQ];
static uint16_t delivered[MAX_SEQ];
static struct conn pubc, subc;

static void payload_of(char *buf, size_t len, int qos, uint32_t seq)
{
	snprintf(buf, len, "pk%d %08u ........................................",
		 qos, seq);
}

static bool send_publish(const struct phase *ph, uint16_t id, uint32_t seq,
			 bool dup)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };
	char payload[96];

	payload_of(payload, sizeof(payload), ph->qos, seq);
	pkt.u.publish.qos = (uint8_t)ph->qos;
	pkt.u.publish.dup = dup;
	pkt.u.publish.packet_id = id;
	pkt.u.publish.topic.data = (const uint8_t *)ph->topic;
	pkt.u.publish.topic.len = strlen(ph->topic);
	pkt.u.publish.payload.data = (const uint8_t *)payload;
	pkt.u.publish.payload.len = strlen(payload);
	if (pubc.closed || raw_send_packet(pubc.fd, &pkt, ph->v) < 0) {
		pubc.closed = true;
		return false;
	}
	return true;
}

static int cmp_by_seq(const void *a, const void *b)
{
	uint32_t x = slots[*(const uint16_t *)a].seq;
	uint32_t y = slots[*(const uint16_t *)b].seq;

	return x < y ? -1 : x > y;
}

/* Handle what the broker sent the publisher; returns in-flight freed. */
static int pub_process(const struct phase *ph, struct stats *st)
{
	struct mqtt_packet pkt;
	uint8_t buf[1024];
	int type, freed = 0;

	while ((type = conn_next(&pubc, buf, sizeof(buf), &pkt)) != 0) {
		struct slot *s;

		if (type < 0) {
			st->protocol_errors++;
			pubc.closed = true;
			break;
		}
		if (type != MQTT_PUBACK && type != MQTT_PUBREC &&
		    type != MQTT_PUBCOMP) {
			if (type != MQTT_DISCONNECT)
				st->protocol_errors++;
			continue;
		}
		s = &slots[pkt.u.ack.packet_id];
		if (s->stage == FREE ||
		    (type == MQTT_PUBACK) != (ph->qos == 1) ||
		    (type == MQTT_PUBREC && s->stage != SENT) ||
		    (type == MQTT_PUBCOMP && s->stage != RECEIVED)) {
			st->protocol_errors++;
			fprintf(stderr, "  unexpected packet type %d id %u "
				"(stage %d)\n", type, pkt.u.ack.packet_id,
				s->stage);
			continue;
		}
		if (type == MQTT_PUBCOMP && pkt.u.ack.reason == 0x92) {
			/* Packet Identifier not found: right for a PUBREL
			 * resent after the broker completed the exchange. */
			st->pubcomp_not_found++;
		} else if (pkt.u.ack.reason >= 0x80) {
			st->fail_reasons++;
			fprintf(stderr, "  seq %u: packet type %d reason "
				"0x%02x\n", s->seq, type, pkt.u.ack.reason);
			s->stage = FREE;
			freed++;
			continue;
		}
		if (type == MQTT_PUBREC) {
			s->stage = RECEIVED;
			if (!recd[s->seq]++)
				st->pubrec++;
			conn_send_ack(&pubc, MQTT_PUBREL, pkt.u.ack.packet_id);
			continue;
		}
		if (!acked[s->seq]++)
			st->acked++;
		s->stage = FREE;
		freed++;
	}
	return freed;
}

/*
 * (Re)connect the publisher, retrying for RECONNECT_MS, and resend its
 * unacknowledged messages in their original order.  Returns false when
 * the broker cannot be reached.
 */
static bool pub_connect(const struct phase *ph, struct stats *st, bool first,
			int *window)
{
	long deadline = persist_now_ms() + RECONNECT_MS;
	uint16_t ids[WINDOW];
	int n = 0, recv_max = 65535;
	bool present = false;

	if (pubc.fd >= 0)
		close(pubc.fd);
	pubc.fd = -1;
	while (persist_now_ms() < deadline) {
		pubc.fd = session_connect(ph->pub_id, ph->v, first, &present,
					  &recv_max);
		if (pubc.fd >= 0)
			break;
		usleep(20000);
	}
	if (pubc.fd < 0)
		return false;
	pubc.len = 0;
	pubc.closed = false;
	pubc.v = ph->v;
	*window = recv_max < WINDOW ? recv_max : WINDOW;
	if (first)
		return true;
	st->reconnects++;
	if (!present) {
		st->sessions_lost++;
		fprintf(stderr, "  reconnect %d: the publisher's session is "
			"gone (Session Present 0)\n", st->reconnects);
	}
	for (uint32_t id = 1; id < 65536; id++)
		if (slots[id].stage != FREE && n < WINDOW)
			ids[n++] = (uint16_t)id;
	qsort(ids, (size_t)n, sizeof(ids[0]), cmp_by_seq);
	for (int i = 0; i < n; i++) {
		if (slots[ids[i]].stage == SENT) {
			st->resent_publish++;
			send_publish(ph, ids[i], slots[ids[i]].seq, true);
		} else {
			st->resent_pubrel++;
			conn_send_ack(&pubc, MQTT_PUBREL, ids[i]);
		}
	}
	return true;
}

/* Kill cicada, start it again, reconnect the publisher. */
static bool crash_and_recover(const struct phase *ph, struct stats *st,
			      int *window, bool killed)
{
	if (killed && no_kill) {
		/* Self-check: only the publisher's connection drops. */
		close(pubc.fd);
		pubc.fd = -1;
		st->kills++;
	} else if (killed) {
		if (broker_kill(&pb.b) != 0) {
			fprintf(stderr, "  cicada was not running when killed "
				"(it exited by itself)\n");
			st->broker_failed = true;
		}
		st->kills++;
	} else if (pb.b.pid > 0) {
		/* The broker closed on us: is it still there? */
		int status;

		if (waitpid(pb.b.pid, &status, WNOHANG) == pb.b.pid) {
			fprintf(stderr, "  cicada exited by itself "
				"(status 0x%x)\n", status);
			pb.b.pid = 0;
			st->broker_failed = true;
		}
	}
	if (pb.b.pid <= 0 && broker_restart(&pb.b) != 0) {
		fprintf(stderr, "  cicada did not start again on %s\n", pb.db);
		st->broker_failed = true;
		return false;
	}
	if (!pub_connect(ph, st, false, window)) {
		fprintf(stderr, "  the publisher cannot reconnect\n");
		st->broker_failed = true;
		return false;
	}
	return true;
}

/* The publisher at full speed while cicada is killed `kills` times. */
static bool publish_under_kills(const struct phase *ph, struct stats *st,
				int kills)
{
	long end = persist_now_ms() + PHASE_MS, next_kill, settle_end;
	int window = WINDOW, inflight = 0;
	uint16_t last_id = 0;
	uint32_t seq = 0;

	memset(slots, 0, sizeof(slots));
	pubc.fd = -1;
	if (!pub_connect(ph, st, true, &window))
		return false;
	next_kill = persist_now_ms() + 100 + rng() % 501;
	while (st->kills < kills && persist_now_ms() < end) {
		long now;

		while (!pubc.closed && inflight < window && seq < MAX_SEQ) {
			do
				last_id = (uint16_t)(last_id % 65535 + 1);
			while (slots[last_id].stage != FREE);
			slots[last_id].seq = seq;
			slots[last_id].stage = SENT;
			inflight++;
			st->sent++;
			/* On failure it is resent after the reconnection. */
			send_publish(ph, last_id, seq++, false);
		}
		now = persist_now_ms();
		if (now >= next_kill) {
			if (!crash_and_recover(ph, st, &window, true))
				return false;
			next_kill = persist_now_ms() + 100 + rng() % 501;
			continue;
		}
		if (pubc.closed) {
			/* Not killed by us: the broker closed or crashed. */
			st->unexpected_closes++;
			fprintf(stderr, "  the publisher's connection closed "
				"without a kill\n");
			if (!crash_and_recover(ph, st, &window, false))
				return false;
			continue;
		}
		conn_fill(&pubc, (int)(next_kill - now));
		inflight -= pub_process(ph, st);
	}
	/* No new messages: complete those in flight. */
	settle_end = persist_now_ms() + SETTLE_MS;
	while (inflight > 0 && persist_now_ms() < settle_end) {
		if (pubc.closed) {
			st->unexpected_closes++;
			fprintf(stderr, "  the publisher's connection closed "
				"without a kill\n");
			if (!crash_and_recover(ph, st, &window, false))
				return false;
			continue;
		}
		conn_fill(&pubc, 100);
		inflight -= pub_process(ph, st);
	}
	if (inflight)
		fprintf(stderr, "  %d messages still unacknowledged at the "
			"end\n", inflight);
	{
		struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

		raw_send_packet(pubc.fd, &pkt, ph->v);
		raw_wait_closed(pubc.fd, 1000);
		close(pubc.fd);
		pubc.fd = -1;
	}
	return true;
}

/* The subscriber takes everything queued for it. */
static bool drain(const struct phase *ph, struct stats *st)
{
	long t0 = persist_now_ms(), end = t0 + DRAIN_MS, last = t0;
	const char *why = "deadline";
	static uint8_t pending[65536]; /* QoS 2: PUBREC sent, no PUBREL */
	uint32_t next_seq = 0, done = 0;
	int recv_max;

	memset(pending, 0, sizeof(pending));
	subc.fd = session_connect(ph->sub_id, ph->v, false, &st->sub_present,
				  &recv_max);
	if (subc.fd < 0) {
		fprintf(stderr, "  the subscriber cannot connect\n");
		return false;
	}
	subc.v = ph->v;
	subc.len = 0;
	subc.closed = false;
	while (persist_now_ms() < end) {
		struct mqtt_packet pkt;
		uint8_t buf[1024];
		int type;

		/* All acknowledged ones in: 500 ms more for stragglers. */
		if (persist_now_ms() - last >=
		    (done >= st->acked ? 500 : DRAIN_QUIET_MS)) {
			why = done >= st->acked ? "all in" : "quiet";
			break;
		}
		if (!conn_fill(&subc, 50)) {
			why = "connection closed";
			break;
		}
		while ((type = conn_next(&subc, buf, sizeof(buf), &pkt)) != 0) {
			uint32_t seq = UINT32_MAX;
			int qos = -1;
			char want[96] = "";

			last = persist_now_ms();
			if (type == MQTT_PUBREL) {
				pending[pkt.u.ack.packet_id] = 0;
				conn_send_ack(&subc, MQTT_PUBCOMP,
					      pkt.u.ack.packet_id);
				continue;
			}
			if (type != MQTT_PUBLISH) {
				st->protocol_errors++;
				if (type < 0)
					subc.closed = true;
				if (type < 0)
					break;
				continue;
			}
			if (pkt.u.publish.qos == 1)
				conn_send_ack(&subc, MQTT_PUBACK,
					      pkt.u.publish.packet_id);
			if (pkt.u.publish.qos == 2) {
				uint16_t id = pkt.u.publish.packet_id;
				bool again = pending[id] && pkt.u.publish.dup;

				pending[id] = 1;
				conn_send_ack(&subc, MQTT_PUBREC, id);
				if (again) /* a resend, not a new delivery */
					continue;
			}
			if (pkt.u.publish.payload.len < 64 &&
			    sscanf((const char *)pkt.u.publish.payload.data,
				   "pk%d %u", &qos, &seq) == 2 &&
			    seq < MAX_SEQ) {
				payload_of(want, sizeof(want), qos, seq);
			}
			if (seq >= MAX_SEQ || qos != ph->qos ||
			    pkt.u.publish.qos != ph->qos ||
			    pkt.u.publish.topic.len != strlen(ph->topic) ||
			    memcmp(pkt.u.publish.topic.data, ph->topic,
				   strlen(ph->topic)) ||
			    pkt.u.publish.payload.len != strlen(want) ||
			    memcmp(pkt.u.publish.payload.data, want,
				   strlen(want))) {
				if (st->bad++ < 5)
					fprintf(stderr, "  unexpected PUBLISH "
						"QoS %d '%.*s'\n",
						pkt.u.publish.qos,
						(int)pkt.u.publish.payload.len,
						(const char *)
						pkt.u.publish.payload.data);
				continue;
			}
			if (delivered[seq]++) {
				st->dup_deliveries++;
				if (delivered[seq] == 2)
					st->dup_seqs++;
				continue;
			}
			st->delivered++;
			if (seq < next_seq)
				st->out_of_order++;
			next_seq = seq + 1;
			if (acked[seq])
				done++;
		}
		if (subc.closed) {
			why = "connection closed";
			break;
		}
	}
	printf("  drain: %.1f s, ended: %s\n",
	       (double)(persist_now_ms() - t0) / 1000.0, why);
	{
		struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

		raw_send_packet(subc.fd, &pkt, ph->v);
		raw_wait_closed(subc.fd, 1000);
		close(subc.fd);
	}
	return true;
}

/* Subscribe the persistent subscriber, then leave it offline. */
static bool subscribe_offline(const struct phase *ph)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };
	int fd, recv_max, granted;
	bool present;

	fd = session_connect(ph->sub_id, ph->v, true, &present, &recv_max);
	if (fd < 0)
		return false;
	granted = raw_subscribe(fd, ph->v, 1, ph->topic, (uint8_t)ph->qos);
	raw_send_packet(fd, &pkt, ph->v);
	raw_wait_closed(fd, 2000);
	close(fd);
	if (granted != ph->qos)
		fprintf(stderr, "  SUBSCRIBE %s: 0x%02x\n", ph->topic, granted);
	return granted == ph->qos;
}

static bool run_phase(const struct phase *ph, int kills, struct stats *st)
{
	bool ok;
	uint32_t shown = 0;
	long t0 = persist_now_ms();

	memset(st, 0, sizeof(*st));
	memset(acked, 0, sizeof(acked));
	memset(recd, 0, sizeof(recd));
	memset(delivered, 0, sizeof(delivered));
	printf("phase QoS %d, MQTT %s: %d kills, window %d\n", ph->qos,
	       ph->v == MQTT_V5 ? "5.0" : "3.1.1", kills, WINDOW);
	if (!subscribe_offline(ph)) {
		printf("  FAIL: the subscriber could not subscribe\n");
		return false;
	}
	ok = publish_under_kills(ph, st, kills);
	printf("  published: %u sent, %u acknowledged (%s), %u PUBREC; "
	       "%d kills in %.1f s, %d reconnects, resent %d PUBLISH and "
	       "%d PUBREL, %d PUBCOMP 0x92\n", st->sent, st->acked,
	       ph->qos == 1 ? "PUBACK" : "PUBCOMP", st->pubrec, st->kills,
	       (double)(persist_now_ms() - t0) / 1000.0, st->reconnects,
	       st->resent_publish, st->resent_pubrel, st->pubcomp_not_found);
	if (ok && st->kills < kills)
		printf("  only %d of %d kills within %ld s (slow restarts?)\n",
		       st->kills, kills, PHASE_MS / 1000);
	if (st->sent == MAX_SEQ)
		printf("  (all %u sequence numbers used before the last kill: "
		       "the publisher idled after)\n", MAX_SEQ);
	if (ok)
		ok = drain(ph, st);
	for (uint32_t s = 0; s < MAX_SEQ; s++)
		st->missing += acked[s] && !delivered[s];
	printf("  delivered: %u distinct (%u duplicate deliveries of %u "
	       "messages, %u out of order, %u unexpected); subscriber "
	       "session present %d\n", st->delivered, st->dup_deliveries,
	       st->dup_seqs, st->out_of_order, st->bad, st->sub_present);
	printf("  MISSING (acknowledged, never delivered): %u", st->missing);
	for (uint32_t s = 0; s < MAX_SEQ && shown < 10; s++)
		if (acked[s] && !delivered[s])
			printf("%s%u", shown++ ? " " : ": ", s);
	printf("%s\n", st->missing > shown ? " ..." : "");
	if (st->missing) {
		uint32_t pubrec_missing = 0;

		for (uint32_t s = 0; s < MAX_SEQ; s++)
			pubrec_missing += recd[s] && !delivered[s];
		printf("  (of the PUBREC'd ones, %u never delivered)\n",
		       pubrec_missing);
	}
	printf("  sessions lost %d, unexpected closes %d, failure reasons %d, "
	       "protocol errors %d%s\n", st->sessions_lost,
	       st->unexpected_closes, st->fail_reasons, st->protocol_errors,
	       st->broker_failed ? ", BROKER FAILED" : "");
	ok = ok && !st->broker_failed && st->missing == 0 &&
	     st->sessions_lost == 0 && st->sub_present &&
	     st->fail_reasons == 0 && st->protocol_errors == 0 &&
	     st->bad == 0 && st->kills == kills &&
	     (ph->qos == 1 || st->dup_seqs == 0) && st->acked > 0;
	printf("  phase QoS %d: %s\n", ph->qos, ok ? "PASS" : "FAIL");
	return ok;
}

int main(void)
{
	static const struct phase phases[] = {
		{ 1, MQTT_V311, "pk-pub1", "pk-sub1", "pk/q1" },
		{ 2, MQTT_V5, "pk-pub2", "pk-sub2", "pk/q2" },
	};
	long seed = env_long("PERSIST_SEED", 20261206L, 1L, 0x7fffffffL);
	int kills = (int)env_long("PERSIST_KILLS", 12, 1, 1000);
	struct stats st[2];
	bool ok = true;
	long t0 = persist_now_ms();

	no_kill = env_long("PERSIST_NO_KILL", 0, 0, 1) != 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	alarm(120); /* the last resort: the broker dies with us */
	rng_state = (uint64_t)seed * 0x9E3779B97F4A7C15ull;
	printf("persist-kill: seed %ld (PERSIST_SEED), %d kills per phase "
	       "(PERSIST_KILLS), cicada %s%s\n", seed, kills, cicada_bin(),
	       no_kill ? "; PERSIST_NO_KILL: connections dropped instead"
		       : "");
	if (persist_start(&pb, "max_queued_messages 0") != 0) {
		printf("FAIL: cicada did not start (%s)\n", cicada_bin());
		persist_cleanup(&pb, false);
		return EXIT_FAILURE;
	}
	printf("database %s, log %s\n", pb.db, pb.b.log);
	for (size_t i = 0; i < 2; i++)
		ok = run_phase(&phases[i], kills, &st[i]) && ok;
	printf("persist-kill: %s in %.1f s: %d kills; QoS 1: %u acked, %u "
	       "missing, %u duplicates; QoS 2: %u acked, %u missing, %u "
	       "duplicates (seed %ld)\n", ok ? "PASS" : "FAIL",
	       (double)(persist_now_ms() - t0) / 1000.0,
	       st[0].kills + st[1].kills, st[0].acked, st[0].missing,
	       st[0].dup_seqs, st[1].acked, st[1].missing, st[1].dup_seqs,
	       seed);
	if (broker_stop(&pb.b) != 0) {
		printf("FAIL: cicada did not exit cleanly on SIGTERM\n");
		ok = false;
	}
	if (!ok && broker_log_contains(&pb.b, "persistence is not built yet"))
		printf("(this cicada logs 'persistence is not built yet')\n");
	persist_cleanup(&pb, ok);
	if (!ok)
		printf("kept for reading: %s\n", pb.b.log);
	return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
