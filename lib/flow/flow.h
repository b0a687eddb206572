/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-lcore connection tracking: which backend a connection was bound to,
 * how its packets are translated, where it is in its TCP life, and when it
 * was last seen.
 *
 * Each worker lcore owns one table; nothing here is shared or locked, so a
 * table must only ever be used by the lcore that owns it (counters may be
 * read from elsewhere, see struct sg_flow_stats).
 *
 * A flow is found under up to two keys: its forward key, the client's tuple
 * as received, and, for modes whose replies come back through the gateway
 * (NAT, DNAT), a reverse key, the tuple the backend's replies carry after
 * translation. DSR flows have no reverse key in the index (they may keep
 * their backend as a reverse tuple, see sg_flow_insert_kept()). A lookup
 * says which of the two matched; sg_flow_xlate() then gives the rewrite for
 * that direction.
 *
 * Time is the caller's: every call that needs it takes `now` in
 * milliseconds, computed once per burst (from the TSC). A flow is expired
 * when more than the timeout of its state has passed since it was last
 * seen. Expired flows are removed lazily, by the lookup or insert that meets
 * them, and by sg_flow_sweep(), which visits a bounded number of entries per
 * call; nothing on the fast path ever scans the table.
 *
 * A flow pointer stays valid until the flow is deleted or found expired;
 * since a flow found live at `now` cannot expire at the same `now`, the
 * pointers from one burst's lookups survive that burst's inserts and
 * lookups (not its deletes, nor a sweep or a call with a later `now`).
 *
 * Capacity is fixed at creation: flows live in a preallocated array and the
 * keys in an index of cache-line buckets with room for two keys a flow at
 * most half full, so the fast path allocates nothing. The index stores no
 * keys, only signatures and references to flows: a lookup reads one bucket
 * line and the flow entry, which holds the tuples it is compared with.
 * A full table, or a new-flow rate above the configured limit, makes
 * sg_flow_insert() fail with its own error and counter; the caller then
 * forwards statelessly (Maglev alone). The hash is CRC32c, which anyone can
 * make collide: tuples crafted to share a signature fill their two buckets
 * and a small overflow stash, after which their flows (and in practice only
 * theirs) are refused as from a full table, while lookups stay bounded.
 *
 * Parsing packets, choosing backends and rewriting headers live elsewhere
 * (lib/pkt, lib/maglev, lib/svc).
 */
#ifndef SG_FLOW_H
#define SG_FLOW_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_debug.h>
#include <rte_tcp.h>

#include "pkt.h"

/* Longest table name, with its terminating NUL. */
#define SG_FLOW_NAMESIZE 16
/* Largest capacity: 16 GB of flows, and an index of as much again. */
#define SG_FLOW_MAX_FLOWS (1u << 28)

/* Address families of a key, as in lib/maglev. */
#define SG_FLOW_V4 4
#define SG_FLOW_V6 6

/*
 * A 5-tuple as found in a packet. Hashed as the raw words of its family's
 * tuple, padding included, so every byte that is not part of the tuple must
 * be zero: build keys with sg_flow_key_init(), never field by field on
 * uninitialised memory.
 */
struct sg_flow_key {
	uint8_t src[16];	/* network order; IPv4 in the first 4 bytes */
	uint8_t dst[16];
	rte_be16_t sport;	/* network order, as on the wire */
	rte_be16_t dport;
	uint8_t family;		/* SG_FLOW_V4 or SG_FLOW_V6 */
	uint8_t proto;		/* IPPROTO_* */
	uint8_t pad[2];		/* always zero */
} __rte_aligned(8);

_Static_assert(sizeof(struct sg_flow_key) == 40, "sg_flow_key must stay 40 bytes");

/* Which key of a flow a packet matched. */
enum sg_flow_dir {
	SG_FLOW_DIR_FWD = 0,	/* client to service */
	SG_FLOW_DIR_REV = 1,	/* backend reply, after translation */
};

/*
 * States, with one timeout each. TCP states are those of an observer in the
 * middle, named after the client's side of RFC 793 §3.2: FIN_WAIT means the
 * client closed first, CLOSE_WAIT that the backend did, LAST_ACK that both
 * sent a FIN and the last ACK is awaited.
 */
enum sg_flow_state {
	SG_FLOW_TCP_NEW = 0,	/* inserted, no segment classified yet */
	SG_FLOW_TCP_SYN_SENT,
	SG_FLOW_TCP_SYN_RECV,
	SG_FLOW_TCP_ESTABLISHED,
	SG_FLOW_TCP_FIN_WAIT,
	SG_FLOW_TCP_CLOSE_WAIT,
	SG_FLOW_TCP_LAST_ACK,
	SG_FLOW_TCP_TIME_WAIT,
	SG_FLOW_TCP_CLOSE,	/* after a RST */
	SG_FLOW_UDP,		/* seen one way only so far */
	SG_FLOW_UDP_ASSURED,	/* seen both ways */
	SG_FLOW_ICMP,		/* ICMP and ICMPv6 */
	SG_FLOW_OTHER,		/* any other protocol */
	SG_FLOW_STATE_MAX
};

/* Index of an address or port of a flow: the two tuples, source first. */
enum sg_flow_end {
	SG_FLOW_FWD_SRC = 0,
	SG_FLOW_FWD_DST,
	SG_FLOW_REV_SRC,
	SG_FLOW_REV_DST,
};

/* sg_flow.flags */
#define SG_FLOW_F_REVERSE 0x01	/* has a reverse tuple (NAT, DNAT; DSR's, kept) */

/* The four IPv6 addresses of a flow, indexed by enum sg_flow_end. */
struct sg_flow_addr6 {
	uint8_t a[4][16];
} __rte_cache_aligned;

/*
 * One connection. An IPv4 flow is a single cache line; an IPv6 flow keeps
 * its addresses in a second line drawn from a pool of its own, so IPv4
 * flows do not pay for IPv6's 48 extra bytes. Workers read and write the
 * fields directly; the table owns the entry and reuses it once the flow is
 * deleted or expired.
 */
struct sg_flow {
	uint64_t last_seen;	/* ms, the caller's clock */
	uint8_t state;		/* enum sg_flow_state */
	uint8_t flags;		/* SG_FLOW_F_*; the top two bits are the table's */
	uint8_t family;		/* SG_FLOW_V4 or SG_FLOW_V6 */
	uint8_t proto;		/* IPPROTO_* */
	uint32_t service_id;	/* the caller's, stored as given */
	uint32_t backend;	/* index into the service's backend array */
	uint8_t mode;		/* the caller's forwarding mode, never interpreted */
	uint8_t reserved;
	uint16_t epoch;		/* the caller's, 0 at insert, never interpreted */
	rte_be16_t port[4];	/* by enum sg_flow_end, network order */
	union {
		uint8_t v4[4][4];		/* by enum sg_flow_end */
		struct sg_flow_addr6 *v6;
	} addr;
	uint64_t created;	/* ms, when inserted */
	union {
		/* A flow with a reverse key: by direction, see sg_flow_xlate(). */
		struct sg_pkt_nat_csum csum[2];
		uint32_t next_free;	/* a free entry: the table's free list */
	};
} __rte_cache_aligned;

_Static_assert(sizeof(struct sg_flow) == RTE_CACHE_LINE_SIZE,
	       "an IPv4 flow must fit one cache line");

/*
 * Counters of one table, plain fields incremented by the owning lcore only.
 * Another thread may read them (each is an aligned 64-bit word, so a read
 * is never torn on the platforms DPDK supports) and sum them across lcores.
 */
struct sg_flow_stats {
	uint64_t lookups;	/* keys looked up */
	uint64_t hits;		/* of which found (not expired) */
	uint64_t inserted;
	uint64_t deleted;	/* by sg_flow_delete() */
	uint64_t expired_lazy;	/* met expired by a lookup or insert */
	uint64_t expired_sweep;	/* found expired by sg_flow_sweep() */
	uint64_t table_full;	/* inserts refused: no free entry */
	uint64_t rate_limited;	/* inserts refused: above the new-flow rate */
	uint64_t exists;	/* inserts refused: a key is already in use */
};

struct sg_flow_conf {
	/* Unique among live tables, 1 to SG_FLOW_NAMESIZE - 1 characters. */
	const char *name;
	/* NUMA socket of the owning lcore, or SOCKET_ID_ANY. */
	int socket_id;
	/* Capacity in flows, 1 to SG_FLOW_MAX_FLOWS. */
	uint32_t max_flows;
	/* How many of them may be IPv6 (0: all of them). */
	uint32_t max_flows_v6;
	/* New flows per second, 0 for no limit (SYN flood guard). */
	uint32_t rate;
	/* Most new flows at once after a quiet period (0: one second's worth). */
	uint32_t burst;
	/* Seed of the key hash. */
	uint32_t hash_seed;
	/* Idle timeout by state in ms; 0 takes sg_flow_default_timeout(). */
	uint32_t timeout_ms[SG_FLOW_STATE_MAX];
};

struct sg_flow_table;

/*
 * Default idle timeout of a state, in ms; 0 for a state out of range.
 * TCP_NEW, SYN_SENT, SYN_RECV 30 s; ESTABLISHED 7440 s (RFC 5382 REQ-5);
 * FIN_WAIT, CLOSE_WAIT, TIME_WAIT 120 s; LAST_ACK 30 s; CLOSE 10 s;
 * UDP 30 s, UDP_ASSURED 120 s (RFC 4787 REQ-5); ICMP 30 s; OTHER 600 s.
 */
uint32_t sg_flow_default_timeout(unsigned int state);

/* Name of a state for telemetry ("ESTABLISHED"), "?" when out of range. */
const char *sg_flow_state_name(unsigned int state);

/*
 * Create a table on conf->socket_id. Call from the control path.
 * Returns the table, or NULL with errno:
 *  EINVAL  conf NULL, name missing or too long, max_flows 0 or above
 *          SG_FLOW_MAX_FLOWS, max_flows_v6 above max_flows, burst without a
 *          rate, socket_id neither SOCKET_ID_ANY nor below RTE_MAX_NUMA_NODES;
 *  EEXIST  a table of that name exists;
 *  ENOMEM  not enough memory on that socket.
 */
struct sg_flow_table *sg_flow_table_create(const struct sg_flow_conf *conf);

/* Free a table and every flow in it; NULL is ignored. */
void sg_flow_table_free(struct sg_flow_table *t);

/*
 * Look up n keys (any n; taken in bursts of SG_MAX_BURST, which wait for
 * memory once a burst: all buckets are prefetched, then all flow entries).
 * For each key i, flows[i] is its flow and dirs[i] the direction it matched
 * (enum sg_flow_dir), or flows[i] is NULL on a miss. A flow found expired is
 * removed and reported as a miss, so the caller creates a new one. Nothing
 * is refreshed: the caller calls sg_flow_tcp_update() or sg_flow_touch()
 * for the packet it forwards. Fast path; arguments are checked only by
 * RTE_ASSERT. Returns the number of hits.
 */
unsigned int sg_flow_lookup_bulk(struct sg_flow_table *t,
				 const struct sg_flow_key *const keys[],
				 unsigned int n, uint64_t now,
				 struct sg_flow *flows[], uint8_t dirs[]);

/* One key of sg_flow_lookup_bulk(): the flow, or NULL on a miss; dir may be NULL. */
struct sg_flow *sg_flow_lookup(struct sg_flow_table *t, const struct sg_flow_key *key,
			       uint64_t now, uint8_t *dir);

/*
 * Start fetching the index bucket key would be looked up or inserted in,
 * so that a later sg_flow_insert() or sg_flow_lookup() of it does not wait
 * for memory: a caller about to create several flows prefetches all their
 * keys first. Only a hint; key need not be valid. Fast path.
 */
void sg_flow_prefetch(const struct sg_flow_table *t, const struct sg_flow_key *key);

/*
 * Whether key is likely in use, told by the one bucket line
 * sg_flow_prefetch() fetches: its signature is there. Only a hint, for a
 * caller choosing among keys that are all as good (a new flow's SNAT
 * port): another key may have the same signature, the flow may have
 * expired, and the few keys kept outside their first bucket are missed.
 * sg_flow_insert() alone decides. Fast path.
 */
bool sg_flow_key_seen(const struct sg_flow_table *t, const struct sg_flow_key *key);

/*
 * Create a flow under fwd and, unless rev is NULL (DSR), under rev, bound to
 * service_id and backend, in the initial state of its protocol (TCP_NEW,
 * UDP, ICMP or OTHER), last seen now. An existing flow found expired under
 * either key is removed first. Returns 0 with *flow set, or:
 *  -EINVAL  t, fwd or flow NULL; a key with a family other than 4 or 6, or
 *           with non-zero padding; rev of another family or protocol than
 *           fwd, or equal to it;
 *  -EEXIST  fwd or rev is the key of a live flow (two packets of one new
 *           flow in a burst, or a reverse tuple, e.g. a SNAT port, in use);
 *  -ENOSPC  the table, or its IPv6 share, is full (expired flows hold
 *           their entries until a lookup, insert or sweep meets them, so
 *           the sweep budget should cover the table well within the
 *           shortest timeout), or keys crafted to collide left no room
 *           for one of the new flow's keys (see the top of this file);
 *  -EAGAIN  above the new-flow rate; try again later.
 * The last three are counted.
 */
int sg_flow_insert(struct sg_flow_table *t, const struct sg_flow_key *fwd,
		   const struct sg_flow_key *rev, uint32_t service_id,
		   uint32_t backend, uint8_t mode, uint64_t now,
		   struct sg_flow **flow);

/*
 * sg_flow_insert() for a flow whose reverse tuple no packet carries (DSR:
 * the backend, which answers the client itself): rev, not NULL, is kept in
 * the flow for sg_flow_xlate() and sg_flow_get_key(), but only fwd goes in
 * the index. No lookup finds the flow by rev, another flow may have the
 * same rev, and the flow costs the index one key instead of two. Its
 * checksum changes are not worked out: nothing is rewritten to rev.
 */
int sg_flow_insert_kept(struct sg_flow_table *t, const struct sg_flow_key *fwd,
			const struct sg_flow_key *rev, uint32_t service_id,
			uint32_t backend, uint8_t mode, uint64_t now,
			struct sg_flow **flow);

/*
 * How many new flows the rate limit would let sg_flow_insert() make now:
 * the whole tokens in the bucket, refilled up to now; UINT32_MAX without a
 * limit (rate 0) or if t is NULL. Takes no token. For a caller under a
 * flood that refuses a burst's flows beyond it before working on them
 * (a SNAT port, a reverse key). Fast path.
 */
uint32_t sg_flow_rate_room(struct sg_flow_table *t, uint64_t now);

/*
 * How many more flows the table has entries for now (expired flows the
 * sweep has not removed yet hold theirs); 0 if t is NULL. With none,
 * sg_flow_insert() refuses every flow as -ENOSPC; it may also refuse an
 * IPv6 flow beyond max_flows_v6, or the rare key whose index buckets are
 * full. Fast path.
 */
uint32_t sg_flow_free(const struct sg_flow_table *t);

/*
 * Remove a flow and its keys; its entry is reused by later inserts.
 * Returns 0, or -EINVAL if t or f is NULL, f is not an entry of t, or f is
 * not in use (already deleted or expired).
 */
int sg_flow_delete(struct sg_flow_table *t, struct sg_flow *f);

/*
 * Visit up to budget entries from where the previous call stopped, removing
 * those expired at now; the worker calls it once per poll loop, so the cost
 * per call is bounded whatever the table holds. Only the part of the table
 * ever used is visited. Returns the number removed (0 if t is NULL).
 */
unsigned int sg_flow_sweep(struct sg_flow_table *t, uint64_t now, unsigned int budget);

/* Flows in the table (expired ones not yet removed included); 0 if t is NULL. */
uint32_t sg_flow_count(const struct sg_flow_table *t);

/* The table's counters, live; NULL if t is NULL. */
const struct sg_flow_stats *sg_flow_stats(const struct sg_flow_table *t);

/* Idle timeout in ms the table applies to a state; 0 if out of range or t NULL. */
uint32_t sg_flow_timeout(const struct sg_flow_table *t, unsigned int state);

/* What a table's arrays take, in bytes, allocated once at creation. */
struct sg_flow_memory {
	uint64_t index;		/* the index's buckets, one cache line each */
	uint64_t entries;	/* the flow entries, one cache line each */
	uint64_t addr6;		/* the IPv6 flows' addresses */
};

/* Fill m with t's figures (all 0 if t is NULL). */
void sg_flow_table_memory(const struct sg_flow_table *t, struct sg_flow_memory *m);

/*
 * Walk the flows for telemetry: start with *pos = 0; each call sets *flow to
 * the next flow in use and returns 0, or returns -ENOENT at the end. Call on
 * the owning lcore between bursts (e.g. on a request passed through a ring),
 * never concurrently with it. -EINVAL if an argument is NULL.
 */
int sg_flow_iterate(const struct sg_flow_table *t, uint32_t *pos,
		    const struct sg_flow **flow);

/*
 * Rebuild the key a flow is found under in direction dir.
 * Returns 0, or -EINVAL if an argument is NULL, f is not in use, dir is not
 * a direction, or dir is SG_FLOW_DIR_REV and the flow has no reverse key.
 */
int sg_flow_get_key(const struct sg_flow *f, unsigned int dir, struct sg_flow_key *key);

/*
 * TCP state after a segment with tcp_flags (byte 13 of the TCP header) in
 * direction dir, from state. A pure function of a small table, for tests and
 * for sg_flow_tcp_update(). Segments with RST go to CLOSE from any state;
 * SYN with FIN, or no SYN/FIN/ACK/RST at all, change nothing; a client SYN
 * re-opens a flow in TIME_WAIT (RFC 1122 §4.2.2.13) or CLOSE. States that
 * are not TCP come back unchanged.
 */
uint8_t sg_flow_tcp_next(uint8_t state, unsigned int dir, uint8_t tcp_flags);

/* Advance a TCP flow with one segment and mark it seen; returns the new state. */
uint8_t sg_flow_tcp_update(struct sg_flow *f, unsigned int dir, uint8_t tcp_flags, uint64_t now);

/*
 * sg_flow_tcp_update() for the segments that are nearly all of them, inline:
 * in ESTABLISHED, a segment without SYN, FIN or RST leaves the state as it
 * is (sg_flow_tcp_next()'s table says so), so only the time changes.
 */
static inline uint8_t
sg_flow_tcp_seen(struct sg_flow *f, unsigned int dir, uint8_t tcp_flags, uint64_t now)
{
	if (f->state == SG_FLOW_TCP_ESTABLISHED &&
	    !(tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG | RTE_TCP_RST_FLAG))) {
		f->last_seen = now;
		return f->state;
	}
	return sg_flow_tcp_update(f, dir, tcp_flags, now);
}

/*
 * Build a key: family SG_FLOW_V4 (4-byte addresses) or SG_FLOW_V6 (16),
 * ports in network order. Every other byte is zeroed.
 */
static inline void
sg_flow_key_init(struct sg_flow_key *k, uint8_t family, uint8_t proto,
		 const void *src, const void *dst, rte_be16_t sport, rte_be16_t dport)
{
	RTE_ASSERT(family == SG_FLOW_V4 || family == SG_FLOW_V6);
	memset(k, 0, sizeof(*k));
	/* Copies of constant size, a move or two each, rather than a memcpy() call. */
	if (family == SG_FLOW_V4) {
		memcpy(k->src, src, 4);
		memcpy(k->dst, dst, 4);
	} else {
		memcpy(k->src, src, 16);
		memcpy(k->dst, dst, 16);
	}
	k->sport = sport;
	k->dport = dport;
	k->family = family;
	k->proto = proto;
}

/* Address `end` of a flow: 4 or 16 bytes by f->family, network order. */
static inline const uint8_t *
sg_flow_addr(const struct sg_flow *f, enum sg_flow_end end)
{
	if (f->family == SG_FLOW_V6)
		return f->addr.v6->a[end];
	return f->addr.v4[end];
}

/*
 * What a packet found in direction dir is rewritten to: the other
 * direction's tuple, swapped. Forward packets get src = reverse dst and
 * dst = reverse src; replies get src = forward dst and dst = forward src.
 * Only for flows with a reverse key.
 */
struct sg_flow_xlate {
	const uint8_t *src;	/* 4 or 16 bytes by the flow's family */
	const uint8_t *dst;
	rte_be16_t sport;
	rte_be16_t dport;
	/* The rewrite's checksum change, worked out when the flow was inserted. */
	struct sg_pkt_nat_csum csum;
};

static inline void
sg_flow_xlate(const struct sg_flow *f, unsigned int dir, struct sg_flow_xlate *x)
{
	enum sg_flow_end other_src = dir == SG_FLOW_DIR_FWD ? SG_FLOW_REV_SRC : SG_FLOW_FWD_SRC;
	enum sg_flow_end other_dst = other_src + 1;

	RTE_ASSERT(f->flags & SG_FLOW_F_REVERSE);
	x->src = sg_flow_addr(f, other_dst);
	x->dst = sg_flow_addr(f, other_src);
	x->sport = f->port[other_dst];
	x->dport = f->port[other_src];
	x->csum = f->csum[dir];
}

/*
 * Mark a flow seen by a packet that is not TCP (TCP goes through
 * sg_flow_tcp_update()). A UDP flow that sees a reply becomes assured and
 * takes the longer UDP timeout, as conntrack does.
 */
static inline void
sg_flow_touch(struct sg_flow *f, unsigned int dir, uint64_t now)
{
	f->last_seen = now;
	if (dir == SG_FLOW_DIR_REV && f->state == SG_FLOW_UDP)
		f->state = SG_FLOW_UDP_ASSURED;
}

#endif /* SG_FLOW_H */
