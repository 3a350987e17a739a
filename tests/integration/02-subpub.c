/*
 * Integration: subscribe and publish end to end through a real cicada,
 * with Paho clients in MQTT 3.1.1 and 5.0.  QoS 0/1/2 delivery and
 * downgrade, '+' and '#', '$' topics, overlapping subscriptions (one copy,
 * highest QoS, every Subscription Identifier), subscription replacement,
 * UNSUBSCRIBE, a bad filter refused alone, shared subscriptions, No Local,
 * Retain As Published, fan-out (to one kind of subscriber and to every
 * kind at once) and ordering.  Each test gets a fresh
 * broker (checked fixture).
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

/* Loop tests run index 0 as MQTT 3.1.1 and index 1 as MQTT 5.0. */
#define VERSION(i) ((i) == 0 ? MQTT_V311 : MQTT_V5)
#define WAIT_MS 3000
/* How long "nothing arrives" is watched for. */
#define QUIET_MS 200

static struct broker_proc broker;

static void setup(void)
{
	broker_start_checked(&broker, NULL);
}

static void teardown(void)
{
	if (broker.pid > 0)
		ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker); /* kept when a test fails */
}

/*
 * Paho's MQTTClient_waitForCompletion() sleeps in 100 ms steps.  Instead
 * the publisher polls its token while receiving with a short timeout,
 * which drives the library; messages that this receives for the
 * publisher (a subscriber too) wait here, in order, for recv_msg().
 */
#define STASH_MAX 64

static struct {
	MQTTClient c;
	char *topic;
	MQTTClient_message *msg;
} stash[STASH_MAX];
static int stash_len;

/* pc_receive() that first hands out what publishing stashed for c. */
static int recv_msg(MQTTClient c, int timeout_ms, char **topic,
		    MQTTClient_message **msg)
{
	for (int i = 0; i < stash_len; i++) {
		if (stash[i].c != c)
			continue;
		*topic = stash[i].topic;
		*msg = stash[i].msg;
		memmove(&stash[i], &stash[i + 1],
			(size_t)(stash_len - i - 1) * sizeof(stash[0]));
		stash_len--;
		return 1;
	}
	return pc_receive(c, timeout_ms, topic, msg);
}

static bool token_pending(MQTTClient c, MQTTClient_deliveryToken tok)
{
	MQTTClient_deliveryToken *toks = NULL;
	bool found = false;

	ck_assert_int_eq(MQTTClient_getPendingDeliveryTokens(c, &toks),
			 MQTTCLIENT_SUCCESS);
	for (int i = 0; toks && toks[i] != -1; i++)
		found |= toks[i] == tok;
	MQTTClient_free(toks);
	return found;
}

/* Publish through Paho and, for QoS 1 and 2, wait until the flow ends. */
static void publish_bytes(MQTTClient c, int version, const char *topic,
			  const void *payload, int len, int qos, bool retain)
{
	MQTTClient_message m = MQTTClient_message_initializer;
	MQTTClient_deliveryToken tok = 0;

	m.payload = (void *)payload;
	m.payloadlen = len;
	m.qos = qos;
	m.retained = retain;
	if (version == MQTT_V5) {
		MQTTResponse r = MQTTClient_publishMessage5(c, topic, &m, &tok);

		ck_assert_int_eq(r.reasonCode, MQTTCLIENT_SUCCESS);
		MQTTResponse_free(r);
	} else {
		ck_assert_int_eq(MQTTClient_publishMessage(c, topic, &m, &tok),
				 MQTTCLIENT_SUCCESS);
	}
	for (int i = 0; qos > 0 && token_pending(c, tok); i++) {
		MQTTClient_message *msg = NULL;
		char *t = NULL;
		int tlen;

		ck_assert_msg(i < 5000, "publish to %s not completed", topic);
		ck_assert_int_eq(MQTTClient_receive(c, &t, &tlen, &msg, 1),
				 MQTTCLIENT_SUCCESS);
		if (!msg)
			continue;
		ck_assert_int_lt(stash_len, STASH_MAX);
		stash[stash_len].c = c;
		stash[stash_len].topic = t;
		stash[stash_len].msg = msg;
		stash_len++;
	}
}

/* A clean-session Paho client of the given version. */
static MQTTClient client(int version, const char *id)
{
	MQTTClient c = pc_connect(&broker, id, version, true, 0, NULL);

	ck_assert_msg(c != NULL, "client %s (version %d) cannot connect", id,
		      version);
	return c;
}

static void subscribe(MQTTClient c, int version, const char *filter, int qos)
{
	ck_assert_int_eq(pc_subscribe(c, version, filter, qos, NULL), qos);
}

/* 5.0 SUBSCRIBE with a Subscription Identifier and options. */
static void subscribe5(MQTTClient c, const char *filter, int qos,
		       uint32_t sub_id, const MQTTSubscribe_options *opts)
{
	MQTTSubscribe_options o = MQTTSubscribe_options_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTResponse r;

	if (opts)
		o = *opts;
	if (sub_id) {
		MQTTProperty p = {
			.identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER,
		};

		p.value.integer4 = sub_id;
		MQTTProperties_add(&props, &p);
	}
	r = MQTTClient_subscribe5(c, filter, qos, &o, &props);
	ck_assert_int_eq(r.reasonCode, qos);
	MQTTResponse_free(r);
	MQTTProperties_free(&props);
}

static void publish(MQTTClient c, int version, const char *topic,
		    const char *payload, int qos, bool retain)
{
	publish_bytes(c, version, topic, payload, (int)strlen(payload), qos,
		      retain);
}

/* The next message is this one; returned for further checks (free it). */
static MQTTClient_message *expect_msg(MQTTClient c, const char *topic,
				      const char *payload, int qos)
{
	MQTTClient_message *msg = NULL;
	char *t = NULL;
	int len = (int)strlen(payload);

	ck_assert_msg(recv_msg(c, WAIT_MS, &t, &msg) == 1,
		      "no message on %s (wanted \"%s\")", topic, payload);
	ck_assert_str_eq(t, topic);
	ck_assert_int_eq(msg->payloadlen, len);
	ck_assert_mem_eq(msg->payload, payload, (size_t)len);
	ck_assert_int_eq(msg->qos, qos);
	ck_assert_int_eq(msg->dup, 0);
	MQTTClient_free(t);
	return msg;
}

static void expect_msg_only(MQTTClient c, const char *topic,
			    const char *payload, int qos)
{
	MQTTClient_message *msg = expect_msg(c, topic, payload, qos);

	ck_assert_int_eq(msg->retained, 0);
	MQTTClient_freeMessage(&msg);
}

/* Nothing more arrives for any of these clients within QUIET_MS. */
static void expect_none_all(const MQTTClient *cs, int n)
{
	usleep(QUIET_MS * 1000);
	for (int i = 0; i < n; i++) {
		MQTTClient_message *msg = NULL;
		char *t = NULL;
		int rc = recv_msg(cs[i], 20, &t, &msg);

		ck_assert_msg(rc == 0, "unexpected message on %s",
			      t ? t : "?");
		pc_free(&t, &msg);
	}
}

static void expect_none(MQTTClient c)
{
	expect_none_all(&c, 1);
}

/* The Subscription Identifiers a 5.0 message carries, sorted. */
static int sub_ids(MQTTClient_message *msg, int *ids, int cap)
{
	int n = MQTTProperties_propertyCount(&msg->properties,
		MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER);

	ck_assert_int_le(n, cap);
	for (int i = 0; i < n; i++)
		ids[i] = MQTTProperties_getNumericValueAt(&msg->properties,
			MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, i);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			int tmp = ids[j];

			ids[j] = ids[j - 1];
			ids[j - 1] = tmp;
		}
	return n;
}

/* ------------------------------------------------------------ tests */

/*
 * QoS 0, 1 and 2 end to end: subscribed and published at the same QoS,
 * the message arrives once with that QoS, payload and topic unchanged.
 * Index: version (0-2: 3.1.1, 3-5: 5.0) x QoS.
 */
START_TEST(test_qos_end_to_end)
{
	int v = _i < 3 ? MQTT_V311 : MQTT_V5, qos = _i % 3;
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");
	char payload[32];

	snprintf(payload, sizeof(payload), "qos %d payload", qos);
	subscribe(sub, v, "e2e/t", qos);
	publish(pub, v, "e2e/t", payload, qos, false);
	expect_msg_only(sub, "e2e/t", payload, qos);
	/* an empty payload is a message too */
	publish(pub, v, "e2e/t", "", qos, false);
	expect_msg_only(sub, "e2e/t", "", qos);
	expect_none(sub);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * Delivered QoS is the minimum of the published QoS and the granted one
 * [MQTT-3.8.4-8 (5.0)]: published at 2, subscribers at 0 and 1 get 0 and
 * 1; published at 0, a QoS 2 subscriber gets 0.
 */
START_TEST(test_qos_downgrade)
{
	int v = VERSION(_i);
	MQTTClient s0 = client(v, "s0"), s1 = client(v, "s1");
	MQTTClient s2 = client(v, "s2"), pub = client(v, "pub");

	subscribe(s0, v, "dg/t", 0);
	subscribe(s1, v, "dg/t", 1);
	subscribe(s2, v, "dg/t", 2);
	publish(pub, v, "dg/t", "two", 2, false);
	expect_msg_only(s0, "dg/t", "two", 0);
	expect_msg_only(s1, "dg/t", "two", 1);
	expect_msg_only(s2, "dg/t", "two", 2);
	publish(pub, v, "dg/t", "zero", 0, false);
	expect_msg_only(s0, "dg/t", "zero", 0);
	expect_msg_only(s1, "dg/t", "zero", 0);
	expect_msg_only(s2, "dg/t", "zero", 0);
	pc_close(&s0);
	pc_close(&s1);
	pc_close(&s2);
	pc_close(&pub);
}
END_TEST

/* Publish to each topic in turn; the subscriber gets exactly the matches. */
static void check_matches(int v, const char *filter, const char *const *match,
			  const char *const *miss)
{
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");

	subscribe(sub, v, filter, 1);
	for (size_t i = 0; miss[i]; i++)
		publish(pub, v, miss[i], "miss", 1, false);
	for (size_t i = 0; match[i]; i++)
		publish(pub, v, match[i], match[i], 1, false);
	/* in order, and none of the misses before them [MQTT-4.6.0-6] */
	for (size_t i = 0; match[i]; i++)
		expect_msg_only(sub, match[i], match[i], 1);
	expect_none(sub);
	pc_close(&sub);
	pc_close(&pub);
}

/* '+' matches exactly one level, an empty one included [MQTT-4.7.1-3]. */
START_TEST(test_wildcard_plus)
{
	static const char *const match[] = { "a/b/c", "a//c", "a/x y/c",
					     NULL };
	static const char *const miss[] = { "a/b/d", "a/b/c/d", "a/c",
					    "b/b/c", "/a/b/c", NULL };

	check_matches(VERSION(_i), "a/+/c", match, miss);
}
END_TEST

/*
 * '#' matches the parent level and any number of children
 * [MQTT-4.7.1-2]; "+/+" needs exactly two levels.
 */
START_TEST(test_wildcard_hash)
{
	static const char *const match[] = { "h", "h/1", "h/1/2/3", "h/",
					     NULL };
	static const char *const miss[] = { "hh", "x/h", "/h", NULL };
	static const char *const match2[] = { "x/y", "/y", "x/", NULL };
	static const char *const miss2[] = { "x", "x/y/z", NULL };

	check_matches(VERSION(_i), "h/#", match, miss);
	check_matches(VERSION(_i), "+/+", match2, miss2);
}
END_TEST

/*
 * Topics starting with '$' are not matched by filters starting with a
 * wildcard [MQTT-4.7.2-1], but are by filters naming them.
 */
START_TEST(test_dollar_topics)
{
	int v = VERSION(_i);
	MQTTClient wild = client(v, "wild"), dollar = client(v, "dollar");
	MQTTClient pub = client(v, "pub");

	subscribe(wild, v, "#", 1);
	subscribe(wild, v, "+/x", 1);
	subscribe(wild, v, "+/+", 1);
	subscribe(dollar, v, "$app/#", 1);
	publish(pub, v, "$app/x", "dollar", 1, false);
	publish(pub, v, "plain/x", "plain", 1, false);
	/* overlapping "#", "+/x" and "+/+": one copy of plain/x only */
	expect_msg_only(wild, "plain/x", "plain", 1);
	expect_none(wild);
	expect_msg_only(dollar, "$app/x", "dollar", 1);
	expect_none(dollar);
	pc_close(&wild);
	pc_close(&dollar);
	pc_close(&pub);
}
END_TEST

/*
 * Overlapping subscriptions of one client: one copy at the highest QoS of
 * the matching ones [MQTT-3.3.5-1 (3.1.1), MQTT-3.3.4-2 (5.0)], and in 5.0
 * carrying the Subscription Identifiers of all of them [MQTT-3.3.4-4];
 * a topic matching only one gets that one's QoS and identifier.
 */
START_TEST(test_overlapping_subscriptions)
{
	int v = VERSION(_i);
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");
	MQTTClient_message *msg;
	int ids[4];

	if (v == MQTT_V5) {
		subscribe5(sub, "ov/#", 1, 1, NULL);
		subscribe5(sub, "ov/+", 2, 2, NULL);
	} else {
		subscribe(sub, v, "ov/#", 1);
		subscribe(sub, v, "ov/+", 2);
	}
	publish(pub, v, "ov/a", "both", 2, false);
	msg = expect_msg(sub, "ov/a", "both", 2);
	if (v == MQTT_V5) {
		ck_assert_int_eq(sub_ids(msg, ids, 4), 2);
		ck_assert_int_eq(ids[0], 1);
		ck_assert_int_eq(ids[1], 2);
	}
	MQTTClient_freeMessage(&msg);

	/* a second copy of a message would come before the next one */
	publish(pub, v, "ov/a", "both at 1", 1, false);
	expect_msg_only(sub, "ov/a", "both at 1", 1);

	publish(pub, v, "ov/a/b", "one", 2, false);
	msg = expect_msg(sub, "ov/a/b", "one", 1);
	if (v == MQTT_V5) {
		ck_assert_int_eq(sub_ids(msg, ids, 4), 1);
		ck_assert_int_eq(ids[0], 1);
	}
	MQTTClient_freeMessage(&msg);
	expect_none(sub);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * The same filter subscribed again replaces the subscription
 * [MQTT-3.8.4-3]: its new QoS applies, one copy is delivered, and in 5.0
 * the new Subscription Identifier replaces the old one.
 */
START_TEST(test_subscription_replaced)
{
	int v = VERSION(_i);
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");
	MQTTClient_message *msg;
	int ids[4];

	if (v == MQTT_V5) {
		subscribe5(sub, "rep/t", 0, 5, NULL);
		subscribe5(sub, "rep/t", 2, 7, NULL);
	} else {
		subscribe(sub, v, "rep/t", 0);
		subscribe(sub, v, "rep/t", 2);
	}
	publish(pub, v, "rep/t", "once", 2, false);
	msg = expect_msg(sub, "rep/t", "once", 2);
	if (v == MQTT_V5) {
		ck_assert_int_eq(sub_ids(msg, ids, 4), 1);
		ck_assert_int_eq(ids[0], 7);
	}
	MQTTClient_freeMessage(&msg);
	expect_none(sub);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * UNSUBSCRIBE stops delivery for that filter only; 5.0 UNSUBACK says 0x00
 * for a filter held and 0x11 No subscription existed for one that was not
 * [MQTT-3.11.3 (5.0)].
 */
START_TEST(test_unsubscribe)
{
	int v = VERSION(_i);
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");

	subscribe(sub, v, "un/t", 1);
	subscribe(sub, v, "un/x", 1);
	subscribe(sub, v, "un/other", 1);
	publish(pub, v, "un/t", "before", 1, false);
	expect_msg_only(sub, "un/t", "before", 1);

	if (v == MQTT_V5) {
		MQTTResponse r = MQTTClient_unsubscribe5(sub, "un/t", NULL);
		char *both[] = { "un/never", "un/x" };

		ck_assert_int_eq(r.reasonCode, MQTT_RC_SUCCESS);
		MQTTResponse_free(r);
		r = MQTTClient_unsubscribe5(sub, "un/never", NULL);
		ck_assert_int_eq(r.reasonCode,
				 MQTT_RC_NO_SUBSCRIPTION_EXISTED);
		MQTTResponse_free(r);
		/* several filters: one reason code each */
		r = MQTTClient_unsubscribeMany5(sub, 2, both, NULL);
		ck_assert_int_eq(r.reasonCodeCount, 2);
		ck_assert_int_eq(r.reasonCodes[0],
				 MQTT_RC_NO_SUBSCRIPTION_EXISTED);
		ck_assert_int_eq(r.reasonCodes[1], MQTT_RC_SUCCESS);
		MQTTResponse_free(r);
	} else {
		ck_assert_int_eq(MQTTClient_unsubscribe(sub, "un/t"),
				 MQTTCLIENT_SUCCESS);
		ck_assert_int_eq(MQTTClient_unsubscribe(sub, "un/x"),
				 MQTTCLIENT_SUCCESS);
		/* 3.1.1 answers UNSUBACK even for a filter not held
		 * [MQTT-3.10.4-5] */
		ck_assert_int_eq(MQTTClient_unsubscribe(sub, "un/never"),
				 MQTTCLIENT_SUCCESS);
	}
	publish(pub, v, "un/t", "after", 1, false);
	publish(pub, v, "un/x", "after", 1, false);
	publish(pub, v, "un/other", "other", 1, false);
	expect_msg_only(sub, "un/other", "other", 1);
	expect_none(sub);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * Bad filters in a SUBSCRIBE are refused one by one: 0x80 in 3.1.1
 * [MQTT-3.8.4-5 ff.], 0x8F Topic Filter invalid in 5.0, the valid filters
 * of the same packet granted and working.
 */
START_TEST(test_invalid_filter)
{
	int v = VERSION(_i);
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");
	char *filters[] = { "a/#/b", "v/1", "sp+rt", "#/x", "v/2" };
	int qos[] = { 1, 1, 1, 1, 2 };
	const int want[] = { -1, 1, -1, -1, 2 };
	int bad = v == MQTT_V5 ? MQTT_RC_TOPIC_FILTER_INVALID : 0x80;

	if (v == MQTT_V5) {
		MQTTResponse r = MQTTClient_subscribeMany5(sub, 5, filters, qos,
							   NULL, NULL);

		ck_assert_int_eq(r.reasonCodeCount, 5);
		for (int i = 0; i < 5; i++)
			ck_assert_int_eq(r.reasonCodes[i],
					 want[i] < 0 ? bad : want[i]);
		MQTTResponse_free(r);
	} else {
		ck_assert_int_eq(MQTTClient_subscribeMany(sub, 5, filters, qos),
				 MQTTCLIENT_SUCCESS);
		for (int i = 0; i < 5; i++)
			ck_assert_int_eq(qos[i], want[i] < 0 ? bad : want[i]);
	}
	publish(pub, v, "a/x/b", "nope", 1, false);
	publish(pub, v, "v/1", "one", 1, false);
	publish(pub, v, "v/2", "two", 2, false);
	expect_msg_only(sub, "v/1", "one", 1);
	expect_msg_only(sub, "v/2", "two", 2);
	expect_none(sub);
	ck_assert(MQTTClient_isConnected(sub));
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/*
 * Shared subscription $share/g/sh/t with two members: each of 10 messages
 * goes to exactly one member (5.0 section 4.8.2), both get some, and an
 * ordinary subscriber of sh/t still gets all 10.  3.1.1 clients share
 * the same way (as with mosquitto).
 */
START_TEST(test_shared_subscription)
{
	int v = VERSION(_i);
	MQTTClient m[2] = { client(v, "m1"), client(v, "m2") };
	MQTTClient plain = client(v, "plain"), pub = client(v, "pub");
	int seen[10] = { 0 }, per_member[2] = { 0 }, total = 0;

	subscribe(m[0], v, "$share/g/sh/t", 1);
	subscribe(m[1], v, "$share/g/sh/t", 1);
	subscribe(plain, v, "sh/t", 1);
	for (int i = 0; i < 10; i++) {
		char payload[8];

		snprintf(payload, sizeof(payload), "%d", i);
		publish(pub, v, "sh/t", payload, 1, false);
	}
	for (int round = 0; total < 10 && round < 40; round++) {
		for (int k = 0; k < 2; k++) {
			MQTTClient_message *msg = NULL;
			char *t = NULL;
			int rc = recv_msg(m[k], 50, &t, &msg);
			int n;

			ck_assert_int_ge(rc, 0);
			if (rc == 0)
				continue;
			/* delivered on the topic published, not the filter */
			ck_assert_str_eq(t, "sh/t");
			ck_assert_int_eq(msg->qos, 1);
			ck_assert_int_eq(msg->payloadlen, 1);
			n = ((char *)msg->payload)[0] - '0';
			ck_assert(n >= 0 && n < 10);
			seen[n]++;
			per_member[k]++;
			total++;
			pc_free(&t, &msg);
		}
	}
	ck_assert_int_eq(total, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_msg(seen[i] == 1, "message %d seen %d times", i,
			      seen[i]);
	ck_assert_int_gt(per_member[0], 0);
	ck_assert_int_gt(per_member[1], 0);
	for (int i = 0; i < 10; i++) {
		char payload[8];

		snprintf(payload, sizeof(payload), "%d", i);
		expect_msg_only(plain, "sh/t", payload, 1);
	}
	{
		MQTTClient all[3] = { m[0], m[1], plain };

		expect_none_all(all, 3);
	}
	pc_close(&m[0]);
	pc_close(&m[1]);
	pc_close(&plain);
	pc_close(&pub);
}
END_TEST

/*
 * No Local (5.0): a subscription with it does not get the client's own
 * messages [MQTT-3.8.3-3], but does get everyone else's; another
 * subscriber is unaffected.
 */
START_TEST(test_no_local)
{
	MQTTSubscribe_options nl = MQTTSubscribe_options_initializer;
	MQTTClient a = client(MQTT_V5, "a"), b = client(MQTT_V5, "b");

	nl.noLocal = 1;
	subscribe5(a, "nl/t", 1, 0, &nl);
	subscribe5(b, "nl/t", 1, 0, NULL);
	publish(a, MQTT_V5, "nl/t", "from a", 1, false);
	expect_msg_only(b, "nl/t", "from a", 1);
	/* "from a" back to a would come before "from b" */
	publish(b, MQTT_V5, "nl/t", "from b", 1, false);
	expect_msg_only(a, "nl/t", "from b", 1);
	/* b has no No Local: it gets its own message */
	expect_msg_only(b, "nl/t", "from b", 1);
	expect_none(a);
	pc_close(&a);
	pc_close(&b);
}
END_TEST

/*
 * Retain As Published (5.0): a retained message forwarded to an existing
 * subscription keeps RETAIN 1 only where the option is set
 * [MQTT-3.3.1-12, -13].
 */
START_TEST(test_retain_as_published)
{
	MQTTSubscribe_options rap = MQTTSubscribe_options_initializer;
	MQTTClient a = client(MQTT_V5, "a"), b = client(MQTT_V5, "b");
	MQTTClient pub = client(MQTT_V5, "pub");
	MQTTClient_message *msg;

	rap.retainAsPublished = 1;
	subscribe5(a, "rap/t", 1, 0, &rap);
	subscribe5(b, "rap/t", 1, 0, NULL);
	publish(pub, MQTT_V5, "rap/t", "kept", 1, true);
	msg = expect_msg(a, "rap/t", "kept", 1);
	ck_assert_int_eq(msg->retained, 1);
	MQTTClient_freeMessage(&msg);
	msg = expect_msg(b, "rap/t", "kept", 1);
	ck_assert_int_eq(msg->retained, 0);
	MQTTClient_freeMessage(&msg);

	publish(pub, MQTT_V5, "rap/t", "not kept", 1, false);
	expect_msg_only(a, "rap/t", "not kept", 1);
	expect_msg_only(b, "rap/t", "not kept", 1);
	/* clear the retained message for the broker's clean exit */
	publish_bytes(pub, MQTT_V5, "rap/t", "", 0, 1, true);
	pc_close(&a);
	pc_close(&b);
	pc_close(&pub);
}
END_TEST

/*
 * One SUBSCRIBE with 100 filters gets 100 reason codes in order
 * [MQTT-3.8.4-6 (3.1.1), MQTT-3.9.3-1 (5.0)], one UNSUBSCRIBE with the
 * same 100 removes them all.
 */
START_TEST(test_many_filters)
{
	int v = VERSION(_i);
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");
	char *filters[100];
	int qos[100];

	for (int i = 0; i < 100; i++) {
		filters[i] = malloc(16);
		ck_assert_ptr_nonnull(filters[i]);
		snprintf(filters[i], 16, "many/%d", i);
		qos[i] = i % 3;
	}
	if (v == MQTT_V5) {
		MQTTResponse r = MQTTClient_subscribeMany5(sub, 100, filters,
							   qos, NULL, NULL);

		ck_assert_int_eq(r.reasonCodeCount, 100);
		for (int i = 0; i < 100; i++)
			ck_assert_int_eq(r.reasonCodes[i], i % 3);
		MQTTResponse_free(r);
	} else {
		ck_assert_int_eq(MQTTClient_subscribeMany(sub, 100, filters,
							  qos),
				 MQTTCLIENT_SUCCESS);
		for (int i = 0; i < 100; i++)
			ck_assert_int_eq(qos[i], i % 3);
	}
	publish(pub, v, "many/0", "first", 2, false);
	publish(pub, v, "many/98", "last", 2, false);
	expect_msg_only(sub, "many/0", "first", 0);
	expect_msg_only(sub, "many/98", "last", 2);

	if (v == MQTT_V5) {
		MQTTResponse r = MQTTClient_unsubscribeMany5(sub, 100, filters,
							     NULL);

		ck_assert_int_eq(r.reasonCodeCount, 100);
		for (int i = 0; i < 100; i++)
			ck_assert_int_eq(r.reasonCodes[i], MQTT_RC_SUCCESS);
		MQTTResponse_free(r);
	} else {
		ck_assert_int_eq(MQTTClient_unsubscribeMany(sub, 100, filters),
				 MQTTCLIENT_SUCCESS);
	}
	publish(pub, v, "many/0", "gone", 1, false);
	publish(pub, v, "many/99", "gone", 1, false);
	expect_none(sub);
	for (int i = 0; i < 100; i++)
		free(filters[i]);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

/* Fan-out: every one of five subscribers gets each message once. */
START_TEST(test_fan_out)
{
	int v = VERSION(_i);
	MQTTClient sub[5], pub = client(v, "pub");

	for (int i = 0; i < 5; i++) {
		char id[8];

		snprintf(id, sizeof(id), "s%d", i);
		sub[i] = client(v, id);
		subscribe(sub[i], v, "fan/#", i % 3);
	}
	publish(pub, v, "fan/out", "all", 2, false);
	for (int i = 0; i < 5; i++)
		expect_msg_only(sub[i], "fan/out", "all", i % 3);
	expect_none_all(sub, 5);
	for (int i = 0; i < 5; i++)
		pc_close(&sub[i]);
	pc_close(&pub);
}
END_TEST

/*
 * One message to subscribers of every variant at once: 3.1.1 and 5.0,
 * QoS 0, 1 and 2, with and without a Subscription Identifier, and with
 * Retain As Published.  The broker encodes a PUBLISH header once per
 * variant and reuses it within a loop turn: each subscriber must still
 * get its own QoS, its own properties (none in 3.1.1) and retain flag.
 * Index: the publisher's version.
 */
START_TEST(test_fan_out_mixed)
{
	int pv = VERSION(_i);
	MQTTClient pub, sub[8];
	MQTTSubscribe_options rap = MQTTSubscribe_options_initializer;
	/*
	 * The third topic makes the 5.0 QoS 2 header exactly 256 bytes, the
	 * longest kept (1 + 2 Remaining Length + 2 + 248 + 2 id + 1 props).
	 */
	char long_topic[249];
	struct {
		const char *topic, *payload;
		bool retain;
	} rounds[3] = {
		{ "mix/t", "live", false },
		{ "mix/t", "kept", true },
		{ long_topic, "long", false },
	};

	memset(long_topic, 'x', sizeof(long_topic) - 1);
	memcpy(long_topic, "mix/", 4);
	long_topic[sizeof(long_topic) - 1] = '\0';
	/* One shard: every subscriber meets every other in its cache. */
	ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker);
	broker_start_checked(&broker, "shards 1");
	pub = client(pv, "pub");
	for (int i = 0; i < 6; i++) {
		char id[8];
		int v = i < 3 ? MQTT_V311 : MQTT_V5;

		snprintf(id, sizeof(id), "m%d", i);
		sub[i] = client(v, id);
		subscribe(sub[i], v, "mix/#", i % 3);
	}
	sub[6] = client(MQTT_V5, "m6");
	subscribe5(sub[6], "mix/#", 1, 9, NULL);
	sub[7] = client(MQTT_V5, "m7");
	rap.retainAsPublished = 1;
	subscribe5(sub[7], "mix/#", 2, 0, &rap);

	for (int r = 0; r < 3; r++) {
		publish(pub, pv, rounds[r].topic, rounds[r].payload, 2,
			rounds[r].retain);
		for (int i = 0; i < 8; i++) {
			int qos = i < 6 ? i % 3 : i == 6 ? 1 : 2;
			MQTTClient_message *m = expect_msg(sub[i],
							   rounds[r].topic,
							   rounds[r].payload,
							   qos);
			int ids[4];
			int n = i < 3 ? 0 : sub_ids(m, ids, 4);

			ck_assert_int_eq(m->retained, i == 7 && rounds[r].retain);
			ck_assert_int_eq(n, i == 6);
			if (n)
				ck_assert_int_eq(ids[0], 9);
			MQTTClient_freeMessage(&m);
		}
	}
	expect_none_all(sub, 8);
	for (int i = 0; i < 8; i++)
		pc_close(&sub[i]);
	pc_close(&pub);
}
END_TEST

/*
 * Ordering: 200 QoS 1 messages from one publisher on one topic arrive in
 * the order sent [MQTT-4.6.0-5 (3.1.1), 5.0 section 4.6], each once.
 */
START_TEST(test_ordering_qos1)
{
	int v = VERSION(_i);
	MQTTClient sub = client(v, "sub"), pub = client(v, "pub");

	subscribe(sub, v, "ord/t", 1);
	for (int i = 0; i < 200; i++) {
		char payload[16];

		snprintf(payload, sizeof(payload), "m%03d", i);
		publish(pub, v, "ord/t", payload, 1, false);
	}
	for (int i = 0; i < 200; i++) {
		char payload[16];

		snprintf(payload, sizeof(payload), "m%03d", i);
		expect_msg_only(sub, "ord/t", payload, 1);
	}
	expect_none(sub);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

static Suite *subpub_suite(void)
{
	Suite *s = suite_create("02-subpub");
	TCase *tc = tcase_create("subpub");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_loop_test(tc, test_qos_end_to_end, 0, 6);
	tcase_add_loop_test(tc, test_qos_downgrade, 0, 2);
	tcase_add_loop_test(tc, test_wildcard_plus, 0, 2);
	tcase_add_loop_test(tc, test_wildcard_hash, 0, 2);
	tcase_add_loop_test(tc, test_dollar_topics, 0, 2);
	tcase_add_loop_test(tc, test_overlapping_subscriptions, 0, 2);
	tcase_add_loop_test(tc, test_subscription_replaced, 0, 2);
	tcase_add_loop_test(tc, test_unsubscribe, 0, 2);
	tcase_add_loop_test(tc, test_invalid_filter, 0, 2);
	tcase_add_loop_test(tc, test_shared_subscription, 0, 2);
	tcase_add_test(tc, test_no_local);
	tcase_add_test(tc, test_retain_as_published);
	tcase_add_loop_test(tc, test_many_filters, 0, 2);
	tcase_add_loop_test(tc, test_fan_out, 0, 2);
	tcase_add_loop_test(tc, test_fan_out_mixed, 0, 2);
	tcase_add_loop_test(tc, test_ordering_qos1, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(subpub_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
