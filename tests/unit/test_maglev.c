/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/maglev: table size choice, the SipHash reference vectors, balance,
 * weights, order independence, disruption on removal, edge sizes, and a
 * golden digest that pins the cross-gateway contract.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maglev.h"

#define BIG_M 65537u

/* A deterministic generator so failures reproduce; no libc rand(). */
static uint64_t rng_state;

static uint32_t
rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static struct sg_maglev_backend
backend4(uint32_t i, uint16_t port, uint32_t weight)
{
	struct sg_maglev_backend b = { .family = 4, .port = port, .weight = weight };

	/* 203.0.113.0/24 and beyond: documentation range first, then distinct. */
	b.addr[0] = 203;
	b.addr[1] = (uint8_t)(i >> 16);
	b.addr[2] = (uint8_t)(113 + (i >> 8));
	b.addr[3] = (uint8_t)i;
	return b;
}

static struct sg_maglev_backend *
backends_make(uint32_t n)
{
	struct sg_maglev_backend *b = calloc(n, sizeof(*b));

	assert_non_null(b);
	for (uint32_t i = 0; i < n; i++)
		b[i] = backend4(i, 8080, 1);
	return b;
}

static uint16_t *
table_build(const struct sg_maglev_backend *b, uint32_t n, uint32_t size)
{
	uint16_t *t = malloc(sizeof(*t) * size);

	assert_non_null(t);
	assert_int_equal(sg_maglev_build(b, n, t, size), 0);
	for (uint32_t i = 0; i < size; i++)
		assert_true(t[i] < n);
	return t;
}

static uint32_t *
shares(const uint16_t *t, uint32_t size, uint32_t n)
{
	uint32_t *c = calloc(n, sizeof(*c));

	assert_non_null(c);
	for (uint32_t i = 0; i < size; i++)
		c[t[i]]++;
	return c;
}

/*
 * The contract of maglev.h written as plainly as possible (Pseudocode 1,
 * weights by turns, a walk for every turn), to check the library's faster
 * fill against. Equal-weight or weighted, any family.
 */
static void
reference_build(const struct sg_maglev_backend *b, uint32_t n, uint16_t *table, uint32_t m)
{
	static const uint8_t k_off[16] = "svcgw-maglev-off", k_skip[16] = "svcgw-maglev-skp";
	uint8_t (*ident)[19] = calloc(n, sizeof(*ident));
	uint32_t *order = calloc(n, sizeof(*order)), *len = calloc(n, sizeof(*len));
	uint64_t *next = calloc(n, sizeof(*next)), *credit = calloc(n, sizeof(*credit));
	uint32_t wmax = 0, filled = 0;

	assert_non_null(ident);
	assert_non_null(order);
	assert_non_null(len);
	assert_non_null(next);
	assert_non_null(credit);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t alen = b[i].family == 4 ? 4 : 16;

		ident[i][0] = b[i].family;
		memcpy(&ident[i][1], b[i].addr, alen);
		ident[i][1 + alen] = (uint8_t)(b[i].port >> 8);
		ident[i][2 + alen] = (uint8_t)b[i].port;
		len[i] = 3 + alen;
		order[i] = i;
		if (b[i].weight > wmax)
			wmax = b[i].weight;
	}
	/* Insertion sort by identity: slow and obvious. */
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && memcmp(ident[order[j - 1]], ident[order[j]], 19) > 0; j--) {
			uint32_t t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (uint32_t i = 0; i < m; i++)
		table[i] = UINT16_MAX;
	while (filled < m) {
		for (uint32_t k = 0; k < n && filled < m; k++) {
			uint32_t i = order[k];
			uint64_t offset = sg_siphash24(k_off, ident[i], len[i]) % m;
			uint64_t skip = sg_siphash24(k_skip, ident[i], len[i]) % (m - 1) + 1;
			uint64_t c;

			if (b[i].weight == 0)
				continue;
			credit[i] += b[i].weight;
			if (credit[i] < wmax)
				continue;
			credit[i] -= wmax;
			do
				c = (offset + next[i]++ * skip) % m;
			while (table[c] != UINT16_MAX);
			table[c] = (uint16_t)i;
			filled++;
		}
	}
	free(credit);
	free(next);
	free(len);
	free(order);
	free(ident);
}

static void
test_matches_reference(void **state)
{
	static const uint32_t sizes[] = { 101, 211, 809, 1601, 12809, 65537 };
	struct sg_maglev_backend b[300];

	(void)state;
	rng_state = 0x5eed0003;
	for (int round = 0; round < 60; round++) {
		uint32_t m = sizes[round % 6], n = 1 + rng_next() % (m < 300 ? m - 1 : 299);
		bool weighted = round % 3 == 2;
		uint16_t *want = malloc(sizeof(*want) * m), *got;

		assert_non_null(want);
		memset(b, 0, sizeof(b));
		for (uint32_t i = 0; i < n; i++) {
			b[i] = backend4(i, (uint16_t)(1 + rng_next() % 65535), 1);
			if (round % 2) {
				b[i].family = 6;
				b[i].addr[0] = 0x20;
				b[i].addr[1] = 0x01;
				b[i].addr[15] = (uint8_t)rng_next();
			}
			if (weighted)
				b[i].weight = rng_next() % 5;
		}
		b[0].weight = 1;
		reference_build(b, n, want, m);
		got = table_build(b, n, m);
		assert_memory_equal(got, want, sizeof(*want) * m);
		free(got);
		free(want);
	}
}

static void
test_invalid_arguments(void **state)
{
	struct sg_maglev_backend b[3] = { backend4(1, 80, 1), backend4(2, 80, 1),
					  backend4(3, 80, 1) };
	uint16_t t[101];

	(void)state;
	assert_int_equal(sg_maglev_build(NULL, 1, t, 101), -EINVAL);
	assert_int_equal(sg_maglev_build(b, 1, NULL, 101), -EINVAL);
	assert_int_equal(sg_maglev_build(b, 0, t, 101), -EINVAL);
	assert_int_equal(sg_maglev_build(b, SG_MAGLEV_MAX_BACKENDS + 1, t, 101), -EINVAL);
	assert_int_equal(sg_maglev_build(b, 3, t, 100), -EINVAL);	/* not prime */
	assert_int_equal(sg_maglev_build(b, 3, t, 1), -EINVAL);
	assert_int_equal(sg_maglev_build(b, 3, t, 2), -EINVAL);	/* 3 backends, 2 slots */

	b[1].family = 5;
	assert_int_equal(sg_maglev_build(b, 3, t, 101), -EINVAL);
	b[1] = b[0];							/* same identity */
	assert_int_equal(sg_maglev_build(b, 3, t, 101), -EINVAL);
	b[1] = backend4(2, 80, 0);
	b[0].weight = 0;
	b[2].weight = 0;
	assert_int_equal(sg_maglev_build(b, 3, t, 101), -EINVAL);	/* all weights 0 */
}

static void
test_size_choice(void **state)
{
	(void)state;
	assert_int_equal(sg_maglev_size(0, BIG_M), 0);
	assert_int_equal(sg_maglev_size(10, 65536), 0);			/* cap not prime */
	assert_int_equal(sg_maglev_size(1, BIG_M), 101);
	assert_int_equal(sg_maglev_size(2, BIG_M), 211);
	assert_int_equal(sg_maglev_size(5, BIG_M), 809);
	assert_int_equal(sg_maglev_size(10, BIG_M), 1601);
	assert_int_equal(sg_maglev_size(100, BIG_M), 12809);
	assert_int_equal(sg_maglev_size(512, BIG_M), 51203);
	assert_int_equal(sg_maglev_size(513, BIG_M), BIG_M);		/* capped */
	assert_int_equal(sg_maglev_size(1000, 655373), 102407);
	assert_int_equal(sg_maglev_size(100000, 655373), 655373);
	assert_int_equal(sg_maglev_size(100, 1009), 1009);
	for (uint32_t n = 1; n < 3000; n++) {
		uint32_t m = sg_maglev_size(n, BIG_M);

		assert_true(sg_maglev_is_prime(m));
		assert_true(m >= 100 * n || m == BIG_M);
	}
}

static void
test_is_prime(void **state)
{
	(void)state;
	assert_false(sg_maglev_is_prime(0));
	assert_false(sg_maglev_is_prime(1));
	assert_true(sg_maglev_is_prime(2));
	assert_true(sg_maglev_is_prime(3));
	assert_false(sg_maglev_is_prime(4));
	assert_true(sg_maglev_is_prime(65537));
	assert_true(sg_maglev_is_prime(655373));
	assert_false(sg_maglev_is_prime(65539 * 3));
	assert_true(sg_maglev_is_prime(4294967291u));			/* largest 32-bit prime */
	assert_false(sg_maglev_is_prime(4294967295u));
}

/* Reference vectors from the SipHash paper, appendix A, and its vectors.h. */
static void
test_siphash_vectors(void **state)
{
	uint8_t key[16], msg[64];

	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	assert_true(sg_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(sg_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(sg_siphash24(key, msg, 8) == 0x93f5f5799a932462ull);
	assert_true(sg_siphash24(key, msg, 63) == 0x958a324ceb064572ull);
}

static void
test_equal_weights_balance(void **state)
{
	static const uint32_t ns[] = { 1, 2, 3, 7, 10, 100, 655, 1000 };

	(void)state;
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		uint32_t n = ns[k], m = sg_maglev_size(n, BIG_M);
		struct sg_maglev_backend *b = backends_make(n);
		uint16_t *t = table_build(b, n, m);
		uint32_t *c = shares(t, m, n);

		for (uint32_t i = 0; i < n; i++)
			assert_in_range(c[i], m / n, (m + n - 1) / n);
		free(c);
		free(t);
		free(b);
	}
}

static void
check_weighted(struct sg_maglev_backend *b, uint32_t n, uint32_t m)
{
	uint16_t *t = table_build(b, n, m);
	uint32_t *c = shares(t, m, n);
	uint64_t total = 0;

	for (uint32_t i = 0; i < n; i++)
		total += b[i].weight;
	for (uint32_t i = 0; i < n; i++) {
		double want = (double)m * b[i].weight / (double)total;

		assert_true(c[i] >= want - 0.01 * m && c[i] <= want + 0.01 * m);
		if (b[i].weight == 0)
			assert_int_equal(c[i], 0);
	}
	free(c);
	free(t);
}

static void
test_weights_proportional(void **state)
{
	struct sg_maglev_backend b[64];

	(void)state;
	for (uint32_t i = 0; i < 4; i++)
		b[i] = backend4(i, 80, i + 1);				/* 1:2:3:4 */
	check_weighted(b, 4, 1601);
	check_weighted(b, 4, BIG_M);

	b[0].weight = 1;
	b[1].weight = 1000;						/* heavily skewed */
	b[2].weight = 0;						/* drained */
	b[3].weight = 7;
	check_weighted(b, 4, BIG_M);

	rng_state = 0x5eed0001;
	for (int round = 0; round < 20; round++) {
		uint32_t n = 2 + rng_next() % 63;

		for (uint32_t i = 0; i < n; i++)
			b[i] = backend4(i, 443, 1 + rng_next() % 100);
		check_weighted(b, n, sg_maglev_size(n, BIG_M));
	}
}

/* The table names the same identity in every slot whatever the input order. */
static void
test_order_independent(void **state)
{
	uint32_t n = 100, m = BIG_M;
	struct sg_maglev_backend *b = backends_make(n);
	struct sg_maglev_backend *s = malloc(sizeof(*s) * n);
	uint16_t *t1, *t2;

	(void)state;
	assert_non_null(s);
	for (uint32_t i = 0; i < n; i++)
		b[i].weight = 1 + i % 3;
	t1 = table_build(b, n, m);

	rng_state = 0x5eed0002;
	for (int round = 0; round < 5; round++) {
		memcpy(s, b, sizeof(*s) * n);
		for (uint32_t i = n - 1; i > 0; i--) {
			uint32_t j = rng_next() % (i + 1);
			struct sg_maglev_backend tmp = s[i];

			s[i] = s[j];
			s[j] = tmp;
		}
		t2 = table_build(s, n, m);
		for (uint32_t i = 0; i < m; i++)
			assert_memory_equal(&b[t1[i]], &s[t2[i]], sizeof(*b));
		free(t2);
	}
	free(t1);
	free(s);
	free(b);
}

static void
test_removal_disruption(void **state)
{
	uint32_t n = 100, m = BIG_M, removed = 37, moved = 0, owned = 0;
	struct sg_maglev_backend *b = backends_make(n);
	struct sg_maglev_backend *r = malloc(sizeof(*r) * (n - 1));
	uint16_t *t1, *t2;

	(void)state;
	assert_non_null(r);
	t1 = table_build(b, n, m);
	for (uint32_t i = 0, j = 0; i < n; i++)
		if (i != removed)
			r[j++] = b[i];
	t2 = table_build(r, n - 1, m);

	for (uint32_t i = 0; i < m; i++) {
		if (t1[i] == removed) {
			owned++;
			continue;
		}
		/* r[] skips `removed`, so indices above it shift by one. */
		if (t1[i] != (t2[i] < removed ? t2[i] : t2[i] + 1))
			moved++;
	}
	assert_in_range(owned, m / n, m / n + 1);
	assert_true(moved <= m / 100);
	free(t2);
	free(t1);
	free(r);
	free(b);
}

static void
test_edge_sizes(void **state)
{
	uint32_t m = 101, n = m - 1;
	struct sg_maglev_backend *b = backends_make(n);
	uint16_t *t;
	uint32_t *c;

	(void)state;
	t = table_build(b, 1, m);
	for (uint32_t i = 0; i < m; i++)
		assert_int_equal(t[i], 0);
	free(t);

	t = table_build(b, n, m);
	c = shares(t, m, n);
	for (uint32_t i = 0; i < n; i++)
		assert_in_range(c[i], 1, 2);
	free(c);
	free(t);

	/* As many backends as slots: a permutation of them. */
	free(b);
	b = backends_make(m);
	t = table_build(b, m, m);
	c = shares(t, m, m);
	for (uint32_t i = 0; i < m; i++)
		assert_int_equal(c[i], 1);
	free(c);
	free(t);
	free(b);
}

static void
test_ipv6_and_mixed(void **state)
{
	struct sg_maglev_backend b[4];
	uint32_t m = 809;
	uint16_t *t;
	uint32_t *c;

	(void)state;
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 3; i++) {
		static const uint8_t pfx[] = { 0x20, 0x01, 0x0d, 0xb8 };

		b[i].family = 6;
		memcpy(b[i].addr, pfx, sizeof(pfx));
		b[i].addr[15] = (uint8_t)(i + 1);
		b[i].port = 8080;
		b[i].weight = 1;
	}
	/* 2001:db8::1 and 203.0.113.1 share no bytes that decide identity. */
	b[3] = backend4(1, 8080, 1);
	t = table_build(b, 4, m);
	c = shares(t, m, 4);
	for (int i = 0; i < 4; i++)
		assert_in_range(c[i], m / 4, m / 4 + 1);
	free(c);
	free(t);

	/* Same address, different port: different backends. */
	b[1] = b[0];
	b[1].port = 8081;
	t = table_build(b, 2, 211);
	c = shares(t, 211, 2);
	assert_in_range(c[0], 105, 106);
	free(c);
	free(t);
}

/*
 * Pins SG_MAGLEV_CONTRACT: gateways of different versions must agree, so a
 * change of hash, keys, order or turns must show up here and bump it.
 */
static void
test_contract_golden(void **state)
{
	static const uint8_t zero_key[16];
	uint32_t n = 10, m = sg_maglev_size(n, BIG_M);
	struct sg_maglev_backend *b = backends_make(n);
	uint16_t *t;
	uint8_t *bytes;

	(void)state;
	assert_int_equal(SG_MAGLEV_CONTRACT, 1);
	b[3].weight = 3;
	t = table_build(b, n, m);
	bytes = malloc(2 * m);
	assert_non_null(bytes);
	for (uint32_t i = 0; i < m; i++) {
		bytes[2 * i] = (uint8_t)(t[i] >> 8);
		bytes[2 * i + 1] = (uint8_t)t[i];
	}
	assert_int_equal(m, 1601);
	assert_int_equal(t[0], 5);
	assert_int_equal(t[1600], 1);
	assert_true(sg_siphash24(zero_key, bytes, 2 * m) == 0xc2ff64d39b6d5439ull);
	free(bytes);
	free(t);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_size_choice),
		cmocka_unit_test(test_is_prime),
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_matches_reference),
		cmocka_unit_test(test_equal_weights_balance),
		cmocka_unit_test(test_weights_proportional),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_removal_disruption),
		cmocka_unit_test(test_edge_sizes),
		cmocka_unit_test(test_ipv6_and_mixed),
		cmocka_unit_test(test_contract_golden),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
