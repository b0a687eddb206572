/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control side of the neighbour table: applying what the workers
 * learned, holding packets while their next hop is resolved, the timers
 * (request retries, failure, refresh probes, expiry), announcements, and
 * telemetry. Control thread only; the workers see the results through the
 * neighbour hash (neigh.c).
 *
 * Timers: each state has its own list ordered by deadline. Within a state
 * every deadline is "now + a constant", so an entry goes to the tail of its
 * list and the tick only looks at the heads: bounded work per call and no
 * scan of the table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include <rte_hash.h>
#include <rte_mbuf.h>

#include "sg_common.h"

#include "neigh.h"
#include "neigh_private.h"
#include "neigh_table.h"

/* At most one conflict logged per this many ms: a conflict repeats. */
#define CONFLICT_LOG_MS 10000u

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };

static const char *const state_names[SG_NEIGH_STATE_COUNT] = {
	[SG_NEIGH_FREE] = "free",
	[SG_NEIGH_INCOMPLETE] = "incomplete",
	[SG_NEIGH_REACHABLE] = "reachable",
	[SG_NEIGH_STALE] = "stale",
	[SG_NEIGH_PROBE] = "probe",
	[SG_NEIGH_FAILED] = "failed",
};

const char *
sg_neigh_state_name(unsigned int state)
{
	return state > SG_NEIGH_FREE && state < SG_NEIGH_STATE_COUNT ? state_names[state] : "?";
}

/* ---- entries ------------------------------------------------------------- */

/* Ordered insert from the tail: O(1) unless a timeout changed. */
static void
list_insert(struct nb_list *l, struct nb *n)
{
	struct nb *p = TAILQ_LAST(l, nb_list);

	while (p != NULL && p->deadline > n->deadline)
		p = TAILQ_PREV(p, nb_list, link);
	if (p == NULL)
		TAILQ_INSERT_HEAD(l, n, link);
	else
		TAILQ_INSERT_AFTER(l, p, n, link);
}

static void
nb_set(struct sg_neigh_table *t, struct nb *n, uint8_t state, uint64_t deadline)
{
	if (n->state != SG_NEIGH_FREE) {
		TAILQ_REMOVE(&t->lists[n->state], n, link);
		t->n_state[n->state]--;
	}
	n->state = state;
	n->deadline = deadline;
	list_insert(&t->lists[state], n);
	t->n_state[state]++;
}

/* Tell the workers' caches that a word changed or went away. */
static void
generation_bump(struct sg_neigh_table *t)
{
	__atomic_store_n(&t->generation, t->generation + 1, __ATOMIC_RELEASE);
}

/* Publish a new word: one atomic store in the hash, seen by the next lookup. */
static void
word_set(struct sg_neigh_table *t, struct nb *n, uint64_t w)
{
	bool changed = n->word != w;

	n->word = w;
	rte_hash_add_key_data(t->nb_hash, &n->key, (void *)(uintptr_t)w);
	if (changed)
		generation_bump(t);
}

static uint64_t
probe_at(const struct sg_neigh_table *t, uint64_t now)
{
	return now + (uint64_t)t->conf.reachable_ms * 3 / 4;
}

static struct rte_mbuf **
held_slot(struct sg_neigh_table *t, struct nb *n, unsigned int i)
{
	uint32_t per = t->conf.hold_per_neigh;

	return &t->held[(size_t)(n - t->nbs) * per + (n->held_head + i) % per];
}

static void
held_free_all(struct sg_neigh_table *t, struct nb *n, uint64_t *counter)
{
	for (unsigned int i = 0; i < n->n_held; i++) {
		struct rte_mbuf **s = held_slot(t, n, i);

		rte_pktmbuf_free(*s);
		*s = NULL;
	}
	*counter += n->n_held;
	t->n_held -= n->n_held;
	n->n_held = 0;
	n->held_head = 0;
}

static int
frame_send(struct sg_neigh_table *t, uint16_t port, struct rte_mbuf *m)
{
	int rc = t->conf.tx(t->conf.tx_arg, port, m);

	if (rc != 0) {
		rte_pktmbuf_free(m);
		t->st.tx_errors++;
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

/* Send a packet that was waiting for n, with n's MAC as destination. */
static void
send_to(struct sg_neigh_table *t, const struct nb *n, struct rte_mbuf *m)
{
	uint8_t mac[6];

	if (m == NULL)
		return;
	if (rte_pktmbuf_data_len(m) < ETH_HLEN) {
		rte_pktmbuf_free(m);
		t->st.held_dropped_other++;
		return;
	}
	sg_neigh_word_mac(n->word, mac);
	memcpy(rte_pktmbuf_mtod(m, uint8_t *), mac, 6);
	if (frame_send(t, n->key.port, m) == 0)
		t->st.held_sent++;
}

static void
held_release(struct sg_neigh_table *t, struct nb *n)
{
	unsigned int k = n->n_held;

	for (unsigned int i = 0; i < k; i++) {
		struct rte_mbuf **s = held_slot(t, n, i);
		struct rte_mbuf *m = *s;

		*s = NULL;
		send_to(t, n, m);
	}
	t->n_held -= k;
	n->n_held = 0;
	n->held_head = 0;
}

/* Hold m for n: the oldest gives way at the per-neighbour limit. */
static int
held_push(struct sg_neigh_table *t, struct nb *n, struct rte_mbuf *m)
{
	if (m == NULL)
		return 0;
	if (n->n_held == t->conf.hold_per_neigh) {
		struct rte_mbuf **s = held_slot(t, n, 0);

		rte_pktmbuf_free(*s);
		*s = NULL;
		n->held_head = (uint8_t)((n->held_head + 1) % t->conf.hold_per_neigh);
		n->n_held--;
		t->n_held--;
		t->st.held_dropped_oldest++;
	} else if (t->n_held >= t->conf.hold_total) {
		rte_pktmbuf_free(m);
		t->st.held_dropped_limit++;
		return -ENOBUFS;
	}
	*held_slot(t, n, n->n_held) = m;
	n->n_held++;
	t->n_held++;
	return 0;
}

static struct nb *
nb_new(struct sg_neigh_table *t, const struct sg_neigh_key *key, uint64_t now)
{
	int32_t pos = neigh_hash_add(t, t->nb_hash, key, NULL);
	struct nb *n;

	if (pos < 0 || (uint32_t)pos >= t->n_slots) {
		if (pos >= 0)
			rte_hash_del_key(t->nb_hash, key);
		return NULL;
	}
	n = &t->nbs[pos];
	memset(n, 0, sizeof(*n));
	n->key = *key;
	n->since = now;
	t->n_nb++;
	return n;
}

static void
nb_delete(struct sg_neigh_table *t, struct nb *n)
{
	held_free_all(t, n, &t->st.held_dropped_other);
	TAILQ_REMOVE(&t->lists[n->state], n, link);
	t->n_state[n->state]--;
	/* The hash keeps the key slot until the readers are past it. */
	rte_hash_del_key(t->nb_hash, &n->key);
	generation_bump(t);
	n->state = SG_NEIGH_FREE;
	t->n_nb--;
}

/* Make room for one entry: only a learned (STALE) entry may be evicted. */
static int
make_room(struct sg_neigh_table *t)
{
	struct nb *victim;

	if (t->n_nb < t->conf.max_neighbours)
		return 0;
	victim = TAILQ_FIRST(&t->lists[SG_NEIGH_STALE]);
	if (victim == NULL)
		return -ENOSPC;
	nb_delete(t, victim);
	t->st.evicted++;
	return 0;
}

void
neigh_nb_flush(struct sg_neigh_table *t, uint16_t port, uint8_t family)
{
	for (unsigned int s = SG_NEIGH_FREE + 1; s < SG_NEIGH_STATE_COUNT; s++) {
		struct nb *n = TAILQ_FIRST(&t->lists[s]), *next;

		for (; n != NULL; n = next) {
			next = TAILQ_NEXT(n, link);
			if (n->key.port == port && (family == 0 || n->key.family == family))
				nb_delete(t, n);
		}
	}
}

void
neigh_free_held(struct sg_neigh_table *t)
{
	uint64_t dropped = 0;

	for (unsigned int s = SG_NEIGH_FREE + 1; s < SG_NEIGH_STATE_COUNT; s++) {
		struct nb *n;

		TAILQ_FOREACH(n, &t->lists[s], link)
			held_free_all(t, n, &dropped);
	}
}

/* ---- frames -------------------------------------------------------------- */

static struct rte_mbuf *
frame_alloc(struct sg_neigh_table *t, uint8_t **buf, uint32_t *cap)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(t->conf.pool);

	if (m == NULL) {
		t->st.alloc_errors++;
		return NULL;
	}
	*buf = rte_pktmbuf_mtod(m, uint8_t *);
	*cap = rte_pktmbuf_tailroom(m);
	return m;
}

static int
frame_finish(struct sg_neigh_table *t, uint16_t port, struct rte_mbuf *m, int len)
{
	if (len < 0 || rte_pktmbuf_append(m, (uint16_t)len) == NULL) {
		/* The pool's mbufs are smaller than an ARP or NDP frame. */
		rte_pktmbuf_free(m);
		t->st.alloc_errors++;
		return len < 0 ? len : -ENOSPC;
	}
	return frame_send(t, port, m);
}

/*
 * A request for n: broadcast ARP / multicast NS to its solicited-node
 * address (RFC 4861 §7.2.2), or, to refresh a known neighbour, unicast to
 * its MAC (RFC 4861 §7.3.3 probes; Linux does the same for ARP).
 */
static int
solicit(struct sg_neigh_table *t, const struct nb *n, int unicast)
{
	const struct port_rec *p = &t->ports[n->key.port];
	uint8_t dmac[6], dst[16], *buf;
	struct rte_mbuf *m;
	uint32_t cap;
	int len;

	m = frame_alloc(t, &buf, &cap);
	if (m == NULL)
		return -ENOMEM;
	if (unicast)
		sg_neigh_word_mac(n->word, dmac);
	if (n->key.family == 4) {
		len = sg_neigh_arp_build(buf, cap, ARP_OP_REQUEST, unicast ? dmac : bcast_mac,
					 p->conf.mac, p->conf.ip4, NULL, n->key.addr);
	} else {
		if (unicast) {
			memcpy(dst, n->key.addr, 16);
		} else {
			sg_neigh_solicited_node(n->key.addr, dst);
			sg_neigh_mcast_mac(dst, dmac);
		}
		len = sg_neigh_ns_build(buf, cap, p->conf.mac, dmac, p->ll, dst, n->key.addr);
	}
	if (unicast)
		t->st.probes++;
	else
		t->st.requests++;
	return frame_finish(t, n->key.port, m, len);
}

static int
announce_send(struct sg_neigh_table *t, const struct ann *a)
{
	const struct port_rec *p = &t->ports[a->key.port];
	struct rte_mbuf *m;
	uint8_t dmac[6], *buf;
	uint32_t cap;
	int len;

	m = frame_alloc(t, &buf, &cap);
	if (m == NULL)
		return -ENOMEM;
	if (a->key.family == 4) {
		/* RFC 5227 §3: an ARP request with sender = target = the address. */
		len = sg_neigh_arp_build(buf, cap, ARP_OP_REQUEST, bcast_mac, p->conf.mac,
					 a->key.addr, NULL, a->key.addr);
	} else {
		/* RFC 4861 §7.2.6: to all-nodes, override set, not solicited. */
		sg_neigh_mcast_mac(all_nodes, dmac);
		len = sg_neigh_na_build(buf, cap, p->conf.mac, dmac, a->key.addr, all_nodes,
					a->key.addr, SG_NEIGH_NA_OVERRIDE);
	}
	t->st.announces++;
	return frame_finish(t, a->key.port, m, len);
}

/* ---- learning and holding ------------------------------------------------ */

static void
confirm(struct sg_neigh_table *t, struct nb *n, uint64_t now)
{
	n->since = now;
	n->tries = 0;
	if (n->state == SG_NEIGH_STALE)
		nb_set(t, n, SG_NEIGH_STALE, now + t->conf.reachable_ms);
	else
		nb_set(t, n, SG_NEIGH_REACHABLE, probe_at(t, now));
}

static void
conflict_log(struct sg_neigh_table *t, const struct sg_neigh_learn *l, uint64_t now)
{
	char a[INET6_ADDRSTRLEN];

	if (t->conflict_logged != 0 && now + 1 - t->conflict_logged < CONFLICT_LOG_MS)
		return;
	t->conflict_logged = now + 1;
	inet_ntop(l->key.family == 4 ? AF_INET : AF_INET6, l->key.addr, a, sizeof(a));
	SG_LOG(neigh, WARNING,
	       "port %u: %s is claimed by %02x:%02x:%02x:%02x:%02x:%02x (%" PRIu64 " conflicts)",
	       l->key.port, a, l->mac[0], l->mac[1], l->mac[2], l->mac[3], l->mac[4], l->mac[5],
	       t->st.conflicts);
}

int
sg_neigh_learn(struct sg_neigh_table *t, const struct sg_neigh_learn *l, uint64_t now)
{
	const struct sg_neigh_key *k;
	uint8_t f, old_state;
	struct nb *n;
	int32_t pos;
	uint64_t w;

	if (t == NULL || l == NULL)
		return -EINVAL;
	k = &l->key;
	f = l->flags;
	if (!neigh_key_ok(k) || !neigh_key_unicast(k) || (f & ~SG_NEIGH_L_ALL) ||
	    ((f & SG_NEIGH_L_MAC) && !neigh_mac_unicast(l->mac)) || !neigh_key_port_ok(t, k)) {
		t->st.invalid++;
		return -EINVAL;
	}
	if (f & SG_NEIGH_L_CONFLICT) {
		t->st.conflicts++;
		conflict_log(t, l, now);
		return 0;
	}

	pos = rte_hash_lookup(t->nb_hash, k);
	if (pos < 0) {
		/* RFC 826: create only if we were the target; RFC 4861 §7.2.5: never from an NA. */
		if (!(f & SG_NEIGH_L_MAC) || !(f & SG_NEIGH_L_TO_US) ||
		    (k->family == 6 && (f & SG_NEIGH_L_REPLY))) {
			t->st.learn_ignored++;
			return -ENOENT;
		}
		n = t->n_nb < t->conf.max_neighbours ? nb_new(t, k, now) : NULL;
		if (n == NULL) {
			t->st.table_full++;
			return -ENOSPC;
		}
		word_set(t, n, SG_NEIGH_W_VALID | sg_neigh_mac_word(l->mac));
		nb_set(t, n, SG_NEIGH_STALE, now + t->conf.reachable_ms);
		t->st.learn_created++;
		return 0;
	}

	n = &t->nbs[pos];
	if (!(f & SG_NEIGH_L_MAC)) {
		/* An NA without the option (answer to a unicast NS) only confirms. */
		if ((f & SG_NEIGH_L_SOLICITED) && sg_neigh_word_usable(n->word)) {
			confirm(t, n, now);
			t->st.learn_updated++;
			return 0;
		}
		t->st.learn_ignored++;
		return -ENOENT;
	}
	w = SG_NEIGH_W_VALID | sg_neigh_mac_word(l->mac);
	if (k->family == 6 && (f & SG_NEIGH_L_REPLY) && !(f & SG_NEIGH_L_OVERRIDE) &&
	    sg_neigh_word_usable(n->word) && n->word != w) {
		/* RFC 4861 §7.2.5: without override, a known address is kept. */
		t->st.learn_ignored++;
		return -ENOENT;
	}
	if (sg_neigh_word_usable(n->word) && n->word != w)
		t->st.mac_changes++;
	if (n->word != w)
		word_set(t, n, w);
	old_state = n->state;
	confirm(t, n, now);
	if (old_state == SG_NEIGH_INCOMPLETE || old_state == SG_NEIGH_FAILED) {
		t->st.resolved++;
		held_release(t, n);
	}
	t->st.learn_updated++;
	return 0;
}

int
sg_neigh_hold(struct sg_neigh_table *t, const struct sg_neigh_key *key, struct rte_mbuf *m,
	      uint64_t now)
{
	struct nb *n;
	int32_t pos;
	int rc;

	if (t == NULL || key == NULL || !neigh_key_ok(key) || !neigh_key_unicast(key)) {
		rte_pktmbuf_free(m);
		if (t != NULL)
			t->st.invalid++;
		return -EINVAL;
	}
	if (!neigh_key_port_ok(t, key)) {
		rte_pktmbuf_free(m);
		t->st.invalid++;
		return -EADDRNOTAVAIL;
	}
	pos = rte_hash_lookup(t->nb_hash, key);
	if (pos >= 0) {
		n = &t->nbs[pos];
		switch (n->state) {
		case SG_NEIGH_INCOMPLETE:
			return held_push(t, n, m);
		case SG_NEIGH_FAILED:
			rte_pktmbuf_free(m);
			if (m != NULL)
				t->st.dropped_failed++;
			return -EHOSTUNREACH;
		case SG_NEIGH_STALE:
			/* Used now: refresh it like a resolved one from here on. */
			nb_set(t, n, SG_NEIGH_REACHABLE, probe_at(t, now));
			/* fall through */
		default:
			send_to(t, n, m);
			return 0;
		}
	}

	n = make_room(t) == 0 ? nb_new(t, key, now) : NULL;
	if (n == NULL) {
		rte_pktmbuf_free(m);
		t->st.table_full++;
		return -ENOSPC;
	}
	nb_set(t, n, SG_NEIGH_INCOMPLETE, now + t->conf.retry_ms);
	rc = held_push(t, n, m);
	solicit(t, n, 0);
	n->tries = 1;
	return rc;
}

/* ---- timers -------------------------------------------------------------- */

static void
timer(struct sg_neigh_table *t, struct nb *n, uint64_t now)
{
	switch (n->state) {
	case SG_NEIGH_INCOMPLETE:
		if (n->tries < t->conf.max_tries) {
			solicit(t, n, 0);
			n->tries++;
			nb_set(t, n, SG_NEIGH_INCOMPLETE, now + t->conf.retry_ms);
			break;
		}
		/* Nobody answered: drop what waits, and make workers drop too. */
		held_free_all(t, n, &t->st.held_dropped_failed);
		word_set(t, n, SG_NEIGH_W_FAILED);
		n->since = now;
		nb_set(t, n, SG_NEIGH_FAILED, now + t->conf.failed_ms);
		t->st.failed++;
		break;
	case SG_NEIGH_REACHABLE:
		/* 3/4 of its life: ask it directly while the entry still works. */
		n->tries = 0;
		nb_set(t, n, SG_NEIGH_PROBE, now);
		/* fall through */
	case SG_NEIGH_PROBE:
		if (n->tries < t->conf.max_tries) {
			solicit(t, n, 1);
			n->tries++;
			nb_set(t, n, SG_NEIGH_PROBE, now + t->conf.retry_ms);
			break;
		}
		t->st.expired++;
		nb_delete(t, n);
		break;
	case SG_NEIGH_STALE:
		t->st.stale_expired++;
		nb_delete(t, n);
		break;
	default:
		nb_delete(t, n);
		break;
	}
}

static uint32_t
announce_run(struct sg_neigh_table *t, uint64_t now, uint32_t budget)
{
	uint32_t done = 0, i = 0;

	while (i < t->n_ann && done < budget) {
		struct ann *a = &t->anns[i];

		if (a->next > now) {
			i++;
			continue;
		}
		announce_send(t, a);
		done++;
		if (a->left != SG_NEIGH_ANNOUNCE_FOREVER)
			a->left--;
		if (a->left == 0 && a->refresh != 0) {
			a->left = 1;
			a->next = now + a->refresh;
			i++;
			continue;
		}
		if (a->left == 0) {
			*a = t->anns[--t->n_ann];
			continue;
		}
		a->next = now + a->interval;
		i++;
	}
	return done;
}

int
sg_neigh_tick(struct sg_neigh_table *t, uint64_t now)
{
	/* Resolutions first: packets wait on them. */
	static const uint8_t order[] = {
		SG_NEIGH_INCOMPLETE, SG_NEIGH_PROBE, SG_NEIGH_REACHABLE, SG_NEIGH_STALE,
		SG_NEIGH_FAILED,
	};
	uint32_t done = 0, budget;

	if (t == NULL)
		return -EINVAL;
	budget = t->conf.tick_budget;
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(order); i++) {
		struct nb_list *l = &t->lists[order[i]];
		struct nb *n;

		while (done < budget && (n = TAILQ_FIRST(l)) != NULL && n->deadline <= now) {
			timer(t, n, now);
			done++;
		}
	}
	done += announce_run(t, now, budget - done);
	return (int)done;
}

int
sg_neigh_set_reachable(struct sg_neigh_table *t, uint32_t ms)
{
	if (t == NULL || ms == 0)
		return -EINVAL;
	t->conf.reachable_ms = ms;
	return 0;
}

/* ---- announcements ------------------------------------------------------- */

static int
ann_find(const struct sg_neigh_table *t, const struct sg_neigh_key *key)
{
	for (uint32_t i = 0; i < t->n_ann; i++)
		if (memcmp(&t->anns[i].key, key, sizeof(*key)) == 0)
			return (int)i;
	return -1;
}

void
neigh_ann_cancel(struct sg_neigh_table *t, const struct sg_neigh_key *key, int whole_port)
{
	uint32_t i = 0;

	while (i < t->n_ann) {
		const struct sg_neigh_key *k = &t->anns[i].key;

		if (whole_port ? k->port == key->port : memcmp(k, key, sizeof(*k)) == 0)
			t->anns[i] = t->anns[--t->n_ann];
		else
			i++;
	}
}

int
sg_neigh_announce(struct sg_neigh_table *t, const struct sg_neigh_key *key, uint32_t count,
		  uint32_t interval_ms, uint64_t now)
{
	return sg_neigh_announce_refresh(t, key, count, interval_ms, 0, now);
}

int
sg_neigh_announce_refresh(struct sg_neigh_table *t, const struct sg_neigh_key *key,
			  uint32_t count, uint32_t interval_ms, uint32_t refresh_ms, uint64_t now)
{
	uint8_t flags;
	struct ann *a;
	int i;

	if (t == NULL || key == NULL || !neigh_key_ok(key) || (count > 1 && interval_ms == 0))
		return -EINVAL;
	i = ann_find(t, key);
	if (count == 0) {
		if (i < 0)
			return -ENOENT;
		t->anns[i] = t->anns[--t->n_ann];
		return 0;
	}
	flags = sg_neigh_owned(t, key);
	if (!neigh_key_port_ok(t, key) || !sg_neigh_flags_answered(flags))
		return -EADDRNOTAVAIL;
	if (i < 0) {
		if (t->n_ann >= t->conf.max_announce)
			return -ENOSPC;
		i = (int)t->n_ann++;
	}
	a = &t->anns[i];
	a->key = *key;
	a->left = count;
	a->interval = interval_ms;
	a->refresh = refresh_ms;
	a->next = now;
	return 0;
}

/* ---- telemetry ----------------------------------------------------------- */

int
sg_neigh_stats_get(const struct sg_neigh_table *t, struct sg_neigh_stats *st)
{
	if (t == NULL || st == NULL)
		return -EINVAL;
	*st = t->st;
	st->neighbours = t->n_nb;
	memcpy(st->by_state, t->n_state, sizeof(st->by_state));
	st->addrs = t->n_own;
	st->held = t->n_held;
	st->announcements = t->n_ann;
	return 0;
}

int
sg_neigh_foreach(const struct sg_neigh_table *t, uint64_t now, sg_neigh_info_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return -EINVAL;
	for (unsigned int s = SG_NEIGH_FREE + 1; s < SG_NEIGH_STATE_COUNT; s++) {
		const struct nb *n;

		TAILQ_FOREACH(n, &t->lists[s], link) {
			struct sg_neigh_info info;
			int rc;

			memset(&info, 0, sizeof(info));
			info.key = n->key;
			if (sg_neigh_word_usable(n->word))
				sg_neigh_word_mac(n->word, info.mac);
			info.state = n->state;
			info.held = n->n_held;
			info.tries = n->tries;
			info.age_ms = now > n->since ? now - n->since : 0;
			rc = fn(&info, arg);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}
