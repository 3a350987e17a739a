/*
 * Private to protocol/: the bounds-checked reader the decoders share and the
 * writer the encoders share.  Readers check every length as
 * (size_t)(end - p) < n, which cannot overflow, and advance only on success.
 * Writers run after the exact size was computed, so they only assert.
 */
#ifndef CICADA_PROTOCOL_MQTT_INT_H
#define CICADA_PROTOCOL_MQTT_INT_H

#include <assert.h>
#include <string.h>

#include "mqtt.h"

struct rd {
	const uint8_t *p;
	const uint8_t *end;
};

static inline size_t rd_left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

static inline int rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return MQTT_E_SHORT;
	*v = *r->p++;
	return 0;
}

static inline int rd_u16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return MQTT_E_SHORT;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return 0;
}

static inline int rd_u32(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return MQTT_E_SHORT;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
	     (uint32_t)r->p[2] << 8 | (uint32_t)r->p[3];
	r->p += 4;
	return 0;
}

/* A varint inside a packet: running out of bytes is a short field. */
static inline int rd_varint(struct rd *r, uint32_t *v)
{
	size_t used;
	int rc = mqtt_varint_decode(r->p, rd_left(r), v, &used);

	if (rc == MQTT_E_INCOMPLETE)
		return MQTT_E_SHORT;
	if (rc < 0)
		return rc;
	r->p += used;
	return 0;
}

/* Binary Data: two-byte length, then that many bytes. */
static inline int rd_binary(struct rd *r, struct mqtt_bytes *out)
{
	uint16_t n;

	if (rd_left(r) < 2)
		return MQTT_E_SHORT;
	n = (uint16_t)(r->p[0] << 8 | r->p[1]);
	if (rd_left(r) - 2 < n)
		return MQTT_E_SHORT;
	out->data = r->p + 2;
	out->len = n;
	r->p += 2 + (size_t)n;
	return 0;
}

/* UTF-8 Encoded String: Binary Data that must pass the string rules. */
static inline int rd_string(struct rd *r, struct mqtt_bytes *out)
{
	int rc = rd_binary(r, out);

	if (rc < 0)
		return rc;
	if (!mqtt_utf8_is_valid(out->data, out->len))
		return MQTT_E_UTF8;
	return 0;
}

/*
 * The encoders describe each packet's layout once, as a series of writes.
 * Run with buf == NULL, the writer only counts, which gives the exact size
 * and flags fields MQTT cannot carry (bad); run with a buffer of that size,
 * it writes.  So size and bytes can never disagree.
 */
struct wr {
	uint8_t *buf; /* NULL: count only */
	size_t pos;
	size_t cap;
	bool bad; /* a string or binary field over 65535 bytes */
};

static inline void wr_raw(struct wr *w, const void *data, size_t len)
{
	if (w->buf) {
		assert(w->cap - w->pos >= len);
		if (len)
			memcpy(w->buf + w->pos, data, len);
	}
	w->pos += len;
}

static inline void wr_u8(struct wr *w, uint8_t v)
{
	wr_raw(w, &v, 1);
}

static inline void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	wr_raw(w, b, 2);
}

static inline void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 8), (uint8_t)v };

	wr_raw(w, b, 4);
}

static inline void wr_varint(struct wr *w, uint32_t v)
{
	uint8_t b[4];

	if (v > MQTT_VARINT_MAX) {
		w->bad = true;
		return;
	}
	wr_raw(w, b, mqtt_varint_encode(v, b));
}

/* A string or Binary Data field: two-byte length, then the bytes. */
static inline void wr_binary(struct wr *w, const struct mqtt_bytes *b)
{
	if (b->len > UINT16_MAX) {
		w->bad = true;
		return;
	}
	wr_u16(w, (uint16_t)b->len);
	wr_raw(w, b->data, b->len);
}

/* Property block writer (props.c), used by every encoder. */
void mqtt_props_write(struct wr *w, const struct mqtt_props *p);

/* Whether a reason code is one the packet type may carry (errors.c). */
bool mqtt_rc_is_valid_for(int packet_type, uint8_t rc);

#endif
