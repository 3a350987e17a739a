/*
 * Integration tests: retained messages [MQTT-3.3.1-5 ff., MQTT-4.7] against
 * a real cicada, with the Paho C client in 3.1.1 and 5.0 and raw sockets
 * where Paho would hide what the broker sends (CONNACK properties,
 * DISCONNECT reason codes).
 *
 * A test that asserts that nothing arrives publishes a sentinel afterwards
 * on a topic the subscriber also holds and checks that the sentinel is
 * the next message: the broker is one loop, so anything it was going to
 * send would have come first.  No test sleeps except the expiry one.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

#define WAIT_MS 3000

static struct broker_proc broker;

/* A failing test exits its forked child without the teardown. */
static void start_broker(const char *config)
{
	broker_start_checked(&broker, config);
}

static void setup(void)
{
	start_broker(NULL);
}

static void setup_no_retain(void)
{
	start_broker("retain_available false");
}

static void setup_sys(void)
{
	start_broker("sys_interval 1");
}

static void teardown(void)
{
	ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker);
}

static MQTTClient client(const char *id, int version)
{
	MQTTClient c = pc_connect(&broker, id, version, true, 0, NULL);

	ck_assert_msg(c != NULL, "%s (MQTT %d) could not connect", id, version);
	return c;
}

static void subscribe(MQTTClient c, int version, const char *filter, int qos)
{
	ck_assert_int_eq(pc_subscribe(c, version, filter, qos, NULL), qos);
}

static void publish(MQTTClient c, int version, const char *topic,
		    const char *payload, int qos, bool retain)
{
	ck_assert_int_eq(pc_publish_str(c, version, topic, payload, qos,
					retain), 0);
}

/* The next message is exactly this (topic, payload, QoS, retain flag). */
static void expect_msg(MQTTClient c, const char *topic, const char *payload,
		       int qos, int retained)
{
	MQTTClient_message *m;
	char *t;

	ck_assert_msg(pc_receive(c, WAIT_MS, &t, &m) == 1,
		      "expected '%s' on %s, got nothing", payload, topic);
	ck_assert_str_eq(t, topic);
	ck_assert_int_eq(m->payloadlen, (int)strlen(payload));
	ck_assert_mem_eq(m->payload, payload, strlen(payload));
	ck_assert_int_eq(m->qos, qos);
	ck_assert_int_eq(m->retained, retained);
	pc_free(&t, &m);
}

/*
 * Nothing else is queued for sub: pub sends a sentinel on "sentinel" (sub
 * must hold it) and it is the next message sub gets.
 */
static void expect_nothing(MQTTClient sub, MQTTClient pub, int version)
{
	publish(pub, version, "sentinel", "end", 1, false);
	expect_msg(sub, "sentinel", "end", 1, 0);
}

/* Retained, then delivered to a new subscription with the flag set. */
START_TEST(retain_set_delivered_on_subscribe)
{
	int v = _i;
	MQTTClient pub = client("r-pub", v), sub;

	publish(pub, v, "r/a", "one", 1, true);
	sub = client("r-sub", v);
	subscribe(sub, v, "sentinel", 1);
	subscribe(sub, v, "r/a", 1);
	expect_msg(sub, "r/a", "one", 1, 1);
	/* Subscribing again re-sends it [MQTT-3.8.4-3]. */
	subscribe(sub, v, "r/a", 1);
	expect_msg(sub, "r/a", "one", 1, 1);
	expect_nothing(sub, pub, v);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* A second retained message replaces the first [MQTT-3.3.1-5]. */
START_TEST(retain_replace)
{
	int v = _i;
	MQTTClient pub = client("r-pub", v), sub;

	publish(pub, v, "r/a", "one", 1, true);
	publish(pub, v, "r/a", "two", 1, true);
	sub = client("r-sub", v);
	subscribe(sub, v, "sentinel", 1);
	subscribe(sub, v, "r/a", 1);
	expect_msg(sub, "r/a", "two", 1, 1);
	expect_nothing(sub, pub, v);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * An empty retained payload clears the topic [MQTT-3.3.1-10, -11] and is
 * still delivered as normal to current subscribers (with retain 0).
 */
START_TEST(retain_clear_with_empty_payload)
{
	int v = _i;
	MQTTClient pub = client("r-pub", v), live = client("r-live", v), sub;

	publish(pub, v, "r/a", "one", 1, true);
	subscribe(live, v, "r/a", 1);
	expect_msg(live, "r/a", "one", 1, 1);
	publish(pub, v, "r/a", "", 1, true);
	expect_msg(live, "r/a", "", 1, 0);

	sub = client("r-sub", v);
	subscribe(sub, v, "sentinel", 1);
	subscribe(sub, v, "r/a", 1);
	expect_nothing(sub, pub, v);
	pc_close(&sub);
	pc_close(&live);
	pc_close(&pub);
}
END_TEST

/*
 * The next n messages are the retained ones on topics[0..n) (payload =
 * topic, QoS as in qos[]), in any order, each once.
 */
static void expect_retained_set(MQTTClient sub, const char *const *topics,
				const int *qos, int n)
{
	bool seen[8] = { false };

	ck_assert_int_le(n, 8);
	for (int i = 0; i < n; i++) {
		MQTTClient_message *m;
		char *t;
		int k;

		ck_assert_msg(pc_receive(sub, WAIT_MS, &t, &m) == 1,
			      "%d of %d retained messages arrived", i, n);
		for (k = 0; k < n && strcmp(t, topics[k]) != 0; k++)
			;
		ck_assert_msg(k < n, "unexpected retained message on '%s'", t);
		ck_assert_msg(!seen[k], "'%s' delivered twice", t);
		seen[k] = true;
		ck_assert_int_eq(m->payloadlen, (int)strlen(topics[k]));
		ck_assert_mem_eq(m->payload, topics[k], strlen(topics[k]));
		ck_assert_int_eq(m->retained, 1);
		ck_assert_int_eq(m->qos, qos[k]);
		pc_free(&t, &m);
	}
}

/*
 * A wildcard subscription gets every matching retained message and only
 * those [MQTT-4.7]: "w/#" takes the parent "w" too [MQTT-4.7.1-2] and an
 * empty level; "w/+" exactly one level.
 */
START_TEST(retain_wildcard_gets_all_matching)
{
	static const char *const all[] = { "w", "w/a", "w/b/c", "w/d",
					   "w//e" };
	static const int all_qos[] = { 1, 1, 1, 0, 1 };
	static const char *const one[] = { "w/a", "w/d" };
	static const int one_qos[] = { 1, 0 };
	static const char *const others[] = { "x/a", "ww/a", "x/w" };
	int v = _i;
	MQTTClient pub = client("r-pub", v), sub;

	for (int i = 0; i < 5; i++)
		publish(pub, v, all[i], all[i], all_qos[i], true);
	for (int i = 0; i < 3; i++)
		publish(pub, v, others[i], others[i], 1, true);
	sub = client("r-sub", v);
	subscribe(sub, v, "sentinel", 1);
	subscribe(sub, v, "w/#", 2);
	expect_retained_set(sub, all, all_qos, 5);
	expect_nothing(sub, pub, v);

	subscribe(sub, v, "w/+", 1);
	expect_retained_set(sub, one, one_qos, 2);
	expect_nothing(sub, pub, v);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * To an established subscription a retained PUBLISH goes out with retain 0
 * (3.1.1 [MQTT-3.3.1-9]; 5.0 without Retain As Published [MQTT-3.3.1-12]).
 */
START_TEST(retain_live_delivery_has_flag_clear)
{
	int v = _i;
	MQTTClient pub = client("r-pub", v), sub = client("r-sub", v);

	subscribe(sub, v, "r/live", 1);
	publish(pub, v, "r/live", "now", 1, true);
	expect_msg(sub, "r/live", "now", 1, 0);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* Retained QoS is min(message QoS, subscription QoS) [MQTT-3.8.4-6]. */
START_TEST(retain_qos_is_minimum)
{
	int v = _i;
	MQTTClient pub = client("r-pub", v), sub;

	publish(pub, v, "q/2", "two", 2, true);
	publish(pub, v, "q/1", "one", 1, true);
	publish(pub, v, "q/0", "zero", 0, true);
	sub = client("r-sub", v);
	subscribe(sub, v, "sentinel", 1);
	subscribe(sub, v, "q/2", 1);
	expect_msg(sub, "q/2", "two", 1, 1);
	subscribe(sub, v, "q/1", 2);
	expect_msg(sub, "q/1", "one", 1, 1);
	subscribe(sub, v, "q/0", 2);
	expect_msg(sub, "q/0", "zero", 0, 1);
	/* A QoS 0 subscription downgrades a retained QoS 2 message. */
	pc_close(&sub);
	sub = client("r-sub", v);
	subscribe(sub, v, "sentinel", 1);
	subscribe(sub, v, "q/2", 0);
	expect_msg(sub, "q/2", "two", 0, 1);
	expect_nothing(sub, pub, v);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

static int subscribe_rh(MQTTClient c, const char *filter, int rh, int rap)
{
	MQTTSubscribe_options o = MQTTSubscribe_options_initializer;

	o.retainHandling = (unsigned char)rh;
	o.retainAsPublished = (unsigned char)rap;
	return pc_subscribe(c, 5, filter, 1, &o);
}

/* 5.0 Retain Handling 0: retained messages on every SUBSCRIBE. */
START_TEST(retain_handling_0_sends_on_every_subscribe)
{
	MQTTClient pub = client("r-pub", 5), sub;

	publish(pub, 5, "rh/0", "kept", 1, true);
	sub = client("r-sub", 5);
	subscribe(sub, 5, "sentinel", 1);
	ck_assert_int_eq(subscribe_rh(sub, "rh/0", 0, 0), 1);
	expect_msg(sub, "rh/0", "kept", 1, 1);
	ck_assert_int_eq(subscribe_rh(sub, "rh/0", 0, 0), 1);
	expect_msg(sub, "rh/0", "kept", 1, 1);
	expect_nothing(sub, pub, 5);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* 5.0 Retain Handling 1: only when the subscription did not exist. */
START_TEST(retain_handling_1_only_new_subscription)
{
	MQTTClient pub = client("r-pub", 5), sub;
	MQTTResponse r;

	publish(pub, 5, "rh/1", "kept", 1, true);
	sub = client("r-sub", 5);
	subscribe(sub, 5, "sentinel", 1);
	ck_assert_int_eq(subscribe_rh(sub, "rh/1", 1, 0), 1);
	expect_msg(sub, "rh/1", "kept", 1, 1);
	ck_assert_int_eq(subscribe_rh(sub, "rh/1", 1, 0), 1);
	expect_nothing(sub, pub, 5);
	/* After an UNSUBSCRIBE it is new again. */
	r = MQTTClient_unsubscribe5(sub, "rh/1", NULL);
	ck_assert_int_eq(r.reasonCode, 0);
	MQTTResponse_free(r);
	ck_assert_int_eq(subscribe_rh(sub, "rh/1", 1, 0), 1);
	expect_msg(sub, "rh/1", "kept", 1, 1);
	expect_nothing(sub, pub, 5);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* 5.0 Retain Handling 2: never, but live messages still flow. */
START_TEST(retain_handling_2_never)
{
	MQTTClient pub = client("r-pub", 5), sub;

	publish(pub, 5, "rh/2", "kept", 1, true);
	sub = client("r-sub", 5);
	subscribe(sub, 5, "sentinel", 1);
	ck_assert_int_eq(subscribe_rh(sub, "rh/2", 2, 0), 1);
	expect_nothing(sub, pub, 5);
	publish(pub, 5, "rh/2", "live", 1, false);
	expect_msg(sub, "rh/2", "live", 1, 0);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* 5.0 Retain As Published keeps the flag on live delivery [MQTT-3.3.1-13]. */
START_TEST(retain_as_published)
{
	MQTTClient pub = client("r-pub", 5), sub = client("r-sub", 5);

	ck_assert_int_eq(subscribe_rh(sub, "rap/x", 0, 1), 1);
	publish(pub, 5, "rap/x", "ret", 1, true);
	expect_msg(sub, "rap/x", "ret", 1, 1);
	publish(pub, 5, "rap/x", "plain", 1, false);
	expect_msg(sub, "rap/x", "plain", 1, 0);
	/* The same message to a subscription without it: flag cleared. */
	ck_assert_int_eq(subscribe_rh(sub, "rap/x", 2, 0), 1);
	publish(pub, 5, "rap/x", "ret2", 1, true);
	expect_msg(sub, "rap/x", "ret2", 1, 0);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* 5.0 section 3.3.1.3: a shared subscription gets no retained messages. */
START_TEST(retain_not_sent_to_shared_subscription)
{
	MQTTClient pub = client("r-pub", 5), sub;

	publish(pub, 5, "sh/t", "kept", 1, true);
	sub = client("r-sub", 5);
	subscribe(sub, 5, "$share/g/sh/t", 1);
	/* The sentinel goes to the same topic: it reaches the group. */
	publish(pub, 5, "sh/t", "live", 1, false);
	expect_msg(sub, "sh/t", "live", 1, 0);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * 5.0 Message Expiry Interval: an expired retained message is not sent
 * [MQTT-3.3.2-5], and one still alive carries the time it has left
 * [MQTT-3.3.2-6].
 */
START_TEST(retain_message_expiry)
{
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p = {
		.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL,
	};
	MQTTClient pub = client("r-pub", 5), sub;
	MQTTClient_message *m;
	char *t;
	int left;

	p.value.integer4 = 1;
	MQTTProperties_add(&props, &p);
	ck_assert_int_eq(pc_publish(pub, 5, "exp/short", "gone", 4, 1, true,
				    &props), 0);
	MQTTProperties_free(&props);
	p.value.integer4 = 60;
	MQTTProperties_add(&props, &p);
	ck_assert_int_eq(pc_publish(pub, 5, "exp/long", "alive", 5, 1, true,
				    &props), 0);
	MQTTProperties_free(&props);

	usleep(2000 * 1000);
	sub = client("r-sub", 5);
	subscribe(sub, 5, "sentinel", 1);
	subscribe(sub, 5, "exp/#", 1);
	ck_assert_int_eq(pc_receive(sub, WAIT_MS, &t, &m), 1);
	ck_assert_str_eq(t, "exp/long");
	ck_assert_int_eq(m->retained, 1);
	ck_assert(MQTTProperties_hasProperty(&m->properties,
			MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL));
	left = MQTTProperties_getNumericValue(&m->properties,
			MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL);
	ck_assert_msg(left >= 57 && left <= 59,
		      "expiry left %d after 2 s of 60", left);
	pc_free(&t, &m);
	expect_nothing(sub, pub, 5);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * retain_available false: 5.0 CONNACK says Retain Available 0, a retained
 * PUBLISH is answered with DISCONNECT 0x9A (5.0 section 3.3.1.3; the
 * client was told not to [MQTT-3.2.2-14]); 3.1.1 has no way to say it and
 * the connection is closed.  Non-retained messages flow.
 */
START_TEST(retain_unavailable_publish_refused)
{
	uint8_t v = (uint8_t)_i, buf[512];
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };
	struct mqtt_connack ack;
	struct mqtt_connect con;
	MQTTClient pub, sub = client("r-sub", v);
	int fd;

	subscribe(sub, v, "nr/#", 1);
	pub = client("r-pub", v);
	publish(pub, v, "nr/plain", "fine", 1, false);
	expect_msg(sub, "nr/plain", "fine", 1, 0);

	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, v, "r-raw");
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), &ack),
			 0);
	if (v == MQTT_V5) {
		ck_assert(mqtt_props_has(&ack.props,
					 MQTT_PROP_RETAIN_AVAILABLE));
		ck_assert_int_eq(ack.props.retain_available, 0);
	}
	pkt.u.publish.retain = true;
	pkt.u.publish.topic.data = (const uint8_t *)"nr/kept";
	pkt.u.publish.topic.len = 7;
	pkt.u.publish.payload.data = (const uint8_t *)"no";
	pkt.u.publish.payload.len = 2;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, v), 0);
	if (v == MQTT_V5) {
		ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
						  v, &pkt), MQTT_DISCONNECT);
		ck_assert_int_eq(pkt.u.disconnect.reason,
				 MQTT_RC_RETAIN_NOT_SUPPORTED);
	}
	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 0);
	close(fd);

	/* Not delivered, not stored; the others are unaffected. */
	publish(pub, v, "nr/after", "still", 1, false);
	expect_msg(sub, "nr/after", "still", 1, 0);
	pc_close(&sub);
	sub = client("r-sub2", v);
	subscribe(sub, v, "sentinel", 1);
	subscribe(sub, v, "nr/#", 1);
	expect_nothing(sub, pub, v);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* retain_available false: a 5.0 will with retain is refused, 0x9A. */
START_TEST(retain_unavailable_will_retain_refused)
{
	static const uint8_t will_topic[] = "nr/will";
	struct mqtt_connack ack;
	struct mqtt_connect con;
	uint8_t buf[512];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, MQTT_V5, "r-will");
	con.will_flag = true;
	con.will_retain = true;
	con.will_topic.data = will_topic;
	con.will_topic.len = sizeof(will_topic) - 1;
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), &ack),
			 MQTT_RC_RETAIN_NOT_SUPPORTED);
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);
}
END_TEST

/*
 * Wildcards at the first level do not match topics starting with '$'
 * [MQTT-4.7.2-1]: "#" and "+/broker/version" get none of the retained
 * $SYS messages, "$SYS/broker/version" does.
 */
START_TEST(retain_wildcards_skip_dollar_topics)
{
	int v = _i;
	MQTTClient pub = client("r-pub", v), sub;
	MQTTClient_message *m;
	char *t;

	/* Wait for the first $SYS publication (sys_interval 1). */
	sub = client("r-sys", v);
	subscribe(sub, v, "$SYS/broker/version", 0);
	ck_assert_int_eq(pc_receive(sub, WAIT_MS, &t, &m), 1);
	ck_assert_str_eq(t, "$SYS/broker/version");
	pc_free(&t, &m);
	pc_close(&sub);

	sub = client("r-sub", v);
	subscribe(sub, v, "#", 1);
	subscribe(sub, v, "+/broker/version", 1);
	/* The sentinel matches "#"; nothing may come before it. */
	expect_nothing(sub, pub, v);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

static Suite *retain_suite(void)
{
	Suite *s = suite_create("04-retain");
	TCase *tc = tcase_create("retain");
	TCase *tc5 = tcase_create("retain-5.0");
	TCase *off = tcase_create("retain-unavailable");
	TCase *sys = tcase_create("retain-sys");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_loop_test(tc, retain_set_delivered_on_subscribe, 4, 6);
	tcase_add_loop_test(tc, retain_replace, 4, 6);
	tcase_add_loop_test(tc, retain_clear_with_empty_payload, 4, 6);
	tcase_add_loop_test(tc, retain_wildcard_gets_all_matching, 4, 6);
	tcase_add_loop_test(tc, retain_live_delivery_has_flag_clear, 4, 6);
	tcase_add_loop_test(tc, retain_qos_is_minimum, 4, 6);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tc5, setup, teardown);
	tcase_set_timeout(tc5, 15);
	tcase_add_test(tc5, retain_handling_0_sends_on_every_subscribe);
	tcase_add_test(tc5, retain_handling_1_only_new_subscription);
	tcase_add_test(tc5, retain_handling_2_never);
	tcase_add_test(tc5, retain_as_published);
	tcase_add_test(tc5, retain_not_sent_to_shared_subscription);
	tcase_add_test(tc5, retain_message_expiry);
	suite_add_tcase(s, tc5);

	tcase_add_checked_fixture(sys, setup_sys, teardown);
	tcase_set_timeout(sys, 15);
	tcase_add_loop_test(sys, retain_wildcards_skip_dollar_topics, 4, 6);
	suite_add_tcase(s, sys);

	tcase_add_checked_fixture(off, setup_no_retain, teardown);
	tcase_set_timeout(off, 15);
	tcase_add_loop_test(off, retain_unavailable_publish_refused, 4, 6);
	tcase_add_test(off, retain_unavailable_will_retain_refused);
	suite_add_tcase(s, off);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(retain_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
