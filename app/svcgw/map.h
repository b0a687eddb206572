/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hash map from byte strings to pointers, for the control thread's
 * indexes (service entries by name, id and key, services by
 * namespace/name, owned addresses). The key bytes are not copied: they
 * must live inside the value (or as long as the entry), which is how every
 * index here uses it. Open addressing with linear probing and
 * backward-shift deletion, so a delete leaves no tombstone behind and
 * 10,000 services coming and going keep lookups short. SipHash under a
 * per-map random key keeps names chosen by someone else from colliding on
 * purpose.
 *
 * Not thread-safe: the control thread changes the maps, telemetry reads
 * them under sg_app_lock.
 */
#ifndef SG_APP_MAP_H
#define SG_APP_MAP_H

#include <stddef.h>
#include <stdint.h>

struct app_map_slot {
	uint64_t hash;		/* 0: empty */
	const void *key;
	uint32_t len;
	void *val;
};

struct app_map {
	struct app_map_slot *slots;
	uint32_t cap;		/* a power of two, or 0 */
	uint32_t n;
	uint8_t seed[16];
};

/* An empty map; allocates nothing until the first put. */
void app_map_init(struct app_map *m);
/* Free the slots (not the values). */
void app_map_fini(struct app_map *m);
/* The value of key, or NULL. */
void *app_map_get(const struct app_map *m, const void *key, uint32_t len);
/* Insert or replace. Returns 0, or -ENOMEM (the map unchanged). */
int app_map_put(struct app_map *m, const void *key, uint32_t len, void *val);
/* The value removed, or NULL if key was not there. */
void *app_map_del(struct app_map *m, const void *key, uint32_t len);
/* Strings, their NUL left out. */
void *app_map_gets(const struct app_map *m, const char *key);
int app_map_puts(struct app_map *m, const char *key, void *val);
void *app_map_dels(struct app_map *m, const char *key);

/*
 * Visit every value in no particular order; fn must not change the map.
 * A non-zero return of fn stops the walk and is returned.
 */
int app_map_each(const struct app_map *m, int (*fn)(void *val, void *arg), void *arg);

#endif /* SG_APP_MAP_H */
