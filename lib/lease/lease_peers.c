/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gateways' heartbeat Leases, as lists of the namespace show them:
 * who is live by the observed-time rule of lease_elect.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"

void
sg_lease_peers_init(struct sg_lease_peers *ps)
{
	memset(ps, 0, sizeof(*ps));
}

void
sg_lease_peers_begin(struct sg_lease_peers *ps)
{
	for (uint32_t i = 0; i < ps->n; i++)
		ps->p[i].mark = 0;
}

void
sg_lease_peers_see(struct sg_lease_peers *ps, const struct sg_lease *l, uint64_t now)
{
	struct sg_lease_peer *p = NULL;

	if (l->gateway[0] == '\0')
		return;
	for (uint32_t i = 0; i < ps->n; i++)
		if (strcmp(ps->p[i].name, l->gateway) == 0) {
			p = &ps->p[i];
			break;
		}
	if (p == NULL) {
		if (ps->n >= SG_LEASE_MAX_PEERS) {
			ps->dropped++;
			return;
		}
		p = &ps->p[ps->n++];
		memset(p, 0, sizeof(*p));
		memcpy(p->name, l->gateway, sizeof(p->name));
		p->seen_ms = now;
	} else if (strcmp(p->rv, l->rv) != 0) {
		p->seen_ms = now;
	}
	memcpy(p->rv, l->rv, sizeof(p->rv));
	p->duration_s = l->duration_s;
	/* A Lease held by someone else than its gateway is not that gateway's heartbeat. */
	p->released = l->holder[0] == '\0' || strcmp(l->holder, l->gateway) != 0;
	p->mark = 1;
}

void
sg_lease_peers_end(struct sg_lease_peers *ps)
{
	uint32_t i = 0;

	while (i < ps->n) {
		if (!ps->p[i].mark)
			ps->p[i] = ps->p[--ps->n];
		else
			i++;
	}
}

bool
sg_lease_peer_live(const struct sg_lease_peer *p, uint64_t now)
{
	uint32_t d = p->duration_s > 0 ? p->duration_s : 1;

	return !p->released && now < p->seen_ms + (uint64_t)d * 1000u;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

uint32_t
sg_lease_peers_live(const struct sg_lease_peers *ps, uint64_t now, const char **names,
		    uint32_t max)
{
	const char *all[SG_LEASE_MAX_PEERS];
	uint32_t n = 0;

	for (uint32_t i = 0; i < ps->n; i++)
		if (sg_lease_peer_live(&ps->p[i], now))
			all[n++] = ps->p[i].name;
	qsort(all, n, sizeof(all[0]), cmp_str);
	for (uint32_t i = 0; i < n && i < max; i++)
		names[i] = all[i];
	return n;
}

uint64_t
sg_lease_peers_next_expiry(const struct sg_lease_peers *ps, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < ps->n; i++) {
		const struct sg_lease_peer *p = &ps->p[i];
		uint64_t end = p->seen_ms + (uint64_t)(p->duration_s > 0 ? p->duration_s : 1) * 1000u;

		if (sg_lease_peer_live(p, now) && end < next)
			next = end;
	}
	return next;
}
