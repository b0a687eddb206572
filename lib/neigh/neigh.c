/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The neighbour and owned-address tables: creation on rte_hash tables made
 * for lock-free readers with the hash's own RCU reclamation, port
 * registration, owned addresses, and everything a worker calls: the lookups
 * and sg_neigh_input(), which answers ARP requests and neighbour
 * solicitations in place. Resolution, timers and announcements are in
 * neigh_ctl.c; the frames themselves in neigh_pkt.c.
 */

/* rte_hash_rcu_qsbr_add() is experimental in DPDK 22.11. */
#define ALLOW_EXPERIMENTAL_API 1

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_rcu_qsbr.h>

#include "sg_common.h"

#include "neigh.h"
#include "neigh_private.h"
#include "neigh_table.h"

SG_LOG_REGISTER(neigh)

_Static_assert(sizeof(struct sg_neigh_key) == 20, "sg_neigh_key has no padding");
_Static_assert(sizeof(struct sg_neigh_learn) % 4 == 0, "learn records fit rte_ring elements");
_Static_assert(sizeof(struct sg_neigh_miss) == 32, "miss records are 32 bytes");
_Static_assert(sizeof(void *) == 8, "the hash data slot holds a 64-bit neighbour word");

/* Any constant does: the key hash never leaves this process. */
#define KEY_HASH_SEED 0x6e656967u
/* Deleted key slots wait in the hash's defer queue; reclaim in batches. */
#define DQ_TRIGGER 32u
#define DQ_RECLAIM_MAX 64u

#define DEF_MAX_ANNOUNCE 256u
#define DEF_REACHABLE_MS 300000u
#define DEF_RETRY_MS 1000u
#define DEF_FAILED_MS 5000u
#define DEF_MAX_TRIES 3u
#define DEF_HOLD_PER_NEIGH 4u
#define DEF_HOLD_TOTAL 1024u
#define DEF_TICK_BUDGET 256u

/* ---- keys and addresses ------------------------------------------------- */

int
neigh_key_ok(const struct sg_neigh_key *k)
{
	if (k->port >= SG_NEIGH_MAX_PORTS || k->zero != 0)
		return 0;
	if (k->family == 6)
		return 1;
	if (k->family != 4)
		return 0;
	for (unsigned int i = 4; i < 16; i++)
		if (k->addr[i] != 0)
			return 0;
	return 1;
}

static int
ip4_unicast(const uint8_t a[4])
{
	if ((a[0] | a[1] | a[2] | a[3]) == 0)
		return 0;
	if ((a[0] & 0xf0) == 0xe0)	/* 224.0.0.0/4 */
		return 0;
	return !(a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
}

static int
ip6_unicast(const uint8_t a[16])
{
	return a[0] != 0xff && !neigh_addr_unspecified(a);
}

int
neigh_key_unicast(const struct sg_neigh_key *k)
{
	return k->family == 4 ? ip4_unicast(k->addr) : ip6_unicast(k->addr);
}

int
neigh_key_port_ok(const struct sg_neigh_table *t, const struct sg_neigh_key *k)
{
	const struct port_rec *p = &t->ports[k->port];

	return p->present &&
	       (p->conf.flags & (k->family == 4 ? SG_NEIGH_PORT_IPV4 : SG_NEIGH_PORT_IPV6));
}

/*
 * Add a key. Below the live limit a full hash can only mean slots of
 * deleted keys still waiting for their grace period: a burst of deletions
 * and creations faster than the workers report. Wait for one grace period
 * (workers report every poll loop) and try again, as lib/svc does when its
 * defer queue is full; the retry reclaims them.
 */
static int32_t
hash_add_pos(struct rte_hash *h, const struct sg_neigh_key *k, void *data)
{
	int rc = rte_hash_add_key_data(h, k, data);

	return rc < 0 ? rc : rte_hash_lookup(h, k);
}

int32_t
neigh_hash_add(struct sg_neigh_table *t, struct rte_hash *h, const struct sg_neigh_key *k,
	       void *data)
{
	int32_t pos = hash_add_pos(h, k, data);

	if (pos != -ENOSPC)
		return pos;
	rte_rcu_qsbr_synchronize(t->conf.qsbr, RTE_QSBR_THRID_INVALID);
	t->st.sync_waits++;
	return hash_add_pos(h, k, data);
}

/* ---- creation ------------------------------------------------------------ */

static uint32_t
def(uint32_t v, uint32_t d)
{
	return v != 0 ? v : d;
}

/* Live entries, room for a burst of deleted slots awaiting their grace period. */
static uint32_t
hash_entries(uint32_t live)
{
	return live + live / 2 + 32;
}

/*
 * rte_hash_crc() reads 8 bytes at a time and so wants 8-byte aligned keys;
 * ours are 20 bytes aligned to 2 wherever the caller keeps them (learn and
 * miss records, packets). Hash them as five 32-bit words copied out.
 */
static uint32_t
key_hash(const void *key, uint32_t len, uint32_t init)
{
	uint32_t w[sizeof(struct sg_neigh_key) / 4];

	RTE_SET_USED(len);
	memcpy(w, key, sizeof(w));
	for (unsigned int i = 0; i < RTE_DIM(w); i++)
		init = rte_hash_crc_4byte(w[i], init);
	return init;
}

static struct rte_hash *
hash_new(const char *prefix, uint32_t n, uint32_t entries, const struct sg_neigh_conf *c)
{
	struct rte_hash_rcu_config rc;
	struct rte_hash_parameters hp;
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash *h;
	int err;

	snprintf(name, sizeof(name), "%s%u", prefix, n);
	memset(&hp, 0, sizeof(hp));
	hp.name = name;
	hp.entries = entries;
	hp.key_len = sizeof(struct sg_neigh_key);
	hp.hash_func = key_hash;
	hp.hash_func_init_val = KEY_HASH_SEED;
	hp.socket_id = c->socket_id;
	/* EXT_TABLE: an insert cannot fail while a key slot is free. */
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	h = rte_hash_create(&hp);
	if (h == NULL)
		return NULL;

	/*
	 * The hash defers the slots of deleted keys past a grace period by
	 * itself; values are plain words, so there is nothing else to free.
	 */
	memset(&rc, 0, sizeof(rc));
	rc.v = c->qsbr;
	rc.mode = RTE_HASH_QSBR_MODE_DQ;
	rc.trigger_reclaim_limit = DQ_TRIGGER;
	rc.max_reclaim_size = DQ_RECLAIM_MAX;
	if (rte_hash_rcu_qsbr_add(h, &rc) != 0) {
		err = rte_errno;
		rte_hash_free(h);
		rte_errno = err;
		return NULL;
	}
	return h;
}

static int
conf_ok(const struct sg_neigh_conf *c)
{
	uint32_t per = def(c->hold_per_neigh, DEF_HOLD_PER_NEIGH);

	return c->qsbr != NULL && c->pool != NULL && c->tx != NULL && c->max_neighbours != 0 &&
	       c->max_neighbours <= SG_NEIGH_MAX_ENTRIES_LIMIT && c->max_addrs != 0 &&
	       c->max_addrs <= SG_NEIGH_MAX_ADDRS_LIMIT &&
	       c->max_tries <= SG_NEIGH_MAX_TRIES_LIMIT && per <= SG_NEIGH_HOLD_MAX &&
	       per <= def(c->hold_total, DEF_HOLD_TOTAL);
}

struct sg_neigh_table *
sg_neigh_create(const struct sg_neigh_conf *conf)
{
	static uint32_t seq;
	struct sg_neigh_table *t;
	uint32_t n;
	int32_t max_id;
	int err;

	if (conf == NULL || !conf_ok(conf)) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	t->conf = *conf;
	t->conf.max_announce = def(conf->max_announce, DEF_MAX_ANNOUNCE);
	t->conf.reachable_ms = def(conf->reachable_ms, DEF_REACHABLE_MS);
	t->conf.retry_ms = def(conf->retry_ms, DEF_RETRY_MS);
	t->conf.failed_ms = def(conf->failed_ms, DEF_FAILED_MS);
	t->conf.max_tries = def(conf->max_tries, DEF_MAX_TRIES);
	t->conf.hold_per_neigh = def(conf->hold_per_neigh, DEF_HOLD_PER_NEIGH);
	t->conf.hold_total = def(conf->hold_total, DEF_HOLD_TOTAL);
	t->conf.tick_budget = def(conf->tick_budget, DEF_TICK_BUDGET);
	for (unsigned int s = 0; s < SG_NEIGH_STATE_COUNT; s++)
		TAILQ_INIT(&t->lists[s]);
	n = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED);

	t->nb_hash = hash_new("sgnb", n, hash_entries(conf->max_neighbours), conf);
	if (t->nb_hash == NULL) {
		err = rte_errno;
		goto free_table;
	}
	t->own_hash = hash_new("sgown", n, hash_entries(conf->max_addrs), conf);
	if (t->own_hash == NULL) {
		err = rte_errno;
		goto free_nb_hash;
	}
	/* Control state is indexed by key position: one per slot the hash has. */
	max_id = rte_hash_max_key_id(t->nb_hash);
	t->n_slots = max_id > 0 ? (uint32_t)max_id + 1 : 0;
	t->nbs = calloc(t->n_slots, sizeof(*t->nbs));
	if (t->nbs == NULL) {
		err = ENOMEM;
		goto free_own_hash;
	}
	t->held = calloc((size_t)t->n_slots * t->conf.hold_per_neigh, sizeof(*t->held));
	if (t->held == NULL) {
		err = ENOMEM;
		goto free_nbs;
	}
	t->anns = calloc(t->conf.max_announce, sizeof(*t->anns));
	if (t->anns == NULL) {
		err = ENOMEM;
		goto free_held;
	}
	SG_LOG(neigh, DEBUG, "table %u: %u neighbours (%u slots), %u addresses", n,
	       conf->max_neighbours, t->n_slots, conf->max_addrs);
	return t;

free_held:
	free(t->held);
free_nbs:
	free(t->nbs);
free_own_hash:
	rte_hash_free(t->own_hash);
free_nb_hash:
	rte_hash_free(t->nb_hash);
free_table:
	free(t);
	errno = err != 0 ? err : ENOMEM;
	return NULL;
}

void
sg_neigh_free(struct sg_neigh_table *t)
{
	if (t == NULL)
		return;
	neigh_free_held(t);
	/* After one grace period every deferred key slot can be reclaimed. */
	rte_rcu_qsbr_synchronize(t->conf.qsbr, RTE_QSBR_THRID_INVALID);
	rte_hash_free(t->own_hash);
	rte_hash_free(t->nb_hash);
	free(t->anns);
	free(t->held);
	free(t->nbs);
	free(t);
}

/* ---- owned addresses ----------------------------------------------------- */

static int
own_get(const struct sg_neigh_table *t, const struct sg_neigh_key *k, uint8_t *flags)
{
	void *data;

	if (rte_hash_lookup_data(t->own_hash, k, &data) < 0)
		return 0;
	*flags = (uint8_t)(uintptr_t)data;
	return 1;
}

static int
own_add(struct sg_neigh_table *t, const struct sg_neigh_key *k, uint8_t flags)
{
	uint8_t old;
	int rc;

	if (own_get(t, k, &old)) {
		if ((old | flags) != old)
			rte_hash_add_key_data(t->own_hash, k, (void *)(uintptr_t)(old | flags));
		if (!sg_neigh_flags_answered(old | flags))
			neigh_ann_cancel(t, k, 0);
		return 0;
	}
	if (t->n_own >= t->conf.max_addrs)
		return -ENOSPC;
	rc = neigh_hash_add(t, t->own_hash, k, (void *)(uintptr_t)flags);
	if (rc < 0)
		return rc;
	t->n_own++;
	return 0;
}

static int
own_remove(struct sg_neigh_table *t, const struct sg_neigh_key *k, uint8_t flags)
{
	uint8_t old, left;

	if (!own_get(t, k, &old))
		return -ENOENT;
	left = old & (uint8_t)~flags;
	if (left == old)
		return 0;
	if (left != 0) {
		rte_hash_add_key_data(t->own_hash, k, (void *)(uintptr_t)left);
		return 0;
	}
	if (rte_hash_del_key(t->own_hash, k) >= 0)
		t->n_own--;
	neigh_ann_cancel(t, k, 0);
	return 0;
}

static int
addr_args_ok(const struct sg_neigh_table *t, const struct sg_neigh_key *k, uint8_t flags)
{
	return t != NULL && k != NULL && neigh_key_ok(k) && neigh_key_unicast(k) && flags != 0 &&
	       (flags & ~SG_NEIGH_ADDR_ALL) == 0;
}

int
sg_neigh_addr_add(struct sg_neigh_table *t, const struct sg_neigh_key *key, uint8_t flags)
{
	if (!addr_args_ok(t, key, flags))
		return -EINVAL;
	if (!t->ports[key->port].present)
		return -ENOENT;
	return own_add(t, key, flags);
}

int
sg_neigh_addr_remove(struct sg_neigh_table *t, const struct sg_neigh_key *key, uint8_t flags)
{
	if (!addr_args_ok(t, key, flags))
		return -EINVAL;
	return own_remove(t, key, flags);
}

int
sg_neigh_addr_foreach(const struct sg_neigh_table *t, sg_neigh_addr_fn fn, void *arg)
{
	const void *key;
	void *data;
	uint32_t next = 0;

	if (t == NULL || fn == NULL)
		return -EINVAL;
	while (rte_hash_iterate(t->own_hash, &key, &data, &next) >= 0) {
		int rc = fn(key, (uint8_t)(uintptr_t)data, arg);

		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- ports --------------------------------------------------------------- */

/* The owned keys a port registration implies: up to three. */
static unsigned int
port_keys(const struct sg_neigh_port_conf *pc, struct sg_neigh_key keys[3], uint8_t flags[3])
{
	unsigned int n = 0;

	if (pc->flags & SG_NEIGH_PORT_IPV4) {
		sg_neigh_key4(&keys[n], pc->port, pc->ip4);
		flags[n++] = SG_NEIGH_ADDR_PORT;
	}
	if (pc->flags & SG_NEIGH_PORT_IPV6) {
		uint8_t ll[16];

		sg_neigh_link_local(pc->mac, ll);
		sg_neigh_key6(&keys[n], pc->port, ll);
		flags[n++] = SG_NEIGH_ADDR_PORT | SG_NEIGH_ADDR_LINK_LOCAL;
		if (!neigh_addr_unspecified(pc->ip6)) {
			sg_neigh_key6(&keys[n], pc->port, pc->ip6);
			flags[n++] = SG_NEIGH_ADDR_PORT;
		}
	}
	return n;
}

static int
port_conf_ok(const struct sg_neigh_port_conf *pc)
{
	if (pc->port >= SG_NEIGH_MAX_PORTS ||
	    (pc->flags & ~(SG_NEIGH_PORT_IPV4 | SG_NEIGH_PORT_IPV6)) ||
	    !neigh_mac_unicast(pc->mac))
		return 0;
	if ((pc->flags & SG_NEIGH_PORT_IPV4) &&
	    (!ip4_unicast(pc->ip4) || pc->ip4_prefix == 0 || pc->ip4_prefix > 32))
		return 0;
	if ((pc->flags & SG_NEIGH_PORT_IPV6) && !neigh_addr_unspecified(pc->ip6) &&
	    (pc->ip6[0] == 0xff || (pc->ip6[0] == 0xfe && (pc->ip6[1] & 0xc0) == 0x80) ||
	     pc->ip6_prefix == 0 || pc->ip6_prefix > 128))
		return 0;
	return 1;
}

int
sg_neigh_port_set(struct sg_neigh_table *t, const struct sg_neigh_port_conf *pc)
{
	struct sg_neigh_key nk[3], ok[3];
	uint8_t nf[3], of[3];
	unsigned int n_new, n_old = 0, need = 0;
	struct port_rec *p;
	uint8_t dropped;

	if (t == NULL || pc == NULL || !port_conf_ok(pc))
		return -EINVAL;
	p = &t->ports[pc->port];
	n_new = port_keys(pc, nk, nf);
	if (p->present)
		n_old = port_keys(&p->conf, ok, of);
	for (unsigned int i = 0; i < n_new; i++) {
		uint8_t f;

		need += !own_get(t, &nk[i], &f);
	}
	if (t->n_own + need > t->conf.max_addrs)
		return -ENOSPC;

	/* The MAC first: a worker answers only for a port whose MAC it sees. */
	__atomic_store_n(&t->port_mac[pc->port], sg_neigh_mac_word(pc->mac) | SG_NEIGH_W_VALID,
			 __ATOMIC_RELEASE);
	dropped = p->present ? p->conf.flags & (uint8_t)~pc->flags : 0;
	p->conf = *pc;
	p->present = 1;
	if (pc->flags & SG_NEIGH_PORT_IPV6)
		sg_neigh_link_local(pc->mac, p->ll);
	for (unsigned int i = 0; i < n_new; i++)
		own_add(t, &nk[i], nf[i]);
	for (unsigned int i = 0; i < n_old; i++) {
		int kept = 0;

		for (unsigned int j = 0; j < n_new && !kept; j++)
			kept = memcmp(&ok[i], &nk[j], sizeof(ok[i])) == 0 && (nf[j] & of[i]) == of[i];
		if (!kept)
			own_remove(t, &ok[i], of[i]);
	}
	/* Neighbours of a family no longer spoken there cannot be refreshed. */
	if (dropped & SG_NEIGH_PORT_IPV4)
		neigh_nb_flush(t, pc->port, 4);
	if (dropped & SG_NEIGH_PORT_IPV6)
		neigh_nb_flush(t, pc->port, 6);
	return 0;
}

int
sg_neigh_port_remove(struct sg_neigh_table *t, uint16_t port)
{
	struct sg_neigh_key *keys;
	const void *key;
	void *data;
	uint32_t next = 0, n = 0;

	if (t == NULL || port >= SG_NEIGH_MAX_PORTS)
		return -EINVAL;
	if (!t->ports[port].present)
		return -ENOENT;
	/* Stop answering first, then forget. */
	__atomic_store_n(&t->port_mac[port], 0, __ATOMIC_RELEASE);
	neigh_nb_flush(t, port, 0);
	neigh_ann_cancel(t, &(struct sg_neigh_key){ .port = port }, 1);

	/* Collect first: deleting while iterating would skip keys. */
	keys = malloc(sizeof(*keys) * (t->n_own + 1));
	if (keys != NULL) {
		while (rte_hash_iterate(t->own_hash, &key, &data, &next) >= 0)
			if (((const struct sg_neigh_key *)key)->port == port && n < t->n_own)
				keys[n++] = *(const struct sg_neigh_key *)key;
		for (uint32_t i = 0; i < n; i++)
			if (rte_hash_del_key(t->own_hash, &keys[i]) >= 0)
				t->n_own--;
		free(keys);
	} else {
		/* Out of memory: delete one at a time, restarting the walk. */
		int found = 1;

		while (found) {
			found = 0;
			next = 0;
			while (rte_hash_iterate(t->own_hash, &key, &data, &next) >= 0) {
				struct sg_neigh_key k = *(const struct sg_neigh_key *)key;

				if (k.port == port) {
					if (rte_hash_del_key(t->own_hash, &k) >= 0)
						t->n_own--;
					found = 1;
					break;
				}
			}
		}
	}
	memset(&t->ports[port], 0, sizeof(t->ports[port]));
	return 0;
}

int
sg_neigh_port_get(const struct sg_neigh_table *t, uint16_t port, struct sg_neigh_port_conf *pc)
{
	if (t == NULL || pc == NULL || port >= SG_NEIGH_MAX_PORTS)
		return -EINVAL;
	if (!t->ports[port].present)
		return -ENOENT;
	*pc = t->ports[port].conf;
	return 0;
}

/* ---- worker lookups ------------------------------------------------------ */

uint8_t
sg_neigh_owned(const struct sg_neigh_table *t, const struct sg_neigh_key *key)
{
	void *data;

	if (rte_hash_lookup_data(t->own_hash, key, &data) < 0)
		return 0;
	return (uint8_t)(uintptr_t)data;
}

unsigned int
sg_neigh_owned_bulk(const struct sg_neigh_table *t, const struct sg_neigh_key *keys,
		    unsigned int n, uint8_t flags[])
{
	const void *kp[SG_NEIGH_LOOKUP_MAX];
	void *data[SG_NEIGH_LOOKUP_MAX];
	uint64_t hits = 0;

	if (sg_unlikely(n == 0 || n > SG_NEIGH_LOOKUP_MAX)) {
		for (unsigned int i = 0; i < n; i++)
			flags[i] = 0;
		return 0;
	}
	for (unsigned int i = 0; i < n; i++)
		kp[i] = &keys[i];
	rte_hash_lookup_bulk_data(t->own_hash, kp, n, &hits, data);
	for (unsigned int i = 0; i < n; i++)
		flags[i] = (hits >> i) & 1 ? (uint8_t)(uintptr_t)data[i] : 0;
	return (unsigned int)__builtin_popcountll(hits);
}

uint64_t
sg_neigh_generation(const struct sg_neigh_table *t)
{
	return __atomic_load_n(&t->generation, __ATOMIC_ACQUIRE);
}

uint64_t
sg_neigh_lookup(const struct sg_neigh_table *t, const struct sg_neigh_key *key)
{
	void *data;

	if (rte_hash_lookup_data(t->nb_hash, key, &data) < 0)
		return 0;
	return (uint64_t)(uintptr_t)data;
}

unsigned int
sg_neigh_lookup_bulk(const struct sg_neigh_table *t, const struct sg_neigh_key *keys,
		     unsigned int n, uint64_t words[])
{
	const void *kp[SG_NEIGH_LOOKUP_MAX];
	void *data[SG_NEIGH_LOOKUP_MAX];
	uint64_t hits = 0;
	unsigned int usable = 0;

	if (sg_unlikely(n == 0 || n > SG_NEIGH_LOOKUP_MAX)) {
		for (unsigned int i = 0; i < n; i++)
			words[i] = 0;
		return 0;
	}
	for (unsigned int i = 0; i < n; i++)
		kp[i] = &keys[i];
	rte_hash_lookup_bulk_data(t->nb_hash, kp, n, &hits, data);
	for (unsigned int i = 0; i < n; i++) {
		words[i] = (hits >> i) & 1 ? (uint64_t)(uintptr_t)data[i] : 0;
		usable += sg_neigh_word_usable(words[i]);
	}
	return usable;
}

/* ---- sg_neigh_input ------------------------------------------------------ */

/*
 * RFC 826's merge rule, filtered on the worker so that the control thread
 * hears only news: report when the packet was addressed to us (it may
 * create an entry, and it confirms one), or when the sender has an entry
 * whose word is not already "valid, this MAC" (INCOMPLETE, FAILED, or
 * another MAC).
 */
static int
worth_learning(const struct sg_neigh_table *t, const struct sg_neigh_key *k, const uint8_t mac[6],
	       int to_us)
{
	void *data;

	if (rte_hash_lookup_data(t->nb_hash, k, &data) < 0)
		return to_us;
	return to_us || (uint64_t)(uintptr_t)data != (SG_NEIGH_W_VALID | sg_neigh_mac_word(mac));
}

static void
learn_fill(struct sg_neigh_learn *l, const struct sg_neigh_key *k, const uint8_t *mac,
	   uint8_t flags)
{
	l->key = *k;
	if (mac != NULL)
		memcpy(l->mac, mac, 6);
	else
		memset(l->mac, 0, 6);
	l->flags = flags | (mac != NULL ? SG_NEIGH_L_MAC : 0);
	l->pad = 0;
}

static unsigned int
input_arp(const struct sg_neigh_table *t, uint16_t port, uint8_t *buf, uint32_t len,
	  const struct sg_pkt_info *pi, const uint8_t mac[6], struct sg_neigh_learn *learn,
	  struct sg_neigh_rx_stats *st)
{
	const uint8_t *a = buf + pi->l3_off;
	const uint8_t *sha = a + ARP_SHA, *spa = a + ARP_SPA;
	uint16_t op = (uint16_t)(a[ARP_OP] << 8 | a[ARP_OP + 1]);
	struct sg_neigh_key tk, sk;
	unsigned int res = 0;
	int spa_zero = (spa[0] | spa[1] | spa[2] | spa[3]) == 0;
	uint8_t tflags;

	if ((op != ARP_OP_REQUEST && op != ARP_OP_REPLY) || !neigh_mac_unicast(sha) ||
	    (!spa_zero && !ip4_unicast(spa))) {
		st->arp_invalid++;
		return 0;
	}
	sg_neigh_key4(&tk, port, a + ARP_TPA);
	tflags = sg_neigh_owned(t, &tk);
	if (!sg_neigh_flags_answered(tflags))
		tflags = 0;
	if (!spa_zero) {
		uint8_t sflags;

		sg_neigh_key4(&sk, port, spa);
		sflags = sg_neigh_owned(t, &sk);
		/* The owner of a VIP we forward quietly announcing it: as it should. */
		if (sflags != 0 && !sg_neigh_flags_answered(sflags)) {
			st->quiet_seen++;
			return 0;
		}
		if (sflags != 0) {
			/* Someone else sends as one of our addresses (RFC 5227 §2.4). */
			st->conflicts++;
			st->learned++;
			learn_fill(learn, &sk, sha, SG_NEIGH_L_CONFLICT);
			return SG_NEIGH_RX_LEARN;
		}
		/* A probe (sender 0.0.0.0, RFC 5227 §2.1.1) teaches nothing. */
		if (worth_learning(t, &sk, sha, tflags != 0)) {
			learn_fill(learn, &sk, sha,
				   (tflags ? SG_NEIGH_L_TO_US : 0) |
				   (op == ARP_OP_REPLY ? SG_NEIGH_L_REPLY : 0));
			st->learned++;
			res = SG_NEIGH_RX_LEARN;
		}
	}
	if (op == ARP_OP_REPLY) {
		st->arp_replies++;
		return res;
	}
	if (tflags == 0) {
		st->arp_not_ours++;
		return res;
	}
	if (sg_neigh_arp_answer(buf, len, pi, mac) < 0) {
		st->arp_invalid++;
		return res;
	}
	st->arp_answered++;
	return res | SG_NEIGH_RX_REPLY;
}

static unsigned int
input_ns(const struct sg_neigh_table *t, uint16_t port, uint8_t *buf, uint32_t *len,
	 uint32_t cap, const struct sg_pkt_info *pi, const struct sg_neigh_nd *nd,
	 const uint8_t mac[6], struct sg_neigh_learn *learn, struct sg_neigh_rx_stats *st)
{
	const uint8_t *src = buf + pi->l3_off + 8;
	struct sg_neigh_key tk, sk;
	unsigned int res = 0;
	uint8_t tflags;
	int n;

	sg_neigh_key6(&tk, port, nd->target);
	tflags = sg_neigh_owned(t, &tk);
	if (!sg_neigh_flags_answered(tflags))
		tflags = 0;
	if (!neigh_addr_unspecified(src)) {
		uint8_t sflags;

		sg_neigh_key6(&sk, port, src);
		sflags = sg_neigh_owned(t, &sk);
		if (sflags != 0 && !sg_neigh_flags_answered(sflags)) {
			st->quiet_seen++;
			return 0;
		}
		if (sflags != 0) {
			st->conflicts++;
			st->learned++;
			learn_fill(learn, &sk, nd->has_lla ? nd->lla : buf + 6, SG_NEIGH_L_CONFLICT);
			return SG_NEIGH_RX_LEARN;
		}
		/* RFC 4861 §7.2.3: only an NS with a source LLA updates the cache. */
		if (nd->has_lla && neigh_mac_unicast(nd->lla) &&
		    worth_learning(t, &sk, nd->lla, tflags != 0)) {
			learn_fill(learn, &sk, nd->lla, tflags ? SG_NEIGH_L_TO_US : 0);
			st->learned++;
			res = SG_NEIGH_RX_LEARN;
		}
	}
	if (tflags == 0) {
		st->ns_not_ours++;
		return res;
	}
	n = sg_neigh_na_answer(buf, cap, pi, nd, mac);
	if (n < 0) {
		st->no_room++;
		return res;
	}
	*len = (uint32_t)n;
	st->ns_answered++;
	return res | SG_NEIGH_RX_REPLY;
}

static unsigned int
input_na(const struct sg_neigh_table *t, uint16_t port, const uint8_t *buf,
	 const struct sg_pkt_info *pi, const struct sg_neigh_nd *nd,
	 struct sg_neigh_learn *learn, struct sg_neigh_rx_stats *st)
{
	const uint8_t *dst = buf + pi->l3_off + 24;
	const uint8_t *lla = nd->has_lla && neigh_mac_unicast(nd->lla) ? nd->lla : NULL;
	struct sg_neigh_key tk, dk;
	uint8_t flags;
	void *data;
	uint64_t w;

	st->na_received++;
	sg_neigh_key6(&tk, port, nd->target);
	flags = sg_neigh_owned(t, &tk);
	if (flags != 0 && !sg_neigh_flags_answered(flags)) {
		st->quiet_seen++;
		return 0;
	}
	if (flags != 0) {
		st->conflicts++;
		st->learned++;
		learn_fill(learn, &tk, lla != NULL ? lla : buf + 6, SG_NEIGH_L_CONFLICT);
		return SG_NEIGH_RX_LEARN;
	}
	flags = SG_NEIGH_L_REPLY;
	/* RFC 4861 §7.2.5: an advertisement never creates an entry. */
	if (rte_hash_lookup_data(t->nb_hash, &tk, &data) < 0)
		return 0;
	w = (uint64_t)(uintptr_t)data;
	sg_neigh_key6(&dk, port, dst);
	if (dst[0] != 0xff && sg_neigh_owned(t, &dk) != 0)
		flags |= SG_NEIGH_L_TO_US;
	if (nd->flags & SG_NEIGH_NA_SOLICITED)
		flags |= SG_NEIGH_L_SOLICITED;
	if (nd->flags & SG_NEIGH_NA_OVERRIDE)
		flags |= SG_NEIGH_L_OVERRIDE;
	if (lla != NULL ? (flags & SG_NEIGH_L_TO_US) || w != (SG_NEIGH_W_VALID | sg_neigh_mac_word(lla))
			: (flags & SG_NEIGH_L_TO_US) && (flags & SG_NEIGH_L_SOLICITED)) {
		learn_fill(learn, &tk, lla, flags);
		st->learned++;
		return SG_NEIGH_RX_LEARN;
	}
	return 0;
}

unsigned int
sg_neigh_input(const struct sg_neigh_table *t, uint16_t port, uint8_t *buf, uint32_t *len,
	       uint32_t cap, const struct sg_pkt_info *pi, struct sg_neigh_learn *learn,
	       struct sg_neigh_rx_stats *st)
{
	struct sg_neigh_nd nd;
	enum sg_neigh_nd_reason r;
	uint8_t mac[6];
	uint64_t mw;

	if (sg_unlikely(port >= SG_NEIGH_MAX_PORTS)) {
		st->unknown_port++;
		return 0;
	}
	mw = __atomic_load_n(&t->port_mac[port], __ATOMIC_ACQUIRE);
	if (sg_unlikely(!(mw & SG_NEIGH_W_VALID))) {
		st->unknown_port++;
		return 0;
	}
	sg_neigh_word_mac(mw, mac);
	/* Our own requests and announcements, reflected by the segment. */
	if (sg_unlikely(memcmp(buf + 6, mac, 6) == 0)) {
		st->own++;
		return 0;
	}
	if (pi->l3 == SG_PKT_L3_ARP)
		return input_arp(t, port, buf, *len, pi, mac, learn, st);

	r = sg_neigh_nd_parse(buf, pi, &nd);
	if (r != SG_NEIGH_ND_OK) {
		st->nd_invalid[r]++;
		return 0;
	}
	if (nd.type == ND_TYPE_NS)
		return input_ns(t, port, buf, len, cap, pi, &nd, mac, learn, st);
	return input_na(t, port, buf, pi, &nd, learn, st);
}
