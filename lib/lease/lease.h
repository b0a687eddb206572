/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Gateways agreeing through Kubernetes Leases (coordination.k8s.io/v1):
 * which of them are alive, which one is the leader, and which one answers
 * ARP/NDP for each VIP. Pure logic on plain data, with no clock and no
 * network of its own, so every rule here is unit-tested against a fake
 * clock; the daemon (app/svcgw/lease.c) does the HTTP and the timing.
 *
 * Three pieces:
 *
 *  - Lease records (lease_record.c): the fields svcgw reads and writes, to
 *    and from the API's JSON (MicroTime as RFC 3339 with microseconds).
 *
 *  - The elector (lease_elect.c): client-go's leaderelection rules for one
 *    Lease that one identity wants to hold. Acquire when the Lease does not
 *    exist (create) or its holder's lease has expired (update); renew while
 *    holding; every update carries the resourceVersion it read, so two
 *    gateways taking over at once cannot both win: the loser gets 409 and
 *    reads again. Expiry is judged by the LOCAL clock from when this
 *    gateway last saw the record change (client-go's observedTime), never
 *    by comparing renewTime with our wall clock, so skewed clocks cannot
 *    make a live holder look dead. The same elector holds a gateway's own
 *    heartbeat Lease (svcgw-<name>) and the shared leader Lease.
 *
 *  - Peers (lease_peers.c): the heartbeat Leases of every gateway, with the
 *    same observed-time rule; a gateway is live until duration after its
 *    Lease last changed, and dead at once when its Lease is released
 *    (holder "") or deleted.
 *
 *  - Rendezvous (highest-random-weight) hashing (lease_hrw.c): the owner of
 *    a VIP among the live gateways. Every gateway computes the same owner
 *    from the same set of names, and a gateway leaving moves only the VIPs
 *    it owned; one joining takes about 1/n of them, from every other.
 *
 * Not here: HTTP (lib/k8s), timers and threads (the daemon), what a gateway
 * does with a VIP it owns (lib/neigh through the daemon).
 */
#ifndef SG_LEASE_H
#define SG_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* A DNS-1123 subdomain (Lease and gateway names, identities), NUL included. */
#define SG_LEASE_NAME_SIZE 254u
/* A resourceVersion, NUL included. */
#define SG_LEASE_RV_SIZE 64u
/* Gateways tracked at once. */
#define SG_LEASE_MAX_PEERS 64u
/* The label naming the gateway whose heartbeat a Lease is. */
#define SG_LEASE_GATEWAY_LABEL "svcgw.io/gateway"

/* ---- records --------------------------------------------------------------- */

/* What svcgw reads and writes of a Lease. */
struct sg_lease {
	char name[SG_LEASE_NAME_SIZE];		/* metadata.name */
	char rv[SG_LEASE_RV_SIZE];		/* metadata.resourceVersion; "" to create */
	char gateway[SG_LEASE_NAME_SIZE];	/* label svcgw.io/gateway; "" none */
	char holder[SG_LEASE_NAME_SIZE];	/* spec.holderIdentity; "" none */
	uint32_t duration_s;			/* spec.leaseDurationSeconds; 0 unset */
	int64_t acquire_us;			/* spec.acquireTime, Unix µs; 0 unset */
	int64_t renew_us;			/* spec.renewTime */
	uint32_t transitions;			/* spec.leaseTransitions */
};

/*
 * Read a Lease object (a GET's body or an item of a list; list items have
 * no kind). Missing optional fields read as 0 or "". Returns 0, or -EINVAL
 * (no metadata.name, a field of the wrong type, a name or resourceVersion
 * too long, a time that is not RFC 3339).
 */
int sg_lease_decode(const cJSON *obj, struct sg_lease *out);

/*
 * The JSON of l in namespace ns, for a create (l->rv "") or an update
 * (metadata.resourceVersion = l->rv: the write fails with 409 if the
 * Lease changed since). Times are written as MicroTime
 * ("2006-01-02T15:04:05.000000Z"), unset ones left out; the gateway label
 * only if l->gateway is set. Returns a malloc'ed string, or NULL (ENOMEM).
 */
char *sg_lease_encode(const struct sg_lease *l, const char *ns);

/* MicroTime to and from Unix µs (not before 1970). parse: 0, or -EINVAL. */
#define SG_LEASE_TIME_SIZE 40u
int sg_lease_time_parse(const char *s, int64_t *us);
void sg_lease_time_format(int64_t us, char buf[SG_LEASE_TIME_SIZE]);

/* ---- elector ------------------------------------------------------------------- */

enum sg_lease_op {
	SG_LEASE_OP_NONE = 0,	/* nothing to write now */
	SG_LEASE_OP_CREATE,	/* POST the record: the Lease does not exist */
	SG_LEASE_OP_UPDATE,	/* PUT the record, with the resourceVersion read */
};

/* What one identity knows of one Lease. Plain data: copy it for telemetry. */
struct sg_lease_elector {
	char identity[SG_LEASE_NAME_SIZE];
	char name[SG_LEASE_NAME_SIZE];		/* the Lease */
	char gateway[SG_LEASE_NAME_SIZE];	/* label written on it; "" none */
	uint32_t duration_s;			/* written when we hold it */
	struct sg_lease seen;			/* the last record read or written */
	uint8_t known;				/* seen (or its absence) is current */
	uint8_t exists;				/* seen is a record (else: not found) */
	uint64_t seen_ms;			/* local ms when seen last changed */
	uint64_t renewed_ms;			/* local ms our last write was SENT; 0 none */
	uint64_t acquired;			/* times taken (created or taken over) */
	uint64_t renewals;
	uint64_t conflicts;			/* 409: lost a race */
	uint64_t failures;			/* other failed writes */
};

/*
 * Start knowing nothing: no write until the first observe(). identity and
 * name are copied (truncated to SG_LEASE_NAME_SIZE - 1); gateway may be
 * NULL. duration_s is at least 1.
 */
void sg_lease_elector_init(struct sg_lease_elector *e, const char *identity, const char *name,
			   const char *gateway, uint32_t duration_s);

/*
 * What a read found at local time now (ms): the record, or NULL for "not
 * found". A record whose resourceVersion differs from the last one seen
 * restarts the expiry clock (observedTime).
 */
void sg_lease_elector_observe(struct sg_lease_elector *e, const struct sg_lease *l,
			      uint64_t now);

/*
 * What to write now, into *out: create it if it does not exist, take it
 * over if its holder is "" or has not renewed for its duration (by our
 * clock, since we saw it change), renew it if ours and renew_after_ms have
 * passed since our last write. wall_us is the wall clock for
 * acquireTime/renewTime (informative to others, never used for expiry
 * here). Nothing while the last read is not current (after a conflict).
 */
enum sg_lease_op sg_lease_elector_next(struct sg_lease_elector *e, uint64_t now,
				       int64_t wall_us, uint32_t renew_after_ms,
				       struct sg_lease *out);

/*
 * The outcome of writing what next() gave: HTTP status (200/201 success,
 * 409 lost race or already exists, anything else or negative: failed),
 * the stored record (the response; NULL if none or unreadable) and the
 * local ms the request was SENT at, which is what our hold is counted from,
 * so we stop claiming the Lease no later than anyone else may take it.
 */
void sg_lease_elector_done(struct sg_lease_elector *e, enum sg_lease_op op, int status,
			   const struct sg_lease *stored, uint64_t sent_ms);

/* Whether identity holds the Lease at now: its last write succeeded less than duration ago. */
bool sg_lease_elector_held(const struct sg_lease_elector *e, uint64_t now);

/* The current holder by what was last seen at now: "" if none or expired. */
const char *sg_lease_elector_holder(const struct sg_lease_elector *e, uint64_t now);

/* ---- peers --------------------------------------------------------------------- */

struct sg_lease_peer {
	char name[SG_LEASE_NAME_SIZE];		/* the gateway (holderIdentity) */
	char rv[SG_LEASE_RV_SIZE];
	uint32_t duration_s;
	uint64_t seen_ms;			/* local ms when its Lease last changed */
	uint8_t released;			/* holder "": left on purpose */
	uint8_t mark;				/* seen in the current list */
};

struct sg_lease_peers {
	struct sg_lease_peer p[SG_LEASE_MAX_PEERS];
	uint32_t n;
	uint64_t dropped;			/* Leases beyond SG_LEASE_MAX_PEERS */
};

void sg_lease_peers_init(struct sg_lease_peers *ps);
/*
 * One full list: begin, see() each heartbeat Lease (those with the gateway
 * label; others are ignored), end. end() forgets gateways whose Lease was
 * not listed (deleted: dead at once).
 */
void sg_lease_peers_begin(struct sg_lease_peers *ps);
void sg_lease_peers_see(struct sg_lease_peers *ps, const struct sg_lease *l, uint64_t now);
void sg_lease_peers_end(struct sg_lease_peers *ps);
/* Whether peer p is live at now. */
bool sg_lease_peer_live(const struct sg_lease_peer *p, uint64_t now);
/*
 * The live gateways' names at now, sorted (strcmp), into names[0..max);
 * returns how many there are (may exceed max: only max are written).
 */
uint32_t sg_lease_peers_live(const struct sg_lease_peers *ps, uint64_t now,
			     const char **names, uint32_t max);
/* The earliest local ms after now at which a live peer expires; UINT64_MAX if none. */
uint64_t sg_lease_peers_next_expiry(const struct sg_lease_peers *ps, uint64_t now);

/* ---- rendezvous -------------------------------------------------------------- */

/*
 * The weight of gateway name for an address: SipHash-2-4 under the
 * 16-byte key "svcgw-rendezvous" (ASCII) of the bytes
 *   name, one 0x00, the family (4 or 6), the address (4 or 16 bytes,
 *   network order).
 * Fixed forever: gateways of different versions must agree.
 */
uint64_t sg_lease_hrw_weight(const char *name, uint8_t family, const uint8_t *addr);

/*
 * The owner of an address among names[0..n): the highest weight; equal
 * weights go to the name first in strcmp order. -1 if n is 0.
 */
int sg_lease_hrw_owner(const char *const *names, uint32_t n, uint8_t family,
		       const uint8_t *addr);

#endif /* SG_LEASE_H */
