/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The service table: what the workers consult for every packet addressed to
 * a Kubernetes Service (a LoadBalancer VIP or a NodePort), and how the
 * control thread changes it without ever stopping them.
 *
 * A key is (family, destination address, destination port, L4 protocol).
 * A value is an immutable service entry, one per service port, shared by
 * all of that port's keys: mode, flags, source ranges, backends and the
 * Maglev table. The control thread (one writer) publishes or removes one
 * service at a time; workers look keys up with no lock through an rte_hash
 * built for lock-free readers. A replaced or removed entry, and the hash
 * slot of a deleted key, are freed only once every reader registered on the
 * daemon's rte_rcu_qsbr variable has reported a quiescent state after the
 * change, so a worker may use an entry until its next rte_rcu_qsbr_quiescent()
 * call and then must forget it. Only threads registered and online on that
 * variable may look up: nothing else keeps an entry alive.
 *
 * NodePorts: a key whose address is all zeroes ("any") matches every
 * destination address of its family. Lookups try the exact key first and
 * then the "any" key, so a LoadBalancer VIP on the same port wins. An "any"
 * hit says nothing about the destination being ours: the caller must check
 * that the destination is one of the node's addresses before it accepts a
 * NodePort hit (the lookups report which hits came from an "any" key).
 *
 * Byte order: addresses and ports in keys, backends and source ranges are in
 * network order, as they sit in packet headers, so the fast path never
 * swaps bytes.
 *
 * Not here: the compilation of Kubernetes objects into a sg_svc_conf
 * (lib/k8s and the daemon), flows (lib/flow), packet rewriting (lib/pkt).
 */
#ifndef SG_SVC_H
#define SG_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>

#include "sg_common.h"

struct rte_rcu_qsbr;

/* Keys of one service (VIPs of both families, NodePort "any" keys, ...). */
#define SG_SVC_MAX_KEYS 16u
/* Source-range prefixes per address family of one service. */
#define SG_SVC_MAX_SRC_RANGES 32u
/* Backends of one service: Maglev slots hold uint16_t and index 0 is "none". */
#define SG_SVC_MAX_BACKENDS 65535u
/* Bytes of a service name ("namespace/name:port"), NUL included. */
#define SG_SVC_NAME_MAX 384u
/* Keys per sg_svc_lookup_bulk() call (that of rte_hash_lookup_bulk_data). */
#define SG_SVC_LOOKUP_MAX 64u
/* Upper bound of sessionAffinityConfig.clientIP.timeoutSeconds in Kubernetes. */
#define SG_SVC_AFFINITY_MAX 86400u
/* Table size limits accepted by sg_svc_table_create(). */
#define SG_SVC_MAX_SERVICES_LIMIT (1u << 22)
#define SG_SVC_MAX_KEYS_LIMIT (1u << 24)

/*
 * What a worker looks up. 20 bytes with no padding, hashed and compared as
 * raw bytes, so every byte must be set: build keys with sg_svc_key4() and
 * sg_svc_key6(). IPv4 uses addr[0..3] and leaves addr[4..15] zero.
 */
struct sg_svc_key {
	uint8_t family;	 /* 4 or 6 */
	uint8_t proto;	 /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	rte_be16_t port; /* destination port, network order */
	uint8_t addr[16]; /* destination address, network order; zero = any */
};

enum sg_svc_mode {
	SG_SVC_MODE_NAT,      /* SNAT + DNAT, replies come back through us */
	SG_SVC_MODE_DNAT,     /* DNAT only, client address kept */
	SG_SVC_MODE_DSR_IPIP, /* IP-in-IP to the backend, it answers directly */
	SG_SVC_MODE_DSR_GUE,  /* GUE to the backend, it answers directly */
	SG_SVC_MODE_DSR_L2,   /* destination MAC rewrite only */
};
#define SG_SVC_MODE_COUNT 5

/* Service flags (sg_svc_conf.flags, sg_svc_entry.flags). */
#define SG_SVC_F_AFFINITY 0x01u	  /* sessionAffinity: ClientIP */
#define SG_SVC_F_LOCAL 0x02u	  /* externalTrafficPolicy: Local */
#define SG_SVC_F_SRC_RANGES 0x04u /* set by the table: source ranges apply */
#define SG_SVC_F_ANY_READY 0x08u  /* set by the table: a weighted backend is ready */

/* Backend states, from EndpointSlice conditions. */
#define SG_SVC_BE_READY 0x01u
#define SG_SVC_BE_SERVING 0x02u
#define SG_SVC_BE_TERMINATING 0x04u

struct sg_svc_backend {
	uint8_t addr[16]; /* network order; IPv4 in addr[0..3], the rest zero */
	rte_be16_t port;  /* target port, network order */
	uint8_t family;	  /* 4 or 6 */
	uint8_t state;	  /* SG_SVC_BE_* */
	uint32_t weight;  /* Maglev share; 0 keeps it out of the table */
};

/* A source range as the control plane gives it: addr/len. */
struct sg_svc_prefix {
	uint8_t family;	  /* 4 or 6 */
	uint8_t len;	  /* 0..32 or 0..128; host bits are ignored */
	uint8_t addr[16]; /* network order */
};

/* Source ranges as the workers match them: (src & mask) == net. */
struct sg_svc_src4 {
	rte_be32_t net;
	rte_be32_t mask;
};

/* The 16 address bytes read as two words in memory order, not numbers. */
struct sg_svc_src6 {
	uint64_t net[2];
	uint64_t mask[2];
};

/* One service port as the control plane wants it published. */
struct sg_svc_conf {
	uint32_t id;		   /* stable, chosen by the control plane; not 0 */
	const char *name;	   /* "namespace/name:port" for telemetry; may be NULL */
	enum sg_svc_mode mode;
	uint32_t flags;		   /* SG_SVC_F_AFFINITY | SG_SVC_F_LOCAL */
	uint32_t affinity_timeout; /* seconds, 1..SG_SVC_AFFINITY_MAX with AFFINITY */
	const struct sg_svc_key *keys;
	uint32_t n_keys;	   /* 1..SG_SVC_MAX_KEYS */
	/* Empty: every source allowed. Otherwise a source is allowed only if a
	 * prefix of its own family covers it. */
	const struct sg_svc_prefix *src_ranges;
	uint32_t n_src_ranges;
	/* Real backends only; the entry adds the "none" slot 0 itself. */
	const struct sg_svc_backend *backends;
	uint32_t n_backends;	   /* 0..SG_SVC_MAX_BACKENDS */
};

/*
 * A published service. Immutable; one allocation. The first cache line holds
 * all a worker reads to place a new flow; what only the control thread and
 * telemetry read starts on the second.
 *
 * Backends: backends[1..n_backends] in the order of the conf; backends[0] is
 * all zeroes and means "none". The Maglev table holds indices into that
 * array; it is built from the backends Kubernetes would use: the ready ones,
 * or if none is ready the serving-and-terminating ones (graceful
 * termination), in both cases only those of non-zero weight. With none
 * usable there is no table (maglev_size 0): the caller answers with a TCP
 * RST or an ICMP unreachable.
 *
 * Maglev size: sg_maglev_size() of the number of backends with a non-zero
 * weight, whatever their state, capped by the table's maglev_max_size. It is
 * part of what two gateways must agree on, and counting every listed backend
 * keeps M, and so every flow's slot, steady while pods flap between ready and
 * not ready.
 */
struct sg_svc_entry {
	/* Hot: read by workers. */
	const uint16_t *maglev;		       /* maglev_size indices, or NULL */
	const struct sg_svc_backend *backends; /* n_backends + 1, [0] = none */
	const struct sg_svc_src4 *src4;	       /* n_src4 */
	const struct sg_svc_src6 *src6;	       /* n_src6 */
	uint32_t maglev_size;		       /* prime M, or 0: no usable backend */
	uint32_t affinity_timeout;	       /* seconds, 0 without affinity */
	uint32_t id;			       /* the conf's id */
	uint32_t generation;		       /* 1 on first publication, +1 per republish */
	uint16_t n_backends;
	uint8_t mode;			       /* enum sg_svc_mode */
	uint8_t flags;			       /* SG_SVC_F_* */
	uint8_t n_src4;
	uint8_t n_src6;

	/* Cold: control thread and telemetry. */
	const struct sg_svc_key *keys __rte_cache_aligned; /* this service's keys */
	const char *name;		       /* never NULL, may be "" */
	uint32_t n_keys;
	uint32_t n_usable;		       /* backends in the Maglev table */
	size_t alloc_size;		       /* bytes of this allocation */
} __rte_cache_aligned;

_Static_assert(offsetof(struct sg_svc_entry, n_src6) < RTE_CACHE_LINE_SIZE,
	       "hot fields of sg_svc_entry must fit its first cache line");
_Static_assert(offsetof(struct sg_svc_entry, keys) == RTE_CACHE_LINE_SIZE,
	       "cold fields of sg_svc_entry start on its second cache line");
_Static_assert(sizeof(struct sg_svc_key) == 20, "sg_svc_key has no padding");

/* Options of a table. */
struct sg_svc_table_conf {
	/* The daemon's QSBR variable: workers register on it and call
	 * rte_rcu_qsbr_quiescent() once per poll loop. Not owned by the table. */
	struct rte_rcu_qsbr *qsbr;
	uint32_t max_services;	  /* 1..SG_SVC_MAX_SERVICES_LIMIT */
	uint32_t max_keys;	  /* keys of all services, 1..SG_SVC_MAX_KEYS_LIMIT */
	uint32_t maglev_max_size; /* a prime; 0 = SG_MAGLEV_DEFAULT_MAX_SIZE */
	int socket_id;		  /* NUMA socket of the hash, or SOCKET_ID_ANY */
};

struct sg_svc_stats {
	uint32_t services;
	uint32_t keys;
	uint32_t any_keys;	 /* keys with the all-zero address */
	uint32_t deferred;	 /* entries and key slots waiting for a grace period */
	uint32_t deferred_max;	 /* room in the defer queue */
	uint64_t entry_bytes;	 /* allocated by live and deferred entries */
	uint64_t publishes;
	uint64_t removes;
	uint64_t sync_waits;	 /* times a full defer queue made the writer wait */
};

struct sg_svc_table;

/*
 * Create an empty table. Control thread.
 * Returns the table, or NULL with errno:
 *  EINVAL  conf or conf->qsbr NULL, a limit 0 or above its _LIMIT,
 *          maglev_max_size not a prime;
 *  ENOMEM  out of memory (ordinary or DPDK);
 *  other   as rte_hash_create() or rte_rcu_qsbr_dq_create() set rte_errno.
 */
struct sg_svc_table *sg_svc_table_create(const struct sg_svc_table_conf *conf);

/*
 * Free the table and every entry, waiting first for one grace period so no
 * lookup still in flight can touch freed memory. Every registered reader
 * must keep reporting quiescent states, or be offline, while this runs, and
 * none may look the table up afterwards. NULL is harmless. Control thread.
 */
void sg_svc_table_free(struct sg_svc_table *t);

/*
 * Add the service conf->id, or replace it. A reader sees either the old
 * entry or the new one, complete, for every key the two have in common;
 * keys that are new appear, keys that went away disappear afterwards. The
 * old entry and the slots of the deleted keys are freed after a grace
 * period (sg_svc_reclaim()). A key moves from one service to another by
 * republishing the first without it, then the second with it. Control
 * thread.
 * Returns 0, or:
 *  -EINVAL  t or conf NULL, or conf malformed: id 0; unknown mode or flag;
 *           affinity without a timeout in 1..SG_SVC_AFFINITY_MAX; LOCAL with
 *           NAT (Local keeps the client address, NAT replaces it); no key or
 *           more than SG_SVC_MAX_KEYS; a key whose family is not 4 or 6,
 *           protocol not TCP/UDP/SCTP, port 0, IPv4 address with bytes set
 *           past the fourth, or listed twice; a source range of a bad family
 *           or length, or more than SG_SVC_MAX_SRC_RANGES of one family; a
 *           backend of a bad family, port 0, unknown state bit, IPv4
 *           address with bytes set past the fourth, or listed twice (same
 *           family, address and port); more backends of non-zero weight
 *           than the Maglev size cap; for nat, dnat and dsr-l2, which cannot
 *           change the address family, keys and backends of more than one
 *           family; a name of SG_SVC_NAME_MAX bytes or more; NULL arrays
 *           with non-zero counts;
 *  -EEXIST  a key belongs to another service;
 *  -ENOSPC  max_services or max_keys would be exceeded;
 *  -ENOMEM  out of memory.
 * On error the table is unchanged.
 */
int sg_svc_publish(struct sg_svc_table *t, const struct sg_svc_conf *conf);

/*
 * Remove service id and all its keys; the entry and key slots are freed
 * after a grace period. Control thread.
 * Returns 0, or -EINVAL (t NULL), -ENOENT (no such service).
 */
int sg_svc_remove(struct sg_svc_table *t, uint32_t id);

/*
 * Free what every reader has finished with: replaced and removed entries,
 * deleted key slots. Call it periodically; publications also reclaim a
 * little as they go. Never waits. Control thread.
 * Returns how many resources were freed, or -EINVAL (t NULL).
 */
int sg_svc_reclaim(struct sg_svc_table *t);

/* Number of services, or -EINVAL (t NULL). Control thread. */
int sg_svc_count(const struct sg_svc_table *t);

/* Fill *st. Returns 0, or -EINVAL (t or st NULL). Control thread. */
int sg_svc_stats_get(const struct sg_svc_table *t, struct sg_svc_stats *st);

/* The current entry of service id, or NULL. Control thread (telemetry). */
const struct sg_svc_entry *sg_svc_get(const struct sg_svc_table *t, uint32_t id);

/* Return non-zero to stop the walk; that value is then returned. */
typedef int (*sg_svc_foreach_fn)(const struct sg_svc_entry *e, void *arg);

/*
 * Call fn for every service, in no particular order. fn must not publish or
 * remove. Control thread (telemetry).
 * Returns 0 after a full walk, fn's non-zero return value, or -EINVAL
 * (t or fn NULL).
 */
int sg_svc_foreach(const struct sg_svc_table *t, sg_svc_foreach_fn fn, void *arg);

/*
 * Look up n keys (1..SG_SVC_LOOKUP_MAX): entries[i] gets the entry of
 * keys[i], its exact key first, else the "any" key of its family, port and
 * protocol, else NULL. If any_mask is not NULL, bit i is set when entries[i]
 * came from an "any" key (a NodePort: check the destination). Fast path: no
 * lock, no allocation; the entries stay valid until the caller's next
 * quiescent state. n out of range yields no hit.
 * Returns the number of non-NULL entries.
 */
unsigned int sg_svc_lookup_bulk(const struct sg_svc_table *t, const struct sg_svc_key *keys,
				unsigned int n, const struct sg_svc_entry **entries,
				uint64_t *any_mask);

/*
 * Look up one key as sg_svc_lookup_bulk() does; *via_any (if not NULL) is
 * set to 1 for a hit through an "any" key, else 0. Returns the entry or NULL.
 */
const struct sg_svc_entry *sg_svc_lookup(const struct sg_svc_table *t,
					 const struct sg_svc_key *key, int *via_any);

/*
 * A cache of one worker's lookups, in front of the table's rte_hash: a new
 * flow's service is nearly always one that the worker looked up a moment
 * ago, and the cache answers for it in one cache line and a compare, where
 * the lock-free hash takes several times that. It holds the hits of one
 * version of one table and empties itself once a publication or removal
 * has changed the table, so it answers exactly as the table does. Misses
 * (not a service) are not kept: a flood of packets for addresses that are
 * not ours costs what it costs without the cache.
 *
 * A cache that answers too few lookups (new flows spread over more
 * services than it holds) stands aside for a while, so that it never costs
 * much more than the table alone.
 *
 * One cache per lcore, never shared; it may serve any table, one at a time.
 * Create and free on the control path.
 */
struct sg_svc_cache;

/* Counters of a cache, plain fields incremented by its lcore only. */
struct sg_svc_cache_stats {
	uint64_t hits;		/* keys the cache answered */
	uint64_t misses;	/* keys it passed to the table */
	uint64_t rested;	/* keys looked up while it stood aside */
};

/*
 * An empty cache on socket_id (or SOCKET_ID_ANY). Returns it, or NULL with
 * errno EINVAL (socket out of range) or ENOMEM.
 */
struct sg_svc_cache *sg_svc_cache_create(int socket_id);

/* Free a cache; NULL is harmless. */
void sg_svc_cache_free(struct sg_svc_cache *c);

/* The cache's counters, live; NULL if c is NULL. */
const struct sg_svc_cache_stats *sg_svc_cache_stats(const struct sg_svc_cache *c);

/*
 * sg_svc_lookup_bulk() through cache c: the same results, the same
 * contract (fast path; entries valid until the caller's next quiescent
 * state). Returns the number of non-NULL entries.
 */
unsigned int sg_svc_lookup_bulk_cached(const struct sg_svc_table *t, struct sg_svc_cache *c,
				       const struct sg_svc_key *keys, unsigned int n,
				       const struct sg_svc_entry **entries, uint64_t *any_mask);

/*
 * A count of the publications and removals that took a backend out of
 * service: removed it, or left it neither ready nor serving (a removed
 * service counts, whatever its backends). A worker that remembers the
 * count a flow was made or checked under knows, while it is unchanged,
 * that the flow's backend is still serving; else it looks again. An entry
 * looked up after reading a new count is at least as recent as the change
 * that made it. Fast path: one load.
 */
uint32_t sg_svc_serving_epoch(const struct sg_svc_table *t);

/* Whether a backend still takes traffic: ready, or serving while terminating. */
static inline bool
sg_svc_backend_serving(const struct sg_svc_backend *b)
{
	return (b->state & (SG_SVC_BE_READY | SG_SVC_BE_SERVING)) != 0;
}

/*
 * Whether a backend is one new flows may go to, Kubernetes' choice: when
 * any weighted backend is ready (any_ready), the ready ones, else those
 * serving and terminating; never one of weight 0. Of a published entry:
 * sg_svc_backend_usable(&e->backends[b], e->flags & SG_SVC_F_ANY_READY).
 */
static inline bool
sg_svc_backend_usable(const struct sg_svc_backend *b, bool any_ready)
{
	const uint8_t st = SG_SVC_BE_SERVING | SG_SVC_BE_TERMINATING;

	if (b->weight == 0)
		return false;
	if (any_ready)
		return (b->state & SG_SVC_BE_READY) != 0;
	return (b->state & st) == st;
}

/* "nat", "dnat", "dsr-ipip", "dsr-gue", "dsr-l2", or "?" */
const char *sg_svc_mode_name(unsigned int mode);

/* IPv4 key; addr 0 makes the "any" key. */
static inline void
sg_svc_key4(struct sg_svc_key *k, rte_be32_t addr, rte_be16_t port, uint8_t proto)
{
	memset(k, 0, sizeof(*k));
	k->family = 4;
	k->proto = proto;
	k->port = port;
	memcpy(k->addr, &addr, 4);
}

/* IPv6 key from 16 bytes in network order; addr NULL makes the "any" key. */
static inline void
sg_svc_key6(struct sg_svc_key *k, const void *addr, rte_be16_t port, uint8_t proto)
{
	k->family = 6;
	k->proto = proto;
	k->port = port;
	if (addr != NULL)
		memcpy(k->addr, addr, 16);
	else
		memset(k->addr, 0, 16);
}

/* 1 if the key's address is all zeroes (a NodePort "any" key). */
static inline int
sg_svc_key_is_any(const struct sg_svc_key *k)
{
	uint64_t w[2];

	memcpy(w, k->addr, sizeof(w));
	return (w[0] | w[1]) == 0;
}

/*
 * The backend index for a flow hash: Maglev's table[hash % M]. 0 ("none")
 * when the service has no usable backend.
 */
static inline uint16_t
sg_svc_backend_for_hash(const struct sg_svc_entry *e, uint32_t hash)
{
	if (sg_unlikely(e->maglev_size == 0))
		return 0;
	return e->maglev[hash % e->maglev_size];
}

/* 1 if an IPv4 source (network order) may use the service, else 0. */
static inline int
sg_svc_src_allowed4(const struct sg_svc_entry *e, rte_be32_t src)
{
	if (sg_likely(!(e->flags & SG_SVC_F_SRC_RANGES)))
		return 1;
	for (unsigned int i = 0; i < e->n_src4; i++)
		if ((src & e->src4[i].mask) == e->src4[i].net)
			return 1;
	return 0;
}

/* 1 if an IPv6 source (16 bytes, network order) may use the service, else 0. */
static inline int
sg_svc_src_allowed6(const struct sg_svc_entry *e, const void *src)
{
	uint64_t a[2];

	if (sg_likely(!(e->flags & SG_SVC_F_SRC_RANGES)))
		return 1;
	memcpy(a, src, sizeof(a));
	for (unsigned int i = 0; i < e->n_src6; i++) {
		const struct sg_svc_src6 *r = &e->src6[i];

		if ((a[0] & r->mask[0]) == r->net[0] && (a[1] & r->mask[1]) == r->net[1])
			return 1;
	}
	return 0;
}

#endif /* SG_SVC_H */
