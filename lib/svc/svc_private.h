/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/svc: the log type (logging happens on the control thread
 * only; nothing on the lookup path logs), and what the lookup cache
 * (svc_cache.c) needs of the table (svc.c).
 */
#ifndef SG_SVC_PRIVATE_H
#define SG_SVC_PRIVATE_H

#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_hash_crc.h>

#include "sg_log.h"
#include "svc.h"

extern int sg_logtype_svc;

/* Any constant does: the key hash never leaves this process. */
#define SVC_KEY_HASH_SEED 0x73766367u

/*
 * The rte_hash_function of keys (with SVC_KEY_HASH_SEED): CRC32c of their
 * 20 bytes, read with memcpy because keys sit at any even address (packed
 * in arrays, in entries) and rte_hash_crc() would load 8 bytes at a time
 * through a cast. Inline: the lookups hash their keys themselves.
 */
static inline uint32_t
svc_key_hash(const void *key, uint32_t len, uint32_t init)
{
	const uint8_t *p = key;
	uint64_t a, b;
	uint32_t c;

	RTE_SET_USED(len); /* always sizeof(struct sg_svc_key) */
	memcpy(&a, p, 8);
	memcpy(&b, p + 8, 8);
	memcpy(&c, p + 16, 4);
	return rte_hash_crc_4byte(c, rte_hash_crc_8byte(b, rte_hash_crc_8byte(a, init)));
}

/*
 * sg_svc_lookup_bulk() of n keys (1..SG_SVC_LOOKUP_MAX) given by pointer,
 * with their svc_key_hash() values, as rte_hash takes them.
 */
unsigned int svc_lookup_hashed(const struct sg_svc_table *t, const void *kp[], uint32_t sig[],
			       unsigned int n, const struct sg_svc_entry **entries,
			       uint64_t *any_mask);

/*
 * The table's version: it moves on with every publication and removal,
 * before any entry is handed to the defer queue, and no two tables of the
 * process ever share one, so a cache filled at one version may be used
 * for as long as the version read before each use is the same. Acquire:
 * lookups after the read see at least that version's table.
 */
uint64_t svc_table_version(const struct sg_svc_table *t);

#endif /* SG_SVC_PRIVATE_H */
