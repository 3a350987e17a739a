/*
 * UTF-8 checks for MQTT strings and payloads.
 *
 * mqtt_utf8_is_valid() applies the UTF-8 Encoded String rules of MQTT
 * [MQTT-1.5.4-1, MQTT-1.5.4-2] plus the code points the spec lets a
 * receiver treat as malformed (controls and non-characters): it runs on
 * every topic, client id and user property, so an ASCII run is checked
 * eight bytes at a time.  mqtt_utf8_is_well_formed() checks RFC 3629
 * well-formedness only, which is all Payload Format Indicator 1 promises.
 * Both share one decoder so the two cannot drift apart.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqtt.h"

/* Every byte of a 64-bit word set to b. */
#define BYTES(b) ((uint64_t)0x0101010101010101u * (uint8_t)(b))

/*
 * Whether all eight bytes of w are printable ASCII (0x20..0x7E), the only
 * bytes a string may hold without further checks.  A zero result proves
 * it: no high bit set means no byte >= 0x80, so w + 0x01.. carries across
 * no byte boundary and flags exactly the bytes equal to 0x7F, and
 * (w - 0x20..) & ~w flags at least the lowest byte below 0x20.  A false
 * "no" is impossible; a word that fails is simply decoded byte by byte.
 */
static inline bool word_is_printable(uint64_t w)
{
	uint64_t bad = w | (w + BYTES(0x01)) | ((w - BYTES(0x20)) & ~w);

	return (bad & BYTES(0x80)) == 0;
}

/* Whether all eight bytes of w are ASCII (0x00..0x7F). */
static inline bool word_is_ascii(uint64_t w)
{
	return (w & BYTES(0x80)) == 0;
}

/*
 * Code points outside ASCII that a string may not hold: the C1 controls
 * U+0080..U+009F and the non-characters U+FDD0..U+FDEF and U+xxFFFE /
 * U+xxFFFF in every plane.  ASCII controls are handled by the caller.
 */
static inline bool cp_is_disallowed(uint32_t cp)
{
	if (cp <= 0x9F)
		return true;
	if (cp >= 0xFDD0 && cp <= 0xFDEF)
		return true;
	return (cp & 0xFFFE) == 0xFFFE;
}

/*
 * The shared decoder.  Follows the table of well-formed byte sequences in
 * RFC 3629 section 4: the allowed range of the second byte depends on the
 * lead byte, which is how overlong forms (C0, C1, E0 80..9F, F0 80..8F),
 * surrogates (ED A0..BF) and code points past U+10FFFF (F4 90.., F5..FF)
 * are refused without decoding them first.  strict adds the MQTT string
 * rules on top.
 */
static bool utf8_check(const uint8_t *s, size_t len, bool strict)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b0 = s[i];
		uint8_t lo = 0x80, hi = 0xBF;
		size_t need;
		uint32_t cp;

		if (b0 < 0x80) {
			uint64_t w;

			if (strict && (b0 < 0x20 || b0 == 0x7F))
				return false;
			i++;
			/*
			 * Topics and client ids are mostly ASCII: skip whole
			 * words while they are clean.  memcpy keeps the load
			 * legal at any alignment and compiles to one move.
			 */
			while (len - i >= sizeof(w)) {
				memcpy(&w, s + i, sizeof(w));
				if (strict ? !word_is_printable(w) :
					     !word_is_ascii(w))
					break;
				i += sizeof(w);
			}
			continue;
		}

		if (b0 >= 0xC2 && b0 <= 0xDF) {
			need = 1;
			cp = b0 & 0x1Fu;
		} else if (b0 >= 0xE0 && b0 <= 0xEF) {
			need = 2;
			cp = b0 & 0x0Fu;
			if (b0 == 0xE0)
				lo = 0xA0; /* below: overlong */
			else if (b0 == 0xED)
				hi = 0x9F; /* above: surrogates */
		} else if (b0 >= 0xF0 && b0 <= 0xF4) {
			need = 3;
			cp = b0 & 0x07u;
			if (b0 == 0xF0)
				lo = 0x90; /* below: overlong */
			else if (b0 == 0xF4)
				hi = 0x8F; /* above: past U+10FFFF */
		} else {
			/* Continuation, C0/C1 (always overlong), F5..FF. */
			return false;
		}

		if (len - i - 1 < need)
			return false; /* truncated at the end */
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 1; k <= need; k++) {
			uint8_t b = s[i + k];

			if ((b & 0xC0u) != 0x80u)
				return false;
			cp = cp << 6 | (uint32_t)(b & 0x3Fu);
		}
		if (strict && cp_is_disallowed(cp))
			return false;
		i += need + 1;
	}
	return true;
}

bool mqtt_utf8_is_valid(const uint8_t *s, size_t len)
{
	return utf8_check(s, len, true);
}

bool mqtt_utf8_is_well_formed(const uint8_t *s, size_t len)
{
	return utf8_check(s, len, false);
}
