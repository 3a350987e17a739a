/*
 * Variable Byte Integer [MQTT-1.5.5]: seven bits a byte, least significant
 * group first, at most four bytes.  The framer and every property decoder
 * go through here.
 */
#include "mqtt_int.h"

int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value,
		       size_t *used)
{
	uint32_t v = 0;

	for (size_t i = 0; i < 4; i++) {
		if (i == len)
			return MQTT_E_INCOMPLETE;
		v |= (uint32_t)(buf[i] & 0x7F) << (7 * i);
		if (!(buf[i] & 0x80)) {
			/* [MQTT-1.5.5-1]: the minimum number of bytes. */
			if (i > 0 && buf[i] == 0)
				return MQTT_E_VARINT;
			*value = v;
			*used = i + 1;
			return 0;
		}
	}
	/* A fourth byte with its continuation bit set: a fifth would follow. */
	return MQTT_E_VARINT;
}

size_t mqtt_varint_size(uint32_t v)
{
	assert(v <= MQTT_VARINT_MAX);
	if (v < 128)
		return 1;
	if (v < 16384)
		return 2;
	if (v < 2097152)
		return 3;
	return 4;
}

size_t mqtt_varint_encode(uint32_t v, uint8_t *out)
{
	size_t n = 0;

	assert(v <= MQTT_VARINT_MAX);
	do {
		uint8_t b = (uint8_t)(v & 0x7F);

		v >>= 7;
		if (v)
			b |= 0x80;
		out[n++] = b;
	} while (v);
	return n;
}
