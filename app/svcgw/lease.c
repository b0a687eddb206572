/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lease thread: this gateway's heartbeat Lease (svcgw-<name>), the
 * shared leader Lease, and the list of every gateway's heartbeat, through
 * lib/lease's rules and lib/k8s's single requests. Each round (half the
 * renew interval, and at the moment a peer's Lease expires):
 *
 *   list the Leases of the namespace -> peers, both electors observe
 *   -> renew or take what the electors say (POST/PUT with resourceVersion)
 *   -> publish the membership: live gateways, whether we lead.
 *
 * The control thread takes the membership with app_lease_membership(),
 * which only copies under a mutex this thread holds for a copy: it never
 * waits for the network. A view older than the lease duration (the API
 * server unreachable) is not published: VIPs stay where they are rather
 * than every gateway, seeing the others' Leases age, claiming them all.
 * On a clean stop both Leases are released (holder ""), as client-go's
 * ReleaseOnCancel, so the others take over at their next round.
 *
 * Not here: what the membership means for VIPs (announce.c), the rules
 * (lib/lease).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_log.h>

#include "sg_common.h"
#include "k8s.h"
#include "lease.h"
#include "app.h"

struct app_lease {
	struct sg_k8s_call *call;
	char ns[SG_LEASE_NAME_SIZE];
	char name[SG_LEASE_NAME_SIZE];
	uint32_t duration_ms;
	uint32_t renew_ms;
	uint32_t timeout_ms;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	pthread_mutex_t lock;		/* pub, st; and the wake-up */
	pthread_cond_t wake;
	/* Thread's own. */
	struct sg_lease_elector hb;
	struct sg_lease_elector leader;
	struct sg_lease_peers peers;
	uint64_t listed_ms;		/* last successful list; 0 none */
	char list_path[900];
	/* Under lock. */
	struct app_membership pub;
	struct app_lease_status st;
};

/*
 * A name or namespace as a path segment. They are DNS names, so this
 * changes nothing today; it keeps a path from being bent by a name that
 * is not one. The buffers are sized for the worst case (3 bytes a byte).
 */
static const char *
escape(const char *s, char *buf, size_t size)
{
	const char *e = sg_k8s_escape(s, buf, size);

	return e != NULL ? e : "";
}

static int64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
app_lease_create(const struct sg_conf *c, struct app_lease **out, char *err, size_t errlen)
{
	const struct sg_conf_failover *f = &c->failover;
	struct sg_k8s_conf kc;
	struct app_lease *l;
	char why[512];
	char hb_name[SG_LEASE_NAME_SIZE], esc[3 * SG_LEASE_NAME_SIZE];

	*out = NULL;
	if (f->line == 0)
		return 0;
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(err, errlen, "svcgw: out of memory");
		return -ENOMEM;
	}
	sg_k8s_conf_init(&kc, c);
	kc.sa_dir = c->kubernetes.service_account;
	kc.log = app_k8s_log;	/* a token file that cannot be read again says so */
	l->call = sg_k8s_call_create(&kc, why, sizeof(why));
	if (l->call == NULL) {
		int rc = -errno;

		snprintf(err, errlen, "%s:%u: failover: %s", c->path, f->line, why);
		free(l);
		return rc;
	}
	snprintf(l->ns, sizeof(l->ns), "%s", f->namespace);
	snprintf(l->name, sizeof(l->name), "%s", f->name);
	l->duration_ms = f->lease_duration * 1000u;
	l->renew_ms = f->renew_interval_ms;
	/* A request that outlives the lease is worth nothing: give up before. */
	l->timeout_ms = l->duration_ms / 2;
	snprintf(hb_name, sizeof(hb_name), "svcgw-%s", f->name);
	sg_lease_elector_init(&l->hb, f->name, hb_name, f->name, f->lease_duration);
	sg_lease_elector_init(&l->leader, f->name, f->leader_lease, NULL, f->lease_duration);
	sg_lease_peers_init(&l->peers);
	snprintf(l->list_path, sizeof(l->list_path),
		 "/apis/coordination.k8s.io/v1/namespaces/%s/leases", escape(l->ns, esc, sizeof(esc)));
	pthread_mutex_init(&l->lock, NULL);
	{
		pthread_condattr_t ca;

		/*
		 * The wait is on the monotonic clock, as all lease timing is: on
		 * the default CLOCK_REALTIME, a wall-clock step back (NTP, an
		 * operator) would stall the heartbeat for as long as the step,
		 * and other gateways would take our VIPs.
		 */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&l->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	snprintf(l->st.name, sizeof(l->st.name), "%s", f->name);
	snprintf(l->st.ns, sizeof(l->st.ns), "%s", f->namespace);
	*out = l;
	return 0;
}

static void
set_error(struct app_lease *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_error(struct app_lease *l, const char *fmt, ...)
{
	char msg[sizeof(l->st.last_error)];
	va_list ap;
	bool same;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&l->lock);
	same = strcmp(msg, l->st.last_error) == 0;
	snprintf(l->st.last_error, sizeof(l->st.last_error), "%s", msg);
	l->st.errors++;
	pthread_mutex_unlock(&l->lock);
	/* A failure repeats every round: log it when it changes. */
	if (!same)
		rte_log(RTE_LOG_WARNING, sg_logtype_svcgw, "svcgw: lease: %s\n", msg);
}

/* The items of a list into the peers and both electors. */
static int
apply_list(struct app_lease *l, const char *body, uint64_t sent)
{
	cJSON *root = cJSON_Parse(body);
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items"), *it;
	const struct sg_lease *hb = NULL, *leader = NULL;
	struct sg_lease *all;
	uint32_t n = 0;

	if (!cJSON_IsArray(items) && !(cJSON_IsNull(items) && root != NULL)) {
		cJSON_Delete(root);
		return -EBADMSG;
	}
	all = calloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*all));
	if (all == NULL) {
		cJSON_Delete(root);
		return -ENOMEM;
	}
	sg_lease_peers_begin(&l->peers);
	cJSON_ArrayForEach(it, items) {
		if (sg_lease_decode(it, &all[n]) != 0)
			continue;
		sg_lease_peers_see(&l->peers, &all[n], sent);
		if (strcmp(all[n].name, l->hb.name) == 0)
			hb = &all[n];
		else if (strcmp(all[n].name, l->leader.name) == 0)
			leader = &all[n];
		n++;
	}
	sg_lease_peers_end(&l->peers);
	sg_lease_elector_observe(&l->hb, hb, sent);
	sg_lease_elector_observe(&l->leader, leader, sent);
	free(all);
	cJSON_Delete(root);
	return 0;
}

/* One write the elector asked for; its outcome back to it. */
static void
write_lease(struct app_lease *l, struct sg_lease_elector *e, enum sg_lease_op op,
	    const struct sg_lease *rec)
{
	char path[1800], err[300], esc[3 * SG_LEASE_NAME_SIZE], *body, *resp = NULL;
	struct sg_lease stored;
	uint64_t sent = sg_mono_ms();
	int status;

	body = sg_lease_encode(rec, l->ns);
	if (body == NULL)
		return;
	if (op == SG_LEASE_OP_CREATE)
		snprintf(path, sizeof(path), "%s", l->list_path);
	else
		snprintf(path, sizeof(path), "%s/%s", l->list_path,
			 escape(rec->name, esc, sizeof(esc)));
	status = sg_k8s_call(l->call, op == SG_LEASE_OP_CREATE ? "POST" : "PUT", path, body,
			     l->timeout_ms, &resp, err, sizeof(err));
	free(body);
	if (status == 200 || status == 201) {
		cJSON *j = cJSON_Parse(resp);
		bool ok = j != NULL && sg_lease_decode(j, &stored) == 0;

		cJSON_Delete(j);
		sg_lease_elector_done(e, op, status, ok ? &stored : NULL, sent);
	} else {
		sg_lease_elector_done(e, op, status, NULL, sent);
		if (status < 0)
			set_error(l, "%s", err);
		else if (status != 409)
			set_error(l, "%s %s: HTTP %d", op == SG_LEASE_OP_CREATE ? "POST" : "PUT",
				  path, status);
	}
	free(resp);
}

static void
publish(struct app_lease *l, uint64_t now)
{
	const char *names[SG_LEASE_MAX_PEERS];
	bool me_held = sg_lease_elector_held(&l->hb, now);
	struct app_membership m = { .valid = true };
	uint32_t n = sg_lease_peers_live(&l->peers, now, names, SG_LEASE_MAX_PEERS);
	bool me_listed = false;

	n = n < SG_LEASE_MAX_PEERS ? n : SG_LEASE_MAX_PEERS;
	/* We are live exactly while we hold our heartbeat, whatever the list said. */
	for (uint32_t i = 0; i < n; i++) {
		if (strcmp(names[i], l->name) == 0) {
			me_listed = true;
			if (!me_held)
				continue;
		}
		snprintf(m.live[m.n_live++], SG_LEASE_NAME_SIZE, "%s", names[i]);
	}
	if (me_held && !me_listed && m.n_live < SG_LEASE_MAX_PEERS)
		snprintf(m.live[m.n_live++], SG_LEASE_NAME_SIZE, "%s", l->name);
	m.me_live = me_held;
	m.leader = me_held && sg_lease_elector_held(&l->leader, now);
	pthread_mutex_lock(&l->lock);
	if (m.n_live != l->pub.n_live || m.leader != l->pub.leader ||
	    m.me_live != l->pub.me_live || !l->pub.valid ||
	    memcmp(m.live, l->pub.live, sizeof(m.live[0]) * m.n_live) != 0) {
		m.generation = l->pub.generation + 1;
		l->pub = m;
	}
	pthread_mutex_unlock(&l->lock);
}

static void
status_copy(struct app_lease *l, uint64_t now)
{
	pthread_mutex_lock(&l->lock);
	l->st.hb = l->hb;
	l->st.leader = l->leader;
	l->st.peers = l->peers;
	l->st.now_ms = now;
	l->st.listed_ms = l->listed_ms;
	snprintf(l->st.leader_holder, sizeof(l->st.leader_holder), "%s",
		 sg_lease_elector_holder(&l->leader, now));
	pthread_mutex_unlock(&l->lock);
}

static void
round_once(struct app_lease *l)
{
	uint64_t sent = sg_mono_ms();
	char err[300], *resp = NULL;
	struct sg_lease rec;
	enum sg_lease_op op;
	int status;

	status = sg_k8s_call(l->call, "GET", l->list_path, NULL, l->timeout_ms, &resp, err,
			     sizeof(err));
	if (status == 200 && apply_list(l, resp, sent) == 0)
		l->listed_ms = sent;
	else if (status < 0)
		set_error(l, "%s", err);
	else
		set_error(l, "GET %s: HTTP %d", l->list_path, status);
	free(resp);
	/* Heartbeat first: a leader that is not live would lead nothing. */
	op = sg_lease_elector_next(&l->hb, sg_mono_ms(), wall_us(), l->renew_ms * 3 / 4, &rec);
	if (op != SG_LEASE_OP_NONE)
		write_lease(l, &l->hb, op, &rec);
	if (sg_lease_elector_held(&l->hb, sg_mono_ms())) {
		op = sg_lease_elector_next(&l->leader, sg_mono_ms(), wall_us(), l->renew_ms * 3 / 4,
					   &rec);
		if (op != SG_LEASE_OP_NONE)
			write_lease(l, &l->leader, op, &rec);
	}
}

static void *
lease_main(void *arg)
{
	struct app_lease *l = arg;
	uint32_t poll = l->renew_ms / 2 > 25 ? l->renew_ms / 2 : 25;
	uint64_t next_round = 0;

	while (!atomic_load(&l->stop)) {
		uint64_t now = sg_mono_ms(), wake, expiry;
		struct timespec ts;

		if (now >= next_round) {
			round_once(l);
			next_round = now + poll;
			now = sg_mono_ms();
		}
		/* A stale view is not news: keep the VIPs where they are. */
		if (l->listed_ms != 0 && now - l->listed_ms < l->duration_ms)
			publish(l, now);
		status_copy(l, now);
		/* Wake at the next round, or sooner when a peer's Lease runs out. */
		expiry = sg_lease_peers_next_expiry(&l->peers, now);
		wake = next_round < expiry ? next_round : expiry;
		if (l->hb.renewed_ms != 0 && l->hb.renewed_ms + l->duration_ms > now &&
		    l->hb.renewed_ms + l->duration_ms < wake)
			wake = l->hb.renewed_ms + l->duration_ms;
		clock_gettime(CLOCK_MONOTONIC, &ts);	/* the clock of l->wake */
		wake = wake > now ? wake - now : 0;
		ts.tv_sec += (time_t)(wake / 1000);
		ts.tv_nsec += (long)(wake % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&l->lock);
		if (!atomic_load(&l->stop))
			pthread_cond_timedwait(&l->wake, &l->lock, &ts);
		pthread_mutex_unlock(&l->lock);
	}
	return NULL;
}

int
app_lease_start(struct sg_app *a)
{
	struct app_lease *l = a->lease;
	int rc;

	if (l == NULL)
		return 0;
	rte_log(RTE_LOG_NOTICE, sg_logtype_svcgw,
		"svcgw: failover: gateway %s, Leases in namespace %s on %s\n", l->name, l->ns,
		sg_k8s_call_server(l->call));
	rc = pthread_create(&l->thread, NULL, lease_main, l);
	if (rc != 0)
		return -rc;
	l->started = true;
	return 0;
}

/* Let the others take over at once rather than after the lease runs out. */
static void
release(struct app_lease *l, struct sg_lease_elector *e)
{
	struct sg_lease rec;
	char path[1800], err[300], esc[3 * SG_LEASE_NAME_SIZE], *body, *resp = NULL;
	uint64_t now = sg_mono_ms();

	if (!sg_lease_elector_held(e, now))
		return;
	rec = e->seen;
	rec.holder[0] = '\0';
	rec.renew_us = wall_us();
	body = sg_lease_encode(&rec, l->ns);
	if (body == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", l->list_path, escape(rec.name, esc, sizeof(esc)));
	if (sg_k8s_call(l->call, "PUT", path, body, 1000, &resp, err, sizeof(err)) == 200)
		rte_log(RTE_LOG_NOTICE, sg_logtype_svcgw, "svcgw: failover: released Lease %s\n",
			rec.name);
	free(body);
	free(resp);
}

void
app_lease_stop(struct app_lease *l)
{
	if (l == NULL || !l->started)
		return;
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->stop, true);
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	l->started = false;
	release(l, &l->leader);
	release(l, &l->hb);
}

void
app_lease_free(struct app_lease *l)
{
	if (l == NULL)
		return;
	app_lease_stop(l);
	sg_k8s_call_free(l->call);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->wake);
	free(l);
}

bool
app_lease_membership(struct app_lease *l, uint64_t *gen, struct app_membership *out)
{
	bool news;

	pthread_mutex_lock(&l->lock);
	news = l->pub.generation != *gen;
	if (news) {
		*out = l->pub;
		*gen = l->pub.generation;
	}
	pthread_mutex_unlock(&l->lock);
	return news;
}

void
app_lease_status(struct app_lease *l, struct app_lease_status *st)
{
	pthread_mutex_lock(&l->lock);
	*st = l->st;
	pthread_mutex_unlock(&l->lock);
}
