/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/svc: argument and conf validation first, then publication, lookup,
 * replacement and removal, key-set changes, the NodePort "any" fallback,
 * source ranges, the Kubernetes choice of backends, the Maglev table,
 * iteration and stats, deferred freeing under RCU, and readers on other
 * threads looking up while the control thread replaces services tens of
 * thousands of times. Run under ASan/LSan it also proves nothing is freed
 * early or leaked.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

#include "maglev.h"
#include "sg_test_eal.h"
#include "svc.h"

/* ---- helpers ----------------------------------------------------------- */

static struct rte_rcu_qsbr *
qsbr_new(uint32_t max_threads)
{
	size_t sz = rte_rcu_qsbr_get_memsize(max_threads);
	struct rte_rcu_qsbr *v = rte_zmalloc(NULL, sz, RTE_CACHE_LINE_SIZE);

	assert_non_null(v);
	assert_int_equal(rte_rcu_qsbr_init(v, max_threads), 0);
	return v;
}

static struct sg_svc_table *
table_new(struct rte_rcu_qsbr *v, uint32_t max_services, uint32_t max_keys, uint32_t maglev_max)
{
	struct sg_svc_table_conf tc = {
		.qsbr = v,
		.max_services = max_services,
		.max_keys = max_keys,
		.maglev_max_size = maglev_max,
		.socket_id = SOCKET_ID_ANY,
	};
	struct sg_svc_table *t = sg_svc_table_create(&tc);

	assert_non_null(t);
	return t;
}

/* 192.0.2.last:port (VIPs and node addresses). */
static struct sg_svc_key
key4(uint8_t last, uint16_t port, uint8_t proto)
{
	struct sg_svc_key k;

	sg_svc_key4(&k, rte_cpu_to_be_32(0xc0000200u | last), rte_cpu_to_be_16(port), proto);
	return k;
}

/* [2001:db8::last]:port */
static struct sg_svc_key
key6(uint16_t last, uint16_t port, uint8_t proto)
{
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	struct sg_svc_key k;

	a[14] = (uint8_t)(last >> 8);
	a[15] = (uint8_t)last;
	sg_svc_key6(&k, a, rte_cpu_to_be_16(port), proto);
	return k;
}

static struct sg_svc_key
key_any(uint8_t family, uint16_t port, uint8_t proto)
{
	struct sg_svc_key k;

	if (family == 4)
		sg_svc_key4(&k, 0, rte_cpu_to_be_16(port), proto);
	else
		sg_svc_key6(&k, NULL, rte_cpu_to_be_16(port), proto);
	return k;
}

/* Pod 203.0.113.last:port */
static struct sg_svc_backend
be4(uint8_t last, uint16_t port, uint8_t state, uint32_t weight)
{
	struct sg_svc_backend b;

	memset(&b, 0, sizeof(b));
	b.family = 4;
	b.addr[0] = 203;
	b.addr[2] = 113;
	b.addr[3] = last;
	b.port = rte_cpu_to_be_16(port);
	b.state = state;
	b.weight = weight;
	return b;
}

/* Pod [2001:db8:ffff::last]:port */
static struct sg_svc_backend
be6(uint16_t last, uint16_t port, uint8_t state, uint32_t weight)
{
	struct sg_svc_backend b;

	memset(&b, 0, sizeof(b));
	b.family = 6;
	b.addr[0] = 0x20;
	b.addr[1] = 0x01;
	b.addr[2] = 0x0d;
	b.addr[3] = 0xb8;
	b.addr[4] = 0xff;
	b.addr[5] = 0xff;
	b.addr[14] = (uint8_t)(last >> 8);
	b.addr[15] = (uint8_t)last;
	b.port = rte_cpu_to_be_16(port);
	b.state = state;
	b.weight = weight;
	return b;
}

static struct sg_svc_prefix
pfx4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t len)
{
	struct sg_svc_prefix p = { .family = 4, .len = len };

	p.addr[0] = a;
	p.addr[1] = b;
	p.addr[2] = c;
	p.addr[3] = d;
	return p;
}

static struct sg_svc_prefix
pfx6(const uint8_t addr[16], uint8_t len)
{
	struct sg_svc_prefix p = { .family = 6, .len = len };

	memcpy(p.addr, addr, 16);
	return p;
}

/* A conf with room for every array, pointing into itself: never copy it. */
struct tconf {
	struct sg_svc_conf c;
	struct sg_svc_key keys[SG_SVC_MAX_KEYS + 1];
	struct sg_svc_prefix src[2 * SG_SVC_MAX_SRC_RANGES + 2];
	struct sg_svc_backend be[128];
	char name[SG_SVC_NAME_MAX + 8];
};

#define READY SG_SVC_BE_READY
#define SERVING SG_SVC_BE_SERVING
#define TERMINATING SG_SVC_BE_TERMINATING

/* Service id: DNAT, key 192.0.2.10:80/TCP, n ready IPv4 backends. */
static void
tconf_init(struct tconf *t, uint32_t id, uint32_t n_be)
{
	memset(t, 0, sizeof(*t));
	t->c.id = id;
	t->c.mode = SG_SVC_MODE_DNAT;
	t->keys[0] = key4(10, 80, IPPROTO_TCP);
	t->c.keys = t->keys;
	t->c.n_keys = 1;
	for (uint32_t i = 0; i < n_be; i++)
		t->be[i] = be4((uint8_t)(i + 1), 8080, READY, 1);
	t->c.backends = t->be;
	t->c.n_backends = n_be;
	t->c.src_ranges = t->src;
	snprintf(t->name, sizeof(t->name), "default/svc%u:http", id);
	t->c.name = t->name;
}

static const struct sg_svc_entry *
lookup(const struct sg_svc_table *t, struct sg_svc_key k)
{
	return sg_svc_lookup(t, &k, NULL);
}

static struct sg_svc_stats
stats(const struct sg_svc_table *t)
{
	struct sg_svc_stats st;

	assert_int_equal(sg_svc_stats_get(t, &st), 0);
	return st;
}

static int
backend_same(const struct sg_svc_backend *a, const struct sg_svc_backend *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* ---- invalid arguments ------------------------------------------------- */

static void
test_create_invalid(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table_conf ok = { .qsbr = v, .max_services = 4, .max_keys = 8 };
	struct sg_svc_table_conf c;
	struct sg_svc_table *t;

	(void)state;
	errno = 0;
	assert_null(sg_svc_table_create(NULL));
	assert_int_equal(errno, EINVAL);

	for (unsigned int i = 0; i < 7; i++) {
		c = ok;
		switch (i) {
		case 0: c.qsbr = NULL; break;
		case 1: c.max_services = 0; break;
		case 2: c.max_services = SG_SVC_MAX_SERVICES_LIMIT + 1; break;
		case 3: c.max_keys = 0; break;
		case 4: c.max_keys = SG_SVC_MAX_KEYS_LIMIT + 1; break;
		case 5: c.maglev_max_size = 65536; break;
		case 6: c.maglev_max_size = 1; break;
		}
		errno = 0;
		t = sg_svc_table_create(&c);
		if (t != NULL || errno != EINVAL)
			fail_msg("create case %u accepted (errno %d)", i, errno);
	}

	/* Two tables at once: their DPDK objects need distinct names. */
	t = sg_svc_table_create(&ok);
	assert_non_null(t);
	c = ok;
	c.maglev_max_size = 101;
	struct sg_svc_table *t2 = sg_svc_table_create(&c);
	assert_non_null(t2);
	assert_int_equal(sg_svc_count(t), 0);
	assert_int_equal(stats(t).deferred_max, 15); /* 2^k - 1 >= 4 + 8 */
	sg_svc_table_free(t2);
	sg_svc_table_free(t);
	sg_svc_table_free(NULL);
	rte_free(v);
}

static void
test_null_arguments(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 4, 8, 0);
	struct sg_svc_stats st;
	struct tconf tc;

	(void)state;
	tconf_init(&tc, 1, 2);
	assert_int_equal(sg_svc_publish(NULL, &tc.c), -EINVAL);
	assert_int_equal(sg_svc_publish(t, NULL), -EINVAL);
	assert_int_equal(sg_svc_remove(NULL, 1), -EINVAL);
	assert_int_equal(sg_svc_reclaim(NULL), -EINVAL);
	assert_int_equal(sg_svc_count(NULL), -EINVAL);
	assert_int_equal(sg_svc_stats_get(NULL, &st), -EINVAL);
	assert_int_equal(sg_svc_stats_get(t, NULL), -EINVAL);
	assert_null(sg_svc_get(NULL, 1));
	assert_int_equal(sg_svc_foreach(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(sg_svc_foreach(t, NULL, NULL), -EINVAL);
	assert_int_equal(sg_svc_remove(t, 1), -ENOENT);
	assert_string_equal(sg_svc_mode_name(SG_SVC_MODE_NAT), "nat");
	assert_string_equal(sg_svc_mode_name(SG_SVC_MODE_DNAT), "dnat");
	assert_string_equal(sg_svc_mode_name(SG_SVC_MODE_DSR_IPIP), "dsr-ipip");
	assert_string_equal(sg_svc_mode_name(SG_SVC_MODE_DSR_GUE), "dsr-gue");
	assert_string_equal(sg_svc_mode_name(SG_SVC_MODE_DSR_L2), "dsr-l2");
	assert_string_equal(sg_svc_mode_name(SG_SVC_MODE_COUNT), "?");
	sg_svc_table_free(t);
	rte_free(v);
}

/* Break one thing in a valid conf; NULL once every case has been given. */
static const char *
break_conf(struct tconf *t, unsigned int i)
{
	switch (i) {
	case 0: t->c.id = 0; return "id 0";
	case 1: t->c.mode = (enum sg_svc_mode)SG_SVC_MODE_COUNT; return "unknown mode";
	case 2: t->c.flags = 0x80; return "unknown flag";
	case 3: t->c.flags = SG_SVC_F_SRC_RANGES; return "flag reserved to the table";
	case 4:
		t->c.flags = SG_SVC_F_AFFINITY;
		t->c.affinity_timeout = 0;
		return "affinity without timeout";
	case 5:
		t->c.flags = SG_SVC_F_AFFINITY;
		t->c.affinity_timeout = SG_SVC_AFFINITY_MAX + 1;
		return "affinity timeout too long";
	case 6:
		t->c.mode = SG_SVC_MODE_NAT;
		t->c.flags = SG_SVC_F_LOCAL;
		return "Local with NAT";
	case 7: t->c.keys = NULL; return "keys NULL";
	case 8: t->c.n_keys = 0; return "no key";
	case 9:
		for (unsigned int k = 0; k <= SG_SVC_MAX_KEYS; k++)
			t->keys[k] = key4((uint8_t)(20 + k), 80, IPPROTO_TCP);
		t->c.n_keys = SG_SVC_MAX_KEYS + 1;
		return "too many keys";
	case 10: t->keys[0].family = 5; return "key family 5";
	case 11: memset(&t->keys[0], 0, sizeof(t->keys[0])); return "zeroed key";
	case 12: t->keys[0].proto = IPPROTO_ICMP; return "key protocol ICMP";
	case 13: t->keys[0].port = 0; return "key port 0";
	case 14: t->keys[0].addr[7] = 1; return "IPv4 key with bytes past the fourth";
	case 15:
		t->keys[1] = t->keys[0];
		t->c.n_keys = 2;
		return "key listed twice";
	case 16:
		t->c.src_ranges = NULL;
		t->c.n_src_ranges = 1;
		return "source ranges NULL";
	case 17:
		t->src[0] = pfx4(198, 51, 100, 0, 24);
		t->src[0].family = 5;
		t->c.n_src_ranges = 1;
		return "source range family 5";
	case 18:
		t->src[0] = pfx4(198, 51, 100, 0, 33);
		t->c.n_src_ranges = 1;
		return "IPv4 source range /33";
	case 19: {
		const uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8 };

		t->src[0] = pfx6(a, 129);
		t->c.n_src_ranges = 1;
		return "IPv6 source range /129";
	}
	case 20:
		for (unsigned int k = 0; k <= SG_SVC_MAX_SRC_RANGES; k++)
			t->src[k] = pfx4(198, 51, 100, (uint8_t)k, 32);
		t->c.n_src_ranges = SG_SVC_MAX_SRC_RANGES + 1;
		return "too many IPv4 source ranges";
	case 21: t->c.backends = NULL; return "backends NULL";
	case 22: t->be[1].family = 0; return "backend family 0";
	case 23: t->be[1].port = 0; return "backend port 0";
	case 24: t->be[1].state = 0x08; return "backend unknown state";
	case 25: t->be[1].addr[9] = 1; return "IPv4 backend with bytes past the fourth";
	case 26:
		t->be[2] = t->be[0];
		t->be[2].state = SERVING | TERMINATING;
		return "backend listed twice";
	case 27:
		t->be[2] = t->be[0];
		t->be[2].weight = 0;
		t->be[2].state = 0;
		return "backend listed twice, once unusable";
	case 28: t->be[1] = be6(1, 8080, READY, 1); return "dnat with IPv6 backend for IPv4 key";
	case 29:
		t->keys[1] = key6(10, 80, IPPROTO_TCP);
		t->c.n_keys = 2;
		t->c.mode = SG_SVC_MODE_NAT;
		return "nat with keys of both families";
	case 30:
		t->c.mode = SG_SVC_MODE_DSR_L2;
		t->be[0] = be6(1, 8080, READY, 1);
		return "dsr-l2 across families";
	case 31:
		memset(t->name, 'x', SG_SVC_NAME_MAX);
		t->name[SG_SVC_NAME_MAX] = '\0';
		return "name too long";
	case 32: t->c.n_backends = SG_SVC_MAX_BACKENDS + 1; return "too many backends";
	default: return NULL;
	}
}

static void
test_publish_invalid(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 4, 64, 0);
	struct sg_svc_table *small = table_new(v, 4, 64, 101);
	struct tconf tc;
	unsigned int i;

	(void)state;
	for (i = 0;; i++) {
		const char *what;
		int rc;

		tconf_init(&tc, 5, 3);
		what = break_conf(&tc, i);
		if (what == NULL)
			break;
		rc = sg_svc_publish(t, &tc.c);
		if (rc != -EINVAL)
			fail_msg("%s: publish returned %d, not -EINVAL", what, rc);
	}
	assert_true(i > 30);
	assert_int_equal(sg_svc_count(t), 0);
	assert_int_equal(stats(t).keys, 0);
	assert_int_equal(stats(t).entry_bytes, 0);
	assert_null(lookup(t, key4(10, 80, IPPROTO_TCP)));

	/* More weighted backends than Maglev slots; weight 0 does not count. */
	tconf_init(&tc, 5, 102);
	for (uint32_t k = 0; k < 102; k++)
		tc.be[k] = be6((uint16_t)k, 8080, READY, 1);
	tc.c.mode = SG_SVC_MODE_DSR_IPIP;
	assert_int_equal(sg_svc_publish(small, &tc.c), -EINVAL);
	tc.be[101].weight = 0;
	assert_int_equal(sg_svc_publish(small, &tc.c), 0);
	assert_int_equal(sg_svc_get(small, 5)->maglev_size, 101);

	/* The untouched conf is valid, and so are the shapes the rules allow. */
	tconf_init(&tc, 5, 3);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	tconf_init(&tc, 6, 2);
	tc.keys[0] = key4(11, 80, IPPROTO_TCP);
	tc.keys[1] = key6(11, 80, IPPROTO_TCP);
	tc.c.n_keys = 2;
	tc.be[1] = be6(2, 8080, READY, 1);
	tc.c.mode = SG_SVC_MODE_DSR_GUE; /* a tunnel carries either family */
	tc.c.flags = SG_SVC_F_LOCAL | SG_SVC_F_AFFINITY;
	tc.c.affinity_timeout = SG_SVC_AFFINITY_MAX;
	tc.c.name = NULL;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_string_equal(sg_svc_get(t, 6)->name, "");
	assert_int_equal(sg_svc_count(t), 2);
	sg_svc_table_free(small);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- conflicts and limits ---------------------------------------------- */

static void
test_conflicts_and_limits(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 2, 3, 0);
	const struct sg_svc_entry *a;
	struct tconf tc;

	(void)state;
	tconf_init(&tc, 1, 2);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	a = sg_svc_get(t, 1);
	assert_non_null(a);

	/* Service 2 wants service 1's key. */
	tconf_init(&tc, 2, 2);
	tc.keys[1] = key4(12, 80, IPPROTO_TCP);
	tc.c.n_keys = 2;
	assert_int_equal(sg_svc_publish(t, &tc.c), -EEXIST);
	assert_ptr_equal(lookup(t, key4(10, 80, IPPROTO_TCP)), a);
	assert_null(lookup(t, key4(12, 80, IPPROTO_TCP)));
	assert_int_equal(sg_svc_count(t), 1);

	tc.keys[0] = key4(13, 80, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(stats(t).keys, 3);

	/* max_services 2. */
	tconf_init(&tc, 3, 1);
	tc.keys[0] = key4(14, 80, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), -ENOSPC);

	/* max_keys 3: growing service 1 to two keys would make 4. */
	tconf_init(&tc, 1, 5);
	tc.keys[1] = key4(15, 80, IPPROTO_TCP);
	tc.c.n_keys = 2;
	assert_int_equal(sg_svc_publish(t, &tc.c), -ENOSPC);
	assert_ptr_equal(sg_svc_get(t, 1), a);
	assert_int_equal(a->generation, 1);
	assert_null(lookup(t, key4(15, 80, IPPROTO_TCP)));

	/* Removing service 2 frees its keys and its place at once. */
	assert_int_equal(sg_svc_remove(t, 2), 0);
	assert_int_equal(sg_svc_remove(t, 2), -ENOENT);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_get(t, 1)->generation, 2);
	tconf_init(&tc, 3, 1);
	tc.keys[0] = key4(12, 80, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(stats(t).keys, 3);
	assert_int_equal(sg_svc_count(t), 2);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- publish, lookup, replace, remove ---------------------------------- */

static void
test_publish_lookup_replace_remove(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	const struct sg_svc_entry *e, *e2, *out[3];
	struct sg_svc_backend zero;
	struct sg_svc_key ks[3];
	struct tconf tc;
	uint64_t mask = ~0ull;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	tconf_init(&tc, 7, 3);
	tc.be[2] = be4(3, 9090, SERVING | TERMINATING, 4);
	tc.c.flags = SG_SVC_F_AFFINITY;
	tc.c.affinity_timeout = 10800;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);

	e = lookup(t, key4(10, 80, IPPROTO_TCP));
	assert_non_null(e);
	assert_true(((uintptr_t)e % RTE_CACHE_LINE_SIZE) == 0);
	assert_int_equal(e->id, 7);
	assert_int_equal(e->generation, 1);
	assert_int_equal(e->mode, SG_SVC_MODE_DNAT);
	assert_int_equal(e->flags, SG_SVC_F_AFFINITY | SG_SVC_F_ANY_READY);
	assert_int_equal(e->affinity_timeout, 10800);
	assert_int_equal(e->n_backends, 3);
	assert_true(backend_same(&e->backends[0], &zero));
	for (unsigned int i = 0; i < 3; i++)
		assert_true(backend_same(&e->backends[i + 1], &tc.be[i]));
	assert_string_equal(e->name, "default/svc7:http");
	assert_int_equal(e->n_keys, 1);
	assert_memory_equal(&e->keys[0], &tc.keys[0], sizeof(tc.keys[0]));
	assert_int_equal(e->maglev_size, sg_maglev_size(3, SG_MAGLEV_DEFAULT_MAX_SIZE));
	assert_int_equal(e->n_usable, 2);
	assert_int_equal(e->n_src4 + e->n_src6, 0);
	assert_ptr_equal(sg_svc_get(t, 7), e);
	assert_null(sg_svc_get(t, 8));

	/* Every field of the key matters. */
	assert_null(lookup(t, key4(10, 80, IPPROTO_UDP)));
	assert_null(lookup(t, key4(10, 81, IPPROTO_TCP)));
	assert_null(lookup(t, key4(11, 80, IPPROTO_TCP)));
	assert_null(lookup(t, key6(10, 80, IPPROTO_TCP)));

	ks[0] = key4(10, 80, IPPROTO_TCP);
	ks[1] = key4(10, 443, IPPROTO_TCP);
	ks[2] = key4(10, 80, IPPROTO_TCP);
	assert_int_equal(sg_svc_lookup_bulk(t, ks, 3, out, &mask), 2);
	assert_ptr_equal(out[0], e);
	assert_null(out[1]);
	assert_ptr_equal(out[2], e);
	assert_int_equal(mask, 0);

	/* Replace: new entry, new generation; the old one waits for reclaim. */
	tconf_init(&tc, 7, 5);
	tc.c.mode = SG_SVC_MODE_NAT;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e2 = lookup(t, key4(10, 80, IPPROTO_TCP));
	assert_non_null(e2);
	assert_ptr_not_equal(e2, e);
	assert_int_equal(e2->generation, 2);
	assert_int_equal(e2->mode, SG_SVC_MODE_NAT);
	assert_int_equal(e2->flags & ~SG_SVC_F_ANY_READY, 0);
	assert_int_equal(e2->affinity_timeout, 0);
	assert_int_equal(e2->n_backends, 5);
	assert_int_equal(sg_svc_count(t), 1);
	assert_int_equal(stats(t).publishes, 2);
	assert_int_equal(stats(t).deferred, 1);
	assert_int_equal(stats(t).entry_bytes, e->alloc_size + e2->alloc_size);
	assert_int_equal(sg_svc_reclaim(t), 1);
	assert_int_equal(stats(t).deferred, 0);
	assert_int_equal(stats(t).entry_bytes, e2->alloc_size);

	/* Remove: every key goes, then the entry and key slot are reclaimed. */
	assert_int_equal(sg_svc_remove(t, 7), 0);
	assert_null(lookup(t, key4(10, 80, IPPROTO_TCP)));
	assert_int_equal(sg_svc_count(t), 0);
	assert_int_equal(stats(t).keys, 0);
	assert_int_equal(stats(t).removes, 1);
	assert_int_equal(sg_svc_reclaim(t), 2);
	assert_int_equal(stats(t).entry_bytes, 0);

	/* A service published again starts over. */
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(lookup(t, key4(10, 80, IPPROTO_TCP))->generation, 1);
	sg_svc_table_free(t);
	rte_free(v);
}

static void
test_key_set_change(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	const struct sg_svc_key A = key4(1, 80, IPPROTO_TCP), B = key4(2, 80, IPPROTO_TCP);
	const struct sg_svc_key C = key4(3, 80, IPPROTO_TCP), D = key4(4, 80, IPPROTO_TCP);
	const struct sg_svc_entry *e;
	struct tconf tc;

	(void)state;
	tconf_init(&tc, 1, 2);
	tc.keys[0] = A;
	tc.keys[1] = B;
	tc.c.n_keys = 2;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_non_null(lookup(t, B));

	/* A VIP goes away and another comes. */
	tc.keys[1] = C;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = lookup(t, A);
	assert_non_null(e);
	assert_ptr_equal(lookup(t, C), e);
	assert_null(lookup(t, B));
	assert_int_equal(e->n_keys, 2);
	assert_memory_equal(&e->keys[0], &A, sizeof(A));
	assert_memory_equal(&e->keys[1], &C, sizeof(C));
	assert_int_equal(stats(t).keys, 2);

	/* The freed key may go to another service at once; a taken one may not. */
	tconf_init(&tc, 2, 1);
	tc.keys[0] = D;
	tc.keys[1] = B;
	tc.c.n_keys = 2;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(lookup(t, B)->id, 2);
	tc.keys[1] = C;
	assert_int_equal(sg_svc_publish(t, &tc.c), -EEXIST);
	assert_int_equal(lookup(t, B)->id, 2);
	assert_ptr_equal(lookup(t, C), e);

	/* Shrink to one key, then grow across families (a tunnel mode). */
	tconf_init(&tc, 1, 2);
	tc.keys[0] = C;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_null(lookup(t, A));
	tc.keys[1] = key6(3, 80, IPPROTO_TCP);
	tc.keys[2] = A;
	tc.c.n_keys = 3;
	tc.c.mode = SG_SVC_MODE_DSR_IPIP;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = lookup(t, key6(3, 80, IPPROTO_TCP));
	assert_non_null(e);
	assert_ptr_equal(lookup(t, A), e);
	assert_ptr_equal(lookup(t, C), e);
	assert_int_equal(e->generation, 4);
	assert_int_equal(stats(t).keys, 5);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- NodePort "any" keys ----------------------------------------------- */

static void
test_any_fallback(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 128, 0);
	const struct sg_svc_entry *out[SG_SVC_LOOKUP_MAX + 1];
	struct sg_svc_key ks[SG_SVC_LOOKUP_MAX + 1];
	struct tconf tc;
	uint64_t mask;
	int via;

	(void)state;
	/* Before any NodePort exists, a node address finds nothing. */
	tconf_init(&tc, 12, 2);
	tc.keys[0] = key4(20, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_null(lookup(t, key4(99, 30080, IPPROTO_TCP)));

	tconf_init(&tc, 10, 2);
	tc.keys[0] = key_any(4, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	tconf_init(&tc, 11, 2);
	tc.keys[0] = key_any(6, 30080, IPPROTO_TCP);
	tc.be[0] = be6(1, 8080, READY, 1);
	tc.be[1] = be6(2, 8080, READY, 1);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(stats(t).any_keys, 2);

	via = -1;
	assert_null(sg_svc_lookup(t, &(struct sg_svc_key){ 0 }, &via));
	assert_int_equal(via, 0);
	ks[0] = key4(99, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_lookup(t, &ks[0], &via)->id, 10);
	assert_int_equal(via, 1);
	/* An exact key wins over "any". */
	ks[0] = key4(20, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_lookup(t, &ks[0], &via)->id, 12);
	assert_int_equal(via, 0);
	ks[0] = key6(5, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_lookup(t, &ks[0], &via)->id, 11);
	assert_int_equal(via, 1);
	ks[0] = key_any(4, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_lookup(t, &ks[0], &via)->id, 10);
	assert_int_equal(via, 1);
	/* "any" is per family, protocol and port. */
	assert_null(lookup(t, key4(99, 30080, IPPROTO_UDP)));
	assert_null(lookup(t, key4(99, 30081, IPPROTO_TCP)));
	assert_null(lookup(t, key6(5, 30080, IPPROTO_SCTP)));

	ks[0] = key4(20, 30080, IPPROTO_TCP);
	ks[1] = key4(99, 30080, IPPROTO_TCP);
	ks[2] = key6(5, 30080, IPPROTO_TCP);
	ks[3] = key4(99, 30081, IPPROTO_TCP);
	ks[4] = key_any(4, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_lookup_bulk(t, ks, 5, out, &mask), 4);
	assert_int_equal(out[0]->id, 12);
	assert_int_equal(out[1]->id, 10);
	assert_int_equal(out[2]->id, 11);
	assert_null(out[3]);
	assert_int_equal(out[4]->id, 10);
	assert_int_equal(mask, 0x16);
	assert_int_equal(sg_svc_lookup_bulk(t, ks, 5, out, NULL), 4);

	/* The widest burst; the last key hits through "any" (bit 63). */
	for (unsigned int i = 0; i < SG_SVC_LOOKUP_MAX; i++)
		ks[i] = key4(20, 30080, IPPROTO_TCP);
	ks[SG_SVC_LOOKUP_MAX - 1] = key4(98, 30080, IPPROTO_TCP);
	ks[SG_SVC_LOOKUP_MAX] = ks[0];
	assert_int_equal(sg_svc_lookup_bulk(t, ks, SG_SVC_LOOKUP_MAX, out, &mask),
			 SG_SVC_LOOKUP_MAX);
	assert_int_equal(mask, 1ull << 63);
	assert_int_equal(out[SG_SVC_LOOKUP_MAX - 1]->id, 10);

	/* Bursts out of range find nothing and say so. */
	for (unsigned int i = 0; i <= SG_SVC_LOOKUP_MAX; i++)
		out[i] = (const struct sg_svc_entry *)(uintptr_t)0x1;
	mask = 7;
	assert_int_equal(sg_svc_lookup_bulk(t, ks, SG_SVC_LOOKUP_MAX + 1, out, &mask), 0);
	for (unsigned int i = 0; i <= SG_SVC_LOOKUP_MAX; i++)
		assert_null(out[i]);
	assert_int_equal(mask, 0);
	assert_int_equal(sg_svc_lookup_bulk(t, ks, 0, out, &mask), 0);

	/* Gone with the services that had them. */
	assert_int_equal(sg_svc_remove(t, 10), 0);
	assert_int_equal(sg_svc_remove(t, 11), 0);
	assert_int_equal(stats(t).any_keys, 0);
	assert_null(lookup(t, key4(99, 30080, IPPROTO_TCP)));
	assert_null(lookup(t, key6(5, 30080, IPPROTO_TCP)));
	assert_int_equal(lookup(t, key4(20, 30080, IPPROTO_TCP))->id, 12);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- the lookup cache -------------------------------------------------- */

/* The cache answers as the table does: entries, "any" mask and count. */
static void
cached_as_table(const struct sg_svc_table *t, struct sg_svc_cache *c,
		const struct sg_svc_key *ks, unsigned int n)
{
	const struct sg_svc_entry *want[SG_SVC_LOOKUP_MAX], *got[SG_SVC_LOOKUP_MAX];
	uint64_t want_mask = 0, got_mask = ~0ull;
	unsigned int want_n = sg_svc_lookup_bulk(t, ks, n, want, &want_mask);

	assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, n, got, &got_mask), want_n);
	assert_int_equal(got_mask, want_mask);
	for (unsigned int i = 0; i < n; i++)
		assert_ptr_equal(got[i], want[i]);
}

static void
test_lookup_cache(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 1024, 2048, 0);
	struct sg_svc_cache *c = sg_svc_cache_create(SOCKET_ID_ANY);
	const struct sg_svc_entry *out[SG_SVC_LOOKUP_MAX + 1];
	struct sg_svc_key ks[SG_SVC_LOOKUP_MAX + 1];
	struct tconf tc;
	uint64_t mask;

	(void)state;
	assert_non_null(c);
	sg_svc_cache_free(NULL);
	errno = 0;
	assert_null(sg_svc_cache_create(RTE_MAX_NUMA_NODES));
	assert_int_equal(errno, EINVAL);

	tconf_init(&tc, 1, 2);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	tconf_init(&tc, 2, 2);
	tc.keys[0] = key_any(4, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	tconf_init(&tc, 3, 2);
	tc.keys[0] = key6(7, 443, IPPROTO_TCP);
	tc.be[0] = be6(1, 8443, READY, 1);
	tc.be[1] = be6(2, 8443, READY, 1);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	ks[0] = key4(10, 80, IPPROTO_TCP);
	ks[1] = key4(99, 30080, IPPROTO_TCP);	/* the NodePort, through "any" */
	ks[2] = key6(7, 443, IPPROTO_TCP);
	ks[3] = key4(10, 81, IPPROTO_TCP);	/* nobody's */
	ks[4] = key4(10, 80, IPPROTO_TCP);	/* twice in one burst */
	/* Filled, then answered from the cache. */
	cached_as_table(t, c, ks, 5);
	cached_as_table(t, c, ks, 5);

	/* A replaced service: the new entry, not the one the cache held. */
	tconf_init(&tc, 1, 3);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, 1, out, NULL), 1);
	assert_ptr_equal(out[0], sg_svc_get(t, 1));
	assert_int_equal(out[0]->generation, 2);
	/* A VIP published on the node address wins over the NodePort's "any". */
	cached_as_table(t, c, ks, 5);
	tconf_init(&tc, 4, 2);
	tc.keys[0] = key4(99, 30080, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_lookup_bulk_cached(t, c, &ks[1], 1, out, &mask), 1);
	assert_int_equal(out[0]->id, 4);
	assert_int_equal(mask, 0);
	/* A removed service is gone from the cache's answers too. */
	cached_as_table(t, c, ks, 5);
	assert_int_equal(sg_svc_remove(t, 3), 0);
	cached_as_table(t, c, ks, 5);

	/* More services than the cache has slots: evicted ones are looked up again. */
	for (uint32_t id = 10; id < 10 + 700; id++) {
		tconf_init(&tc, id, 1);
		tc.keys[0] = key4((uint8_t)(id % 200), (uint16_t)(1000 + id), IPPROTO_UDP);
		assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t id = 10; id < 10 + 700; id += 32) {
			unsigned int n = RTE_MIN(32u, 10 + 700 - id);

			for (unsigned int i = 0; i < n; i++)
				ks[i] = key4((uint8_t)((id + i) % 200), (uint16_t)(1000 + id + i),
					     IPPROTO_UDP);
			assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, n, out, NULL), n);
			for (unsigned int i = 0; i < n; i++)
				assert_int_equal(out[i]->id, id + i);
		}
	}

	/* Bursts out of range: as sg_svc_lookup_bulk(), nothing found. */
	mask = 7;
	out[0] = (const struct sg_svc_entry *)(uintptr_t)0x1;
	assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, SG_SVC_LOOKUP_MAX + 1, out, &mask),
			 0);
	assert_null(out[0]);
	assert_int_equal(mask, 0);
	assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, 0, out, &mask), 0);
	sg_svc_table_free(t);

	/*
	 * A cache that outlives its table, on a new table as busy as the old
	 * one (their versions would be the same if they counted alike): the
	 * new table's entry, never the freed one.
	 */
	t = table_new(v, 16, 16, 0);
	for (uint32_t round = 0; round < 2; round++) {
		tconf_init(&tc, 100 + round, 2);
		assert_int_equal(sg_svc_publish(t, &tc.c), 0);
		ks[0] = key4(10, 80, IPPROTO_TCP);
		assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, 1, out, NULL), 1);
		assert_int_equal(out[0]->id, 100 + round);
		sg_svc_table_free(t);
		t = table_new(v, 16, 16, 0);
	}
	sg_svc_table_free(t);
	sg_svc_cache_free(c);
	rte_free(v);
}

/*
 * New flows spread over more services than the cache holds: it stands
 * aside, answers right all the same, and comes back for a hot few.
 */
static void
test_lookup_cache_rest(void **state)
{
	enum { N_SVC = 2000, ROUNDS = 40 };
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, N_SVC, N_SVC, 0);
	struct sg_svc_cache *c = sg_svc_cache_create(SOCKET_ID_ANY);
	const struct sg_svc_entry *out[32];
	const struct sg_svc_cache_stats *st = sg_svc_cache_stats(c);
	struct sg_svc_key ks[32];
	uint64_t rested, hits;
	struct tconf tc;

	(void)state;
	assert_non_null(c);
	assert_null(sg_svc_cache_stats(NULL));
	for (uint32_t id = 0; id < N_SVC; id++) {
		tconf_init(&tc, id + 1, 1);
		tc.keys[0] = key4((uint8_t)(id % 250), (uint16_t)(1000 + id), IPPROTO_TCP);
		assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	}
	/* Every service in turn, 40 times over: hardly a hit to be had. */
	for (uint32_t k = 0; k < ROUNDS * N_SVC; k += 32) {
		for (uint32_t i = 0; i < 32; i++) {
			uint32_t id = (k + i) % N_SVC;

			ks[i] = key4((uint8_t)(id % 250), (uint16_t)(1000 + id), IPPROTO_TCP);
		}
		assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, 32, out, NULL), 32);
		for (uint32_t i = 0; i < 32; i++)
			assert_int_equal(out[i]->id, (k + i) % N_SVC + 1);
	}
	assert_true(st->rested > st->hits + st->misses);
	/* A few hot services: once it has rested, the cache answers again. */
	for (uint32_t i = 0; i < 32; i++)
		ks[i] = key4((uint8_t)(i % 4), (uint16_t)(1000 + i % 4), IPPROTO_TCP);
	for (uint32_t k = 0; k < ROUNDS * N_SVC; k += 32)
		assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, 32, out, NULL), 32);
	rested = st->rested;
	hits = st->hits;
	for (uint32_t k = 0; k < 16 * 1024; k += 32) {
		assert_int_equal(sg_svc_lookup_bulk_cached(t, c, ks, 32, out, NULL), 32);
		assert_int_equal(out[5]->id, 2);
	}
	assert_int_equal(st->rested, rested);
	assert_int_equal(st->hits, hits + 16 * 1024);
	sg_svc_table_free(t);
	sg_svc_cache_free(c);
	rte_free(v);
}

/* ---- source ranges ----------------------------------------------------- */

static int
allowed4(const struct sg_svc_entry *e, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	uint8_t x[4] = { a, b, c, d };
	rte_be32_t s;

	memcpy(&s, x, 4);
	return sg_svc_src_allowed4(e, s);
}

static int
allowed6(const struct sg_svc_entry *e, uint16_t g3, uint16_t g4, uint16_t last)
{
	uint8_t x[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	x[4] = (uint8_t)(g3 >> 8);
	x[5] = (uint8_t)g3;
	x[6] = (uint8_t)(g4 >> 8);
	x[7] = (uint8_t)g4;
	x[15] = (uint8_t)last;
	return sg_svc_src_allowed6(e, x);
}

static void
test_source_ranges(void **state)
{
	const uint8_t n48[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01 };
	const uint8_t n57[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x00, 0x80 };
	const uint8_t h128[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7 };
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	const struct sg_svc_entry *e;
	struct tconf tc;

	(void)state;
	/* None: everyone. */
	tconf_init(&tc, 1, 1);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_int_equal(e->flags & SG_SVC_F_SRC_RANGES, 0);
	assert_true(allowed4(e, 198, 51, 100, 1));
	assert_true(allowed6(e, 1, 0, 1));

	/* IPv4 only: /24, /31 and a /24 given with host bits; IPv6 refused. */
	tc.src[0] = pfx4(198, 51, 100, 0, 24);
	tc.src[1] = pfx4(203, 0, 113, 6, 31);
	tc.src[2] = pfx4(192, 0, 2, 77, 24);
	tc.c.n_src_ranges = 3;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_true(e->flags & SG_SVC_F_SRC_RANGES);
	assert_int_equal(e->n_src4, 3);
	assert_int_equal(e->n_src6, 0);
	assert_true(allowed4(e, 198, 51, 100, 0));
	assert_true(allowed4(e, 198, 51, 100, 255));
	assert_false(allowed4(e, 198, 51, 101, 1));
	assert_false(allowed4(e, 199, 51, 100, 1));
	assert_false(allowed4(e, 203, 0, 113, 5));
	assert_true(allowed4(e, 203, 0, 113, 6));
	assert_true(allowed4(e, 203, 0, 113, 7));
	assert_false(allowed4(e, 203, 0, 113, 8));
	assert_true(allowed4(e, 192, 0, 2, 1));
	assert_false(allowed4(e, 192, 0, 3, 1));
	assert_false(allowed6(e, 1, 0, 1));

	/* IPv6: /48, /57 (a mask ending inside a byte), /128; IPv4 /0. */
	tc.src[0] = pfx6(n48, 48);
	tc.src[1] = pfx6(n57, 57);
	tc.src[2] = pfx6(h128, 128);
	tc.src[3] = pfx4(0, 0, 0, 0, 0);
	tc.c.n_src_ranges = 4;
	tc.c.mode = SG_SVC_MODE_DSR_GUE;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_int_equal(e->n_src4, 1);
	assert_int_equal(e->n_src6, 3);
	assert_true(allowed4(e, 1, 2, 3, 4));
	assert_true(allowed4(e, 255, 255, 255, 255));
	assert_true(allowed6(e, 1, 0xffff, 1));
	assert_false(allowed6(e, 2, 0, 1));
	assert_true(allowed6(e, 0, 0x00ff, 1));
	assert_true(allowed6(e, 0, 0x0080, 0));
	assert_false(allowed6(e, 0, 0x007f, 1));
	assert_false(allowed6(e, 0, 0x0100, 1));
	assert_true(allowed6(e, 9, 0, 7));
	assert_false(allowed6(e, 9, 0, 6));

	/* The most of each family. */
	for (unsigned int i = 0; i < SG_SVC_MAX_SRC_RANGES; i++) {
		uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, (uint8_t)(100 + i) };

		tc.src[i] = pfx4(198, 51, (uint8_t)i, 0, 24);
		tc.src[SG_SVC_MAX_SRC_RANGES + i] = pfx6(a, 48);
	}
	tc.c.n_src_ranges = 2 * SG_SVC_MAX_SRC_RANGES;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_true(allowed4(e, 198, 51, SG_SVC_MAX_SRC_RANGES - 1, 9));
	assert_false(allowed4(e, 198, 51, SG_SVC_MAX_SRC_RANGES, 9));
	assert_true(allowed6(e, 100 + SG_SVC_MAX_SRC_RANGES - 1, 0, 1));
	assert_false(allowed6(e, 100 + SG_SVC_MAX_SRC_RANGES, 0, 1));
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- backend choice and Maglev ----------------------------------------- */

/* Which backend indices the entry's Maglev table uses, as a bit set. */
static uint64_t
table_members(const struct sg_svc_entry *e)
{
	uint64_t m = 0;

	for (uint32_t s = 0; s < e->maglev_size; s++) {
		assert_true(e->maglev[s] >= 1 && e->maglev[s] <= e->n_backends);
		m |= 1ull << e->maglev[s];
	}
	return m;
}

/*
 * The backends sg_svc_backend_usable() says new flows may go to, as a
 * bitmask of indices: what the data plane checks a remembered backend
 * with must agree with what the Maglev table was filled with.
 */
static uint32_t
usable_members(const struct sg_svc_entry *e)
{
	bool any_ready = (e->flags & SG_SVC_F_ANY_READY) != 0;
	uint32_t m = 0;

	for (uint16_t i = 1; i <= e->n_backends; i++)
		if (sg_svc_backend_usable(&e->backends[i], any_ready))
			m |= 1u << i;
	return m;
}

static void
test_backend_selection(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	const struct sg_svc_entry *e;
	struct tconf tc;

	(void)state;
	/* Ready ones only, when there are some. */
	tconf_init(&tc, 1, 4);
	tc.be[0].state = READY;
	tc.be[1].state = READY | SERVING;
	tc.be[2].state = SERVING | TERMINATING;
	tc.be[3].state = 0;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_int_equal(e->n_usable, 2);
	assert_int_equal(table_members(e), (1u << 1) | (1u << 2));
	assert_true(e->flags & SG_SVC_F_ANY_READY);
	assert_int_equal(usable_members(e), table_members(e));
	for (uint32_t h = 0; h < 1000; h++) {
		uint16_t b = sg_svc_backend_for_hash(e, h * 2654435761u);

		assert_true(b == 1 || b == 2);
		assert_int_equal(b, e->maglev[(h * 2654435761u) % e->maglev_size]);
	}

	/* None ready: serving and terminating ones (graceful termination). */
	tc.be[0].state = SERVING | TERMINATING;
	tc.be[1].state = TERMINATING;
	tc.be[2].state = SERVING;
	tc.be[3].state = SERVING | TERMINATING;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_int_equal(e->n_usable, 2);
	assert_int_equal(table_members(e), (1u << 1) | (1u << 4));
	assert_false(e->flags & SG_SVC_F_ANY_READY);
	assert_int_equal(usable_members(e), table_members(e));

	/* A ready backend of weight 0 is drained: it does not count as ready. */
	tc.be[0].state = READY;
	tc.be[0].weight = 0;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_int_equal(table_members(e), 1u << 4);
	assert_false(e->flags & SG_SVC_F_ANY_READY);
	assert_int_equal(usable_members(e), table_members(e));
	/* M counts the weighted backends whatever their state: 3 of them. */
	assert_int_equal(e->maglev_size, sg_maglev_size(3, SG_MAGLEV_DEFAULT_MAX_SIZE));

	/* None usable: a valid entry with no table. */
	for (unsigned int i = 0; i < 4; i++)
		tc.be[i].state = i == 0 ? READY : TERMINATING;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	assert_non_null(lookup(t, key4(10, 80, IPPROTO_TCP)));
	assert_int_equal(e->n_usable, 0);
	assert_int_equal(e->maglev_size, 0);
	assert_null(e->maglev);
	assert_int_equal(sg_svc_backend_for_hash(e, 12345), 0);
	assert_int_equal(e->n_backends, 4);

	/* No backends at all, and only zero weights: the same. */
	tconf_init(&tc, 2, 0);
	tc.keys[0] = key4(11, 80, IPPROTO_TCP);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 2);
	assert_int_equal(e->n_backends, 0);
	assert_int_equal(e->maglev_size, 0);
	assert_int_equal(sg_svc_backend_for_hash(e, 1), 0);
	tconf_init(&tc, 2, 3);
	tc.keys[0] = key4(11, 80, IPPROTO_TCP);
	for (unsigned int i = 0; i < 3; i++)
		tc.be[i].weight = 0;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_get(t, 2)->maglev_size, 0);
	sg_svc_table_free(t);
	rte_free(v);
}

/*
 * The serving epoch moves when a backend stops taking traffic (removed, or
 * neither ready nor serving) and for nothing else, so that workers recheck
 * their UDP flows only when one of them may be stranded.
 */
static void
test_serving_epoch(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	struct tconf tc;
	uint32_t ep;

	(void)state;
	tconf_init(&tc, 1, 3);
	ep = sg_svc_serving_epoch(t);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_serving_epoch(t), ep);

	/* Added, reordered, reweighted, ready -> serving and terminating: same. */
	tc.be[3] = be4(4, 8080, READY, 1);
	tc.c.n_backends = 4;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	tc.be[0] = be4(4, 8080, READY, 1);
	tc.be[3] = be4(1, 8080, READY, 3);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	tc.be[1].state = SERVING | TERMINATING;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_serving_epoch(t), ep);

	/* No longer serving: moves. */
	tc.be[1].state = TERMINATING;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_serving_epoch(t), ep + 1);
	/* Was not serving, is gone: same. Serving, gone: moves. */
	tc.be[1] = tc.be[3];
	tc.c.n_backends = 3;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_serving_epoch(t), ep + 1);
	tc.c.n_backends = 2;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_serving_epoch(t), ep + 2);
	/* Same address, other port: another backend. */
	tc.be[0].port = rte_cpu_to_be_16(9090);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	assert_int_equal(sg_svc_serving_epoch(t), ep + 3);

	/* A refused publication changes nothing; a removal moves it. */
	tc.c.n_backends = 0;
	tc.c.mode = 99;
	assert_int_equal(sg_svc_publish(t, &tc.c), -EINVAL);
	assert_int_equal(sg_svc_serving_epoch(t), ep + 3);
	assert_int_equal(sg_svc_remove(t, 1), 0);
	assert_int_equal(sg_svc_serving_epoch(t), ep + 4);
	sg_svc_table_free(t);
	rte_free(v);
}

static void
test_maglev_consistency(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	struct sg_svc_table *capped = table_new(v, 16, 64, 211);
	struct sg_maglev_backend mb[10];
	const struct sg_svc_entry *e, *f;
	uint32_t counts[11] = { 0 }, m;
	struct tconf tc;
	uint16_t *ref;

	(void)state;
	tconf_init(&tc, 1, 10);
	for (unsigned int i = 0; i < 10; i++) {
		tc.be[i] = be4((uint8_t)(40 + i * 7), (uint16_t)(8000 + i), i % 4 ? READY : 0,
			       1 + i % 3);
		mb[i].family = 4;
		memcpy(mb[i].addr, tc.be[i].addr, 16);
		mb[i].port = (uint16_t)(8000 + i);
		mb[i].weight = i % 4 ? tc.be[i].weight : 0;
	}
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e = sg_svc_get(t, 1);
	m = sg_maglev_size(10, SG_MAGLEV_DEFAULT_MAX_SIZE);
	assert_int_equal(e->maglev_size, m);
	assert_int_equal(e->n_usable, 7);

	/* The same table sg_maglev_build() makes, shifted past slot 0. */
	ref = malloc(sizeof(*ref) * m);
	assert_non_null(ref);
	assert_int_equal(sg_maglev_build(mb, 10, ref, m), 0);
	for (uint32_t s = 0; s < m; s++) {
		assert_int_equal(e->maglev[s], ref[s] + 1);
		counts[e->maglev[s]]++;
	}
	free(ref);
	for (unsigned int i = 0; i < 10; i++)
		assert_true(i % 4 ? counts[i + 1] > 0 : counts[i + 1] == 0);

	/* Listed in another order, the same flows reach the same pods. */
	tconf_init(&tc, 2, 10);
	tc.keys[0] = key4(11, 80, IPPROTO_TCP);
	for (unsigned int i = 0; i < 10; i++)
		tc.be[i] = e->backends[1 + (i * 3) % 10];
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	f = sg_svc_get(t, 2);
	assert_int_equal(f->maglev_size, m);
	for (uint32_t s = 0; s < m; s++)
		assert_true(backend_same(&e->backends[e->maglev[s]], &f->backends[f->maglev[s]]));

	/* The table's cap applies. */
	assert_int_equal(sg_svc_publish(capped, &tc.c), 0);
	assert_int_equal(sg_svc_get(capped, 2)->maglev_size, 211);
	sg_svc_table_free(capped);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- iteration and stats ----------------------------------------------- */

struct walk {
	uint32_t seen;	 /* bit per id */
	unsigned int calls;
	unsigned int stop_at;
	uint64_t bytes;
};

static int
walk_fn(const struct sg_svc_entry *e, void *arg)
{
	struct walk *w = arg;

	w->calls++;
	assert_true(e->id < 32);
	assert_false(w->seen & (1u << e->id));
	w->seen |= 1u << e->id;
	w->bytes += e->alloc_size;
	return w->calls == w->stop_at ? 7 : 0;
}

static void
test_foreach_stats(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	struct walk w;
	struct tconf tc;

	(void)state;
	for (uint32_t id = 1; id <= 5; id++) {
		tconf_init(&tc, id, id);
		tc.keys[0] = key4((uint8_t)id, 80, IPPROTO_TCP);
		tc.keys[1] = key4((uint8_t)id, 443, IPPROTO_TCP);
		tc.c.n_keys = 2;
		assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	}
	memset(&w, 0, sizeof(w));
	assert_int_equal(sg_svc_foreach(t, walk_fn, &w), 0);
	assert_int_equal(w.calls, 5);
	assert_int_equal(w.seen, 0x3e);
	assert_int_equal(stats(t).entry_bytes, w.bytes);
	assert_int_equal(stats(t).services, 5);
	assert_int_equal(stats(t).keys, 10);

	memset(&w, 0, sizeof(w));
	w.stop_at = 3;
	assert_int_equal(sg_svc_foreach(t, walk_fn, &w), 7);
	assert_int_equal(w.calls, 3);

	/* Removal from the middle keeps the rest reachable by id. */
	assert_int_equal(sg_svc_remove(t, 2), 0);
	for (uint32_t id = 1; id <= 5; id++)
		assert_true((sg_svc_get(t, id) == NULL) == (id == 2));
	memset(&w, 0, sizeof(w));
	assert_int_equal(sg_svc_foreach(t, walk_fn, &w), 0);
	assert_int_equal(w.seen, 0x3a);
	for (uint32_t id = 1; id <= 5; id++)
		if (id != 2)
			assert_int_equal(sg_svc_remove(t, id), 0);
	assert_int_equal(sg_svc_reclaim(t), 15);
	assert_int_equal(stats(t).entry_bytes, 0);
	assert_int_equal(stats(t).deferred, 0);
	assert_int_equal(stats(t).removes, 5);
	assert_int_equal(stats(t).publishes, 5);
	memset(&w, 0, sizeof(w));
	assert_int_equal(sg_svc_foreach(t, walk_fn, &w), 0);
	assert_int_equal(w.calls, 0);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- RCU: nothing freed before readers are done ------------------------ */

static void
test_deferred_free(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 16, 64, 0);
	const struct sg_svc_entry *e1, *e2;
	struct tconf tc;

	(void)state;
	/* This thread plays a worker: online, between two quiescent states. */
	assert_int_equal(rte_rcu_qsbr_thread_register(v, 0), 0);
	rte_rcu_qsbr_thread_online(v, 0);

	tconf_init(&tc, 1, 3);
	tc.keys[1] = key4(11, 80, IPPROTO_TCP);
	tc.c.n_keys = 2;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e1 = lookup(t, key4(11, 80, IPPROTO_TCP));
	assert_non_null(e1);
	tc.c.n_keys = 1;
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	e2 = lookup(t, key4(10, 80, IPPROTO_TCP));
	assert_ptr_not_equal(e1, e2);
	assert_null(lookup(t, key4(11, 80, IPPROTO_TCP)));

	/* The old entry and the key slot wait; the reader can still read e1. */
	assert_int_equal(stats(t).deferred, 2);
	assert_int_equal(sg_svc_reclaim(t), 0);
	assert_int_equal(sg_svc_reclaim(t), 0);
	assert_int_equal(e1->id, 1);
	assert_string_equal(e1->name, "default/svc1:http");
	assert_int_equal(e1->backends[3].addr[3], 3);

	rte_rcu_qsbr_quiescent(v, 0);
	assert_int_equal(sg_svc_reclaim(t), 2);
	assert_int_equal(stats(t).deferred, 0);
	assert_int_equal(stats(t).entry_bytes, e2->alloc_size);

	/* Left pending at free: the table frees it (LSan checks). */
	assert_int_equal(sg_svc_remove(t, 1), 0);
	assert_int_equal(stats(t).deferred, 2);
	rte_rcu_qsbr_thread_offline(v, 0);
	assert_int_equal(rte_rcu_qsbr_thread_unregister(v, 0), 0);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- a full defer queue makes the writer wait for one grace period ----- */

struct waiter {
	struct rte_rcu_qsbr *v;
	uint64_t after;	/* report quiescent once the token passes this */
	int stop;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	while (__atomic_load_n(&w->v->token, __ATOMIC_ACQUIRE) <=
	       __atomic_load_n(&w->after, __ATOMIC_ACQUIRE))
		rte_pause();
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		rte_rcu_qsbr_quiescent(w->v, 0);
		rte_pause();
	}
	return NULL;
}

static void
test_defer_queue_full(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 4, 4, 0);
	struct waiter w = { .v = v, .after = UINT64_MAX };
	struct sg_svc_stats st;
	struct tconf tc;
	pthread_t th;

	(void)state;
	assert_int_equal(rte_rcu_qsbr_thread_register(v, 0), 0);
	rte_rcu_qsbr_thread_online(v, 0);
	assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);

	/* Fill the queue exactly while the reader never reports. */
	tconf_init(&tc, 1, 2);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	st = stats(t);
	for (uint32_t i = 0; i < st.deferred_max; i++)
		assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	st = stats(t);
	assert_int_equal(st.deferred, st.deferred_max);
	assert_int_equal(st.sync_waits, 0);
	assert_int_equal(sg_svc_reclaim(t), 0);

	/*
	 * The next replacement finds no room: it must wait for the reader,
	 * which reports only once the writer has started that wait.
	 */
	__atomic_store_n(&w.after, __atomic_load_n(&v->token, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	assert_int_equal(sg_svc_publish(t, &tc.c), 0);
	st = stats(t);
	assert_int_equal(st.sync_waits, 1);
	assert_int_equal(st.deferred, 1);
	assert_int_equal(sg_svc_get(t, 1)->generation, st.deferred_max + 2);

	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	rte_rcu_qsbr_thread_offline(v, 0);
	assert_int_equal(rte_rcu_qsbr_thread_unregister(v, 0), 0);
	sg_svc_table_free(t);
	rte_free(v);
}

/*
 * Nothing stays deferred for ever: once the reader has reported, everything
 * replaced or removed while it was busy is reclaimed, and the byte count of
 * entries returns to zero. (That the bytes really go back to malloc is for
 * LeakSanitizer to check in the ASan build.)
 */
static void
test_reclaim_all(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(1);
	struct sg_svc_table *t = table_new(v, 64, 256, 0);
	struct tconf tc;
	(void)state;
	assert_int_equal(rte_rcu_qsbr_thread_register(v, 0), 0);
	rte_rcu_qsbr_thread_online(v, 0);
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t id = 1; id <= 40; id++) {
			tconf_init(&tc, id, 1 + id % 7);
			tc.keys[0] = key4((uint8_t)id, (uint16_t)(80 + round % 2), IPPROTO_TCP);
			assert_int_equal(sg_svc_publish(t, &tc.c), 0);
		}
	}
	for (uint32_t id = 1; id <= 40; id += 3)
		assert_int_equal(sg_svc_remove(t, id), 0);
	assert_true(stats(t).deferred > 80);
	assert_int_equal(sg_svc_reclaim(t), 0);

	rte_rcu_qsbr_quiescent(v, 0);
	for (uint32_t id = 1; id <= 40; id++)
		if (id % 3 != 1)
			assert_int_equal(sg_svc_remove(t, id), 0);
	rte_rcu_qsbr_thread_offline(v, 0);
	assert_true(sg_svc_reclaim(t) > 0);
	assert_int_equal(stats(t).deferred, 0);
	assert_int_equal(stats(t).entry_bytes, 0);
	assert_int_equal(rte_rcu_qsbr_thread_unregister(v, 0), 0);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- readers against a busy writer ------------------------------------- */

#define CC_READERS 2
#define CC_STABLE 64
#define CC_CHURN 16
#define CC_VOLATILE 8
#define CC_ITERATIONS 30000
#define CC_MAX_BE 12
#define CC_NKEYS (CC_STABLE + 3 * CC_CHURN + CC_VOLATILE)

enum cc_kind { CC_K_STABLE, CC_K_A, CC_K_B, CC_K_C, CC_K_VOLATILE };

struct cc_key {
	struct sg_svc_key key;
	uint32_t id;
	enum cc_kind kind;
};

static struct cc_key cc_keys[CC_NKEYS];

struct cc_reader {
	pthread_t th;
	struct rte_rcu_qsbr *v;
	const struct sg_svc_table *t;
	unsigned int tid;
	int *stop;
	uint64_t rounds;      /* atomic: lets the writer wait for a start */
	uint64_t lookups;
	uint64_t hits;
	uint64_t must_misses; /* stable or A keys that missed: must stay 0 */
	uint64_t bad;	      /* entries failing their invariants: must stay 0 */
	char first_bad[160];
};

/* Service ids by kind: stable 1000+i, churned 2000+i, volatile 3000+i. */
static uint32_t
cc_id(unsigned int kind_base, unsigned int i)
{
	return kind_base + i;
}

static uint32_t
cc_nbe(uint32_t gen)
{
	return 1 + gen % CC_MAX_BE;
}

static uint8_t
cc_state(uint32_t gen, uint32_t k)
{
	if (gen % 5 == 0)
		return 0;
	if (gen % 5 == 1)
		return SERVING | TERMINATING;
	return k % 2 ? READY : 0;
}

/* IPv6 pod whose address carries service id, generation and index. */
static struct sg_svc_backend
cc_backend(uint32_t id, uint32_t gen, uint32_t k)
{
	struct sg_svc_backend b;

	memset(&b, 0, sizeof(b));
	b.family = 6;
	b.addr[0] = 0x20;
	b.addr[1] = 0x01;
	b.addr[2] = 0x0d;
	b.addr[3] = 0xb8;
	rte_be32_t x = rte_cpu_to_be_32(id);
	memcpy(&b.addr[4], &x, 4);
	x = rte_cpu_to_be_32(gen);
	memcpy(&b.addr[8], &x, 4);
	b.addr[15] = (uint8_t)k;
	b.port = rte_cpu_to_be_16((uint16_t)(8000 + k));
	b.state = cc_state(gen, k);
	b.weight = 1 + k % 3;
	return b;
}

static struct sg_svc_key
cc_svc_key(uint32_t id, enum cc_kind kind)
{
	uint32_t i = id % 1000;
	uint16_t port = 0;

	switch (kind) {
	case CC_K_STABLE: port = (uint16_t)(10000 + i); break;
	case CC_K_A: port = (uint16_t)(20000 + i); break;
	case CC_K_B: port = (uint16_t)(21000 + i); break;
	case CC_K_C: port = (uint16_t)(22000 + i); break;
	case CC_K_VOLATILE: port = (uint16_t)(23000 + i); break;
	}
	return key4(1, port, IPPROTO_TCP);
}

static void
cc_conf(struct tconf *t, uint32_t id, uint32_t gen)
{
	const uint8_t n6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff };

	memset(t, 0, sizeof(*t));
	t->c.id = id;
	t->c.mode = gen & 1 ? SG_SVC_MODE_DSR_GUE : SG_SVC_MODE_DSR_IPIP;
	if (gen & 1) {
		t->c.flags = SG_SVC_F_AFFINITY;
		t->c.affinity_timeout = 1 + gen % SG_SVC_AFFINITY_MAX;
	}
	if (id < 2000) {
		t->keys[0] = cc_svc_key(id, CC_K_STABLE);
		t->c.n_keys = 1;
	} else if (id < 3000) {
		t->keys[0] = cc_svc_key(id, CC_K_A);
		t->keys[1] = cc_svc_key(id, gen % 2 ? CC_K_C : CC_K_B);
		t->c.n_keys = 2;
	} else {
		t->keys[0] = cc_svc_key(id, CC_K_VOLATILE);
		t->c.n_keys = 1;
	}
	t->c.keys = t->keys;
	if (gen % 3 == 0) {
		t->src[0] = pfx4(198, 51, 100, 0, 24);
		t->src[1] = pfx6(n6, 48);
		t->c.n_src_ranges = 2;
	}
	t->c.src_ranges = t->src;
	for (uint32_t k = 1; k <= cc_nbe(gen); k++)
		t->be[k - 1] = cc_backend(id, gen, k);
	t->c.backends = t->be;
	t->c.n_backends = cc_nbe(gen);
	snprintf(t->name, sizeof(t->name), "cc/svc%u:%u", id, gen);
	t->c.name = t->name;
}

static int
cc_fail(struct cc_reader *r, const char *what, uint32_t id)
{
	if (r->bad++ == 0)
		snprintf(r->first_bad, sizeof(r->first_bad), "service %u: %s", id, what);
	return 0;
}

/*
 * Every part of the entry must come from one and the same publication:
 * the generation is written in the name, in every backend address, and is
 * implied by the mode, flags, ranges, keys and Maglev table.
 */
static int
cc_verify(struct cc_reader *r, const struct sg_svc_entry *e, const struct cc_key *ck, int full)
{
	struct sg_svc_backend b, zero;
	uint32_t gen, n, usable = 0;
	char *end;

	if (e->id != ck->id)
		return cc_fail(r, "wrong entry for key", ck->id);
	if (strncmp(e->name, "cc/svc", 6) != 0)
		return cc_fail(r, "name", ck->id);
	if (strtoul(e->name + 6, &end, 10) != e->id || *end != ':')
		return cc_fail(r, "name id", ck->id);
	gen = (uint32_t)strtoul(end + 1, NULL, 10);
	if (gen != e->generation || gen == 0)
		return cc_fail(r, "generation", ck->id);
	if (ck->kind == CC_K_B && gen % 2 != 0)
		return cc_fail(r, "key B reached an odd generation", ck->id);
	if (ck->kind == CC_K_C && gen % 2 != 1)
		return cc_fail(r, "key C reached an even generation", ck->id);
	if (e->mode != (gen & 1 ? SG_SVC_MODE_DSR_GUE : SG_SVC_MODE_DSR_IPIP))
		return cc_fail(r, "mode", ck->id);
	if ((e->flags & SG_SVC_F_AFFINITY) != (gen & 1 ? SG_SVC_F_AFFINITY : 0u) ||
	    e->affinity_timeout != (gen & 1 ? 1 + gen % SG_SVC_AFFINITY_MAX : 0u))
		return cc_fail(r, "affinity", ck->id);
	if (gen % 3 == 0) {
		if (!(e->flags & SG_SVC_F_SRC_RANGES) || e->n_src4 != 1 || e->n_src6 != 1 ||
		    e->src4[0].net != rte_cpu_to_be_32(0xc6336400u) ||
		    e->src4[0].mask != rte_cpu_to_be_32(0xffffff00u))
			return cc_fail(r, "source ranges", ck->id);
	} else if ((e->flags & SG_SVC_F_SRC_RANGES) || e->n_src4 || e->n_src6) {
		return cc_fail(r, "source ranges present", ck->id);
	}
	n = cc_nbe(gen);
	if (e->n_backends != n)
		return cc_fail(r, "backend count", ck->id);
	memset(&zero, 0, sizeof(zero));
	if (!backend_same(&e->backends[0], &zero))
		return cc_fail(r, "backend 0", ck->id);
	for (uint32_t k = 1; k <= n; k++) {
		b = cc_backend(e->id, gen, k);
		if (!backend_same(&e->backends[k], &b))
			return cc_fail(r, "backend", ck->id);
		usable += cc_state(gen, k) != 0;
	}
	if (e->n_usable != usable ||
	    e->maglev_size != (usable ? sg_maglev_size(n, SG_MAGLEV_DEFAULT_MAX_SIZE) : 0))
		return cc_fail(r, "maglev size", ck->id);
	for (uint32_t s = 0; s < e->maglev_size; s += full ? 1 : e->maglev_size / 7 + 1) {
		uint16_t x = e->maglev[s];

		if (x < 1 || x > n || cc_state(gen, x) == 0)
			return cc_fail(r, "maglev slot", ck->id);
	}
	if (e->n_keys != (e->id >= 2000 && e->id < 3000 ? 2u : 1u))
		return cc_fail(r, "key count", ck->id);
	for (uint32_t i = 0; i < e->n_keys; i++) {
		enum cc_kind kind = e->id < 2000 ? CC_K_STABLE :
				    e->id >= 3000 ? CC_K_VOLATILE :
				    i == 0 ? CC_K_A : gen % 2 ? CC_K_C : CC_K_B;
		struct sg_svc_key k = cc_svc_key(e->id, kind);

		if (memcmp(&e->keys[i], &k, sizeof(k)) != 0)
			return cc_fail(r, "keys", ck->id);
	}
	return 1;
}

static void *
cc_reader_main(void *arg)
{
	struct cc_reader *r = arg;
	const struct sg_svc_entry *out[32];
	struct sg_svc_key ks[32];
	unsigned int cursor = r->tid * 17;
	uint64_t round = 0;
	/* Big enough for every key: cached entries live across many publications. */
	struct sg_svc_cache *cache = sg_svc_cache_create(SOCKET_ID_ANY);

	if (cache == NULL) {
		cc_fail(r, "no cache", 0);
		return NULL;
	}
	rte_rcu_qsbr_thread_online(r->v, r->tid);
	while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
		const struct cc_key *batch[32];
		unsigned int n = 8 + (unsigned int)(round % 25);

		for (unsigned int i = 0; i < n; i++) {
			batch[i] = &cc_keys[(cursor + i * 7) % CC_NKEYS];
			ks[i] = batch[i]->key;
		}
		cursor += n;
		if (round % 5 == 0) {
			for (unsigned int i = 0; i < n; i++)
				out[i] = sg_svc_lookup(r->t, &ks[i], NULL);
		} else if (round % 5 == 1) {
			sg_svc_lookup_bulk(r->t, ks, n, out, NULL);
		} else {
			sg_svc_lookup_bulk_cached(r->t, cache, ks, n, out, NULL);
		}
		for (unsigned int i = 0; i < n; i++) {
			r->lookups++;
			if (out[i] == NULL) {
				if (batch[i]->kind == CC_K_STABLE || batch[i]->kind == CC_K_A)
					r->must_misses++;
				continue;
			}
			r->hits++;
			cc_verify(r, out[i], batch[i], round % 64 == 0);
		}
		round++;
		__atomic_store_n(&r->rounds, round, __ATOMIC_RELEASE);
		/* From here on no entry found above is touched again. */
		rte_rcu_qsbr_quiescent(r->v, r->tid);
	}
	rte_rcu_qsbr_thread_offline(r->v, r->tid);
	sg_svc_cache_free(cache);
	return NULL;
}

static void
test_concurrent_replace(void **state)
{
	struct rte_rcu_qsbr *v = qsbr_new(CC_READERS);
	struct sg_svc_table *t = table_new(v, 256, 512, 0);
	struct cc_reader readers[CC_READERS];
	uint32_t churn_gen[CC_CHURN] = { 0 }, vol_gen[CC_VOLATILE] = { 0 };
	uint64_t lookups = 0, hits = 0, replaced = 0;
	struct sg_svc_stats st;
	uint64_t live_bytes = 0;
	struct tconf tc;
	unsigned int nk = 0;
	int stop = 0;

	(void)state;
	for (unsigned int i = 0; i < CC_STABLE; i++) {
		cc_conf(&tc, cc_id(1000, i), 1);
		assert_int_equal(sg_svc_publish(t, &tc.c), 0);
		cc_keys[nk++] = (struct cc_key){ tc.keys[0], tc.c.id, CC_K_STABLE };
	}
	for (unsigned int i = 0; i < CC_CHURN; i++) {
		uint32_t id = cc_id(2000, i);

		cc_conf(&tc, id, ++churn_gen[i]);
		assert_int_equal(sg_svc_publish(t, &tc.c), 0);
		cc_keys[nk++] = (struct cc_key){ cc_svc_key(id, CC_K_A), id, CC_K_A };
		cc_keys[nk++] = (struct cc_key){ cc_svc_key(id, CC_K_B), id, CC_K_B };
		cc_keys[nk++] = (struct cc_key){ cc_svc_key(id, CC_K_C), id, CC_K_C };
	}
	for (unsigned int i = 0; i < CC_VOLATILE; i++) {
		uint32_t id = cc_id(3000, i);

		cc_keys[nk++] = (struct cc_key){ cc_svc_key(id, CC_K_VOLATILE), id,
						 CC_K_VOLATILE };
	}
	assert_int_equal(nk, CC_NKEYS);

	memset(readers, 0, sizeof(readers));
	for (unsigned int i = 0; i < CC_READERS; i++) {
		struct cc_reader *r = &readers[i];

		r->v = v;
		r->t = t;
		r->tid = i;
		r->stop = &stop;
		assert_int_equal(rte_rcu_qsbr_thread_register(v, i), 0);
		assert_int_equal(pthread_create(&r->th, NULL, cc_reader_main, r), 0);
	}
	for (unsigned int i = 0; i < CC_READERS; i++)
		while (__atomic_load_n(&readers[i].rounds, __ATOMIC_ACQUIRE) == 0)
			rte_pause();

	for (uint32_t it = 0; it < CC_ITERATIONS; it++) {
		if (it % 10 == 9) {
			unsigned int i = (it / 10) % CC_VOLATILE;
			uint32_t id = cc_id(3000, i);

			if (vol_gen[i] != 0 && (it / 10) % 3 == 0) {
				assert_int_equal(sg_svc_remove(t, id), 0);
				vol_gen[i] = 0;
			} else {
				cc_conf(&tc, id, ++vol_gen[i]);
				assert_int_equal(sg_svc_publish(t, &tc.c), 0);
			}
		} else {
			unsigned int i = it % CC_CHURN;

			cc_conf(&tc, cc_id(2000, i), ++churn_gen[i]);
			assert_int_equal(sg_svc_publish(t, &tc.c), 0);
			replaced++;
		}
		if (it % 64 == 0)
			assert_true(sg_svc_reclaim(t) >= 0);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);

	for (unsigned int i = 0; i < CC_READERS; i++) {
		struct cc_reader *r = &readers[i];

		assert_int_equal(pthread_join(r->th, NULL), 0);
		assert_int_equal(rte_rcu_qsbr_thread_unregister(v, i), 0);
		if (r->bad != 0)
			fail_msg("reader %u: %" PRIu64 " bad entries, first: %s", i, r->bad,
				 r->first_bad);
		assert_int_equal(r->must_misses, 0);
		assert_true(r->hits > 0);
		lookups += r->lookups;
		hits += r->hits;
	}
	st = stats(t);
	print_message("# %" PRIu64 " replacements, %" PRIu64 " lookups (%" PRIu64
		      " hits) by %d readers, writer waited %" PRIu64 " times\n", replaced,
		      lookups, hits, CC_READERS, st.sync_waits);
	assert_true(replaced >= 25000);

	/* Readers gone: everything deferred can go, and the books balance. */
	sg_svc_reclaim(t);
	st = stats(t);
	assert_int_equal(st.deferred, 0);
	for (uint32_t i = 0; i < CC_STABLE + CC_CHURN + CC_VOLATILE; i++) {
		const struct sg_svc_entry *e = sg_svc_get(t, i < CC_STABLE ? 1000 + i :
							  i < CC_STABLE + CC_CHURN ?
							  2000 + i - CC_STABLE :
							  3000 + i - CC_STABLE - CC_CHURN);
		if (e != NULL)
			live_bytes += e->alloc_size;
	}
	assert_int_equal(st.entry_bytes, live_bytes);
	for (unsigned int i = 0; i < CC_STABLE; i++)
		assert_int_equal(sg_svc_get(t, 1000 + i)->generation, 1);
	for (unsigned int i = 0; i < CC_CHURN; i++)
		assert_int_equal(sg_svc_get(t, 2000 + i)->generation, churn_gen[i]);
	sg_svc_table_free(t);
	rte_free(v);
}

/* ---- key helpers ------------------------------------------------------- */

static void
test_key_helpers(void **state)
{
	const uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 9 };
	struct sg_svc_key k;
	uint8_t want[20] = { 4, IPPROTO_UDP, 0x1f, 0x90, 192, 0, 2, 10 };

	(void)state;
	memset(&k, 0xa5, sizeof(k));
	sg_svc_key4(&k, rte_cpu_to_be_32(0xc000020au), rte_cpu_to_be_16(8080), IPPROTO_UDP);
	assert_memory_equal(&k, want, sizeof(want));
	assert_false(sg_svc_key_is_any(&k));

	memset(&k, 0xa5, sizeof(k));
	sg_svc_key6(&k, a6, rte_cpu_to_be_16(443), IPPROTO_TCP);
	assert_int_equal(k.family, 6);
	assert_int_equal(k.proto, IPPROTO_TCP);
	assert_int_equal(k.port, rte_cpu_to_be_16(443));
	assert_memory_equal(k.addr, a6, 16);
	assert_false(sg_svc_key_is_any(&k));

	memset(&k, 0xa5, sizeof(k));
	sg_svc_key6(&k, NULL, rte_cpu_to_be_16(30080), IPPROTO_SCTP);
	assert_true(sg_svc_key_is_any(&k));
	sg_svc_key4(&k, 0, rte_cpu_to_be_16(30080), IPPROTO_SCTP);
	assert_true(sg_svc_key_is_any(&k));
	assert_int_equal(k.family, 4);
	k.addr[15] = 1;
	assert_false(sg_svc_key_is_any(&k));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_invalid),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_publish_invalid),
		cmocka_unit_test(test_conflicts_and_limits),
		cmocka_unit_test(test_key_helpers),
		cmocka_unit_test(test_publish_lookup_replace_remove),
		cmocka_unit_test(test_key_set_change),
		cmocka_unit_test(test_any_fallback),
		cmocka_unit_test(test_lookup_cache),
		cmocka_unit_test(test_lookup_cache_rest),
		cmocka_unit_test(test_source_ranges),
		cmocka_unit_test(test_backend_selection),
		cmocka_unit_test(test_serving_epoch),
		cmocka_unit_test(test_maglev_consistency),
		cmocka_unit_test(test_foreach_stats),
		cmocka_unit_test(test_deferred_free),
		cmocka_unit_test(test_defer_queue_full),
		cmocka_unit_test(test_reclaim_all),
		cmocka_unit_test(test_concurrent_replace),
	};
	int rc;

	(void)argc;
	sg_test_eal_init(argv[0], "256");
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rte_eal_cleanup();
	return rc;
}
