/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI'16, §3.4), with integer weights.
 *
 * A lookup table of prime size M maps a flow hash to a backend:
 * backend = table[hash % M]. Removing one of N backends moves about 1/N of
 * the slots, and the table depends only on the set of backend identities and
 * weights, never on their order or on the process: two gateways fed the same
 * endpoints build byte-identical tables, so routers can spread one VIP over
 * several gateways with ECMP and a flow lands on the same pod on each.
 *
 * The wire contract between gateways (changing any of it changes every
 * table, so it is versioned as SG_MAGLEV_CONTRACT):
 *  - identity of a backend: family byte (4 or 6), its address (4 or 16
 *    bytes, network order), its port (2 bytes, network order);
 *  - offset = SipHash-2-4(K_offset, identity) mod M,
 *    skip   = SipHash-2-4(K_skip, identity) mod (M - 1) + 1,
 *    with K_offset = "svcgw-maglev-off", K_skip = "svcgw-maglev-skp" (the
 *    16 ASCII bytes of each, read as SipHash's k0, k1 little-endian);
 *  - backends take turns in ascending order of identity (family, address,
 *    port compared as the bytes above); in round r (from 0) a backend of
 *    weight w takes a turn when floor((r + 1) w / W) > floor(r w / W), W the
 *    largest weight; a turn claims the backend's next free preferred slot;
 *  - M is sg_maglev_size(N, cap): N counts the backends of non-zero weight
 *    listed for the service, ready or not (lib/svc), so M stays put while
 *    pods flap; cap is tables.maglev_max_size, which gateways must share.
 *
 * No DPDK here: the build runs on the control thread, and the library is
 * unit-tested and benchmarked without EAL.
 */
#ifndef SG_MAGLEV_H
#define SG_MAGLEV_H

#include <stdint.h>

#define SG_MAGLEV_CONTRACT 1

/* Default cap on the table size; a prime. */
#define SG_MAGLEV_DEFAULT_MAX_SIZE 65537u
/* Table entries are uint16_t indices into the caller's backend array. */
#define SG_MAGLEV_MAX_BACKENDS 65535u

struct sg_maglev_backend {
	uint8_t family;	   /* 4 or 6 */
	uint8_t addr[16];  /* network order; IPv4 uses the first 4 bytes */
	uint16_t port;	   /* host order */
	uint32_t weight;   /* relative share; 0 keeps it out of the table */
};

/*
 * Table size for n backends: the smallest prime of a fixed list that is at
 * least 100 x n, and never more than max_size. The list roughly doubles
 * (101, 211, 401, 809, ...) because changing M remaps nearly every slot, so
 * M should change rarely as a service scales.
 * Returns 0 if max_size is not a prime or n is 0.
 */
uint32_t sg_maglev_size(uint32_t n_backends, uint32_t max_size);

/* 1 if n is prime, else 0. */
int sg_maglev_is_prime(uint32_t n);

/*
 * Fill table[0 .. size - 1] with indices into backends[0 .. n - 1].
 * Returns 0, or:
 *  -EINVAL  n is 0 or above SG_MAGLEV_MAX_BACKENDS, every weight is 0,
 *           size is not a prime, fewer slots than weighted backends, or two
 *           backends share one identity;
 *  -ENOMEM  no memory for the working arrays.
 */
int sg_maglev_build(const struct sg_maglev_backend *backends, uint32_t n,
		    uint16_t *table, uint32_t size);

/* SipHash-2-4 (Aumasson and Bernstein, 2012) of len bytes under a 16-byte key. */
uint64_t sg_siphash24(const uint8_t key[16], const void *data, uint32_t len);

#endif /* SG_MAGLEV_H */
