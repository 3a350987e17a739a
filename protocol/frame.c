/*
 * Framing: find where the next packet ends in a byte stream without
 * consuming anything, and refuse an over-limit packet as soon as its length
 * field is known, before its body is buffered.
 */
#include "mqtt_int.h"

int mqtt_frame_peek(const uint8_t *buf, size_t len, uint32_t max_size,
		    size_t *packet_len)
{
	uint32_t remaining;
	size_t used;
	size_t total;
	int rc;

	*packet_len = 0;
	if (len < 1)
		return MQTT_E_INCOMPLETE;
	if ((buf[0] >> 4) == 0)
		return MQTT_E_PACKET_TYPE;
	rc = mqtt_varint_decode(buf + 1, len - 1, &remaining, &used);
	if (rc < 0)
		return rc;
	total = 1 + used + (size_t)remaining;
	if (max_size && total > max_size)
		return MQTT_E_TOO_LARGE;
	*packet_len = total;
	return len >= total ? MQTT_OK : MQTT_E_INCOMPLETE;
}
