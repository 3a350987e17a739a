/*
 * The retained message store: a trie with one node per topic level, a
 * message at the node of its topic.  A subscribe walks it with the topic
 * filter, so a filter costs the part of the trie it can match rather than
 * every retained message, and expired messages are dropped on the way.
 *
 * Literal children sit in an open-addressing table keyed by a SipHash of
 * the level under a per-store random key, because publishers choose the
 * levels (one per device id is common); table and hash are shared with
 * the subscription tree (level_table.c).  Every walk is iterative over
 * parent pointers: a topic of 65535 slashes makes a trie 65536 levels
 * deep, too deep to recurse on a shard thread's stack.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/level_table.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "protocol/topic.h"

struct rnode {
	struct level_entry entry; /* in parent->kids; first: free rnode_of() */
	struct rnode *parent; /* NULL for the root */
	struct level_table kids; /* children, by entry */
	struct msg *msg; /* the retained message of this topic, or NULL */
	struct rnode *expired; /* next node to clear after retain_match() */
	char level[]; /* the level's bytes, not NUL-terminated */
};

struct retain {
	struct rnode *root; /* the level before the first; never pruned */
	size_t count; /* messages held */
	size_t nodes; /* nodes besides the root (tests check pruning) */
	struct level_key key; /* of level_hash() */
};

/* -------------------------------------------------------------- children */

/* The node whose entry e is; NULL for NULL. */
static struct rnode *rnode_of(struct level_entry *e)
{
	return e ? (struct rnode *)(void *)((char *)e -
					    offsetof(struct rnode, entry)) :
		   NULL;
}

/* The child of level in k, whose level_hash() is hash, or NULL. */
static struct rnode *kids_find(const struct level_table *k,
			       const char *level, size_t len, uint64_t hash)
{
	return rnode_of(level_table_find(k, level, len, hash));
}

/*
 * The first child of n in a slot at or after from; with skip_dollar, one
 * whose level does not start with '$'.
 */
static struct rnode *kids_next(const struct rnode *n, size_t from,
			       bool skip_dollar)
{
	struct rnode *c;

	for (; from < n->kids.cap; from++) {
		c = rnode_of(n->kids.slot[from]);
		if (c && !(skip_dollar && c->entry.len && c->level[0] == '$'))
			return c;
	}
	return NULL;
}

/* ------------------------------------------------------------------ nodes */

static struct rnode *node_new(struct retain *r, struct rnode *parent,
			      const char *level, size_t len, uint64_t hash)
{
	struct rnode *n = calloc(1, sizeof(*n) + len);

	if (!n)
		return NULL;
	n->parent = parent;
	level_entry_init(&n->entry, n->level, level, len, hash);
	r->nodes++;
	return n;
}

/* Frees n and its message reference, not its children. */
static void node_free(struct retain *r, struct rnode *n)
{
	msg_unref(n->msg);
	free(n->kids.slot);
	if (n != r->root)
		r->nodes--;
	free(n);
}

/* Free n and its ancestors for as long as they hold nothing. */
static void node_prune(struct retain *r, struct rnode *n)
{
	struct rnode *p;

	while (n->parent && !n->msg && !n->kids.used) {
		p = n->parent;
		level_table_delete(&p->kids, &n->entry);
		node_free(r, n);
		n = p;
	}
}

/*
 * The node of a topic name, made when create is set; NULL when absent, or
 * out of memory (nothing made stays).
 */
static struct rnode *node_walk(struct retain *r, const char *topic,
			       size_t len, bool create)
{
	struct rnode *n = r->root, *c;
	size_t p = 0, e;
	uint64_t hash;

	for (;;) {
		e = level_end(topic, len, p);
		hash = level_hash(&r->key, topic + p, e - p);
		c = kids_find(&n->kids, topic + p, e - p, hash);
		if (!c) {
			if (!create)
				goto out;
			c = node_new(r, n, topic + p, e - p, hash);
			if (!c)
				goto out_prune;
			if (level_table_insert(&n->kids, &c->entry) < 0) {
				node_free(r, c);
				c = NULL;
				goto out_prune;
			}
		}
		n = c;
		if (e == len)
			goto out;
		p = e + 1;
	}

out_prune:
	node_prune(r, n);
out:
	return c;
}

/* ------------------------------------------------------------ interface */

struct retain *retain_new(void)
{
	struct retain *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->root = calloc(1, sizeof(*r->root));
	if (!r->root) {
		free(r);
		return NULL;
	}
	level_key_init(&r->key);
	return r;
}

void retain_free(struct retain *r)
{
	struct rnode *n, *p, *c;
	size_t i = 0; /* where the scan of n's children resumes */

	if (!r)
		return;
	/*
	 * Post-order without a stack: a freed child's slot tells where its
	 * parent's scan resumes; the parent's table is left alone until the
	 * parent goes.
	 */
	n = r->root;
	for (;;) {
		c = kids_next(n, i, false);
		if (c) {
			n = c;
			i = 0;
			continue;
		}
		p = n->parent;
		i = n->entry.slot + 1;
		node_free(r, n);
		if (!p)
			break;
		n = p;
	}
	free(r);
}

int retain_set(struct retain *r, struct msg *msg)
{
	struct rnode *n;

	if (!topic_name_is_valid(msg->topic, msg->topic_len))
		return -EINVAL;
	if (msg->payload_len == 0) {
		/* [MQTT-3.3.1-6], [MQTT-3.3.1-7]: clears, is never stored. */
		n = node_walk(r, msg->topic, msg->topic_len, false);
		if (n && n->msg) {
			msg_unref(n->msg);
			n->msg = NULL;
			r->count--;
			node_prune(r, n);
		}
		return 0;
	}
	n = node_walk(r, msg->topic, msg->topic_len, true);
	if (!n)
		return -ENOMEM;
	msg_ref(msg); /* before the old one goes: it may be the same */
	if (n->msg)
		msg_unref(n->msg);
	else
		r->count++;
	n->msg = msg;
	return 0;
}

struct msg *retain_find(struct retain *r, const char *topic, size_t len)
{
	struct rnode *n = node_walk(r, topic, len, false);

	return n ? n->msg : NULL;
}

/* What one retain_match() call carries to every node it reaches. */
struct walk {
	unsigned long long now_ms;
	retain_match_cb cb;
	void *arg;
	struct rnode *expired; /* nodes to clear once the walk is over */
};

static void walk_visit(struct walk *w, struct rnode *n)
{
	struct msg *m = n->msg;

	if (!m)
		return;
	if (m->expiry_at && m->expiry_at <= w->now_ms) {
		/*
		 * Cleared after the walk: freeing nodes now would pull
		 * slots from under the scans still in progress.
		 */
		n->expired = w->expired;
		w->expired = n;
		return;
	}
	w->cb(w->arg, m);
}

/* start and everything under it, for a '#' level ("a/#" matches "a"). */
static void walk_all(struct walk *w, struct rnode *start, bool skip_dollar)
{
	struct rnode *n = start, *c, *p;

	walk_visit(w, n);
	c = kids_next(n, 0, skip_dollar);
	for (;;) {
		if (c) {
			n = c;
			walk_visit(w, n);
			c = kids_next(n, 0, false);
			continue;
		}
		if (n == start)
			break;
		p = n->parent;
		c = kids_next(p, n->entry.slot + 1, skip_dollar && p == start);
		n = p;
	}
}

/*
 * Depth-first along the filter: a literal level takes one child, '+'
 * every child in slot order, '#' the whole subtree.  p is the start of
 * the filter level that n's children are matched against, len + 1 once
 * the filter is used up; going back up recomputes it from the filter, so
 * the walk needs no stack.
 */
void retain_match(struct retain *r, const char *filter, size_t len,
		  unsigned long long now_ms, retain_match_cb cb, void *arg)
{
	struct walk w = { .now_ms = now_ms, .cb = cb, .arg = arg };
	struct rnode *root = r->root, *n = root, *c, *next;
	size_t p = 0, e = 0;
	bool wild_first;

	if (len == 0)
		return;
	/* "+/x" and "#" do not match "$SYS/x" [MQTT-4.7.2-1]. */
	wild_first = filter[0] == '+' || filter[0] == '#';

enter:
	if (p > len) {
		walk_visit(&w, n);
		goto up;
	}
	e = level_end(filter, len, p);
	if (e - p == 1 && filter[p] == '#') {
		walk_all(&w, n, n == root && wild_first);
		goto up;
	}
	if (e - p == 1 && filter[p] == '+') {
		c = kids_next(n, 0, n == root && wild_first);
		goto plus_next;
	}
	c = kids_find(&n->kids, filter + p, e - p,
		      level_hash(&r->key, filter + p, e - p));
	if (c) {
		n = c;
		p = e + 1;
		goto enter;
	}
up:
	if (n == root)
		goto out;
	e = p - 1; /* where the filter level n matched ends */
	p = level_start(filter, e);
	c = n;
	n = n->parent;
	if (e - p != 1 || filter[p] != '+')
		goto up;
	c = kids_next(n, c->entry.slot + 1, n == root && wild_first);
plus_next:
	if (c) {
		n = c;
		p = e + 1;
		goto enter;
	}
	goto up;

out:
	/*
	 * Only nodes holding a message are on the list, and pruning never
	 * frees such a node, so clearing one cannot free another still on
	 * the list.
	 */
	for (n = w.expired; n; n = next) {
		next = n->expired;
		n->expired = NULL;
		msg_unref(n->msg);
		n->msg = NULL;
		r->count--;
		node_prune(r, n);
	}
}

size_t retain_count(const struct retain *r)
{
	return r->count;
}
