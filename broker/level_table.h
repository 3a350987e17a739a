/*
 * The children of a topic trie node, keyed by topic level: a keyed hash of
 * levels and an open-addressing table of child nodes, shared by the
 * subscription tree (subtree.c) and the retained store (retain.c).
 * Private to broker/.
 *
 * The table does not own what it holds.  A node embeds a struct
 * level_entry as its first member (so the conversion costs nothing) and is
 * put in its parent's table by that entry; its owner turns an entry back
 * into the node with a container_of-style cast.  Not thread-safe: the
 * owner of the trie locks it.
 */
#ifndef CICADA_BROKER_LEVEL_TABLE_H
#define CICADA_BROKER_LEVEL_TABLE_H

#include <stddef.h>
#include <string.h>
#include <stdint.h>

/* A SipHash key, one per trie: see level_hash(). */
struct level_key {
	uint64_t k0, k1;
};

/*
 * A fresh random key (getrandom); before the kernel has entropy, one
 * derived from the clock and the key's address, weaker but still
 * different per trie.
 */
void level_key_init(struct level_key *key);

/*
 * SipHash-1-3 of one level under key.  Keyed, because clients choose the
 * levels: with an unkeyed hash one could aim thousands of levels at one
 * probe chain.
 */
uint64_t level_hash(const struct level_key *key, const char *level,
		    size_t len);

/* What a table needs of a node; the node fills hash, len and level. */
struct level_entry {
	uint64_t hash; /* level_hash() of level under the trie's key */
	size_t slot; /* index in the table holding it, kept by the table */
	size_t len; /* of level */
	const char *level; /* the level's bytes (the node's own), no NUL */
};

/*
 * Linear probing, NULL for an empty slot, deletion by backward shift (no
 * tombstones).  Capacities are powers of two, at most 3/4 full, and the
 * table shrinks when under 1/4 full so that memory comes back after a
 * mass unsubscribe or clear.  All zero is an empty table; the slot array
 * is freed when the last entry goes.  Owners may scan slot[0..cap) for
 * every entry; an entry's slot field says where it is.
 */
struct level_table {
	struct level_entry **slot;
	size_t cap; /* 0 (no array) or a power of two */
	size_t used;
};

/* The entry for level, whose hash under the table's key is hash, or NULL. */
struct level_entry *level_table_find(const struct level_table *t,
				     const char *level, size_t len,
				     uint64_t hash);

/*
 * Add e, which must not be in the table yet (no two entries with the same
 * level either).  Returns 0, or -ENOMEM with the table unchanged.
 */
int level_table_insert(struct level_table *t, struct level_entry *e);

/*
 * Remove e, which must be in the table.  Entries after it in its probe
 * run may move (their slot fields say where).  Never fails.
 */
void level_table_delete(struct level_table *t, struct level_entry *e);

/*
 * Fill the entry of a node whose level bytes live in storage (the node's
 * own flexible array, len bytes long): copy level there and point at it.
 */
static inline void level_entry_init(struct level_entry *e, char *storage,
				    const char *level, size_t len,
				    uint64_t hash)
{
	e->hash = hash;
	e->len = len;
	e->level = storage;
	if (len)
		memcpy(storage, level, len);
}

/* End of the topic level starting at p: the next '/' or the string's end. */
static inline size_t level_end(const char *s, size_t len, size_t p)
{
	const char *slash = p < len ? memchr(s + p, '/', len - p) : NULL;

	return slash ? (size_t)(slash - s) : len;
}

/* Start of the level ending at e (a '/' or the string's end). */
static inline size_t level_start(const char *s, size_t e)
{
	while (e > 0 && s[e - 1] != '/')
		e--;
	return e;
}

#endif
