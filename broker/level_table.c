/*
 * The child table of a topic trie node and the keyed hash it is indexed
 * by, shared by the subscription tree and the retained store: see
 * level_table.h.
 *
 * Topic levels come from clients (one per device id is common), so the
 * table is indexed by SipHash under a per-trie random key: an unkeyed hash
 * would let one client pile thousands of levels into one probe chain and
 * turn every lookup at that node into a linear scan.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/level_table.h"

/* First capacity of a table; tables are powers of two, at most 3/4 full. */
#define LEVEL_TABLE_MIN_CAP 4

/* ---------------------------------------------------------------- hash */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                    \
	do {                                                        \
		v0 += v1;                                           \
		v1 = ROTL(v1, 13);                                  \
		v1 ^= v0;                                           \
		v0 = ROTL(v0, 32);                                  \
		v2 += v3;                                           \
		v3 = ROTL(v3, 16);                                  \
		v3 ^= v2;                                           \
		v0 += v3;                                           \
		v3 = ROTL(v3, 21);                                  \
		v3 ^= v0;                                           \
		v2 += v1;                                           \
		v1 = ROTL(v1, 17);                                  \
		v1 ^= v2;                                           \
		v2 = ROTL(v2, 32);                                  \
	} while (0)

/*
 * SipHash-1-3: keyed, so clients cannot aim levels at one slot, and cheap
 * on the short strings topic levels are.
 */
uint64_t level_hash(const struct level_key *key, const char *level,
		    size_t len)
{
	const unsigned char *p = (const unsigned char *)level;
	uint64_t v0 = 0x736f6d6570736575ULL ^ key->k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ key->k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ key->k0;
	uint64_t v3 = 0x7465646279746573ULL ^ key->k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&m, p, sizeof(m));
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < len; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void level_key_init(struct level_key *key)
{
	uint64_t k[2];
	struct timespec ts;

	if (getrandom(k, sizeof(k), GRND_NONBLOCK) == (ssize_t)sizeof(k)) {
		key->k0 = k[0];
		key->k1 = k[1];
		return;
	}
	/* No entropy yet (early boot): weaker than random, still per trie. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	key->k0 = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
		  (uint64_t)(uintptr_t)key;
	key->k1 = ROTL(key->k0, 29) ^ 0x9e3779b97f4a7c15ULL;
}

/* --------------------------------------------------------------- table */

struct level_entry *level_table_find(const struct level_table *t,
				     const char *level, size_t len,
				     uint64_t hash)
{
	size_t mask, i;
	struct level_entry *e;

	if (!t->cap)
		return NULL;
	mask = t->cap - 1;
	for (i = (size_t)hash & mask; (e = t->slot[i]) != NULL;
	     i = (i + 1) & mask)
		if (e->hash == hash && e->len == len &&
		    memcmp(e->level, level, len) == 0)
			return e;
	return NULL;
}

static void level_table_place(struct level_entry **slot, size_t mask,
			      struct level_entry *e)
{
	size_t i = (size_t)e->hash & mask;

	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = e;
	e->slot = i;
}

static int level_table_resize(struct level_table *t, size_t cap)
{
	struct level_entry **slot = calloc(cap, sizeof(*slot));
	size_t i;

	if (!slot)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->slot[i])
			level_table_place(slot, cap - 1, t->slot[i]);
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

int level_table_insert(struct level_table *t, struct level_entry *e)
{
	int rc;

	if ((t->used + 1) * 4 > t->cap * 3) {
		rc = level_table_resize(t, t->cap ? t->cap * 2 :
						   LEVEL_TABLE_MIN_CAP);
		if (rc)
			return rc;
	}
	level_table_place(t->slot, t->cap - 1, e);
	t->used++;
	return 0;
}

void level_table_delete(struct level_table *t, struct level_entry *e)
{
	size_t mask = t->cap - 1, i = e->slot, j = i, home;
	struct level_entry *m;

	/*
	 * Backward shift: pull later entries of the probe run into the
	 * hole unless their home slot lies cyclically in (hole, j].
	 */
	for (;;) {
		j = (j + 1) & mask;
		m = t->slot[j];
		if (!m)
			break;
		home = (size_t)m->hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->slot[i] = m;
			m->slot = i;
			i = j;
		}
	}
	t->slot[i] = NULL;
	t->used--;
	if (!t->used) {
		free(t->slot);
		t->slot = NULL;
		t->cap = 0;
	} else if (t->cap > LEVEL_TABLE_MIN_CAP && t->used * 4 < t->cap) {
		/* Failing to shrink only keeps the larger table. */
		(void)level_table_resize(t, t->cap / 2);
	}
}
