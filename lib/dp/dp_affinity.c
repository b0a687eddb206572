/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sessionAffinity: ClientIP. A client's first connection goes where
 * Maglev puts its address; the gateway remembers that backend for the
 * service's timeoutSeconds, renewed by each new connection (kube-proxy's
 * "recent" match does the same), so that a client keeps its pod when pods
 * are added or other pods go, until it stays away longer than the timeout
 * or its own pod stops taking new connections.
 *
 * One table for all workers, because a client's connections are spread
 * over workers by its ports: each slot is one 64-bit word, read and
 * written whole (relaxed atomics, plain moves on x86), so workers never
 * lock and a racing write only makes the later of two new connections
 * win. Only new flows of affinity services touch it.
 *
 * A slot: the key's tag (16 bits), the backend's identity hash (24 bits:
 * backends move in the entry's array when the endpoint list is reordered,
 * their address and port stay), the expiry in seconds modulo 2^24. Two
 * clients sharing a slot overwrite each other; one that finds another's
 * tag just falls back to Maglev.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "dp_private.h"

#define TAG_SHIFT 48
#define BE_SHIFT 24
#define BE_MASK 0xffffffu
#define EXP_MASK 0xffffffu
/* Expiries this far ahead, or less, are alive: the timeout is at most a day. */
#define EXP_WINDOW (1u << 23)
#define TAG_SEED 0x9e3779b9u

_Static_assert(SG_SVC_AFFINITY_MAX < EXP_WINDOW, "affinity timeouts fit the expiry window");

struct sg_dp_affinity {
	uint64_t mask;
	uint64_t slot[];
};

struct sg_dp_affinity *
sg_dp_affinity_create(uint32_t slots, int socket_id)
{
	struct sg_dp_affinity *a;

	if (slots == 0 || !rte_is_power_of_2(slots)) {
		errno = EINVAL;
		return NULL;
	}
	a = rte_zmalloc_socket("sg_affinity", sizeof(*a) + sizeof(uint64_t) * slots,
			       RTE_CACHE_LINE_SIZE, socket_id);
	if (a == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	a->mask = slots - 1;
	return a;
}

void
sg_dp_affinity_free(struct sg_dp_affinity *a)
{
	rte_free(a);
}

/* 24 bits that tell one backend of a service from another. */
static uint64_t
backend_id(const struct sg_svc_backend *b)
{
	return rte_hash_crc(b->addr, sizeof(b->addr), b->port) & BE_MASK;
}

static bool
alive(uint64_t v, uint32_t now_s)
{
	uint32_t left = ((uint32_t)v - now_s) & EXP_MASK;

	return left != 0 && left < EXP_WINDOW;
}

uint16_t
dp_affinity_pick(struct sg_dp_affinity *a, const struct sg_svc_entry *e, uint8_t family,
		 const void *client, uint16_t placed, uint64_t now_ms)
{
	uint32_t len = dp_addr_len(family), now_s = (uint32_t)(now_ms / 1000) & EXP_MASK;
	uint64_t *slot = &a->slot[rte_hash_crc(client, len, e->id) & a->mask];
	uint64_t tag = rte_hash_crc(client, len, e->id ^ TAG_SEED) >> 16;
	uint64_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
	bool any_ready = (e->flags & SG_SVC_F_ANY_READY) != 0;
	uint16_t b = placed;

	if ((v >> TAG_SHIFT) == tag && alive(v, now_s)) {
		uint64_t want = (v >> BE_SHIFT) & BE_MASK;

		/* Most often Maglev still says the same; else look for it. */
		if (backend_id(&e->backends[placed]) != want)
			for (uint16_t i = 1; i <= e->n_backends; i++)
				if (backend_id(&e->backends[i]) == want &&
				    sg_svc_backend_usable(&e->backends[i], any_ready)) {
					b = i;
					break;
				}
	}
	__atomic_store_n(slot, tag << TAG_SHIFT | backend_id(&e->backends[b]) << BE_SHIFT |
			       ((now_s + e->affinity_timeout) & EXP_MASK), __ATOMIC_RELAXED);
	return b;
}
