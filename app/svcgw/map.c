/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control thread's hash map (map.h): linear probing over a power-of-two
 * table kept at most half full, backward-shift deletion (Knuth, TAOCP vol.
 * 3, §6.4, Algorithm R), so no tombstones accumulate.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_random.h>

#include "maglev.h"
#include "map.h"

#define MIN_CAP 16u

void
app_map_init(struct app_map *m)
{
	uint64_t r[2] = { rte_rand(), rte_rand() };

	memset(m, 0, sizeof(*m));
	memcpy(m->seed, r, sizeof(m->seed));
}

void
app_map_fini(struct app_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

static uint64_t
hash_of(const struct app_map *m, const void *key, uint32_t len)
{
	uint64_t h = sg_siphash24(m->seed, key, len);

	return h != 0 ? h : 1;	/* 0 marks an empty slot */
}

static uint32_t
find(const struct app_map *m, const void *key, uint32_t len, uint64_t h)
{
	uint32_t mask = m->cap - 1;

	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		const struct app_map_slot *s = &m->slots[i];

		if (s->hash == 0)
			return UINT32_MAX;
		if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
			return i;
	}
}

void *
app_map_get(const struct app_map *m, const void *key, uint32_t len)
{
	uint32_t i;

	if (m->n == 0)
		return NULL;
	i = find(m, key, len, hash_of(m, key, len));
	return i == UINT32_MAX ? NULL : m->slots[i].val;
}

static void
place(struct app_map_slot *slots, uint32_t cap, const struct app_map_slot *s)
{
	uint32_t i = (uint32_t)s->hash & (cap - 1);

	while (slots[i].hash != 0)
		i = (i + 1) & (cap - 1);
	slots[i] = *s;
}

static int
grow(struct app_map *m)
{
	uint32_t cap = m->cap != 0 ? 2 * m->cap : MIN_CAP;
	struct app_map_slot *slots;

	if (cap == 0)
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->slots[i].hash != 0)
			place(slots, cap, &m->slots[i]);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int
app_map_put(struct app_map *m, const void *key, uint32_t len, void *val)
{
	uint64_t h = hash_of(m, key, len);
	struct app_map_slot s = { .hash = h, .key = key, .len = len, .val = val };
	uint32_t i;

	if (m->n != 0) {
		i = find(m, key, len, h);
		if (i != UINT32_MAX) {
			m->slots[i] = s;
			return 0;
		}
	}
	if (2 * (m->n + 1) > m->cap && grow(m) < 0)
		return -ENOMEM;
	place(m->slots, m->cap, &s);
	m->n++;
	return 0;
}

void *
app_map_del(struct app_map *m, const void *key, uint32_t len)
{
	uint32_t mask = m->cap - 1, i, j;
	void *val;

	if (m->n == 0)
		return NULL;
	i = find(m, key, len, hash_of(m, key, len));
	if (i == UINT32_MAX)
		return NULL;
	val = m->slots[i].val;
	/* Pull back every slot of the run after i that may sit at i. */
	for (j = (i + 1) & mask; m->slots[j].hash != 0; j = (j + 1) & mask) {
		uint32_t home = (uint32_t)m->slots[j].hash & mask;

		/* Stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	m->n--;
	return val;
}

void *
app_map_gets(const struct app_map *m, const char *key)
{
	return app_map_get(m, key, (uint32_t)strlen(key));
}

int
app_map_puts(struct app_map *m, const char *key, void *val)
{
	return app_map_put(m, key, (uint32_t)strlen(key), val);
}

void *
app_map_dels(struct app_map *m, const char *key)
{
	return app_map_del(m, key, (uint32_t)strlen(key));
}

int
app_map_each(const struct app_map *m, int (*fn)(void *val, void *arg), void *arg)
{
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->slots[i].hash != 0) {
			int rc = fn(m->slots[i].val, arg);

			if (rc != 0)
				return rc;
		}
	return 0;
}
