/*
 * libFuzzer target for protocol/utf8.c.  Both validators run on every input
 * and are compared with a reference decoder written here the slow, obvious
 * way (decode any 1..4-byte pattern, then reject by value), which shares
 * nothing with the table-driven decoder under test.  Any disagreement or
 * broken invariant aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "protocol/mqtt.h"

/*
 * Decode one code point at s[0..len).  Returns its length, or 0 when the
 * bytes there are not well-formed UTF-8.
 */
static size_t ref_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
	size_t n;
	uint32_t v, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0) {
		n = 2;
		v = s[0] & 0x1Fu;
		min = 0x80;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3;
		v = s[0] & 0x0Fu;
		min = 0x800;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4;
		v = s[0] & 0x07u;
		min = 0x10000;
	} else {
		return 0; /* continuation byte, or 5/6-byte and FE/FF leads */
	}
	if (len < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[k] & 0x3Fu);
	}
	if (v < min)
		return 0; /* overlong */
	if (v >= 0xD800 && v <= 0xDFFF)
		return 0; /* surrogate */
	if (v > 0x10FFFF)
		return 0;
	*cp = v;
	return n;
}

/* The MQTT string rules on top of well-formedness. */
static bool ref_cp_allowed(uint32_t cp)
{
	if (cp <= 0x1F)
		return false;
	if (cp >= 0x7F && cp <= 0x9F)
		return false;
	if (cp >= 0xFDD0 && cp <= 0xFDEF)
		return false;
	if ((cp & 0xFFFF) == 0xFFFE || (cp & 0xFFFF) == 0xFFFF)
		return false;
	return true;
}

static bool ref_check(const uint8_t *s, size_t len, bool strict)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = ref_decode(s + i, len - i, &cp);

		if (n == 0)
			return false;
		if (strict && !ref_cp_allowed(cp))
			return false;
		i += n;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool valid = mqtt_utf8_is_valid(data, size);
	bool wf = mqtt_utf8_is_well_formed(data, size);
	bool printable = true;

	if (valid != ref_check(data, size, true))
		abort();
	if (wf != ref_check(data, size, false))
		abort();
	/* The string rules only ever remove code points. */
	if (valid && !wf)
		abort();
	for (size_t i = 0; i < size; i++)
		if (data[i] < 0x20 || data[i] > 0x7E)
			printable = false;
	if (printable && !valid)
		abort();
	/* Every prefix ending on an ASCII byte of a valid string is valid. */
	if (valid && size > 0 && data[size - 1] >= 0x20 &&
	    data[size - 1] < 0x7F && !mqtt_utf8_is_valid(data, size - 1))
		abort();
	return 0;
}
