/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One identity and one Lease: client-go's leaderelection rules
 * (k8s.io/client-go/tools/leaderelection, tryAcquireOrRenew), without its
 * clock or its HTTP. The caller reads, calls observe(), asks next() what to
 * write, writes it and reports done().
 */
#include <stdio.h>
#include <string.h>

#include "lease.h"

static void
copy_name(char *dst, const char *src)
{
	snprintf(dst, SG_LEASE_NAME_SIZE, "%s", src != NULL ? src : "");
}

void
sg_lease_elector_init(struct sg_lease_elector *e, const char *identity, const char *name,
		      const char *gateway, uint32_t duration_s)
{
	memset(e, 0, sizeof(*e));
	copy_name(e->identity, identity);
	copy_name(e->name, name);
	copy_name(e->gateway, gateway);
	e->duration_s = duration_s > 0 ? duration_s : 1;
}

void
sg_lease_elector_observe(struct sg_lease_elector *e, const struct sg_lease *l, uint64_t now)
{
	if (l == NULL) {
		if (e->exists || !e->known)
			e->seen_ms = now;
		e->exists = 0;
		memset(&e->seen, 0, sizeof(e->seen));
	} else {
		/* observedTime: only a change restarts the holder's clock. */
		if (!e->exists || strcmp(l->rv, e->seen.rv) != 0)
			e->seen_ms = now;
		e->seen = *l;
		e->exists = 1;
	}
	e->known = 1;
}

static uint64_t
seen_expiry(const struct sg_lease_elector *e)
{
	uint32_t d = e->seen.duration_s > 0 ? e->seen.duration_s : e->duration_s;

	return e->seen_ms + (uint64_t)d * 1000u;
}

static bool
ours(const struct sg_lease_elector *e)
{
	return strcmp(e->seen.holder, e->identity) == 0;
}

enum sg_lease_op
sg_lease_elector_next(struct sg_lease_elector *e, uint64_t now, int64_t wall_us,
		      uint32_t renew_after_ms, struct sg_lease *out)
{
	memset(out, 0, sizeof(*out));
	if (!e->known)
		return SG_LEASE_OP_NONE;
	memcpy(out->name, e->name, sizeof(out->name));
	memcpy(out->gateway, e->gateway, sizeof(out->gateway));
	memcpy(out->holder, e->identity, sizeof(out->holder));
	out->duration_s = e->duration_s;
	out->renew_us = wall_us;
	if (!e->exists) {
		out->acquire_us = wall_us;
		return SG_LEASE_OP_CREATE;
	}
	memcpy(out->rv, e->seen.rv, sizeof(out->rv));
	if (ours(e)) {
		/* Ours, maybe from before a restart: renew at once then. */
		if (e->renewed_ms != 0 && now - e->renewed_ms < renew_after_ms)
			return SG_LEASE_OP_NONE;
		out->acquire_us = e->seen.acquire_us != 0 ? e->seen.acquire_us : wall_us;
		out->transitions = e->seen.transitions;
		return SG_LEASE_OP_UPDATE;
	}
	if (e->seen.holder[0] != '\0' && now < seen_expiry(e))
		return SG_LEASE_OP_NONE;
	out->acquire_us = wall_us;
	out->transitions = e->seen.transitions + 1;
	return SG_LEASE_OP_UPDATE;
}

void
sg_lease_elector_done(struct sg_lease_elector *e, enum sg_lease_op op, int status,
		      const struct sg_lease *stored, uint64_t sent_ms)
{
	bool was_ours = e->exists && ours(e) && e->renewed_ms != 0;

	if (op == SG_LEASE_OP_NONE)
		return;
	if (status == 200 || status == 201) {
		if (was_ours)
			e->renewals++;
		else
			e->acquired++;
		e->renewed_ms = sent_ms;
		if (stored != NULL) {
			e->seen = *stored;
			e->exists = 1;
			e->seen_ms = sent_ms;
		} else {
			/* Without the response's resourceVersion the next update
			 * would conflict: read first. */
			e->known = 0;
		}
		return;
	}
	if (status == 409) {
		/* Someone wrote it since we read it: read again before anything. */
		e->conflicts++;
		e->known = 0;
		return;
	}
	if (status == 404 && op == SG_LEASE_OP_UPDATE) {
		e->failures++;
		e->known = 0;
		return;
	}
	e->failures++;
}

bool
sg_lease_elector_held(const struct sg_lease_elector *e, uint64_t now)
{
	return e->exists && ours(e) && e->renewed_ms != 0 &&
	       now < e->renewed_ms + (uint64_t)e->duration_s * 1000u;
}

const char *
sg_lease_elector_holder(const struct sg_lease_elector *e, uint64_t now)
{
	if (!e->exists || e->seen.holder[0] == '\0')
		return "";
	if (ours(e))
		return sg_lease_elector_held(e, now) ? e->identity : "";
	return now < seen_expiry(e) ? e->seen.holder : "";
}
