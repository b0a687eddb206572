/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LoadBalancer address pools and who holds which address: the pure
 * bookkeeping of svcgw as the cluster's LoadBalancer provider. No I/O, no
 * DPDK, no Kubernetes objects: the daemon (app/svcgw/ipam.c) turns each
 * Service into a struct sg_ipam_req and the result into a status patch.
 *
 * Rules:
 * - Pools come from the config (struct sg_conf_pool): ranges per family,
 *   the namespaces allowed (none: all), auto_assign, a priority. Pools are
 *   tried by priority (lower first), then name; addresses in a range from
 *   the lowest up, so what a pool hands out does not depend on history.
 * - A request for addresses (spec.loadBalancerIP or svcgw.io/loadBalancerIPs)
 *   is honoured if the address is in a pool the service may use (auto_assign
 *   does not matter then) and free or shareable; svcgw.io/address-pool
 *   restricts the search to that pool.
 * - Families: a request names them; otherwise SingleStack (or no policy)
 *   takes one (IPv4 if the service has it), PreferDualStack and
 *   RequireDualStack every family of spec.ipFamilies; Prefer is content
 *   with one of them, Require and Single with nothing less than all.
 * - Sharing: services with the same non-empty svcgw.io/allow-shared-ip key
 *   may hold the same address if their (protocol, port) sets are disjoint;
 *   a service with a key goes to an address its key already uses first.
 * - Stability: an address a service holds stays its as long as it is
 *   still valid for it (in a pool it may use, matching its request,
 *   shareable), whatever changes around it; sg_ipam_claim() rebuilds
 *   holdings from status without allocating, and sg_ipam_set_pools() keeps
 *   every address that is still inside a pool.
 *
 * Not thread-safe: one owner (the daemon's control thread).
 */
#ifndef SG_IPAM_H
#define SG_IPAM_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* spec.ipFamilyPolicy, as lib/k8s numbers it (enum sg_k8s_family_policy). */
enum sg_ipam_policy {
	SG_IPAM_POLICY_UNSET = 0,	/* as SingleStack */
	SG_IPAM_POLICY_SINGLE,
	SG_IPAM_POLICY_PREFER_DUAL,
	SG_IPAM_POLICY_REQUIRE_DUAL,
};

/* A (protocol, port) a service serves on its addresses. */
struct sg_ipam_port {
	uint8_t proto;
	uint16_t port;
};

/* What one service asks for. Strings and arrays are only read during the call. */
struct sg_ipam_req {
	const char *key;			/* namespace/name */
	const char *namespace;
	uint8_t families;			/* SG_CONF_FAM_* of spec.ipFamilies */
	uint8_t policy;				/* enum sg_ipam_policy */
	struct sg_conf_addr want[2];		/* requested addresses, at most one a family */
	uint32_t n_want;
	const char *pool;			/* svcgw.io/address-pool; NULL: any */
	const char *share;			/* svcgw.io/allow-shared-ip; NULL or "": none */
	const struct sg_ipam_port *ports;
	uint32_t n_ports;
};

/*
 * What a service holds: IPv4 first. The pool names are copies: a caller
 * keeps this across sg_ipam_set_pools(), which frees the pools.
 */
struct sg_ipam_alloc {
	struct sg_conf_addr addrs[2];
	char pool[2][SG_CONF_K8S_NAME_SIZE];
	uint32_t n;
};

struct sg_ipam;

/*
 * An allocator over n pools (copied; n may be 0). NULL with errno EINVAL
 * (pools NULL with n > 0) or ENOMEM.
 */
struct sg_ipam *sg_ipam_create(const struct sg_conf_pool *pools, uint32_t n);
/* NULL is harmless. */
void sg_ipam_free(struct sg_ipam *m);

/*
 * New pools (a reload). Every address held that is still inside some pool
 * stays held; the others are released (the caller assigns those services
 * again, and should re-run sg_ipam_assign() for every service, since a
 * pool's namespaces may have changed). Returns how many addresses were
 * released, or -EINVAL, -ENOMEM (nothing changed).
 */
int sg_ipam_set_pools(struct sg_ipam *m, const struct sg_conf_pool *pools, uint32_t n);

/*
 * Rebuild a service's holding from what its status says, without
 * allocating anything: of addrs (status.loadBalancer.ingress, at most the
 * first of each family), those valid for req are held, anything else it
 * held is released. Returns how many are held, or -EINVAL, -ENOMEM.
 */
int sg_ipam_claim(struct sg_ipam *m, const struct sg_ipam_req *req,
		  const struct sg_conf_addr *addrs, uint32_t n);

/*
 * Make the service hold what req asks for: what it holds and is still
 * valid stays, what is missing is allocated. On success out holds its
 * addresses; 0. On failure the service keeps what it held before the call
 * (possibly nothing), out says what that is, why says what went wrong:
 *  -EINVAL      the request cannot be met as written (an address of a
 *               family the service does not have, outside every pool it
 *               may use, an unknown pool);
 *  -EADDRINUSE  a requested address is held by a service it cannot share with;
 *  -ENOSPC      no free address in the pools it may use (exhausted);
 *  -ENOMEM.
 */
int sg_ipam_assign(struct sg_ipam *m, const struct sg_ipam_req *req, struct sg_ipam_alloc *out,
		   char *why, size_t whylen);

/* Release what key holds. Returns how many addresses it held (0 if none). */
int sg_ipam_release(struct sg_ipam *m, const char *key);

/* What key holds: 0, or -ENOENT (nothing). */
int sg_ipam_get(const struct sg_ipam *m, const char *key, struct sg_ipam_alloc *out);

/* Who holds an address (one of them if shared): its key, or NULL. */
const char *sg_ipam_holder(const struct sg_ipam *m, const struct sg_conf_addr *a);

/*
 * Counts since creation of addresses given back (released, or lost to a
 * pool edit): a service that found its pools full may try again once
 * this moved.
 */
uint64_t sg_ipam_releases(const struct sg_ipam *m);

/* Addresses held (an address shared counts once), services holding any. */
uint32_t sg_ipam_used(const struct sg_ipam *m);
uint32_t sg_ipam_services(const struct sg_ipam *m);

#endif /* SG_IPAM_H */
