/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which VIPs this gateway claims on the link. Every gateway forwards every
 * VIP that reaches it (Maglev tables are the same everywhere), but only
 * the owner -- by rendezvous hashing of the live gateways' names
 * (lib/lease) -- answers ARP/NDP for it and announces it: a burst of
 * gratuitous ARP / unsolicited NA when it takes it, then one every
 * announce_refresh seconds. The others hold it SG_NEIGH_ADDR_QUIET, one
 * flag in the owned-address hash the workers read lock-free.
 *
 * Without a failover group every VIP is ours, announced as it always was,
 * and this gateway is the leader.
 *
 * Control thread, under sg_app_lock. Not here: the Leases (lease.c), the
 * reference counting of owned addresses (services.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neigh.h"
#include "app.h"

/* Without failover: a few, as Linux's arp_notify, as before. */
#define PLAIN_ANNOUNCE_COUNT 3
#define PLAIN_ANNOUNCE_INTERVAL_MS 1000

void
app_announce_init(struct sg_app *a)
{
	memset(&a->announce, 0, sizeof(a->announce));
	a->announce.failover = a->conf->failover.line != 0;
	/* Alone, we write what a leader writes. */
	a->announce.leader = !a->announce.failover;
}

const char *
app_announce_owner(const struct sg_app *a, uint8_t family, const uint8_t *addr)
{
	const struct app_announce *an = &a->announce;
	const char *names[SG_LEASE_MAX_PEERS];
	int o;

	if (!an->failover)
		return NULL;
	for (uint32_t i = 0; i < an->m.n_live; i++)
		names[i] = an->m.live[i];
	o = sg_lease_hrw_owner(names, an->m.n_live, family, addr);
	return o < 0 ? "" : names[o];
}

static bool
mine(const struct sg_app *a, const struct sg_neigh_key *k)
{
	const char *owner;

	if (!a->announce.failover)
		return true;
	/* Until the first membership, and while our heartbeat lapses: nothing. */
	if (!a->announce.m.valid || !a->announce.m.me_live)
		return false;
	owner = app_announce_owner(a, k->family, k->addr);
	return strcmp(owner, a->conf->failover.name) == 0;
}

uint8_t
app_announce_vip_flags(const struct sg_app *a, const struct sg_neigh_key *k)
{
	return SG_NEIGH_ADDR_VIP | (mine(a, k) ? 0 : SG_NEIGH_ADDR_QUIET);
}

static void
announce(struct sg_app *a, const struct sg_neigh_key *k)
{
	const struct sg_conf_failover *f = &a->conf->failover;
	int rc;

	if (a->announce.failover)
		rc = sg_neigh_announce_refresh(a->neigh, k, f->announce_count,
					       f->announce_interval_ms,
					       f->announce_refresh * 1000u, app_now_ms(a));
	else
		rc = sg_neigh_announce(a->neigh, k, PLAIN_ANNOUNCE_COUNT,
				       PLAIN_ANNOUNCE_INTERVAL_MS, app_now_ms(a));
	if (rc != 0)
		SG_LOG(svcgw, WARNING, "an address not announced: %s", strerror(-rc));
}

void
app_announce_vip_new(struct sg_app *a, const struct sg_neigh_key *k)
{
	if (sg_neigh_flags_answered(sg_neigh_owned(a->neigh, k)))
		announce(a, k);
}

struct vip_list {
	struct sg_neigh_key *k;
	uint8_t *flags;
	uint32_t n;
	uint32_t cap;
};

static int
collect_vip(const struct sg_neigh_key *key, uint8_t flags, void *arg)
{
	struct vip_list *l = arg;

	if (!(flags & SG_NEIGH_ADDR_VIP))
		return 0;
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 64;
		struct sg_neigh_key *k = realloc(l->k, cap * sizeof(*k));
		uint8_t *f;

		if (k == NULL)
			return -ENOMEM;
		l->k = k;
		f = realloc(l->flags, cap);
		if (f == NULL)
			return -ENOMEM;
		l->flags = f;
		l->cap = cap;
	}
	l->k[l->n] = *key;
	l->flags[l->n++] = flags;
	return 0;
}

/* Make every VIP's QUIET flag say what the membership says. */
static void
reassign(struct sg_app *a)
{
	struct app_announce *an = &a->announce;
	struct vip_list l = { 0 };
	uint32_t owned = 0, quiet = 0, took = 0, gave = 0;

	if (sg_neigh_addr_foreach(a->neigh, collect_vip, &l) != 0) {
		/* Generation 0 makes the next turn take the membership again. */
		SG_LOG(svcgw, ERR, "failover: out of memory walking the VIPs");
		an->generation = 0;
		l.n = 0;
	}
	for (uint32_t i = 0; i < l.n; i++) {
		bool want = mine(a, &l.k[i]);
		bool is = !(l.flags[i] & SG_NEIGH_ADDR_QUIET);

		if (want && !is) {
			/* Answer first, then tell the link: a client that asks back finds us. */
			sg_neigh_addr_remove(a->neigh, &l.k[i], SG_NEIGH_ADDR_QUIET);
			announce(a, &l.k[i]);
			took++;
		} else if (!want && is) {
			sg_neigh_addr_add(a->neigh, &l.k[i], SG_NEIGH_ADDR_QUIET);
			gave++;
		}
		if (want)
			owned++;
		else
			quiet++;
	}
	free(l.k);
	free(l.flags);
	an->takeovers += took;
	an->handovers += gave;
	if (took != 0 || gave != 0)
		SG_LOG(svcgw, NOTICE, "failover: %u live gateway(s); took %u VIP(s), gave up %u; "
		       "answering for %u, quiet for %u", an->m.n_live, took, gave, owned, quiet);
}

/*
 * The seam between leader election and allocation (issue 7): whatever only
 * the leader may write (LoadBalancer addresses in services' status) is
 * switched here. app_announce_poll() calls it on the control thread under
 * sg_app_lock, which is what app_ipam_set_writer() needs: the lease thread
 * only publishes the membership, it never calls in here.
 */
static void
app_leader_changed(struct sg_app *a, bool leader)
{
	SG_LOG(svcgw, NOTICE, "failover: %s", leader ? "this gateway is the leader" :
	       "this gateway is no longer the leader");
	app_ipam_set_writer(a, leader);
}

void
app_announce_poll(struct sg_app *a)
{
	struct app_announce *an = &a->announce;
	struct app_membership m;
	struct timespec ts;
	uint64_t gen = an->generation;

	if (a->lease == NULL || !app_lease_membership(a->lease, &gen, &m))
		return;
	pthread_mutex_lock(&sg_app_lock);
	an->m = m;
	an->generation = gen;
	an->changes++;
	clock_gettime(CLOCK_REALTIME, &ts);
	an->last_change_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	reassign(a);
	if (m.leader != an->leader) {
		an->leader = m.leader;
		app_leader_changed(a, m.leader);
	}
	pthread_mutex_unlock(&sg_app_lock);
}
