/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hash map from strings (namespace/name keys) to pointers: open
 * addressing with linear probing, kept at most half full, and deletion by
 * backward shift so that no tombstones pile up in a map that sees every
 * object of a cluster come and go. Only the client thread (or a test) uses
 * one map; nothing here locks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_private.h"

struct k8s_map_slot {
	char *key;		/* NULL: empty */
	uint64_t hash;
	void *value;
};

/* FNV-1a: keys are short and trusted enough (names the API server accepted). */
static uint64_t
hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

void
k8s_map_init(struct k8s_map *m)
{
	memset(m, 0, sizeof(*m));
}

void
k8s_map_fini(struct k8s_map *m)
{
	for (uint32_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static int64_t
find(const struct k8s_map *m, const char *key, uint64_t h)
{
	if (m->cap == 0)
		return -1;
	for (uint32_t i = (uint32_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		const struct k8s_map_slot *s = &m->slots[i];

		if (s->key == NULL)
			return -1;
		if (s->hash == h && strcmp(s->key, key) == 0)
			return i;
	}
}

void *
k8s_map_get(const struct k8s_map *m, const char *key)
{
	int64_t i = find(m, key, hash_str(key));

	return i >= 0 ? m->slots[i].value : NULL;
}

static void
place(struct k8s_map_slot *slots, uint32_t cap, const struct k8s_map_slot *e)
{
	uint32_t i = (uint32_t)e->hash & (cap - 1);

	while (slots[i].key != NULL)
		i = (i + 1) & (cap - 1);
	slots[i] = *e;
}

static int
grow(struct k8s_map *m)
{
	uint32_t cap = m->cap != 0 ? m->cap * 2 : 16;
	struct k8s_map_slot *slots;

	if (cap == 0)
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->slots[i].key != NULL)
			place(slots, cap, &m->slots[i]);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int
k8s_map_put(struct k8s_map *m, const char *key, void *value)
{
	uint64_t h = hash_str(key);
	int64_t i = find(m, key, h);
	struct k8s_map_slot e;

	if (i >= 0) {
		m->slots[i].value = value;
		return 0;
	}
	if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
		return -ENOMEM;
	e.key = strdup(key);
	if (e.key == NULL)
		return -ENOMEM;
	e.hash = h;
	e.value = value;
	place(m->slots, m->cap, &e);
	m->n++;
	return 0;
}

void *
k8s_map_del(struct k8s_map *m, const char *key)
{
	int64_t found = find(m, key, hash_str(key));
	uint32_t i, j, mask = m->cap - 1;
	void *value;

	if (found < 0)
		return NULL;
	i = (uint32_t)found;
	value = m->slots[i].value;
	free(m->slots[i].key);
	m->slots[i].key = NULL;
	m->n--;
	/* Backward shift: pull up each later entry of the run that may now sit
	 * in the hole, so lookups never stop early at it. */
	for (j = (i + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
		uint32_t home = (uint32_t)m->slots[j].hash & mask;

		/* Leave it if its home lies cyclically in (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		m->slots[i] = m->slots[j];
		m->slots[j].key = NULL;
		i = j;
	}
	return value;
}

void
k8s_map_each(const struct k8s_map *m, void (*fn)(void *arg, const char *key, void *value),
	     void *arg)
{
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->slots[i].key != NULL)
			fn(arg, m->slots[i].key, m->slots[i].value);
}
