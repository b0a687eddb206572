/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow table: an rte_hash from keys to (flow index, direction), the
 * preallocated flow array and IPv6 address pool with their free lists, lazy
 * expiry, the incremental sweep and the new-flow token bucket. The TCP state
 * machine, timeouts and names are in flow_state.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_prefetch.h>

#include "sg_common.h"
#include "sg_log.h"
#include "flow.h"
#include "flow_private.h"

SG_LOG_REGISTER(flow)

/* sg_flow.flags bit of entries holding a flow. */
#define F_USED 0x80
/* End of a free list. */
#define NO_ENTRY UINT32_MAX
/* The token bucket counts thousandths of a flow, so that `rate` flows a
 * second refill exactly `rate` units a millisecond. */
#define MILLI 1000u

struct sg_flow_table {
	/* Read by every lookup. */
	struct rte_hash *hash;
	struct sg_flow *flows;
	uint32_t tmo[SG_FLOW_STATE_MAX];

	/*
	 * Entries are handed out from the free list, else from the never
	 * used tail above the high-water mark; so creation touches no entry
	 * and the sweep only visits the part of the array ever used.
	 */
	struct sg_flow_addr6 *addr6;
	uint32_t max_flows;
	uint32_t max_flows6;
	uint32_t free_head;
	uint32_t free6_head;
	uint32_t hw;
	uint32_t hw6;
	uint32_t count;
	uint32_t sweep_pos;

	/* New-flow token bucket; rate 0 disables it. */
	uint32_t rate;
	uint64_t tokens;
	uint64_t cap;
	uint64_t fill_ms;	/* time to fill from empty */
	uint64_t tb_last;

	struct sg_flow_stats stats __rte_cache_aligned;
	char name[SG_FLOW_NAMESIZE];
};

/*
 * What the hash stores for a key: the flow's index and the direction the
 * key stands for, packed in the data pointer, so one hash serves both
 * directions and a hit needs no second lookup.
 */
static inline void *
ref_make(uint32_t idx, unsigned int dir)
{
	return (void *)(((uintptr_t)idx << 1) | dir);
}

static inline uint32_t
ref_idx(const void *ref)
{
	return (uint32_t)((uintptr_t)ref >> 1);
}

static inline uint8_t
ref_dir(const void *ref)
{
	return (uint8_t)((uintptr_t)ref & 1);
}

/*
 * Keys are 40 bytes, a length rte_hash has no vector compare for (it would
 * fall back to memcmp); five 64-bit words compare without a branch.
 */
static int
key_cmp(const void *a, const void *b, size_t len)
{
	uint64_t x[5], y[5];

	RTE_SET_USED(len);
	memcpy(x, a, sizeof(x));
	memcpy(y, b, sizeof(y));
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) |
		(x[3] ^ y[3]) | (x[4] ^ y[4])) != 0;
}

_Static_assert(sizeof(struct sg_flow_key) == 5 * sizeof(uint64_t), "key_cmp reads 5 words");

/* A key hashes and compares as bytes, so bytes outside the tuple must be zero. */
static int
key_valid(const struct sg_flow_key *k)
{
	static const uint8_t zero[12];

	if (k->pad[0] != 0 || k->pad[1] != 0)
		return 0;
	if (k->family == SG_FLOW_V6)
		return 1;
	if (k->family != SG_FLOW_V4)
		return 0;
	return memcmp(k->src + 4, zero, sizeof(zero)) == 0 &&
	       memcmp(k->dst + 4, zero, sizeof(zero)) == 0;
}

static inline int
flow_expired(const struct sg_flow_table *t, const struct sg_flow *f, uint64_t now)
{
	/* A clock behind last_seen is taken as no time passed. */
	return now > f->last_seen && now - f->last_seen > t->tmo[f->state];
}

/* Key of f in direction dir; the caller checked that the flow has it. */
static void
flow_key(const struct sg_flow *f, unsigned int dir, struct sg_flow_key *k)
{
	enum sg_flow_end src = dir == SG_FLOW_DIR_FWD ? SG_FLOW_FWD_SRC : SG_FLOW_REV_SRC;
	enum sg_flow_end dst = src + 1;

	sg_flow_key_init(k, f->family, f->proto, sg_flow_addr(f, src), sg_flow_addr(f, dst),
			 f->port[src], f->port[dst]);
}

static inline int
flow_available(const struct sg_flow_table *t)
{
	return t->free_head != NO_ENTRY || t->hw < t->max_flows;
}

static inline int
addr6_available(const struct sg_flow_table *t)
{
	return t->free6_head != NO_ENTRY || t->hw6 < t->max_flows6;
}

/* The caller checked flow_available(). */
static inline uint32_t
flow_alloc(struct sg_flow_table *t)
{
	uint32_t idx = t->free_head;

	if (idx == NO_ENTRY)
		return t->hw++;
	t->free_head = t->flows[idx].next_free;
	return idx;
}

/* The next free block's index is kept in the free block itself. */
static inline uint32_t
addr6_alloc(struct sg_flow_table *t)
{
	uint32_t idx = t->free6_head;

	if (idx == NO_ENTRY)
		return t->hw6++;
	memcpy(&t->free6_head, t->addr6[idx].a[0], sizeof(t->free6_head));
	return idx;
}

static inline void
addr6_free(struct sg_flow_table *t, struct sg_flow_addr6 *b)
{
	memcpy(b->a[0], &t->free6_head, sizeof(t->free6_head));
	t->free6_head = (uint32_t)(b - t->addr6);
}

static inline void
flow_free(struct sg_flow_table *t, uint32_t idx)
{
	struct sg_flow *f = &t->flows[idx];

	if (f->family == SG_FLOW_V6)
		addr6_free(t, f->addr.v6);
	f->flags = 0;
	f->next_free = t->free_head;
	t->free_head = idx;
}

/* Remove a flow in use: both keys, then its entry. */
static void
flow_remove(struct sg_flow_table *t, uint32_t idx)
{
	struct sg_flow *f = &t->flows[idx];
	struct sg_flow_key k;
	int32_t ret;

	flow_key(f, SG_FLOW_DIR_FWD, &k);
	ret = rte_hash_del_key(t->hash, &k);
	RTE_ASSERT(ret >= 0);
	if (f->flags & SG_FLOW_F_REVERSE) {
		flow_key(f, SG_FLOW_DIR_REV, &k);
		ret = rte_hash_del_key(t->hash, &k);
		RTE_ASSERT(ret >= 0);
	}
	RTE_SET_USED(ret);
	flow_free(t, idx);
	t->count--;
}

static uint8_t
initial_state(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return SG_FLOW_TCP_NEW;
	case IPPROTO_UDP:
		return SG_FLOW_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return SG_FLOW_ICMP;
	default:
		return SG_FLOW_OTHER;
	}
}

/*
 * Token bucket (RFC 2697's single bucket, without colours): refilled from
 * `now`, so it costs nothing between inserts and needs no timer.
 */
static int
rate_take(struct sg_flow_table *t, uint64_t now)
{
	if (t->rate == 0)
		return 1;
	if (now > t->tb_last) {
		uint64_t elapsed = now - t->tb_last;

		/* Past fill_ms the product could overflow; the bucket is full anyway. */
		if (elapsed >= t->fill_ms)
			t->tokens = t->cap;
		else
			t->tokens = RTE_MIN(t->cap, t->tokens + elapsed * t->rate);
		t->tb_last = now;
	}
	if (t->tokens < MILLI)
		return 0;
	t->tokens -= MILLI;
	return 1;
}

struct sg_flow_table *
sg_flow_table_create(const struct sg_flow_conf *conf)
{
	struct rte_hash_parameters hp;
	char hname[RTE_HASH_NAMESIZE];
	struct sg_flow_table *t;
	uint64_t burst;
	size_t nlen;
	unsigned int s;
	int err;

	if (conf == NULL || conf->name == NULL) {
		SG_LOG(flow, ERR, "create: no conf or no name");
		errno = EINVAL;
		return NULL;
	}
	nlen = strnlen(conf->name, SG_FLOW_NAMESIZE);
	if (nlen == 0 || nlen >= SG_FLOW_NAMESIZE) {
		SG_LOG(flow, ERR, "create: name must have 1 to %d characters",
		       SG_FLOW_NAMESIZE - 1);
		errno = EINVAL;
		return NULL;
	}
	if (conf->max_flows == 0 || conf->max_flows > SG_FLOW_MAX_FLOWS ||
	    conf->max_flows_v6 > conf->max_flows) {
		SG_LOG(flow, ERR, "%s: max_flows %u (1 to %u), max_flows_v6 %u (0 to max_flows)",
		       conf->name, conf->max_flows, SG_FLOW_MAX_FLOWS, conf->max_flows_v6);
		errno = EINVAL;
		return NULL;
	}
	if (conf->burst != 0 && conf->rate == 0) {
		SG_LOG(flow, ERR, "%s: burst %u without a rate", conf->name, conf->burst);
		errno = EINVAL;
		return NULL;
	}
	if (conf->socket_id != SOCKET_ID_ANY &&
	    (conf->socket_id < 0 || conf->socket_id >= RTE_MAX_NUMA_NODES)) {
		SG_LOG(flow, ERR, "%s: socket %d", conf->name, conf->socket_id);
		errno = EINVAL;
		return NULL;
	}
	snprintf(hname, sizeof(hname), "flow_%s", conf->name);
	if (rte_hash_find_existing(hname) != NULL) {
		SG_LOG(flow, ERR, "%s: a table of that name exists", conf->name);
		errno = EEXIST;
		return NULL;
	}

	err = ENOMEM;
	t = rte_zmalloc_socket("sg_flow_table", sizeof(*t), RTE_CACHE_LINE_SIZE, conf->socket_id);
	if (t == NULL)
		goto fail;
	t->flows = rte_zmalloc_socket("sg_flow", (size_t)conf->max_flows * sizeof(*t->flows),
				      RTE_CACHE_LINE_SIZE, conf->socket_id);
	if (t->flows == NULL)
		goto free_table;
	t->max_flows = conf->max_flows;
	t->max_flows6 = conf->max_flows_v6 != 0 ? conf->max_flows_v6 : conf->max_flows;
	t->addr6 = rte_zmalloc_socket("sg_flow_addr6", (size_t)t->max_flows6 * sizeof(*t->addr6),
				      RTE_CACHE_LINE_SIZE, conf->socket_id);
	if (t->addr6 == NULL)
		goto free_flows;

	memset(&hp, 0, sizeof(hp));
	hp.name = hname;
	/* Two keys a flow at most; rte_hash wants at least one bucket's worth. */
	hp.entries = RTE_MAX(2 * conf->max_flows, 16u);
	hp.key_len = sizeof(struct sg_flow_key);
	hp.hash_func = rte_hash_crc;
	hp.hash_func_init_val = conf->hash_seed;
	hp.socket_id = conf->socket_id;
	/*
	 * Without extendable buckets a cuckoo table can refuse a key well
	 * before `entries` when buckets collide; with them, capacity is
	 * exactly the free list's and a full table means max_flows flows.
	 * No concurrency flag: one lcore owns the table.
	 */
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	rte_errno = 0;
	t->hash = rte_hash_create(&hp);
	if (t->hash == NULL) {
		if (rte_errno == EEXIST)
			err = EEXIST;
		goto free_addr6;
	}
	rte_hash_set_cmp_func(t->hash, key_cmp);

	for (s = 0; s < SG_FLOW_STATE_MAX; s++)
		t->tmo[s] = conf->timeout_ms[s] != 0 ? conf->timeout_ms[s] :
						       sg_flow_default_timeout(s);
	t->free_head = NO_ENTRY;
	t->free6_head = NO_ENTRY;
	t->rate = conf->rate;
	if (t->rate != 0) {
		burst = conf->burst != 0 ? conf->burst : conf->rate;
		t->cap = burst * MILLI;
		t->fill_ms = (t->cap + t->rate - 1) / t->rate;
		t->tokens = t->cap;
	}
	memcpy(t->name, conf->name, nlen + 1);
	SG_LOG(flow, DEBUG, "%s: %u flows (%u IPv6) on socket %d", t->name, t->max_flows,
	       t->max_flows6, conf->socket_id);
	return t;

free_addr6:
	rte_free(t->addr6);
free_flows:
	rte_free(t->flows);
free_table:
	rte_free(t);
fail:
	SG_LOG(flow, ERR, "%s: cannot allocate %u flows on socket %d: %s", conf->name,
	       conf->max_flows, conf->socket_id, strerror(err));
	errno = err;
	return NULL;
}

void
sg_flow_table_free(struct sg_flow_table *t)
{
	if (t == NULL)
		return;
	rte_hash_free(t->hash);
	rte_free(t->addr6);
	rte_free(t->flows);
	rte_free(t);
}

unsigned int
sg_flow_lookup_bulk(struct sg_flow_table *t, const struct sg_flow_key *const keys[],
		    unsigned int n, uint64_t now, struct sg_flow *flows[], uint8_t dirs[])
{
	unsigned int base, hits = 0;

	RTE_ASSERT(t != NULL && (n == 0 || (keys != NULL && flows != NULL && dirs != NULL)));
	for (base = 0; base < n; base += SG_MAX_BURST) {
		unsigned int i, m = RTE_MIN(n - base, (unsigned int)SG_MAX_BURST);
		const void *kp[SG_MAX_BURST];
		void *data[SG_MAX_BURST];
		uint64_t mask = 0;

		for (i = 0; i < m; i++)
			kp[i] = keys[base + i];
		if (rte_hash_lookup_bulk_data(t->hash, kp, m, &mask, data) < 0)
			mask = 0;
		/* Start every hit's line before the first expiry check needs one. */
		for (i = 0; i < m; i++)
			if (mask & (UINT64_C(1) << i))
				rte_prefetch0(&t->flows[ref_idx(data[i])]);
		for (i = 0; i < m; i++) {
			struct sg_flow *f = NULL;

			if (mask & (UINT64_C(1) << i)) {
				f = &t->flows[ref_idx(data[i])];
				/*
				 * Both keys of one flow may be in a burst: if an
				 * earlier one found it expired, it is gone.
				 */
				if (!(f->flags & F_USED)) {
					f = NULL;
				} else if (flow_expired(t, f, now)) {
					flow_remove(t, ref_idx(data[i]));
					t->stats.expired_lazy++;
					f = NULL;
				}
			}
			flows[base + i] = f;
			dirs[base + i] = f != NULL ? ref_dir(data[i]) : 0;
			hits += f != NULL;
		}
	}
	t->stats.lookups += n;
	t->stats.hits += hits;
	return hits;
}

struct sg_flow *
sg_flow_lookup(struct sg_flow_table *t, const struct sg_flow_key *key, uint64_t now,
	       uint8_t *dir)
{
	struct sg_flow *f;
	void *data;

	RTE_ASSERT(t != NULL && key != NULL);
	t->stats.lookups++;
	if (rte_hash_lookup_data(t->hash, key, &data) < 0)
		return NULL;
	f = &t->flows[ref_idx(data)];
	if (flow_expired(t, f, now)) {
		flow_remove(t, ref_idx(data));
		t->stats.expired_lazy++;
		return NULL;
	}
	t->stats.hits++;
	if (dir != NULL)
		*dir = ref_dir(data);
	return f;
}

/* Whether key belongs to a live flow; an expired one is removed on the way. */
static int
key_in_use(struct sg_flow_table *t, const struct sg_flow_key *key, hash_sig_t sig,
	   uint64_t now)
{
	void *data;

	if (rte_hash_lookup_with_hash_data(t->hash, key, sig, &data) < 0)
		return 0;
	if (!flow_expired(t, &t->flows[ref_idx(data)], now))
		return 1;
	flow_remove(t, ref_idx(data));
	t->stats.expired_lazy++;
	return 0;
}

int
sg_flow_insert(struct sg_flow_table *t, const struct sg_flow_key *fwd,
	       const struct sg_flow_key *rev, uint32_t service_id, uint32_t backend,
	       uint8_t mode, uint64_t now, struct sg_flow **flow)
{
	hash_sig_t sig_fwd, sig_rev = 0;
	struct sg_flow *f;
	uint32_t idx;
	int v6;

	if (t == NULL || fwd == NULL || flow == NULL || !key_valid(fwd))
		return -EINVAL;
	if (rev != NULL && (!key_valid(rev) || rev->family != fwd->family ||
			    rev->proto != fwd->proto || key_cmp(fwd, rev, sizeof(*fwd)) == 0))
		return -EINVAL;

	/*
	 * rte_hash_add_key_data() would silently move a key in use to the
	 * new flow, so a key in use must be caught here.
	 */
	sig_fwd = rte_hash_hash(t->hash, fwd);
	if (key_in_use(t, fwd, sig_fwd, now))
		goto exists;
	if (rev != NULL) {
		sig_rev = rte_hash_hash(t->hash, rev);
		if (key_in_use(t, rev, sig_rev, now))
			goto exists;
	}

	v6 = fwd->family == SG_FLOW_V6;
	if (!flow_available(t) || (v6 && !addr6_available(t))) {
		t->stats.table_full++;
		return -ENOSPC;
	}
	/* Refusals above do not spend tokens: only flows that would exist do. */
	if (!rate_take(t, now)) {
		t->stats.rate_limited++;
		return -EAGAIN;
	}

	idx = flow_alloc(t);
	f = &t->flows[idx];
	memset(f, 0, sizeof(*f));
	f->last_seen = now;
	f->created = now;
	f->state = initial_state(fwd->proto);
	f->flags = F_USED | (rev != NULL ? SG_FLOW_F_REVERSE : 0);
	f->family = fwd->family;
	f->proto = fwd->proto;
	f->service_id = service_id;
	f->backend = backend;
	f->mode = mode;
	f->port[SG_FLOW_FWD_SRC] = fwd->sport;
	f->port[SG_FLOW_FWD_DST] = fwd->dport;
	if (v6) {
		struct sg_flow_addr6 *b = &t->addr6[addr6_alloc(t)];

		memset(b, 0, sizeof(*b));
		memcpy(b->a[SG_FLOW_FWD_SRC], fwd->src, 16);
		memcpy(b->a[SG_FLOW_FWD_DST], fwd->dst, 16);
		if (rev != NULL) {
			memcpy(b->a[SG_FLOW_REV_SRC], rev->src, 16);
			memcpy(b->a[SG_FLOW_REV_DST], rev->dst, 16);
		}
		f->addr.v6 = b;
	} else {
		memcpy(f->addr.v4[SG_FLOW_FWD_SRC], fwd->src, 4);
		memcpy(f->addr.v4[SG_FLOW_FWD_DST], fwd->dst, 4);
		if (rev != NULL) {
			memcpy(f->addr.v4[SG_FLOW_REV_SRC], rev->src, 4);
			memcpy(f->addr.v4[SG_FLOW_REV_DST], rev->dst, 4);
		}
	}
	if (rev != NULL) {
		f->port[SG_FLOW_REV_SRC] = rev->sport;
		f->port[SG_FLOW_REV_DST] = rev->dport;
	}

	/*
	 * Cannot fail while the free list bounds the keys to `entries`
	 * (extendable buckets); handled anyway, as a full table.
	 */
	if (rte_hash_add_key_with_hash_data(t->hash, fwd, sig_fwd,
					    ref_make(idx, SG_FLOW_DIR_FWD)) < 0)
		goto free_flow;
	if (rev != NULL && rte_hash_add_key_with_hash_data(t->hash, rev, sig_rev,
							   ref_make(idx, SG_FLOW_DIR_REV)) < 0)
		goto del_fwd;

	t->count++;
	t->stats.inserted++;
	*flow = f;
	return 0;

del_fwd:
	rte_hash_del_key_with_hash(t->hash, fwd, sig_fwd);
free_flow:
	flow_free(t, idx);
	t->stats.table_full++;
	return -ENOSPC;
exists:
	t->stats.exists++;
	return -EEXIST;
}

/* Index of f in t, or NO_ENTRY if f is not one of t's entries. */
static uint32_t
flow_index(const struct sg_flow_table *t, const struct sg_flow *f)
{
	uintptr_t base = (uintptr_t)t->flows, p = (uintptr_t)f;

	if (p < base || (p - base) % sizeof(*f) != 0 || (p - base) / sizeof(*f) >= t->hw)
		return NO_ENTRY;
	return (uint32_t)((p - base) / sizeof(*f));
}

int
sg_flow_delete(struct sg_flow_table *t, struct sg_flow *f)
{
	uint32_t idx;

	if (t == NULL || f == NULL)
		return -EINVAL;
	idx = flow_index(t, f);
	if (idx == NO_ENTRY || !(f->flags & F_USED))
		return -EINVAL;
	flow_remove(t, idx);
	t->stats.deleted++;
	return 0;
}

unsigned int
sg_flow_sweep(struct sg_flow_table *t, uint64_t now, unsigned int budget)
{
	unsigned int removed = 0;
	uint32_t pos;

	if (t == NULL || t->hw == 0)
		return 0;
	/* One call never visits an entry twice. */
	budget = RTE_MIN(budget, t->hw);
	pos = t->sweep_pos;
	while (budget-- > 0) {
		struct sg_flow *f;

		if (pos >= t->hw)
			pos = 0;
		f = &t->flows[pos];
		if ((f->flags & F_USED) && flow_expired(t, f, now)) {
			flow_remove(t, pos);
			removed++;
		}
		pos++;
	}
	t->sweep_pos = pos;
	t->stats.expired_sweep += removed;
	return removed;
}

uint32_t
sg_flow_count(const struct sg_flow_table *t)
{
	return t != NULL ? t->count : 0;
}

const struct sg_flow_stats *
sg_flow_stats(const struct sg_flow_table *t)
{
	return t != NULL ? &t->stats : NULL;
}

uint32_t
sg_flow_timeout(const struct sg_flow_table *t, unsigned int state)
{
	return t != NULL && state < SG_FLOW_STATE_MAX ? t->tmo[state] : 0;
}

int
sg_flow_iterate(const struct sg_flow_table *t, uint32_t *pos, const struct sg_flow **flow)
{
	uint32_t i;

	if (t == NULL || pos == NULL || flow == NULL)
		return -EINVAL;
	for (i = *pos; i < t->hw; i++) {
		if (t->flows[i].flags & F_USED) {
			*flow = &t->flows[i];
			*pos = i + 1;
			return 0;
		}
	}
	*pos = t->hw;
	return -ENOENT;
}

int
sg_flow_get_key(const struct sg_flow *f, unsigned int dir, struct sg_flow_key *key)
{
	if (f == NULL || key == NULL || dir > SG_FLOW_DIR_REV || !(f->flags & F_USED))
		return -EINVAL;
	if (dir == SG_FLOW_DIR_REV && !(f->flags & SG_FLOW_F_REVERSE))
		return -EINVAL;
	flow_key(f, dir, key);
	return 0;
}
