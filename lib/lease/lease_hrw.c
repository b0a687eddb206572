/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rendezvous (highest-random-weight) hashing: Thaler and Ravishankar, "A
 * Name-Based Mapping Scheme for Rendezvous", 1996. The hash and its input
 * are part of the protocol between gateways (lease.h): never change them.
 */
#include <string.h>

#include "maglev.h"
#include "lease.h"

static const uint8_t hrw_key[16] = { 's', 'v', 'c', 'g', 'w', '-', 'r', 'e',
				     'n', 'd', 'e', 'z', 'v', 'o', 'u', 's' };

uint64_t
sg_lease_hrw_weight(const char *name, uint8_t family, const uint8_t *addr)
{
	uint8_t buf[SG_LEASE_NAME_SIZE + 2 + 16];
	size_t n = strnlen(name, SG_LEASE_NAME_SIZE - 1);
	size_t alen = family == 6 ? 16 : 4;

	memcpy(buf, name, n);
	buf[n] = 0;
	buf[n + 1] = family;
	memcpy(buf + n + 2, addr, alen);
	return sg_siphash24(hrw_key, buf, (uint32_t)(n + 2 + alen));
}

int
sg_lease_hrw_owner(const char *const *names, uint32_t n, uint8_t family, const uint8_t *addr)
{
	uint64_t best_w = 0;
	int best = -1;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t w = sg_lease_hrw_weight(names[i], family, addr);

		if (best < 0 || w > best_w ||
		    (w == best_w && strcmp(names[i], names[best]) < 0)) {
			best = (int)i;
			best_w = w;
		}
	}
	return best;
}
