/*
 * A full disk under durability strict (issue #6): cicada runs with a file
 * size limit (RLIMIT_FSIZE, inherited from this test) that its database
 * soon outgrows.  When a commit fails, cicada must
 *  - say so in its log,
 *  - acknowledge nothing it could not store: a connection whose PUBACK
 *    waited for the failed commit is closed unacknowledged; later QoS 1
 *    messages for a durable session get PUBACK 0x80 (MQTT 5), or the
 *    connection closes (3.1.1); new durable sessions are refused (CONNACK
 *    0x97, or 3 Server unavailable in 3.1.1);
 *  - keep serving what needs no storage (a clean session's QoS 1);
 * and, once restarted without the limit, deliver every message it did
 * acknowledge with reason 0 to the durable subscriber.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"
#include "tests/system/persist.h"

#define WAIT_MS 5000
#define FSIZE_LIMIT (384 * 1024)
#define PAYLOAD_LEN 8192
#define MAX_MSGS 400 /* 3.2 MB of payload: far past the limit */
#define EXPIRY 3600

static struct pbroker pb;

static void set_fsize(rlim_t soft)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = soft;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* A raw MQTT 5 or 3.1.1 connection; durable: session expiry / clean 0. */
static int raw_session(const char *id, uint8_t version, bool durable,
		       int *reason)
{
	struct mqtt_connack ack;
	struct mqtt_connect con;
	uint8_t buf[256];
	int fd = raw_connect(&pb.b);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, version, id);
	if (durable) {
		con.clean_start = false;
		if (version == MQTT_V5) {
			con.props.session_expiry_interval = EXPIRY;
			mqtt_props_set(&con.props,
				       MQTT_PROP_SESSION_EXPIRY_INTERVAL);
		}
	}
	*reason = raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), &ack);
	return fd;
}

static void send_publish(int fd, uint8_t version, const char *topic,
			 uint16_t id, uint32_t seq, bool retain)
{
	static uint8_t payload[PAYLOAD_LEN];
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };

	memset(payload, 'p', sizeof(payload));
	memcpy(payload, &seq, sizeof(seq));
	pkt.u.publish.qos = 1;
	pkt.u.publish.retain = retain;
	pkt.u.publish.packet_id = id;
	pkt.u.publish.topic.data = (const uint8_t *)topic;
	pkt.u.publish.topic.len = strlen(topic);
	pkt.u.publish.payload.data = payload;
	pkt.u.publish.payload.len = sizeof(payload);
	ck_assert_int_eq(raw_send_packet(fd, &pkt, version), 0);
}

/* PUBACK reason for one QoS 1 publish, or -1 when the connection closed. */
static int publish_one(int fd, uint8_t version, const char *topic,
		       uint16_t id, uint32_t seq, bool retain)
{
	static uint8_t buf[PAYLOAD_LEN + 256];
	struct mqtt_packet pkt;
	int type;

	send_publish(fd, version, topic, id, seq, retain);
	type = raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, version, &pkt);
	if (type <= 0)
		return -1;
	ck_assert_int_eq(type, MQTT_PUBACK);
	ck_assert_uint_eq(pkt.u.ack.packet_id, id);
	return pkt.u.ack.reason;
}

/*
 * Run with 1 and 2 shards (_i).  With two, the subscriber's session may
 * live on the other shard: a publisher whose message that shard could not
 * store is then disconnected unacknowledged rather than answered 0x80
 * (its PUBACK was already written, held for the other shard's answer;
 * decisions #13).
 */
START_TEST(test_disk_full)
{
	static bool acked[MAX_MSGS];
	static uint8_t buf[PAYLOAD_LEN + 256];
	uint32_t seq, n_acked = 0, got = 0;
	int fd, pub, rc = 0, closes = 0, reason;
	bool refused = false;
	char conf[128];

	/* Only errors in the log: it shares the limit with the database. */
	set_fsize(FSIZE_LIMIT);
	snprintf(conf, sizeof(conf),
		 "log_type none\nlog_type error\nshards %d\n", _i);
	ck_assert_int_eq(persist_start(&pb, conf), 0);

	fd = raw_session("df-sub", MQTT_V5, true, &reason);
	ck_assert_int_eq(reason, 0);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "df/#", 1), 1);
	close(fd); /* offline: everything for it must be stored */

	pub = raw_session("df-pub", MQTT_V5, false, &reason);
	for (seq = 0; seq < MAX_MSGS && !refused && (_i == 1 || closes < 3);
	     seq++) {
		rc = publish_one(pub, MQTT_V5, "df/t", (uint16_t)(seq % 1000 + 1),
				 seq, false);
		if (rc == 0) {
			acked[seq] = true;
			n_acked++;
		} else if (rc < 0) {
			/* Its PUBACK waited for the commit that failed. */
			closes++;
			close(pub);
			pub = raw_session("df-pub", MQTT_V5, false, &reason);
			ck_assert_int_eq(reason, 0);
		} else {
			ck_assert_int_eq(rc, MQTT_RC_UNSPECIFIED_ERROR);
			refused = true;
		}
	}
	printf("  %u acknowledged, %d connections closed unacknowledged, "
	       "refused with 0x80 after %u publishes\n", n_acked, closes, seq);
	ck_assert_msg(refused || (_i > 1 && closes),
		      "no PUBACK 0x80 within %d publishes of %d B",
		      MAX_MSGS, PAYLOAD_LEN);
	ck_assert_uint_gt(n_acked, 0);
	ck_assert(broker_wait_log(&pb.b, "persistence failed", WAIT_MS));

	/* A retained message needs storage too. */
	ck_assert_int_eq(publish_one(pub, MQTT_V5, "df-r/t", 7, 0, true),
			 MQTT_RC_UNSPECIFIED_ERROR);
	/* What needs no storage still works: a clean session's QoS 1. */
	fd = raw_session("df-live", MQTT_V5, false, &reason);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "live/t", 1), 1);
	ck_assert_int_eq(publish_one(pub, MQTT_V5, "live/t", 8, 0, false), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &(struct mqtt_packet){ 0 }),
			 MQTT_PUBLISH);
	close(fd);
	close(pub);
	/* 3.1.1 cannot be told: its connection closes unacknowledged. */
	pub = raw_session("df-pub3", MQTT_V311, false, &reason);
	ck_assert_int_eq(reason, 0);
	ck_assert_int_eq(publish_one(pub, MQTT_V311, "df/t", 9, 0, false), -1);
	close(pub);
	/* No new durable session. */
	fd = raw_session("df-new5", MQTT_V5, true, &reason);
	ck_assert_int_eq(reason, MQTT_RC_QUOTA_EXCEEDED);
	close(fd);
	fd = raw_session("df-new3", MQTT_V311, true, &reason);
	ck_assert_int_eq(reason, MQTT_V3_CONNACK_REFUSED_SERVER_UNAVAILABLE);
	close(fd);

	/* Room again: whatever was acknowledged with 0 is still there. */
	set_fsize(RLIM_INFINITY);
	ck_assert_int_eq(persist_restart(&pb, true, NULL), 0);
	fd = raw_session("df-sub", MQTT_V5, true, &reason);
	ck_assert_int_eq(reason, 0);
	for (;;) {
		struct mqtt_packet pkt;
		uint32_t s;
		int type = raw_recv_decoded(fd, buf, sizeof(buf), 1000,
					    MQTT_V5, &pkt);

		if (type != MQTT_PUBLISH)
			break;
		ck_assert_uint_eq(pkt.u.publish.payload.len, PAYLOAD_LEN);
		memcpy(&s, pkt.u.publish.payload.data, sizeof(s));
		ck_assert_uint_lt(s, MAX_MSGS);
		if (acked[s]) {
			acked[s] = false;
			got++;
		}
		raw_send_ack(fd, MQTT_V5, MQTT_PUBACK, pkt.u.publish.packet_id);
	}
	close(fd);
	printf("  after the restart: %u of %u acknowledged messages "
	       "delivered\n", got, n_acked);
	ck_assert_uint_eq(got, n_acked);
	ck_assert_int_eq(broker_stop(&pb.b), 0);
	persist_cleanup(&pb, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("persist-full");
	TCase *tc = tcase_create("disk full");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_disk_full, 1, 3);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
