/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow table: the preallocated flow array and IPv6 address pool with
 * their free lists, lookups through the index (flow_index.h) with each
 * candidate confirmed against its flow entry, lazy expiry, the incremental
 * sweep and the new-flow token bucket. The TCP state machine, timeouts and
 * names are in flow_state.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_memzone.h>
#include <rte_prefetch.h>

#include "sg_common.h"
#include "sg_log.h"
#include "flow.h"
#include "flow_index.h"
#include "flow_private.h"

SG_LOG_REGISTER(flow)

/* sg_flow.flags bit of entries holding a flow. */
#define F_USED 0x80
/* sg_flow.flags bit of a reverse tuple kept but not indexed (sg_flow_insert_kept()). */
#define F_REV_KEPT 0x40
/* End of a free list. */
#define NO_ENTRY UINT32_MAX
/* The token bucket counts thousandths of a flow, so that `rate` flows a
 * second refill exactly `rate` units a millisecond. */
#define MILLI 1000u

struct sg_flow_table {
	/* Read by every lookup, with idx's first fields. */
	struct sg_flow *flows;
	uint32_t tmo[SG_FLOW_STATE_MAX];

	struct flow_index idx;

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

	/* The table lives in this memzone, whose name makes the table's unique. */
	const struct rte_memzone *mz;

	struct sg_flow_stats stats __rte_cache_aligned;
	char name[SG_FLOW_NAMESIZE];
};

/*
 * Lookups take keys as they are, so a key a flow is created under must be
 * one a lookup can match: family 4 or 6, and zeroes outside the tuple.
 */
static int
key_valid(const struct sg_flow_key *k)
{
	uint64_t w[4];

	if (k->pad[0] != 0 || k->pad[1] != 0)
		return 0;
	if (k->family == SG_FLOW_V6)
		return 1;
	if (k->family != SG_FLOW_V4)
		return 0;
	/* Bytes 4 to 15 of each address, as two overlapping words. */
	memcpy(&w[0], k->src + 4, 8);
	memcpy(&w[1], k->src + 8, 8);
	memcpy(&w[2], k->dst + 4, 8);
	memcpy(&w[3], k->dst + 8, 8);
	return (w[0] | w[1] | w[2] | w[3]) == 0;
}

static inline int
flow_expired(const struct sg_flow_table *t, const struct sg_flow *f, uint64_t now)
{
	/*
	 * A clock behind last_seen is taken as no time passed: the difference
	 * is negative as a signed number (times are ms, far below 2^63).
	 */
	return (int64_t)(now - f->last_seen) > (int64_t)t->tmo[f->state];
}

/*
 * Whether key k is f's key in direction dir: the index only knows
 * signatures, so every candidate it gives is confirmed here, against the
 * tuple the flow entry holds. An entry no longer in use (its flow removed
 * earlier in the same burst) matches nothing.
 */
static inline int
key_match(const struct sg_flow *f, unsigned int dir, const struct sg_flow_key *k)
{
	const unsigned int src = 2 * dir;	/* enum sg_flow_end of the direction's source */
	uint32_t kp, fp;
	uint16_t kfp, ffp;

	/* Both ports as one word, family and protocol as another. */
	memcpy(&kp, &k->sport, sizeof(kp));
	memcpy(&fp, &f->port[src], sizeof(fp));
	memcpy(&kfp, &k->family, sizeof(kfp));
	memcpy(&ffp, &f->family, sizeof(ffp));
	if (((kp ^ fp) | (uint32_t)(kfp ^ ffp)) != 0 || !(f->flags & F_USED))
		return 0;
	if (sg_likely(k->family == SG_FLOW_V4)) {
		uint64_t fa;

		/* The direction's source, then its destination. */
		memcpy(&fa, (const uint8_t *)f->addr.v4 + 4 * src, sizeof(fa));
		return fa == flow_key_addr4(k);
	}
	/* The two addresses of a direction follow each other, as in the key. */
	return memcmp((const uint8_t *)f->addr.v6->a + 16 * src, k->src, 32) == 0;
}

_Static_assert(offsetof(struct sg_flow_key, dport) == offsetof(struct sg_flow_key, sport) + 2 &&
	       offsetof(struct sg_flow_key, proto) == offsetof(struct sg_flow_key, family) + 1 &&
	       offsetof(struct sg_flow, proto) == offsetof(struct sg_flow, family) + 1,
	       "key_match() reads ports, and family with protocol, as words");

/*
 * The flow k belongs to, and its reference; NULL if none. *away says
 * whether the key was found outside its primary bucket.
 */
static struct sg_flow *
flow_find(const struct sg_flow_table *t, const struct sg_flow_key *k, uint32_t sig,
	  uint32_t *ref, int *away)
{
	const struct flow_index *x = &t->idx;
	uint32_t p = flow_index_primary(x, sig);
	uint32_t b = p, meta = x->bkt[p].meta;

	for (int pass = 0; pass < 2; pass++) {
		const struct flow_bucket *bk = &x->bkt[b];
		unsigned int m = flow_bucket_match(bk, sig);

		while (m != 0) {
			uint32_t r = bk->ref[__builtin_ctz(m)];
			struct sg_flow *f = &t->flows[flow_ref_idx(r)];

			if (key_match(f, flow_ref_dir(r), k)) {
				*ref = r;
				*away = pass;
				return f;
			}
			m &= m - 1;
		}
		if ((meta & FLOW_META_SPILL) == 0)
			break;
		b = flow_index_other(x, p, sig);
	}
	if (meta & FLOW_META_STASH) {
		for (uint32_t i = 0; i < x->stash_n; i++) {
			uint32_t r = x->stash_ref[i];
			struct sg_flow *f = &t->flows[flow_ref_idx(r)];

			if (x->stash_sig[i] == sig && key_match(f, flow_ref_dir(r), k)) {
				*ref = r;
				*away = 1;
				return f;
			}
		}
	}
	return NULL;
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

/*
 * The caller checked flow_available(). The entry the next insert will
 * write is fetched now: the free list names it only once this one is
 * taken, and a new flow would otherwise wait for it.
 */
static inline uint32_t
flow_alloc(struct sg_flow_table *t)
{
	uint32_t idx = t->free_head;

	if (idx == NO_ENTRY) {
		if (t->hw + 1 < t->max_flows)
			rte_prefetch0(&t->flows[t->hw + 1]);
		return t->hw++;
	}
	t->free_head = t->flows[idx].next_free;
	if (t->free_head != NO_ENTRY)
		rte_prefetch0(&t->flows[t->free_head]);
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

/* Signature of f's key in direction dir; the caller checked that the flow has it. */
static inline uint32_t
flow_sig(const struct sg_flow_table *t, const struct sg_flow *f, unsigned int dir)
{
	struct sg_flow_key k;

	flow_key(f, dir, &k);
	return flow_key_sig(t->idx.seed, &k);
}

/* Whether the index holds f's reverse key too. */
static inline bool
rev_indexed(const struct sg_flow *f)
{
	return (f->flags & (SG_FLOW_F_REVERSE | F_REV_KEPT)) == SG_FLOW_F_REVERSE;
}

/*
 * Remove a flow in use: both keys, then its entry. rehome as for
 * flow_index_del().
 */
static void
flow_remove(struct sg_flow_table *t, uint32_t idx, int rehome)
{
	struct sg_flow *f = &t->flows[idx];

	flow_index_del(&t->idx, flow_sig(t, f, SG_FLOW_DIR_FWD), flow_ref(idx, SG_FLOW_DIR_FWD),
		       rehome);
	if (rev_indexed(f))
		flow_index_del(&t->idx, flow_sig(t, f, SG_FLOW_DIR_REV),
			       flow_ref(idx, SG_FLOW_DIR_REV), rehome);
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
 * The checksum changes of both directions: forward packets become the
 * reverse tuple swapped, replies the forward one. The reply's rewrite
 * undoes the forward one, so its change is the forward's negated in ones'
 * complement: ~F, the same value sg_pkt_nat_csum() folds to, except for a
 * forward change that folds to 0xffff (a zero), where which of the two
 * zeroes the reply's sum folds to needs the sum itself.
 */
static void
flow_csums(struct sg_flow *f, uint32_t alen, const struct sg_flow_key *fwd,
	   const struct sg_flow_key *rev)
{
	struct sg_pkt_nat_csum c = sg_pkt_nat_csum(alen, fwd->src, fwd->dst, fwd->sport,
						   fwd->dport, rev->dst, rev->src, rev->dport,
						   rev->sport);

	f->csum[SG_FLOW_DIR_FWD] = c;
	if (sg_unlikely(c.l3 == 0xffff || c.l4 == 0xffff)) {
		f->csum[SG_FLOW_DIR_REV] = sg_pkt_nat_csum(alen, rev->src, rev->dst, rev->sport,
							   rev->dport, fwd->dst, fwd->src,
							   fwd->dport, fwd->sport);
		return;
	}
	f->csum[SG_FLOW_DIR_REV].l3 = (uint16_t)~c.l3;
	f->csum[SG_FLOW_DIR_REV].l4 = (uint16_t)~c.l4;
}

/*
 * Token bucket (RFC 2697's single bucket, without colours): refilled from
 * `now`, so it costs nothing between inserts and needs no timer.
 */
static void
rate_refill(struct sg_flow_table *t, uint64_t now)
{
	if (now > t->tb_last) {
		uint64_t elapsed = now - t->tb_last;

		/* Past fill_ms the product could overflow; the bucket is full anyway. */
		if (elapsed >= t->fill_ms)
			t->tokens = t->cap;
		else
			t->tokens = RTE_MIN(t->cap, t->tokens + elapsed * t->rate);
		t->tb_last = now;
	}
}

static int
rate_take(struct sg_flow_table *t, uint64_t now)
{
	if (t->rate == 0)
		return 1;
	rate_refill(t, now);
	if (t->tokens < MILLI)
		return 0;
	t->tokens -= MILLI;
	return 1;
}

uint32_t
sg_flow_rate_room(struct sg_flow_table *t, uint64_t now)
{
	if (t == NULL || t->rate == 0)
		return UINT32_MAX;
	rate_refill(t, now);
	return (uint32_t)(t->tokens / MILLI);	/* at most the burst, a uint32_t */
}

uint32_t
sg_flow_free(const struct sg_flow_table *t)
{
	return t != NULL ? t->max_flows - t->count : 0;
}

struct sg_flow_table *
sg_flow_table_create(const struct sg_flow_conf *conf)
{
	char zname[RTE_MEMZONE_NAMESIZE];
	const struct rte_memzone *mz;
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

	/* A named memzone holds the table: DPDK keeps the names unique for us. */
	snprintf(zname, sizeof(zname), "sg_flow_%s", conf->name);
	mz = rte_memzone_reserve_aligned(zname, sizeof(*t), conf->socket_id, 0,
					 RTE_CACHE_LINE_SIZE);
	if (mz == NULL) {
		err = rte_errno == EEXIST ? EEXIST : ENOMEM;
		if (err == EEXIST)
			SG_LOG(flow, ERR, "%s: a table of that name exists", conf->name);
		goto fail;
	}
	t = mz->addr;
	memset(t, 0, sizeof(*t));
	t->mz = mz;
	err = ENOMEM;
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
	/* Two keys a flow at most, so a full table never runs out of slots. */
	err = -flow_index_init(&t->idx, 2 * (uint64_t)conf->max_flows, conf->hash_seed,
			       conf->socket_id);
	if (err != 0)
		goto free_addr6;

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
	SG_LOG(flow, DEBUG, "%s: %u flows (%u IPv6), %u index buckets, on socket %d", t->name,
	       t->max_flows, t->max_flows6, t->idx.n, conf->socket_id);
	return t;

free_addr6:
	rte_free(t->addr6);
free_flows:
	rte_free(t->flows);
free_table:
	rte_memzone_free(mz);
fail:
	if (err != EEXIST)
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
	flow_index_fini(&t->idx);
	rte_free(t->addr6);
	rte_free(t->flows);
	rte_memzone_free(t->mz);
}

/*
 * The flow of key k found by flow_find(), if live at now: an expired one
 * is removed, a live one found away from its primary bucket settled.
 */
static struct sg_flow *
flow_live(struct sg_flow_table *t, struct sg_flow *f, uint32_t sig, uint32_t r, int away,
	  uint64_t now)
{
	if (flow_expired(t, f, now)) {
		flow_remove(t, flow_ref_idx(r), 1);
		t->stats.expired_lazy++;
		return NULL;
	}
	if (away)
		flow_index_settle(&t->idx, sig, r);
	return f;
}

/*
 * One burst of at most SG_MAX_BURST keys, in three passes so that memory
 * is waited for once per burst rather than once per key: hash every key
 * and prefetch its primary bucket; compare signatures and prefetch the
 * first candidate's flow entry (or the other bucket, for a miss whose
 * bucket has keys elsewhere); confirm and check expiry.
 */
static unsigned int
lookup_burst(struct sg_flow_table *t, const struct sg_flow_key *const keys[], unsigned int n,
	     uint64_t now, struct sg_flow *flows[], uint8_t dirs[])
{
	const struct flow_index *x = &t->idx;
	struct sg_flow *const fl = t->flows;
	const struct flow_bucket *bk[SG_MAX_BURST];
	uint32_t sig[SG_MAX_BURST];
	uint32_t ref[SG_MAX_BURST];	/* the first candidate's */
	uint8_t cand[SG_MAX_BURST];	/* the other candidates' slots */
	uint32_t away_sig[SG_MAX_BURST], away_ref[SG_MAX_BURST];
	unsigned int i, n_away = 0, hits = 0;

	for (i = 0; i < n; i++) {
		sig[i] = flow_key_sig(x->seed, keys[i]);
		bk[i] = &x->bkt[flow_index_primary(x, sig[i])];
		rte_prefetch0(bk[i]);
	}
	for (i = 0; i < n; i++) {
		unsigned int m = flow_bucket_match(bk[i], sig[i]);

		if (sg_likely(m != 0)) {
			ref[i] = bk[i]->ref[__builtin_ctz(m)];
			rte_prefetch0(&fl[flow_ref_idx(ref[i])]);
		} else if (bk[i]->meta & FLOW_META_SPILL) {
			rte_prefetch0(&x->bkt[flow_index_other(x, flow_index_primary(x, sig[i]),
							       sig[i])]);
		}
		cand[i] = (uint8_t)m;
	}
	for (i = 0; i < n; i++) {
		const struct sg_flow_key *k = keys[i];
		unsigned int m = cand[i];
		struct sg_flow *f = NULL;
		uint32_t r = 0;

		if (sg_likely(m != 0)) {
			r = ref[i];
			f = &fl[flow_ref_idx(r)];
			if (sg_unlikely(!key_match(f, flow_ref_dir(r), k))) {
				/* Another key under the same signature: the other candidates. */
				f = NULL;
				while ((m &= m - 1) != 0) {
					r = bk[i]->ref[__builtin_ctz(m)];
					if (key_match(&fl[flow_ref_idx(r)], flow_ref_dir(r), k)) {
						f = &fl[flow_ref_idx(r)];
						break;
					}
				}
			}
		}
		/* Not in its primary bucket: elsewhere only if the bucket says so. */
		if (f == NULL && sg_unlikely(bk[i]->meta != 0)) {
			uint32_t r2;
			int away = 0;

			f = flow_find(t, k, sig[i], &r2, &away);
			r = r2;
			if (away) {
				away_sig[n_away] = sig[i];
				away_ref[n_away++] = r2;
			}
		}
		/*
		 * Later keys of the burst were searched for already, so the
		 * stash must not move into slots this frees.
		 */
		if (f != NULL && sg_unlikely(flow_expired(t, f, now))) {
			flow_remove(t, flow_ref_idx(r), 0);
			t->stats.expired_lazy++;
			f = NULL;
		}
		flows[i] = f;
		dirs[i] = f != NULL ? flow_ref_dir(r) : 0;
		hits += f != NULL;
	}
	/* Only now: the burst's later keys were searched for where they were. */
	for (i = 0; i < n_away; i++)
		flow_index_settle(&t->idx, away_sig[i], away_ref[i]);
	return hits;
}

unsigned int
sg_flow_lookup_bulk(struct sg_flow_table *t, const struct sg_flow_key *const keys[],
		    unsigned int n, uint64_t now, struct sg_flow *flows[], uint8_t dirs[])
{
	unsigned int base, hits = 0;

	RTE_ASSERT(t != NULL && (n == 0 || (keys != NULL && flows != NULL && dirs != NULL)));
	for (base = 0; base < n; base += SG_MAX_BURST)
		hits += lookup_burst(t, keys + base, RTE_MIN(n - base, (unsigned int)SG_MAX_BURST),
				     now, flows + base, dirs + base);
	t->stats.lookups += n;
	t->stats.hits += hits;
	return hits;
}

struct sg_flow *
sg_flow_lookup(struct sg_flow_table *t, const struct sg_flow_key *key, uint64_t now,
	       uint8_t *dir)
{
	uint32_t r, sig;
	struct sg_flow *f;
	int away;

	RTE_ASSERT(t != NULL && key != NULL);
	t->stats.lookups++;
	sig = flow_key_sig(t->idx.seed, key);
	f = flow_find(t, key, sig, &r, &away);
	if (f == NULL || (f = flow_live(t, f, sig, r, away, now)) == NULL)
		return NULL;
	t->stats.hits++;
	if (dir != NULL)
		*dir = flow_ref_dir(r);
	return f;
}

void
sg_flow_prefetch(const struct sg_flow_table *t, const struct sg_flow_key *key)
{
	const struct flow_index *x = &t->idx;

	rte_prefetch0(&x->bkt[flow_index_primary(x, flow_key_sig(x->seed, key))]);
}

bool
sg_flow_key_seen(const struct sg_flow_table *t, const struct sg_flow_key *key)
{
	const struct flow_index *x = &t->idx;
	uint32_t sig = flow_key_sig(x->seed, key);

	return flow_bucket_match(&x->bkt[flow_index_primary(x, sig)], sig) != 0;
}

/* Whether key belongs to a live flow; an expired one is removed on the way. */
static inline int
key_in_use(struct sg_flow_table *t, const struct sg_flow_key *key, uint32_t sig, uint64_t now)
{
	struct sg_flow *f;
	uint32_t r;
	int away;

	if (!flow_index_may_hold(&t->idx, sig))
		return 0;
	f = flow_find(t, key, sig, &r, &away);
	return f != NULL && flow_live(t, f, sig, r, away, now) != NULL;
}

/* sg_flow_insert(), with rev indexed or only kept (sg_flow_insert_kept()). */
static int
flow_insert(struct sg_flow_table *t, const struct sg_flow_key *fwd,
	    const struct sg_flow_key *rev, bool index_rev, uint32_t service_id,
	    uint32_t backend, uint8_t mode, uint64_t now, struct sg_flow **flow)
{
	uint32_t sig_fwd, sig_rev = 0;
	struct sg_flow *f;
	uint32_t idx;
	int v6;

	if (t == NULL || fwd == NULL || flow == NULL || !key_valid(fwd))
		return -EINVAL;
	if (rev != NULL && (!key_valid(rev) || rev->family != fwd->family ||
			    rev->proto != fwd->proto || memcmp(fwd, rev, sizeof(*fwd)) == 0))
		return -EINVAL;

	/* The index would take a key twice: one in use must be caught here. */
	sig_fwd = flow_key_sig(t->idx.seed, fwd);
	if (key_in_use(t, fwd, sig_fwd, now))
		goto exists;
	if (rev != NULL && index_rev) {
		sig_rev = flow_key_sig(t->idx.seed, rev);
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
	f->flags = F_USED | (rev != NULL ? SG_FLOW_F_REVERSE : 0) |
		   (rev != NULL && !index_rev ? F_REV_KEPT : 0);
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
		if (index_rev)	/* a kept tuple is never rewritten to */
			flow_csums(f, v6 ? 16 : 4, fwd, rev);
	}

	/*
	 * The index has room for two keys of every flow, at most half full;
	 * it fails only if keys that collide in the hash fill both buckets
	 * of a key, every path the search tries and the stash. That key's
	 * flow is refused as if the table were full.
	 */
	if (flow_index_add(&t->idx, sig_fwd, flow_ref(idx, SG_FLOW_DIR_FWD)) != 0)
		goto free_flow;
	if (rev != NULL && index_rev &&
	    flow_index_add(&t->idx, sig_rev, flow_ref(idx, SG_FLOW_DIR_REV)) != 0)
		goto del_fwd;

	t->count++;
	t->stats.inserted++;
	*flow = f;
	return 0;

del_fwd:
	flow_index_del(&t->idx, sig_fwd, flow_ref(idx, SG_FLOW_DIR_FWD), 1);
free_flow:
	flow_free(t, idx);
	t->stats.table_full++;
	return -ENOSPC;
exists:
	t->stats.exists++;
	return -EEXIST;
}

int
sg_flow_insert(struct sg_flow_table *t, const struct sg_flow_key *fwd,
	       const struct sg_flow_key *rev, uint32_t service_id, uint32_t backend,
	       uint8_t mode, uint64_t now, struct sg_flow **flow)
{
	return flow_insert(t, fwd, rev, true, service_id, backend, mode, now, flow);
}

int
sg_flow_insert_kept(struct sg_flow_table *t, const struct sg_flow_key *fwd,
		    const struct sg_flow_key *rev, uint32_t service_id, uint32_t backend,
		    uint8_t mode, uint64_t now, struct sg_flow **flow)
{
	if (rev == NULL)
		return -EINVAL;
	return flow_insert(t, fwd, rev, false, service_id, backend, mode, now, flow);
}

/* Index of f in t, or NO_ENTRY if f is not one of t's entries. */
static uint32_t
entry_index(const struct sg_flow_table *t, const struct sg_flow *f)
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
	idx = entry_index(t, f);
	if (idx == NO_ENTRY || !(f->flags & F_USED))
		return -EINVAL;
	flow_remove(t, idx, 1);
	t->stats.deleted++;
	return 0;
}

/*
 * Entries the sweep removes at once. Each expired flow costs up to two
 * index buckets at random places; found one at a time they are waited for one
 * after the other, so the sweep collects a batch, prefetches all their
 * buckets, and only then deletes (as lookup_burst() does for lookups).
 */
#define SWEEP_BATCH 32
/* Entries ahead of the scan that are prefetched. */
#define SWEEP_AHEAD 8

unsigned int
sg_flow_sweep(struct sg_flow_table *t, uint64_t now, unsigned int budget)
{
	const struct flow_index *x;
	unsigned int removed = 0;
	uint32_t pos, hw;

	if (t == NULL || t->hw == 0)
		return 0;
	x = &t->idx;
	hw = t->hw;
	/* One call never visits an entry twice. */
	budget = RTE_MIN(budget, hw);
	pos = t->sweep_pos;
	while (budget > 0) {
		uint32_t idx[SWEEP_BATCH], sig[SWEEP_BATCH][2];
		unsigned int n = 0, i;

		/* Scan: the entries are in order, so the next ones are fetched ahead. */
		while (budget > 0 && n < SWEEP_BATCH) {
			struct sg_flow *f;

			if (pos >= hw)
				pos = 0;
			if (pos + SWEEP_AHEAD < hw)
				rte_prefetch0(&t->flows[pos + SWEEP_AHEAD]);
			f = &t->flows[pos];
			if ((f->flags & F_USED) && flow_expired(t, f, now)) {
				if (f->family == SG_FLOW_V6)
					rte_prefetch0(f->addr.v6);
				idx[n++] = pos;
			}
			pos++;
			budget--;
		}
		for (i = 0; i < n; i++) {
			const struct sg_flow *f = &t->flows[idx[i]];

			sig[i][0] = flow_sig(t, f, SG_FLOW_DIR_FWD);
			rte_prefetch0(&x->bkt[flow_index_primary(x, sig[i][0])]);
			if (rev_indexed(f)) {
				sig[i][1] = flow_sig(t, f, SG_FLOW_DIR_REV);
				rte_prefetch0(&x->bkt[flow_index_primary(x, sig[i][1])]);
			}
		}
		for (i = 0; i < n; i++) {
			struct sg_flow *f = &t->flows[idx[i]];

			flow_index_del(&t->idx, sig[i][0], flow_ref(idx[i], SG_FLOW_DIR_FWD), 1);
			if (rev_indexed(f))
				flow_index_del(&t->idx, sig[i][1],
					       flow_ref(idx[i], SG_FLOW_DIR_REV), 1);
			flow_free(t, idx[i]);
		}
		t->count -= n;
		removed += n;
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

void
sg_flow_table_memory(const struct sg_flow_table *t, struct sg_flow_memory *m)
{
	memset(m, 0, sizeof(*m));
	if (t == NULL)
		return;
	m->index = (uint64_t)t->idx.n * sizeof(*t->idx.bkt);
	m->entries = (uint64_t)t->max_flows * sizeof(*t->flows);
	m->addr6 = (uint64_t)t->max_flows6 * sizeof(*t->addr6);
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

/* --- for tests and benchmarks (flow_private.h) --------------------------- */

void
flow_table_index_info(const struct sg_flow_table *t, struct flow_index_info *info)
{
	const struct flow_index *x = &t->idx;

	info->buckets = x->n;
	info->bytes = (uint64_t)info->buckets * sizeof(struct flow_bucket);
	info->keys = x->keys;
	info->spilled = x->spilled;
	info->moves = x->moves;
	info->stashed = x->stashed;
	info->settled = x->settled;
	info->stash_n = x->stash_n;
}

void
flow_table_place(const struct sg_flow_table *t, const struct sg_flow_key *k,
		 struct flow_key_place *pl)
{
	const struct flow_index *x = &t->idx;
	uint32_t r;
	int away;

	pl->sig = flow_key_sig(x->seed, k);
	pl->primary = flow_index_primary(x, pl->sig);
	pl->other = flow_index_other(x, pl->primary, pl->sig);
	pl->at = FLOW_AT_NONE;
	if (flow_find(t, k, pl->sig, &r, &away) == NULL)
		return;
	for (unsigned int s = 0; s < FLOW_SLOTS; s++) {
		if (x->bkt[pl->primary].sig[s] == pl->sig && x->bkt[pl->primary].ref[s] == r)
			pl->at = FLOW_AT_PRIMARY;
		if (x->bkt[pl->other].sig[s] == pl->sig && x->bkt[pl->other].ref[s] == r)
			pl->at = FLOW_AT_OTHER;
	}
	for (uint32_t i = 0; i < x->stash_n; i++)
		if (x->stash_sig[i] == pl->sig && x->stash_ref[i] == r)
			pl->at = FLOW_AT_STASH;
}

/* Check one (sig, ref) of the index, found in bucket b (UINT32_MAX: the stash). */
static int
check_slot(const struct sg_flow_table *t, uint32_t b, uint32_t sig, uint32_t ref,
	   char *why, size_t len)
{
	const struct flow_index *x = &t->idx;
	uint32_t p = flow_index_primary(x, sig), idx = flow_ref_idx(ref);
	unsigned int dir = flow_ref_dir(ref);
	const struct sg_flow *f;
	struct sg_flow_key k;

	if (!(sig & FLOW_SIG_VALID) || idx >= t->hw) {
		snprintf(why, len, "bucket %u: signature %#x, flow %u", b, sig, idx);
		return -1;
	}
	f = &t->flows[idx];
	if (!(f->flags & F_USED) || (dir == SG_FLOW_DIR_REV && !rev_indexed(f))) {
		snprintf(why, len, "bucket %u: flow %u dir %u is not in use", b, idx, dir);
		return -1;
	}
	flow_key(f, dir, &k);
	if (flow_key_sig(x->seed, &k) != sig) {
		snprintf(why, len, "bucket %u: flow %u dir %u under another signature", b, idx,
			 dir);
		return -1;
	}
	if (b == UINT32_MAX ? !(x->bkt[p].meta & FLOW_META_STASH) :
			      b != p && b != flow_index_other(x, p, sig)) {
		snprintf(why, len, "bucket %u: flow %u dir %u out of place", b, idx, dir);
		return -1;
	}
	return 0;
}

/* Whether (sig, ref) is in one of sig's buckets or the stash. */
static int
ref_present(const struct flow_index *x, uint32_t sig, uint32_t ref)
{
	uint32_t p = flow_index_primary(x, sig);
	uint32_t b[2] = { p, flow_index_other(x, p, sig) };

	for (unsigned int j = 0; j < 2; j++)
		for (unsigned int s = 0; s < FLOW_SLOTS; s++)
			if (x->bkt[b[j]].sig[s] == sig && x->bkt[b[j]].ref[s] == ref)
				return 1;
	for (uint32_t i = 0; i < x->stash_n; i++)
		if (x->stash_sig[i] == sig && x->stash_ref[i] == ref)
			return 1;
	return 0;
}

int
flow_table_check(const struct sg_flow_table *t, char *why, size_t len)
{
	const struct flow_index *x = &t->idx;
	uint64_t keys = 0, spilled = 0, want_keys = 0;
	uint32_t nb = x->n;
	uint32_t *spill;
	int rc = -1;

	spill = rte_zmalloc(NULL, (size_t)nb * sizeof(*spill), 0);
	if (spill == NULL) {
		snprintf(why, len, "no memory to check");
		return -1;
	}
	for (uint32_t b = 0; b < nb; b++) {
		const struct flow_bucket *bk = &x->bkt[b];

		if (bk->sig[FLOW_SLOTS] != 0) {
			snprintf(why, len, "bucket %u: the eighth signature is set", b);
			goto out;
		}
		for (unsigned int s = 0; s < FLOW_SLOTS; s++) {
			if (bk->sig[s] == 0)
				continue;
			if (check_slot(t, b, bk->sig[s], bk->ref[s], why, len) != 0)
				goto out;
			keys++;
			if (flow_index_primary(x, bk->sig[s]) != b) {
				spill[flow_index_primary(x, bk->sig[s])]++;
				spilled++;
			}
		}
	}
	for (uint32_t i = 0; i < x->stash_n; i++) {
		if (check_slot(t, UINT32_MAX, x->stash_sig[i], x->stash_ref[i], why, len) != 0)
			goto out;
		keys++;
	}
	for (uint32_t b = 0; b < nb; b++) {
		int stashed = 0;

		for (uint32_t i = 0; i < x->stash_n && !stashed; i++)
			stashed = flow_index_primary(x, x->stash_sig[i]) == b;
		if ((x->bkt[b].meta & FLOW_META_SPILL) != spill[b] ||
		    !(x->bkt[b].meta & FLOW_META_STASH) != !stashed) {
			snprintf(why, len, "bucket %u: meta %#x, %u elsewhere, stash %d", b,
				 x->bkt[b].meta, spill[b], stashed);
			goto out;
		}
	}
	/* Every key of every flow is there; with the counts equal, exactly once. */
	for (uint32_t i = 0; i < t->hw; i++) {
		const struct sg_flow *f = &t->flows[i];

		if (!(f->flags & F_USED))
			continue;
		for (unsigned int dir = 0; dir <= SG_FLOW_DIR_REV; dir++) {
			struct sg_flow_key k;

			if (dir == SG_FLOW_DIR_REV && !rev_indexed(f))
				break;
			flow_key(f, dir, &k);
			if (!ref_present(x, flow_key_sig(x->seed, &k), flow_ref(i, dir))) {
				snprintf(why, len, "flow %u dir %u: key missing", i, dir);
				goto out;
			}
			want_keys++;
		}
	}
	if (keys != x->keys || keys != want_keys || spilled != x->spilled) {
		snprintf(why, len, "%" PRIu64 " keys (%" PRIu64 " counted, %" PRIu64
			 " for the flows), %" PRIu64 " elsewhere (%" PRIu64 " counted)",
			 keys, x->keys, want_keys, spilled, x->spilled);
		goto out;
	}
	rc = 0;
out:
	rte_free(spill);
	return rc;
}
