/*
 * Shared by the codec's fuzz targets: the CHECK that names the broken
 * invariant before libFuzzer's stack trace, and the comparison of two
 * property blocks that must say the same thing (a decoded block and its
 * re-encoding).  Header-only: each target is its own program.
 */
#ifndef CICADA_TESTS_FUZZ_CHECK_H
#define CICADA_TESTS_FUZZ_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__,  \
				__LINE__, #cond);                       \
			abort();                                        \
		}                                                       \
	} while (0)

static bool bytes_same(const struct mqtt_bytes *a, const struct mqtt_bytes *b)
{
	return a->len == b->len && (a->len == 0 ||
				    memcmp(a->data, b->data, a->len) == 0);
}

static bool is_repeated(uint8_t id)
{
	return id == MQTT_PROP_USER_PROPERTY ||
	       id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER;
}

/*
 * The decoded field of a property that may appear once: its bytes for
 * string and binary types, else its number.  False for the repeatable ones
 * and unknown ids.
 */
static bool prop_field(const struct mqtt_props *p, uint8_t id, uint32_t *num,
		       struct mqtt_bytes *str)
{
	*num = 0;
	str->data = NULL;
	str->len = 0;
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR: *num = p->payload_format_indicator; break;
	case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL: *num = p->message_expiry_interval; break;
	case MQTT_PROP_CONTENT_TYPE: *str = p->content_type; break;
	case MQTT_PROP_RESPONSE_TOPIC: *str = p->response_topic; break;
	case MQTT_PROP_CORRELATION_DATA: *str = p->correlation_data; break;
	case MQTT_PROP_SESSION_EXPIRY_INTERVAL: *num = p->session_expiry_interval; break;
	case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER: *str = p->assigned_client_identifier; break;
	case MQTT_PROP_SERVER_KEEP_ALIVE: *num = p->server_keep_alive; break;
	case MQTT_PROP_AUTHENTICATION_METHOD: *str = p->authentication_method; break;
	case MQTT_PROP_AUTHENTICATION_DATA: *str = p->authentication_data; break;
	case MQTT_PROP_REQUEST_PROBLEM_INFORMATION: *num = p->request_problem_information; break;
	case MQTT_PROP_WILL_DELAY_INTERVAL: *num = p->will_delay_interval; break;
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION: *num = p->request_response_information; break;
	case MQTT_PROP_RESPONSE_INFORMATION: *str = p->response_information; break;
	case MQTT_PROP_SERVER_REFERENCE: *str = p->server_reference; break;
	case MQTT_PROP_REASON_STRING: *str = p->reason_string; break;
	case MQTT_PROP_RECEIVE_MAXIMUM: *num = p->receive_maximum; break;
	case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: *num = p->topic_alias_maximum; break;
	case MQTT_PROP_TOPIC_ALIAS: *num = p->topic_alias; break;
	case MQTT_PROP_MAXIMUM_QOS: *num = p->maximum_qos; break;
	case MQTT_PROP_RETAIN_AVAILABLE: *num = p->retain_available; break;
	case MQTT_PROP_MAXIMUM_PACKET_SIZE: *num = p->maximum_packet_size; break;
	case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE: *num = p->wildcard_subscription_available; break;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE: *num = p->subscription_identifier_available; break;
	case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE: *num = p->shared_subscription_available; break;
	default: return false;
	}
	return true;
}

/*
 * The repeated properties of id, in order, are the same in both blocks:
 * order is meaningful for user properties [MQTT-3.3.2-18].
 */
static void check_repeated_same(const struct mqtt_props *a,
				const struct mqtt_props *b, uint8_t id)
{
	struct mqtt_prop va, vb;
	size_t oa = 0, ob = 0;
	bool more_a, more_b;

	for (;;) {
		while ((more_a = mqtt_prop_next(&a->raw, &oa, &va)) && va.id != id)
			;
		while ((more_b = mqtt_prop_next(&b->raw, &ob, &vb)) && vb.id != id)
			;
		CHECK(more_a == more_b);
		if (!more_a)
			return;
		CHECK(va.num == vb.num && bytes_same(&va.str, &vb.str) &&
		      bytes_same(&va.value, &vb.value));
	}
}

/* Same properties, whatever the order of the non-repeated ones. */
static void check_props_same(const struct mqtt_props *a,
			     const struct mqtt_props *b)
{
	uint32_t na, nb;
	struct mqtt_bytes sa, sb;

	CHECK(a->present == b->present);
	CHECK(a->user_count == b->user_count);
	CHECK(a->subscription_id_count == b->subscription_id_count);
	CHECK(a->subscription_id == b->subscription_id);
	for (uint8_t id = 1; id < 64; id++) {
		if (!mqtt_props_has(a, id) || is_repeated(id))
			continue;
		CHECK(prop_field(a, id, &na, &sa));
		CHECK(prop_field(b, id, &nb, &sb));
		CHECK(na == nb && bytes_same(&sa, &sb));
	}
	check_repeated_same(a, b, MQTT_PROP_USER_PROPERTY);
	check_repeated_same(a, b, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
}

#endif
