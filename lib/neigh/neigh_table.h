/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/neigh: the table itself, shared by neigh.c (creation,
 * ports, owned addresses, what workers call) and neigh_ctl.c (resolution,
 * timers, announcements, telemetry), and the log type. Only the control
 * thread touches anything here but the two hashes and port_mac[].
 */
#ifndef NEIGH_TABLE_H
#define NEIGH_TABLE_H

#include <stdint.h>
#include <sys/queue.h>

#include "sg_log.h"

#include "neigh.h"

extern int sg_logtype_neigh;

struct rte_hash;

/*
 * Control-side state of one neighbour, at the index of its key in the
 * neighbour hash: the hash does not hand out that index again before the
 * slot has been reclaimed, and the entry is cleared when its key is
 * deleted, so index and key always agree.
 */
struct nb {
	TAILQ_ENTRY(nb) link;	/* in lists[state], ordered by deadline */
	uint64_t deadline;	/* ms: next retry, probe or expiry */
	uint64_t since;		/* ms: confirmed, created or failed; the age's origin */
	uint64_t word;		/* as published to the workers */
	struct sg_neigh_key key;
	uint8_t state;		/* enum sg_neigh_state; FREE when unused */
	uint8_t tries;		/* requests sent in this round */
	uint8_t n_held;
	uint8_t held_head;	/* oldest held packet, in its ring of hold_per_neigh */
};

TAILQ_HEAD(nb_list, nb);

struct port_rec {
	struct sg_neigh_port_conf conf;
	uint8_t ll[16];		/* link-local, with SG_NEIGH_PORT_IPV6 */
	uint8_t present;
};

/* A queued announcement. */
struct ann {
	struct sg_neigh_key key;
	uint32_t left;		/* frames still to send, or SG_NEIGH_ANNOUNCE_FOREVER */
	uint32_t interval;	/* ms */
	uint32_t refresh;	/* ms between announcements once left runs out; 0: stop */
	uint64_t next;		/* ms */
};

struct sg_neigh_table {
	/* Read by workers. */
	struct rte_hash *nb_hash;	/* key -> word, lock-free readers */
	struct rte_hash *own_hash;	/* key -> SG_NEIGH_ADDR_* flags */
	/* Port MAC as a word with SG_NEIGH_W_VALID when registered; __atomic. */
	uint64_t port_mac[SG_NEIGH_MAX_PORTS];
	/* Bumped after every change of a neighbour's word; __atomic. */
	uint64_t generation;

	/* Control thread. */
	struct sg_neigh_conf conf;	/* defaults applied */
	struct nb *nbs;			/* n_slots, by hash position */
	uint32_t n_slots;
	struct rte_mbuf **held;		/* hold_per_neigh per slot */
	struct nb_list lists[SG_NEIGH_STATE_COUNT];
	uint32_t n_state[SG_NEIGH_STATE_COUNT];
	struct port_rec ports[SG_NEIGH_MAX_PORTS];
	struct ann *anns;		/* [0, n_ann) in use */
	uint32_t n_ann;
	uint32_t n_nb;
	uint32_t n_own;
	uint32_t n_held;
	uint64_t conflict_logged;	/* ms of the last conflict logged, + 1 */
	struct sg_neigh_stats st;
};

/* 1 if key is well formed: port in range, family 4 or 6, zero bytes zero. */
int neigh_key_ok(const struct sg_neigh_key *key);

/* 1 if key's address could be a host's: not unspecified, multicast or broadcast. */
int neigh_key_unicast(const struct sg_neigh_key *key);

/* 1 if key's port is registered with key's family enabled. */
int neigh_key_port_ok(const struct sg_neigh_table *t, const struct sg_neigh_key *key);

/*
 * Add key to h (a new key: data is its first value) and return its
 * position, waiting for a grace period if deleted slots fill the hash.
 * Returns the position or a negative errno.
 */
int32_t neigh_hash_add(struct sg_neigh_table *t, struct rte_hash *h,
		       const struct sg_neigh_key *k, void *data);

/* neigh_ctl.c, for neigh.c */
void neigh_nb_flush(struct sg_neigh_table *t, uint16_t port, uint8_t family);
void neigh_ann_cancel(struct sg_neigh_table *t, const struct sg_neigh_key *key, int whole_port);
void neigh_free_held(struct sg_neigh_table *t);

#endif /* NEIGH_TABLE_H */
