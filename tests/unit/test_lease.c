/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/lease: Lease records to and from JSON, the elector's state machine
 * (acquire, renew, expire, take over, lost race) on a fake clock, peers'
 * liveness, and rendezvous ownership (determinism, a pinned weight,
 * balance, minimal movement when a gateway leaves or joins).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lease.h"

/* ---- records ----------------------------------------------------------------- */

static void
test_time_roundtrip(void **state)
{
	int64_t us;
	char buf[SG_LEASE_TIME_SIZE];

	(void)state;
	assert_int_equal(sg_lease_time_parse("2024-02-29T23:59:58.123456Z", &us), 0);
	sg_lease_time_format(us, buf);
	assert_string_equal(buf, "2024-02-29T23:59:58.123456Z");
	assert_int_equal(sg_lease_time_parse("1970-01-01T00:00:01Z", &us), 0);
	assert_int_equal(us, 1000000);
	assert_int_equal(sg_lease_time_parse("1970-01-01T01:00:01.5+01:00", &us), 0);
	assert_int_equal(us, 1500000);
	assert_int_equal(sg_lease_time_parse("1970-01-01 00:00:01Z", &us), -EINVAL);
	assert_int_equal(sg_lease_time_parse("1970-01-01T00:00:01", &us), -EINVAL);
	assert_int_equal(sg_lease_time_parse("1970-13-01T00:00:01Z", &us), -EINVAL);
	assert_int_equal(sg_lease_time_parse("", &us), -EINVAL);
	assert_int_equal(sg_lease_time_parse(NULL, &us), -EINVAL);
}

static void
test_decode_bad(void **state)
{
	static const char *const bad[] = {
		"{}",
		"{\"metadata\":{}}",
		"{\"metadata\":{\"name\":\"\"}}",
		"{\"metadata\":{\"name\":\"a\",\"resourceVersion\":7}}",
		"{\"metadata\":{\"name\":\"a\"},\"spec\":[]}",
		"{\"metadata\":{\"name\":\"a\"},\"spec\":{\"holderIdentity\":1}}",
		"{\"metadata\":{\"name\":\"a\"},\"spec\":{\"leaseDurationSeconds\":-1}}",
		"{\"metadata\":{\"name\":\"a\"},\"spec\":{\"renewTime\":\"yesterday\"}}",
	};
	struct sg_lease l;

	(void)state;
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *j = cJSON_Parse(bad[i]);

		assert_non_null(j);
		assert_int_equal(sg_lease_decode(j, &l), -EINVAL);
		cJSON_Delete(j);
	}
}

static void
test_encode_decode(void **state)
{
	struct sg_lease in = { 0 }, out;
	char *s;
	cJSON *j;

	(void)state;
	snprintf(in.name, sizeof(in.name), "svcgw-a");
	snprintf(in.rv, sizeof(in.rv), "42");
	snprintf(in.gateway, sizeof(in.gateway), "a");
	snprintf(in.holder, sizeof(in.holder), "a");
	in.duration_s = 2;
	in.acquire_us = 1700000000000001;
	in.renew_us = 1700000000500002;
	in.transitions = 3;
	s = sg_lease_encode(&in, "svcgw-system");
	assert_non_null(s);
	assert_non_null(strstr(s, "\"apiVersion\":\"coordination.k8s.io/v1\""));
	assert_non_null(strstr(s, "\"namespace\":\"svcgw-system\""));
	assert_non_null(strstr(s, "\"renewTime\":\"2023-11-14T22:13:20.500002Z\""));
	j = cJSON_Parse(s);
	assert_non_null(j);
	assert_int_equal(sg_lease_decode(j, &out), 0);
	assert_memory_equal(&in, &out, sizeof(in));
	cJSON_Delete(j);
	free(s);

	/* A create: no resourceVersion, no label, no times. */
	memset(&in, 0, sizeof(in));
	snprintf(in.name, sizeof(in.name), "svcgw-leader");
	s = sg_lease_encode(&in, "ns");
	assert_non_null(s);
	assert_null(strstr(s, "resourceVersion"));
	assert_null(strstr(s, "labels"));
	assert_null(strstr(s, "renewTime"));
	free(s);
}

/* ---- elector ----------------------------------------------------------------- */

#define WALL 1700000000000000ll

static struct sg_lease
record(const char *holder, const char *rv, uint32_t duration_s)
{
	struct sg_lease l = { 0 };

	snprintf(l.name, sizeof(l.name), "svcgw-leader");
	snprintf(l.holder, sizeof(l.holder), "%s", holder);
	snprintf(l.rv, sizeof(l.rv), "%s", rv);
	l.duration_s = duration_s;
	return l;
}

/* The server's answer to a successful write: what was sent, a new version. */
static struct sg_lease
stored(const struct sg_lease *sent, const char *rv)
{
	struct sg_lease l = *sent;

	snprintf(l.rv, sizeof(l.rv), "%s", rv);
	return l;
}

static void
test_elector_create_and_renew(void **state)
{
	struct sg_lease_elector e;
	struct sg_lease w, s;

	(void)state;
	sg_lease_elector_init(&e, "a", "svcgw-leader", NULL, 2);
	/* Nothing before the first read. */
	assert_int_equal(sg_lease_elector_next(&e, 0, WALL, 375, &w), SG_LEASE_OP_NONE);
	assert_false(sg_lease_elector_held(&e, 0));

	sg_lease_elector_observe(&e, NULL, 1000);
	assert_int_equal(sg_lease_elector_next(&e, 1000, WALL, 375, &w), SG_LEASE_OP_CREATE);
	assert_string_equal(w.holder, "a");
	assert_string_equal(w.rv, "");
	assert_int_equal(w.duration_s, 2);
	assert_true(w.acquire_us == WALL && w.renew_us == WALL);
	s = stored(&w, "10");
	sg_lease_elector_done(&e, SG_LEASE_OP_CREATE, 201, &s, 1000);
	assert_true(sg_lease_elector_held(&e, 1000));
	assert_int_equal(e.acquired, 1);

	/* Not due yet, then due: the update carries the version read. */
	assert_int_equal(sg_lease_elector_next(&e, 1300, WALL, 375, &w), SG_LEASE_OP_NONE);
	assert_int_equal(sg_lease_elector_next(&e, 1500, WALL + 500000, 375, &w),
			 SG_LEASE_OP_UPDATE);
	assert_string_equal(w.rv, "10");
	assert_true(w.acquire_us == WALL && w.renew_us == WALL + 500000);
	assert_int_equal(w.transitions, 0);
	s = stored(&w, "11");
	sg_lease_elector_done(&e, SG_LEASE_OP_UPDATE, 200, &s, 1500);
	assert_int_equal(e.renewals, 1);

	/* Held for duration after the last write was SENT, not longer. */
	assert_true(sg_lease_elector_held(&e, 3499));
	assert_false(sg_lease_elector_held(&e, 3500));
	assert_string_equal(sg_lease_elector_holder(&e, 3499), "a");
	assert_string_equal(sg_lease_elector_holder(&e, 3500), "");

	/* A failed renewal keeps the old hold, which then runs out. */
	assert_int_equal(sg_lease_elector_next(&e, 2000, WALL, 375, &w), SG_LEASE_OP_UPDATE);
	sg_lease_elector_done(&e, SG_LEASE_OP_UPDATE, -5, NULL, 2000);
	assert_int_equal(e.failures, 1);
	assert_true(sg_lease_elector_held(&e, 3000));
	assert_false(sg_lease_elector_held(&e, 3600));
}

static void
test_elector_follower_and_expiry(void **state)
{
	struct sg_lease_elector e;
	struct sg_lease l = record("b", "5", 2), w, s;

	(void)state;
	sg_lease_elector_init(&e, "a", "svcgw-leader", NULL, 2);
	sg_lease_elector_observe(&e, &l, 10000);
	assert_string_equal(sg_lease_elector_holder(&e, 10000), "b");
	assert_int_equal(sg_lease_elector_next(&e, 11000, WALL, 375, &w), SG_LEASE_OP_NONE);

	/* b renews: a new version restarts b's clock. */
	l = record("b", "6", 2);
	sg_lease_elector_observe(&e, &l, 11500);
	assert_int_equal(sg_lease_elector_next(&e, 13000, WALL, 375, &w), SG_LEASE_OP_NONE);
	/* The same version read again does not. */
	sg_lease_elector_observe(&e, &l, 13000);
	assert_int_equal(sg_lease_elector_next(&e, 13499, WALL, 375, &w), SG_LEASE_OP_NONE);
	assert_string_equal(sg_lease_elector_holder(&e, 13499), "b");
	assert_string_equal(sg_lease_elector_holder(&e, 13500), "");

	/* Expired by our clock: take it over, one more transition. */
	assert_int_equal(sg_lease_elector_next(&e, 13500, WALL, 375, &w), SG_LEASE_OP_UPDATE);
	assert_string_equal(w.holder, "a");
	assert_string_equal(w.rv, "6");
	assert_int_equal(w.transitions, 1);
	s = stored(&w, "7");
	sg_lease_elector_done(&e, SG_LEASE_OP_UPDATE, 200, &s, 13500);
	assert_true(sg_lease_elector_held(&e, 13500));
	assert_int_equal(e.acquired, 1);
}

static void
test_elector_lost_race(void **state)
{
	struct sg_lease_elector e;
	struct sg_lease l = record("", "5", 2), w;

	(void)state;
	sg_lease_elector_init(&e, "a", "svcgw-leader", NULL, 2);
	/* Released (holder ""): take it at once. */
	sg_lease_elector_observe(&e, &l, 0);
	assert_int_equal(sg_lease_elector_next(&e, 1, WALL, 375, &w), SG_LEASE_OP_UPDATE);
	/* 409: someone else got there first; no write until read again. */
	sg_lease_elector_done(&e, SG_LEASE_OP_UPDATE, 409, NULL, 1);
	assert_int_equal(e.conflicts, 1);
	assert_false(sg_lease_elector_held(&e, 1));
	assert_int_equal(sg_lease_elector_next(&e, 2, WALL, 375, &w), SG_LEASE_OP_NONE);
	l = record("c", "6", 2);
	sg_lease_elector_observe(&e, &l, 3);
	assert_int_equal(sg_lease_elector_next(&e, 4, WALL, 375, &w), SG_LEASE_OP_NONE);
	assert_string_equal(sg_lease_elector_holder(&e, 4), "c");

	/* A create that finds it exists (409 AlreadyExists) reads again too. */
	sg_lease_elector_init(&e, "a", "svcgw-leader", NULL, 2);
	sg_lease_elector_observe(&e, NULL, 0);
	assert_int_equal(sg_lease_elector_next(&e, 0, WALL, 375, &w), SG_LEASE_OP_CREATE);
	sg_lease_elector_done(&e, SG_LEASE_OP_CREATE, 409, NULL, 0);
	assert_int_equal(sg_lease_elector_next(&e, 1, WALL, 375, &w), SG_LEASE_OP_NONE);
}

static void
test_elector_restart(void **state)
{
	struct sg_lease_elector e;
	struct sg_lease l = record("a", "9", 2), w;

	(void)state;
	/* Ours from a previous life: renewed at once, not waited out. */
	sg_lease_elector_init(&e, "a", "svcgw-a", "a", 2);
	sg_lease_elector_observe(&e, &l, 500);
	assert_false(sg_lease_elector_held(&e, 500));
	assert_int_equal(sg_lease_elector_next(&e, 500, WALL, 375, &w), SG_LEASE_OP_UPDATE);
	assert_string_equal(w.gateway, "a");
	assert_string_equal(w.rv, "9");
	assert_int_equal(w.transitions, 0);
	sg_lease_elector_done(&e, SG_LEASE_OP_UPDATE, 200, NULL, 500);
	/* No stored record: read before the next write. */
	assert_int_equal(sg_lease_elector_next(&e, 2000, WALL, 375, &w), SG_LEASE_OP_NONE);
}

/* ---- peers ------------------------------------------------------------------- */

static struct sg_lease
heartbeat(const char *gw, const char *holder, const char *rv)
{
	struct sg_lease l = record(holder, rv, 2);

	snprintf(l.name, sizeof(l.name), "svcgw-%s", gw);
	snprintf(l.gateway, sizeof(l.gateway), "%s", gw);
	return l;
}

static void
list_of(struct sg_lease_peers *ps, const struct sg_lease *l, unsigned int n, uint64_t now)
{
	sg_lease_peers_begin(ps);
	for (unsigned int i = 0; i < n; i++)
		sg_lease_peers_see(ps, &l[i], now);
	sg_lease_peers_end(ps);
}

static void
test_peers(void **state)
{
	struct sg_lease_peers ps;
	struct sg_lease l[4];
	const char *names[4];
	struct sg_lease other = record("x", "1", 2);

	(void)state;
	sg_lease_peers_init(&ps);
	l[0] = heartbeat("b", "b", "1");
	l[1] = heartbeat("a", "a", "2");
	l[2] = other;		/* no gateway label: not a heartbeat */
	list_of(&ps, l, 3, 0);
	assert_int_equal(sg_lease_peers_live(&ps, 0, names, 4), 2);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_int_equal(sg_lease_peers_next_expiry(&ps, 0), 2000);

	/* a renews, b does not: b is gone 2 s after it was last seen changing. */
	l[1] = heartbeat("a", "a", "3");
	list_of(&ps, l, 2, 1500);
	assert_int_equal(sg_lease_peers_live(&ps, 1999, names, 4), 2);
	assert_int_equal(sg_lease_peers_live(&ps, 2000, names, 4), 1);
	assert_string_equal(names[0], "a");
	assert_int_equal(sg_lease_peers_next_expiry(&ps, 2000), 3500);

	/* b comes back: live again at once. */
	l[0] = heartbeat("b", "b", "4");
	list_of(&ps, l, 2, 2100);
	assert_int_equal(sg_lease_peers_live(&ps, 2100, names, 1), 2);
	assert_string_equal(names[0], "a");

	/* Released (holder "") or held by another: not live. Deleted: forgotten. */
	l[0] = heartbeat("b", "", "5");
	list_of(&ps, l, 2, 2200);
	assert_int_equal(sg_lease_peers_live(&ps, 2200, names, 4), 1);
	l[0] = heartbeat("b", "z", "6");
	list_of(&ps, l, 2, 2300);
	assert_int_equal(sg_lease_peers_live(&ps, 2300, names, 4), 1);
	list_of(&ps, &l[1], 1, 2400);
	assert_int_equal(ps.n, 1);
	assert_int_equal(sg_lease_peers_next_expiry(&ps, 10000), UINT64_MAX);
}

/* ---- rendezvous -------------------------------------------------------------- */

static void
vip4(uint32_t i, uint8_t a[4])
{
	/* 192.0.2.0/24, then the same last bytes on other third octets: distinct. */
	a[0] = 192;
	a[1] = 0;
	a[2] = (uint8_t)(2 + (i >> 8));
	a[3] = (uint8_t)i;
}

static void
test_hrw_pinned(void **state)
{
	static const uint8_t v4[4] = { 192, 0, 2, 100 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0xa, 0, 0, 0, 0, 0, 0, 0,
					0, 0x01, 0x00 };
	const char *names[] = { "gw-a", "gw-b" };
	uint64_t w;

	(void)state;
	/* The weight is a protocol between gateways: pinned (also computed by
	 * tests/integration/sgnet.py hrw_owner(), an independent implementation). */
	w = sg_lease_hrw_weight("gw-a", 4, v4);
	assert_true(w == sg_lease_hrw_weight("gw-a", 4, v4));
	assert_true(w != sg_lease_hrw_weight("gw-b", 4, v4));
	assert_true(w != sg_lease_hrw_weight("gw-a", 6, v6));
	printf("# weight(gw-a, 192.0.2.100) = %016llx\n", (unsigned long long)w);
	assert_true(w == 0x6172b93930c5fc32ull);
	assert_int_equal(sg_lease_hrw_owner(names, 0, 4, v4), -1);
	assert_int_equal(sg_lease_hrw_owner(names, 1, 4, v4), 0);
}

/* The owner does not depend on the order the names come in. */
static void
test_hrw_order(void **state)
{
	const char *fwd[] = { "a", "b", "c", "d" }, *rev[] = { "d", "c", "b", "a" };
	uint8_t v[4];

	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		vip4(i, v);
		assert_string_equal(fwd[sg_lease_hrw_owner(fwd, 4, 4, v)],
				    rev[sg_lease_hrw_owner(rev, 4, 4, v)]);
	}
}

#define N_VIPS 6000u

static void
test_hrw_balance_and_movement(void **state)
{
	const char *all[] = { "gw-a", "gw-b", "gw-c", "gw-d", "gw-e" };
	const char *less[] = { "gw-a", "gw-b", "gw-d", "gw-e" };	/* gw-c gone */
	uint32_t count[5] = { 0 }, moved = 0, owned_c = 0;
	uint8_t v[4];

	(void)state;
	for (uint32_t i = 0; i < N_VIPS; i++) {
		int o5, o4;

		vip4(i, v);
		o5 = sg_lease_hrw_owner(all, 5, 4, v);
		o4 = sg_lease_hrw_owner(less, 4, 4, v);
		count[o5]++;
		if (strcmp(all[o5], "gw-c") == 0) {
			owned_c++;
			continue;
		}
		/* Leaving moves only what the leaver owned ... */
		if (strcmp(all[o5], less[o4]) != 0)
			moved++;
	}
	assert_int_equal(moved, 0);
	/* ... and joining takes only what the joiner now owns: the same sets in reverse. */
	for (unsigned int g = 0; g < 5; g++) {
		printf("# %s owns %u of %u\n", all[g], count[g], N_VIPS);
		/* 1200 expected each; 10 % is over 7 standard deviations. */
		assert_in_range(count[g], N_VIPS / 5 * 9 / 10, N_VIPS / 5 * 11 / 10);
	}
	assert_int_equal(owned_c, count[2]);
}

static void
test_hrw_ipv6(void **state)
{
	const char *names[] = { "a", "b", "c" };
	uint32_t count[3] = { 0 };
	uint8_t v[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	(void)state;
	for (uint32_t i = 0; i < 3000; i++) {
		v[14] = (uint8_t)(i >> 8);
		v[15] = (uint8_t)i;
		count[sg_lease_hrw_owner(names, 3, 6, v)]++;
	}
	for (unsigned int g = 0; g < 3; g++)
		assert_in_range(count[g], 900, 1100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_roundtrip),
		cmocka_unit_test(test_decode_bad),
		cmocka_unit_test(test_encode_decode),
		cmocka_unit_test(test_elector_create_and_renew),
		cmocka_unit_test(test_elector_follower_and_expiry),
		cmocka_unit_test(test_elector_lost_race),
		cmocka_unit_test(test_elector_restart),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_hrw_pinned),
		cmocka_unit_test(test_hrw_order),
		cmocka_unit_test(test_hrw_balance_and_movement),
		cmocka_unit_test(test_hrw_ipv6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
