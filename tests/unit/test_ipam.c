/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/ipam: invalid arguments first, then pool ranges as the
 * config writes them (CIDRs with and without their network and broadcast
 * addresses, ranges, single addresses), the order of pools (priority,
 * auto_assign, namespaces, a named pool), requested addresses, sharing,
 * dual-stack policies, exhaustion and release, rebuilding from status and
 * pool edits that must not move anybody.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sg_common.h"
#include "conf.h"
#include "ipam.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* A pool from the config's spelling: "a/b,c-d" comma-separated. */
static void
pool(struct sg_conf_pool *p, const char *name, const char *addrs, unsigned int auto_assign,
     unsigned int priority, unsigned int all)
{
	char buf[512], why[200], *save = NULL;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(buf, sizeof(buf), "%s", addrs);
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (sg_conf_range_parse(t, all, &p->ranges[p->n_addresses], why, sizeof(why)) < 0)
			fail_msg("%s: %s", t, why);
		p->n_addresses++;
	}
	p->auto_assign = (uint8_t)auto_assign;
	p->all_addresses = (uint8_t)all;
	p->priority = priority;
}

static struct sg_conf_addr
ip(const char *s)
{
	struct sg_conf_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(s, ':') != NULL) {
		a.family = SG_CONF_V6;
		a.len = 128;
		assert_int_equal(inet_pton(AF_INET6, s, a.addr), 1);
	} else {
		a.family = SG_CONF_V4;
		a.len = 32;
		assert_int_equal(inet_pton(AF_INET, s, a.addr), 1);
	}
	return a;
}

static const char *
str(const struct sg_conf_addr *a)
{
	static char buf[4][SG_CONF_ADDR_STRLEN];
	static unsigned int i;

	i = (i + 1) % 4;
	return sg_conf_ip_str(a->family, a->addr, buf[i], sizeof(buf[i]));
}

static const struct sg_ipam_port http[] = { { IPPROTO_TCP, 80 } };
static const struct sg_ipam_port dns[] = { { IPPROTO_UDP, 53 } };
static const struct sg_ipam_port http_dns[] = { { IPPROTO_TCP, 80 }, { IPPROTO_UDP, 53 } };

static struct sg_ipam_req
req(const char *key)
{
	static char ns[4][64];
	static unsigned int i;
	struct sg_ipam_req r = {
		.key = key, .families = SG_CONF_FAM_V4, .policy = SG_IPAM_POLICY_SINGLE,
		.ports = http, .n_ports = 1,
	};

	i = (i + 1) % 4;
	snprintf(ns[i], sizeof(ns[i]), "%.*s", (int)(strchr(key, '/') - key), key);
	r.namespace = ns[i];
	return r;
}

/* Assign and expect success: the addresses, space-separated. */
static const char *
assign_ok(struct sg_ipam *m, const struct sg_ipam_req *r)
{
	static char out[128];
	struct sg_ipam_alloc a;
	char why[200];
	int rc = sg_ipam_assign(m, r, &a, why, sizeof(why));

	if (rc != 0)
		fail_msg("%s: %d %s", r->key, rc, why);
	out[0] = '\0';
	for (uint32_t i = 0; i < a.n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? " " : "",
			 str(&a.addrs[i]));
	return out;
}

static int
assign_err(struct sg_ipam *m, const struct sg_ipam_req *r, char *why, size_t whylen)
{
	struct sg_ipam_alloc a;
	int rc = sg_ipam_assign(m, r, &a, why, whylen);

	assert_true(rc < 0);
	return rc;
}

/* ---- arguments ---------------------------------------------------------------------------- */

static void
test_args(void **state)
{
	struct sg_ipam_req r = req("a/x");
	struct sg_ipam_alloc a;
	struct sg_ipam *m;
	char why[100];

	(void)state;
	sg_ipam_free(NULL);
	errno = 0;
	assert_null(sg_ipam_create(NULL, 1));
	assert_int_equal(errno, EINVAL);
	m = sg_ipam_create(NULL, 0);
	assert_non_null(m);
	assert_int_equal(sg_ipam_assign(NULL, &r, &a, why, sizeof(why)), -EINVAL);
	assert_int_equal(sg_ipam_assign(m, NULL, &a, why, sizeof(why)), -EINVAL);
	assert_int_equal(sg_ipam_claim(m, NULL, NULL, 0), -EINVAL);
	assert_int_equal(sg_ipam_set_pools(NULL, NULL, 0), -EINVAL);
	assert_int_equal(sg_ipam_set_pools(m, NULL, 1), -EINVAL);
	assert_int_equal(sg_ipam_release(m, "a/x"), 0);
	assert_int_equal(sg_ipam_get(m, "a/x", &a), -ENOENT);
	assert_null(sg_ipam_holder(m, NULL));
	/* No pool at all: exhausted, and nothing is left held. */
	assert_int_equal(sg_ipam_assign(m, &r, &a, why, sizeof(why)), -ENOSPC);
	assert_string_equal(why, "no free IPv4 address in the pools a/x may use");
	assert_int_equal(sg_ipam_services(m), 0);
	/* A NULL why is allowed. */
	assert_int_equal(sg_ipam_assign(m, &r, NULL, NULL, 0), -ENOSPC);
	sg_ipam_free(m);
}

/* ---- ranges --------------------------------------------------------------------------------- */

struct range_row {
	const char *text;
	unsigned int all;
	const char *first, *last;	/* NULL first: refused */
};

static const struct range_row range_rows[] = {
	{ "192.0.2.0/28", 0, "192.0.2.1", "192.0.2.14" },
	{ "192.0.2.0/28", 1, "192.0.2.0", "192.0.2.15" },
	{ "192.0.2.0/30", 0, "192.0.2.1", "192.0.2.2" },
	{ "192.0.2.0/31", 0, "192.0.2.0", "192.0.2.1" },	/* RFC 3021: both usable */
	{ "192.0.2.7/32", 0, "192.0.2.7", "192.0.2.7" },
	{ "192.0.2.7", 0, "192.0.2.7", "192.0.2.7" },
	{ "192.0.2.10-192.0.2.20", 0, "192.0.2.10", "192.0.2.20" },	/* a range is taken as written */
	{ "2001:db8:1::/120", 0, "2001:db8:1::1", "2001:db8:1::ff" },	/* no broadcast in IPv6 */
	{ "2001:db8:1::/120", 1, "2001:db8:1::", "2001:db8:1::ff" },
	{ "2001:db8:1::/127", 0, "2001:db8:1::", "2001:db8:1::1" },
	{ "2001:db8::a-2001:db8::1:0", 0, "2001:db8::a", "2001:db8::1:0" },
	{ "192.0.2.1/28", 0, NULL, NULL },
	{ "192.0.2.20-192.0.2.10", 0, NULL, NULL },
	{ "192.0.2.1-2001:db8::1", 0, NULL, NULL },
	{ "192.0.2.0/33", 0, NULL, NULL },
	{ "pool", 0, NULL, NULL },
	{ "", 0, NULL, NULL },
};

static void
test_ranges(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(range_rows); i++) {
		const struct range_row *w = &range_rows[i];
		struct sg_conf_addr_range r;
		char why[200];
		int rc = sg_conf_range_parse(w->text, w->all, &r, why, sizeof(why));

		if (w->first == NULL) {
			if (rc == 0)
				fail_msg("%s: accepted", w->text);
			assert_true(why[0] != '\0');
			continue;
		}
		if (rc != 0)
			fail_msg("%s: %s", w->text, why);
		assert_string_equal(str(&r.first), w->first);
		assert_string_equal(str(&r.last), w->last);
	}
}

/* Network and broadcast addresses of a CIDR are never handed out unless all_addresses. */
static void
test_skip_net_bcast(void **state)
{
	struct sg_conf_pool p;
	struct sg_ipam *m;
	char key[32], why[200];
	struct sg_ipam_req r;

	(void)state;
	pool(&p, "p", "192.0.2.0/30", 1, 0, 0);
	m = sg_ipam_create(&p, 1);
	r = req("a/s1");
	assert_string_equal(assign_ok(m, &r), "192.0.2.1");
	r = req("a/s2");
	assert_string_equal(assign_ok(m, &r), "192.0.2.2");
	r = req("a/s3");
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -ENOSPC);
	sg_ipam_free(m);

	pool(&p, "p", "192.0.2.0/30", 1, 0, 1);
	m = sg_ipam_create(&p, 1);
	for (unsigned int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "a/s%u", i);
		r = req(key);
		assign_ok(m, &r);
	}
	assert_string_equal(sg_ipam_holder(m, &(struct sg_conf_addr){ 0 }) ? "x" : "", "");
	{
		struct sg_conf_addr net = ip("192.0.2.0"), bc = ip("192.0.2.3");

		assert_string_equal(sg_ipam_holder(m, &net), "a/s0");
		assert_string_equal(sg_ipam_holder(m, &bc), "a/s3");
	}
	sg_ipam_free(m);
}

/* ---- which pool ----------------------------------------------------------------------------- */

static void
test_priority_and_auto_assign(void **state)
{
	struct sg_conf_pool p[3];
	struct sg_ipam_req r;
	struct sg_ipam *m;
	struct sg_ipam_alloc a;
	char why[200];

	(void)state;
	/* Listed out of order: "low" (priority 50) comes before "high" (200). */
	pool(&p[0], "high", "192.0.2.64/30", 1, 200, 0);
	pool(&p[1], "low", "192.0.2.10-192.0.2.11", 1, 50, 0);
	pool(&p[2], "manual", "192.0.2.128/30", 0, 0, 0);
	m = sg_ipam_create(p, 3);
	r = req("a/s1");
	assert_string_equal(assign_ok(m, &r), "192.0.2.10");
	assert_int_equal(sg_ipam_get(m, "a/s1", &a), 0);
	assert_string_equal(a.pool[0], "low");
	r = req("a/s2");
	assert_string_equal(assign_ok(m, &r), "192.0.2.11");
	/* low is full: the next pool by priority; manual (auto_assign off) never. */
	r = req("a/s3");
	assert_string_equal(assign_ok(m, &r), "192.0.2.65");
	r = req("a/s4");
	assert_string_equal(assign_ok(m, &r), "192.0.2.66");
	r = req("a/s5");
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -ENOSPC);
	/* Named, manual gives out addresses; an unknown name is an error. */
	r.pool = "manual";
	assert_string_equal(assign_ok(m, &r), "192.0.2.129");
	r = req("a/s6");
	r.pool = "nope";
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "no address pool is named nope");
	/* An address of manual asked for by value: auto_assign does not matter. */
	r = req("a/s7");
	r.want[0] = ip("192.0.2.130");
	r.n_want = 1;
	assert_string_equal(assign_ok(m, &r), "192.0.2.130");
	assert_int_equal(sg_ipam_used(m), 6);
	sg_ipam_free(m);
}

static void
test_namespaces(void **state)
{
	char *dev[] = { "dev" };
	struct sg_conf_pool p[2];
	struct sg_ipam_req r;
	struct sg_ipam *m;
	char why[200];

	(void)state;
	pool(&p[0], "dev", "192.0.2.8/29", 1, 0, 0);
	p[0].namespaces = dev;
	p[0].n_namespaces = 1;
	pool(&p[1], "all", "192.0.2.16/29", 1, 10, 0);
	m = sg_ipam_create(p, 2);
	r = req("dev/a");
	assert_string_equal(assign_ok(m, &r), "192.0.2.9");
	r = req("prod/a");
	assert_string_equal(assign_ok(m, &r), "192.0.2.17");
	/* Asking for dev's address, or pool, from another namespace. */
	r = req("prod/b");
	r.want[0] = ip("192.0.2.10");
	r.n_want = 1;
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "192.0.2.10 is in pool dev, which does not serve namespace prod");
	r = req("prod/b");
	r.pool = "dev";
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -ENOSPC);
	sg_ipam_free(m);
}

/* ---- requests ------------------------------------------------------------------------------- */

static void
test_requests(void **state)
{
	struct sg_conf_pool p;
	struct sg_ipam_req r;
	struct sg_ipam *m;
	char why[200];

	(void)state;
	pool(&p, "p", "192.0.2.0/28,2001:db8::/124", 1, 0, 0);
	m = sg_ipam_create(&p, 1);
	r = req("a/x");
	r.want[0] = ip("192.0.2.5");
	r.n_want = 1;
	assert_string_equal(assign_ok(m, &r), "192.0.2.5");
	/* Taken: another service asking for it (no sharing key) is refused. */
	r = req("a/y");
	r.want[0] = ip("192.0.2.5");
	r.n_want = 1;
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -EADDRINUSE);
	assert_string_equal(why, "192.0.2.5 is already used by a/x");
	assert_int_equal(sg_ipam_get(m, "a/y", NULL), -ENOENT);
	/* Outside every pool. */
	r.want[0] = ip("198.51.100.7");
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "198.51.100.7 is in no address pool");
	/* A family the service does not have. */
	r.want[0] = ip("2001:db8::3");
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "requested address 2001:db8::3: the service does not have "
			    "that IP family");
	/* Two addresses of one family. */
	r.want[0] = ip("192.0.2.6");
	r.want[1] = ip("192.0.2.7");
	r.n_want = 2;
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -EINVAL);
	/* One of each, dual stack. */
	r.families = SG_CONF_FAM_V4 | SG_CONF_FAM_V6;
	r.policy = SG_IPAM_POLICY_REQUIRE_DUAL;
	r.want[0] = ip("2001:db8::3");
	r.want[1] = ip("192.0.2.6");
	assert_string_equal(assign_ok(m, &r), "192.0.2.6 2001:db8::3");
	/* The request changes: the service moves to the new address, the old one is free. */
	r = req("a/x");
	r.want[0] = ip("192.0.2.9");
	r.n_want = 1;
	assert_string_equal(assign_ok(m, &r), "192.0.2.9");
	assert_null(sg_ipam_holder(m, &(struct sg_conf_addr){ .family = SG_CONF_V4,
							       .addr = { 192, 0, 2, 5 } }));
	/* The request goes away: the service keeps what it has. */
	r = req("a/x");
	assert_string_equal(assign_ok(m, &r), "192.0.2.9");
	/*
	 * A new request that cannot be met (the address is another's): the
	 * service keeps what it held, though that is not what it asks for now,
	 * and nothing was given back for others to retry on.
	 */
	r = req("a/z");
	r.want[0] = ip("192.0.2.5");
	r.n_want = 1;
	assert_string_equal(assign_ok(m, &r), "192.0.2.5");
	{
		uint64_t releases = sg_ipam_releases(m);
		struct sg_ipam_alloc a;

		r = req("a/x");
		r.want[0] = ip("192.0.2.5");
		r.n_want = 1;
		assert_int_equal(sg_ipam_assign(m, &r, &a, why, sizeof(why)), -EADDRINUSE);
		assert_string_equal(why, "192.0.2.5 is already used by a/z");
		assert_int_equal(a.n, 1);
		assert_string_equal(str(&a.addrs[0]), "192.0.2.9");
		assert_string_equal(sg_ipam_holder(m, &a.addrs[0]), "a/x");
		assert_int_equal(sg_ipam_get(m, "a/x", &a), 0);
		assert_string_equal(str(&a.addrs[0]), "192.0.2.9");
		assert_int_equal(sg_ipam_releases(m), releases);
	}
	/* Once it can be met, the old address goes. */
	sg_ipam_release(m, "a/z");
	assert_string_equal(assign_ok(m, &r), "192.0.2.5");
	assert_null(sg_ipam_holder(m, &(struct sg_conf_addr){ .family = SG_CONF_V4,
							       .addr = { 192, 0, 2, 9 } }));
	sg_ipam_free(m);
}

/* ---- sharing -------------------------------------------------------------------------------- */

static void
test_sharing(void **state)
{
	struct sg_conf_pool p;
	struct sg_ipam_req r;
	struct sg_ipam *m;
	char why[200];

	(void)state;
	pool(&p, "p", "192.0.2.0/29", 1, 0, 0);
	m = sg_ipam_create(&p, 1);
	r = req("a/web");
	r.share = "k";
	assert_string_equal(assign_ok(m, &r), "192.0.2.1");
	/* Same key, other ports: the same address. */
	r = req("a/dns");
	r.share = "k";
	r.ports = dns;
	assert_string_equal(assign_ok(m, &r), "192.0.2.1");
	/* Same key, a port in common: another address. */
	r = req("a/web2");
	r.share = "k";
	assert_string_equal(assign_ok(m, &r), "192.0.2.2");
	/* Another key, or none, never shares. */
	r = req("a/other");
	r.share = "j";
	r.ports = dns;
	assert_string_equal(assign_ok(m, &r), "192.0.2.3");
	r = req("a/plain");
	r.ports = dns;
	r.want[0] = ip("192.0.2.1");
	r.n_want = 1;
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -EADDRINUSE);
	/* Asked for by value with the key and disjoint ports: shared. */
	r.share = "k";
	r.ports = dns;
	r.want[0] = ip("192.0.2.2");
	assert_string_equal(assign_ok(m, &r), "192.0.2.2");
	/* A port added that overlaps a sharer: the address is not valid any more, it moves. */
	r = req("a/dns");
	r.share = "k";
	r.ports = http_dns;
	assert_string_equal(assign_ok(m, &r), "192.0.2.4");
	/* The shared address stays while one user is left. */
	assert_int_equal(sg_ipam_release(m, "a/web"), 1);
	assert_null(sg_ipam_holder(m, &(struct sg_conf_addr){ .family = SG_CONF_V4,
							       .addr = { 192, 0, 2, 1 } }));
	assert_int_equal(sg_ipam_release(m, "a/web2"), 1);
	assert_string_equal(sg_ipam_holder(m, &(struct sg_conf_addr){ .family = SG_CONF_V4,
								       .addr = { 192, 0, 2, 2 } }),
			    "a/plain");
	sg_ipam_free(m);
}

/* ---- dual stack ----------------------------------------------------------------------------- */

static void
test_dual_stack(void **state)
{
	struct sg_conf_pool p[2];
	struct sg_ipam_req r;
	struct sg_ipam *m;
	char why[200];

	(void)state;
	pool(&p[0], "v4", "192.0.2.1-192.0.2.2", 1, 0, 0);
	pool(&p[1], "v6", "2001:db8::1-2001:db8::2", 1, 0, 0);
	m = sg_ipam_create(p, 2);
	/* SingleStack IPv6. */
	r = req("a/six");
	r.families = SG_CONF_FAM_V6;
	assert_string_equal(assign_ok(m, &r), "2001:db8::1");
	/* SingleStack on a dual-stack service list takes IPv4 only. */
	r = req("a/single");
	r.families = SG_CONF_FAM_V4 | SG_CONF_FAM_V6;
	assert_string_equal(assign_ok(m, &r), "192.0.2.1");
	/* RequireDualStack: both. */
	r = req("a/req");
	r.families = SG_CONF_FAM_V4 | SG_CONF_FAM_V6;
	r.policy = SG_IPAM_POLICY_REQUIRE_DUAL;
	assert_string_equal(assign_ok(m, &r), "192.0.2.2 2001:db8::2");
	/* IPv6 is now full. Require: nothing at all is taken. */
	r = req("a/req2");
	r.families = SG_CONF_FAM_V4 | SG_CONF_FAM_V6;
	r.policy = SG_IPAM_POLICY_REQUIRE_DUAL;
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -ENOSPC);
	assert_int_equal(sg_ipam_get(m, "a/req2", NULL), -ENOENT);
	/* Prefer: content with what there is... once IPv4 has room. */
	assert_int_equal(sg_ipam_release(m, "a/single"), 1);
	r.policy = SG_IPAM_POLICY_PREFER_DUAL;
	assert_string_equal(assign_ok(m, &r), "192.0.2.1");
	/* ...and it gets its IPv6 address once one is free. */
	assert_int_equal(sg_ipam_release(m, "a/six"), 1);
	assert_string_equal(assign_ok(m, &r), "192.0.2.1 2001:db8::1");
	/* Down to SingleStack: the IPv6 address goes, IPv4 stays. */
	r.policy = SG_IPAM_POLICY_SINGLE;
	assert_string_equal(assign_ok(m, &r), "192.0.2.1");
	assert_null(sg_ipam_holder(m, &p[1].ranges[0].first));
	/* Prefer with neither family free fails. */
	r = req("a/none");
	r.families = SG_CONF_FAM_V4 | SG_CONF_FAM_V6;
	r.policy = SG_IPAM_POLICY_PREFER_DUAL;
	assert_int_equal(sg_ipam_release(m, "a/req"), 2);
	assert_string_equal(assign_ok(m, &r), "192.0.2.2 2001:db8::1");
	r = req("a/none2");
	r.families = SG_CONF_FAM_V4;
	r.policy = SG_IPAM_POLICY_PREFER_DUAL;
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -ENOSPC);
	assert_string_equal(why, "no free IPv4 address in the pools a/none2 may use");
	sg_ipam_free(m);
}

/* ---- exhaustion and release ---------------------------------------------------------------- */

static void
test_exhaustion(void **state)
{
	struct sg_conf_pool p;
	struct sg_ipam_req r;
	struct sg_ipam *m;
	uint64_t rel;
	char why[200], key[32];

	(void)state;
	pool(&p, "p", "192.0.2.0/28", 1, 0, 0);
	m = sg_ipam_create(&p, 1);
	for (unsigned int i = 1; i <= 14; i++) {
		char want[20];

		snprintf(key, sizeof(key), "a/s%u", i);
		snprintf(want, sizeof(want), "192.0.2.%u", i);
		r = req(key);
		assert_string_equal(assign_ok(m, &r), want);
	}
	rel = sg_ipam_releases(m);
	r = req("a/late");
	assert_int_equal(assign_err(m, &r, why, sizeof(why)), -ENOSPC);
	/* A failure gives nothing back: nobody should wake up for it. */
	assert_int_equal(sg_ipam_releases(m), rel);
	assert_int_equal(sg_ipam_release(m, "a/s7"), 1);
	assert_true(sg_ipam_releases(m) > rel);
	assert_string_equal(assign_ok(m, &r), "192.0.2.7");
	assert_int_equal(sg_ipam_used(m), 14);
	assert_int_equal(sg_ipam_services(m), 14);
	sg_ipam_free(m);
}

/* A search in a huge range costs what is held, not the size of the range. */
static void
test_large_range(void **state)
{
	struct sg_conf_pool p;
	struct sg_ipam_req r;
	struct sg_ipam *m;
	char key[32];

	(void)state;
	pool(&p, "p", "2001:db8::/64", 1, 0, 0);
	m = sg_ipam_create(&p, 1);
	for (unsigned int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "a/s%u", i);
		r = req(key);
		r.families = SG_CONF_FAM_V6;
		assign_ok(m, &r);
	}
	assert_string_equal(assign_ok(m, &r), "2001:db8::7d0");
	sg_ipam_free(m);
}

/* ---- rebuild and pool edits ----------------------------------------------------------------- */

static void
test_claim(void **state)
{
	struct sg_conf_pool p;
	struct sg_conf_addr st[3];
	struct sg_ipam_req r;
	struct sg_ipam *m;

	(void)state;
	pool(&p, "p", "192.0.2.0/28,2001:db8::/124", 1, 0, 0);
	m = sg_ipam_create(&p, 1);
	/* Statuses read at start: claimed as they are, not the lowest free. */
	r = req("a/x");
	st[0] = ip("192.0.2.9");
	assert_int_equal(sg_ipam_claim(m, &r, st, 1), 1);
	r = req("a/y");
	st[0] = ip("192.0.2.9");	/* the same address, no sharing: refused */
	assert_int_equal(sg_ipam_claim(m, &r, st, 1), 0);
	assert_int_equal(sg_ipam_get(m, "a/y", NULL), -ENOENT);
	st[0] = ip("198.51.100.1");	/* outside the pools */
	assert_int_equal(sg_ipam_claim(m, &r, st, 1), 0);
	/* Then the allocation round: x keeps 9, y takes the lowest free. */
	r = req("a/x");
	assert_string_equal(assign_ok(m, &r), "192.0.2.9");
	r = req("a/y");
	assert_string_equal(assign_ok(m, &r), "192.0.2.1");
	/* A dual-stack status; a second address of one family is ignored. */
	r = req("a/z");
	r.families = SG_CONF_FAM_V4 | SG_CONF_FAM_V6;
	r.policy = SG_IPAM_POLICY_REQUIRE_DUAL;
	st[0] = ip("2001:db8::5");
	st[1] = ip("192.0.2.4");
	st[2] = ip("192.0.2.5");
	assert_int_equal(sg_ipam_claim(m, &r, st, 3), 2);
	assert_string_equal(assign_ok(m, &r), "192.0.2.4 2001:db8::5");
	/* A claim follows the status: another leader moved z. */
	st[0] = ip("192.0.2.6");
	assert_int_equal(sg_ipam_claim(m, &r, st, 1), 1);
	assert_string_equal(sg_ipam_holder(m, &st[0]), "a/z");
	assert_null(sg_ipam_holder(m, &st[1]));
	/* An empty status: nothing held. */
	assert_int_equal(sg_ipam_claim(m, &r, NULL, 0), 0);
	assert_int_equal(sg_ipam_get(m, "a/z", NULL), -ENOENT);
	sg_ipam_free(m);
}

static void
test_pool_edit(void **state)
{
	struct sg_conf_pool p[2];
	struct sg_ipam_alloc a;
	struct sg_ipam_req r;
	struct sg_ipam *m;
	char key[32];

	(void)state;
	pool(&p[0], "p", "192.0.2.0/28", 1, 0, 0);
	m = sg_ipam_create(p, 1);
	for (unsigned int i = 1; i <= 6; i++) {
		snprintf(key, sizeof(key), "a/s%u", i);
		r = req(key);
		assign_ok(m, &r);
	}
	/* Grown, reordered, and with a new pool of better priority in front: nobody moves. */
	pool(&p[0], "first", "192.0.2.64/28", 1, 0, 0);
	pool(&p[1], "p", "192.0.2.4-192.0.2.30", 1, 10, 0);
	/* What the caller kept names its pool after the pools are replaced (freed). */
	assert_int_equal(sg_ipam_get(m, "a/s4", &a), 0);
	assert_int_equal(sg_ipam_set_pools(m, p, 2), 3);	/* .1 .2 .3 are out */
	assert_string_equal(a.pool[0], "p");
	for (unsigned int i = 4; i <= 6; i++) {
		char want[20];

		snprintf(key, sizeof(key), "a/s%u", i);
		snprintf(want, sizeof(want), "192.0.2.%u", i);
		r = req(key);
		assert_string_equal(assign_ok(m, &r), want);
		assert_int_equal(sg_ipam_get(m, key, &a), 0);
		assert_string_equal(a.pool[0], "p");
	}
	/* Those that fell out get new addresses, from the best pool now. */
	r = req("a/s1");
	assert_int_equal(sg_ipam_get(m, "a/s1", NULL), -ENOENT);
	assert_string_equal(assign_ok(m, &r), "192.0.2.65");
	/* Renamed pool, same addresses: the addresses stay, the pool name follows. */
	pool(&p[1], "renamed", "192.0.2.4-192.0.2.30", 1, 10, 0);
	assert_int_equal(sg_ipam_set_pools(m, p, 2), 0);
	assert_int_equal(sg_ipam_get(m, "a/s5", &a), 0);
	assert_string_equal(a.pool[0], "renamed");
	assert_string_equal(str(&a.addrs[0]), "192.0.2.5");
	/* Every pool gone: everything is released. */
	assert_int_equal(sg_ipam_set_pools(m, NULL, 0), 4);
	assert_int_equal(sg_ipam_used(m), 0);
	sg_ipam_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_skip_net_bcast),
		cmocka_unit_test(test_priority_and_auto_assign),
		cmocka_unit_test(test_namespaces),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_sharing),
		cmocka_unit_test(test_dual_stack),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_large_range),
		cmocka_unit_test(test_claim),
		cmocka_unit_test(test_pool_edit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
