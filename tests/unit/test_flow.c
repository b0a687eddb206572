/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/flow: argument checks, the TCP state machine (as an
 * independent table of every transition), timeouts and expiry, lazy and by
 * sweep, on a fake clock; capacity, the new-flow rate limit, both directions,
 * IPv6, bulk lookup, and one million flows. The index (flow_index.h) is
 * driven with keys made to collide in chosen ways (flow_private.h says where
 * a key landed and checks every invariant): shared signatures, both buckets,
 * moves, the stash and its refusals, settling back, churn where it is
 * crowded, and bursts that meet all of it.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_hash_crc.h>
#include <rte_memory.h>
#include <rte_tcp.h>

#include <cmocka.h>

#include "sg_common.h"
#include "flow.h"
#include "flow_index.h"
#include "flow_private.h"
#include "sg_test_eal.h"

/* An arbitrary start for the fake clock, far from 0 so nothing is at an edge. */
#define T0 UINT64_C(1000000)

#define SYN RTE_TCP_SYN_FLAG
#define ACK RTE_TCP_ACK_FLAG
#define FIN RTE_TCP_FIN_FLAG
#define RST RTE_TCP_RST_FLAG
#define PSH RTE_TCP_PSH_FLAG
#define URG RTE_TCP_URG_FLAG
#define ECE RTE_TCP_ECE_FLAG
#define CWR RTE_TCP_CWR_FLAG

#define FWD SG_FLOW_DIR_FWD
#define REV SG_FLOW_DIR_REV

static rte_be32_t
ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return rte_cpu_to_be_32((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
}

static rte_be16_t
be16(uint16_t v)
{
	return rte_cpu_to_be_16(v);
}

/*
 * Flow i: client 198.51.100.(i >> 16) port (i & 0xffff) to the VIP
 * 192.0.2.10:80, DNATed to pod 203.0.113.(i % 200 + 1):8080, whose replies
 * (the reverse key) go back to the client. Distinct for i below 2^24.
 */
static void
flow_keys(uint32_t i, uint8_t proto, struct sg_flow_key *fwd, struct sg_flow_key *rev)
{
	rte_be32_t client = ip4(198, 51, 100, (uint8_t)(i >> 16));
	rte_be32_t vip = ip4(192, 0, 2, 10);
	rte_be32_t pod = ip4(203, 0, 113, (uint8_t)(i % 200 + 1));
	rte_be16_t cport = be16((uint16_t)i);

	sg_flow_key_init(fwd, SG_FLOW_V4, proto, &client, &vip, cport, be16(80));
	if (rev != NULL)
		sg_flow_key_init(rev, SG_FLOW_V4, proto, &pod, &client, be16(8080), cport);
}

static struct sg_flow_conf
conf_of(const char *name, uint32_t max_flows)
{
	struct sg_flow_conf c;

	memset(&c, 0, sizeof(c));
	c.name = name;
	c.socket_id = SOCKET_ID_ANY;
	c.max_flows = max_flows;
	c.hash_seed = 0x5eed;
	return c;
}

static struct sg_flow_table *
table_of(const struct sg_flow_conf *c)
{
	struct sg_flow_table *t = sg_flow_table_create(c);

	assert_non_null(t);
	return t;
}

static struct sg_flow_table *
table(const char *name, uint32_t max_flows)
{
	struct sg_flow_conf c = conf_of(name, max_flows);

	return table_of(&c);
}

/* Insert flow i (with its reverse key if rev) and return it. */
static struct sg_flow *
insert_i(struct sg_flow_table *t, uint32_t i, uint8_t proto, int rev, uint64_t now)
{
	struct sg_flow_key kf, kr;
	struct sg_flow *f = NULL;

	flow_keys(i, proto, &kf, &kr);
	assert_int_equal(sg_flow_insert(t, &kf, rev ? &kr : NULL, i, i % 200 + 1, 1, now, &f), 0);
	assert_non_null(f);
	return f;
}

/* The flow key i (fwd or its reverse key) finds at now, checking the direction. */
static struct sg_flow *
find_i(struct sg_flow_table *t, uint32_t i, uint8_t proto, unsigned int dir, uint64_t now)
{
	struct sg_flow_key kf, kr;
	uint8_t got = 0xff;
	struct sg_flow *f;

	flow_keys(i, proto, &kf, &kr);
	f = sg_flow_lookup(t, dir == FWD ? &kf : &kr, now, &got);
	if (f != NULL)
		assert_int_equal(got, dir);
	return f;
}

/* --- invalid arguments ------------------------------------------------- */

static void
test_create_invalid(void **state)
{
	struct sg_flow_conf c;
	struct sg_flow_table *t, *t2;

	(void)state;
	errno = 0;
	assert_null(sg_flow_table_create(NULL));
	assert_int_equal(errno, EINVAL);

	static const struct {
		const char *what;
		const char *name;
		uint32_t max_flows, max_flows_v6, rate, burst;
		int socket;
	} bad[] = {
		{ "no name", NULL, 16, 0, 0, 0, SOCKET_ID_ANY },
		{ "empty name", "", 16, 0, 0, 0, SOCKET_ID_ANY },
		{ "name of 16", "0123456789abcdef", 16, 0, 0, 0, SOCKET_ID_ANY },
		{ "no capacity", "bad", 0, 0, 0, 0, SOCKET_ID_ANY },
		{ "above max", "bad", SG_FLOW_MAX_FLOWS + 1, 0, 0, 0, SOCKET_ID_ANY },
		{ "v6 above max", "bad", 16, 17, 0, 0, SOCKET_ID_ANY },
		{ "burst, no rate", "bad", 16, 0, 0, 10, SOCKET_ID_ANY },
		{ "socket -2", "bad", 16, 0, 0, 0, -2 },
		{ "socket too big", "bad", 16, 0, 0, 0, RTE_MAX_NUMA_NODES },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = conf_of(bad[i].name, bad[i].max_flows);
		c.max_flows_v6 = bad[i].max_flows_v6;
		c.rate = bad[i].rate;
		c.burst = bad[i].burst;
		c.socket_id = bad[i].socket;
		errno = 0;
		t = sg_flow_table_create(&c);
		if (t != NULL || errno != EINVAL)
			fail_msg("%s: created or errno %d", bad[i].what, errno);
	}

	/* The longest name, and the same name twice. */
	c = conf_of("0123456789abcde", 16);
	t = table_of(&c);
	errno = 0;
	assert_null(sg_flow_table_create(&c));
	assert_int_equal(errno, EEXIST);

	/* More than the EAL has: ENOMEM, and nothing left behind. */
	c = conf_of("huge", SG_FLOW_MAX_FLOWS);
	errno = 0;
	assert_null(sg_flow_table_create(&c));
	assert_int_equal(errno, ENOMEM);
	c = conf_of("huge", 16);
	t2 = table_of(&c);
	sg_flow_table_free(t2);

	sg_flow_table_free(t);
	/* The name is free again once its table is. */
	c = conf_of("0123456789abcde", 16);
	t = table_of(&c);
	sg_flow_table_free(t);
}

static void
test_null_handles(void **state)
{
	uint32_t pos = 0;
	const struct sg_flow *cf;
	struct sg_flow_key k;

	(void)state;
	sg_flow_table_free(NULL);
	assert_int_equal(sg_flow_count(NULL), 0);
	assert_null(sg_flow_stats(NULL));
	assert_int_equal(sg_flow_timeout(NULL, SG_FLOW_UDP), 0);
	assert_int_equal(sg_flow_sweep(NULL, T0, 100), 0);
	assert_int_equal(sg_flow_iterate(NULL, &pos, &cf), -EINVAL);
	assert_int_equal(sg_flow_get_key(NULL, FWD, &k), -EINVAL);
	assert_int_equal(sg_flow_delete(NULL, NULL), -EINVAL);
}

static void
test_insert_invalid(void **state)
{
	struct sg_flow_table *t = table("inval", 16);
	struct sg_flow_key fwd, rev, bad, v6;
	struct sg_flow *f = NULL;
	const struct sg_flow_stats *st = sg_flow_stats(t);
	uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

	(void)state;
	flow_keys(1, IPPROTO_TCP, &fwd, &rev);
	sg_flow_key_init(&v6, SG_FLOW_V6, IPPROTO_TCP, a6, a6, be16(1), be16(2));

	assert_int_equal(sg_flow_insert(NULL, &fwd, &rev, 1, 1, 0, T0, &f), -EINVAL);
	assert_int_equal(sg_flow_insert(t, NULL, &rev, 1, 1, 0, T0, &f), -EINVAL);
	assert_int_equal(sg_flow_insert(t, &fwd, &rev, 1, 1, 0, T0, NULL), -EINVAL);

	/* Malformed keys, each as fwd and as rev. */
	for (int which = 0; which < 2; which++) {
		for (int c = 0; c < 5; c++) {
			bad = fwd;
			switch (c) {
			case 0: bad.family = 0; break;
			case 1: bad.family = 5; break;
			case 2: bad.pad[1] = 1; break;
			case 3: bad.src[4] = 1; break;	/* IPv4 with bytes past 4 */
			case 4: bad.dst[15] = 1; break;
			}
			if (which == 0)
				assert_int_equal(sg_flow_insert(t, &bad, NULL, 1, 1, 0, T0, &f), -EINVAL);
			else
				assert_int_equal(sg_flow_insert(t, &fwd, &bad, 1, 1, 0, T0, &f), -EINVAL);
		}
	}
	/* Reverse of another family, another protocol, or the forward key itself. */
	assert_int_equal(sg_flow_insert(t, &fwd, &v6, 1, 1, 0, T0, &f), -EINVAL);
	bad = rev;
	bad.proto = IPPROTO_UDP;
	assert_int_equal(sg_flow_insert(t, &fwd, &bad, 1, 1, 0, T0, &f), -EINVAL);
	assert_int_equal(sg_flow_insert(t, &fwd, &fwd, 1, 1, 0, T0, &f), -EINVAL);

	/* Nothing was inserted or counted. */
	assert_null(f);
	assert_int_equal(sg_flow_count(t), 0);
	assert_int_equal(st->inserted + st->exists + st->table_full + st->rate_limited, 0);
	assert_null(sg_flow_lookup(t, &fwd, T0, NULL));
	assert_null(sg_flow_lookup(t, &rev, T0, NULL));
	sg_flow_table_free(t);
}

static void
test_delete_invalid(void **state)
{
	struct sg_flow_table *t = table("delinv", 16), *t2 = table("delinv2", 16);
	struct sg_flow *f, *g, local;
	struct sg_flow_key k;

	(void)state;
	f = insert_i(t, 1, IPPROTO_TCP, 1, T0);
	g = insert_i(t2, 1, IPPROTO_TCP, 1, T0);
	memset(&local, 0, sizeof(local));

	assert_int_equal(sg_flow_delete(t, NULL), -EINVAL);
	assert_int_equal(sg_flow_delete(t, g), -EINVAL);		/* another table's */
	assert_int_equal(sg_flow_delete(t, &local), -EINVAL);		/* not an entry */
	assert_int_equal(sg_flow_delete(t, (struct sg_flow *)((char *)f + 8)), -EINVAL);
	assert_int_equal(sg_flow_delete(t, f + 1), -EINVAL);		/* never used */
	assert_int_equal(sg_flow_count(t), 1);

	assert_int_equal(sg_flow_delete(t, f), 0);
	assert_int_equal(sg_flow_delete(t, f), -EINVAL);		/* twice */
	assert_int_equal(sg_flow_get_key(f, FWD, &k), -EINVAL);	/* deleted */
	assert_int_equal(sg_flow_stats(t)->deleted, 1);
	assert_int_equal(sg_flow_count(t), 0);
	assert_int_equal(sg_flow_count(t2), 1);
	sg_flow_table_free(t2);
	sg_flow_table_free(t);
}

static void
test_get_key_iterate_invalid(void **state)
{
	struct sg_flow_table *t = table("keyinv", 16);
	struct sg_flow *dsr;
	const struct sg_flow *cf;
	struct sg_flow_key k;
	uint32_t pos = 0;

	(void)state;
	dsr = insert_i(t, 1, IPPROTO_TCP, 0, T0);
	assert_int_equal(sg_flow_get_key(dsr, FWD, NULL), -EINVAL);
	assert_int_equal(sg_flow_get_key(dsr, 2, &k), -EINVAL);
	assert_int_equal(sg_flow_get_key(dsr, REV, &k), -EINVAL);	/* DSR: none */
	assert_int_equal(sg_flow_get_key(dsr, FWD, &k), 0);
	assert_int_equal(sg_flow_iterate(t, NULL, &cf), -EINVAL);
	assert_int_equal(sg_flow_iterate(t, &pos, NULL), -EINVAL);
	sg_flow_table_free(t);
}

/* --- keys -------------------------------------------------------------- */

static void
test_key_init(void **state)
{
	struct sg_flow_key k, k6;
	uint8_t junk[sizeof(k)];
	rte_be32_t s = ip4(198, 51, 100, 7), d = ip4(192, 0, 2, 10);
	uint8_t s6[16] = { 0 };

	(void)state;
	/* Whatever was in the memory, only the tuple survives. */
	memset(&k, 0xa5, sizeof(k));
	sg_flow_key_init(&k, SG_FLOW_V4, IPPROTO_UDP, &s, &d, be16(5353), be16(53));
	memset(junk, 0, sizeof(junk));
	memcpy(junk, &s, 4);
	memcpy(junk + 16, &d, 4);
	junk[32] = 0x14;	/* 5353 = 0x14e9, network order */
	junk[33] = 0xe9;
	junk[35] = 53;
	junk[36] = SG_FLOW_V4;
	junk[37] = IPPROTO_UDP;
	assert_memory_equal(&k, junk, sizeof(k));

	/* An IPv6 address holding the same first bytes is another key. */
	memcpy(s6, &s, 4);
	memset(&k6, 0xa5, sizeof(k6));
	sg_flow_key_init(&k6, SG_FLOW_V6, IPPROTO_UDP, s6, s6, be16(5353), be16(53));
	assert_memory_not_equal(&k, &k6, sizeof(k));
	assert_int_equal(k6.pad[0] | k6.pad[1], 0);
}

/* --- TCP state machine -------------------------------------------------- */

/*
 * Every transition that changes the state, written out independently of the
 * library's table; every other (state, direction, event) must keep it.
 */
enum { E_SYN, E_SYNACK, E_FIN, E_ACK, E_RST, E_MAX };

struct tcp_rule {
	uint8_t from, dir, event, to;
};

static const struct tcp_rule tcp_rules[] = {
	{ SG_FLOW_TCP_NEW, FWD, E_SYN, SG_FLOW_TCP_SYN_SENT },
	{ SG_FLOW_TCP_NEW, FWD, E_ACK, SG_FLOW_TCP_ESTABLISHED },	/* pickup */
	{ SG_FLOW_TCP_NEW, FWD, E_FIN, SG_FLOW_TCP_FIN_WAIT },		/* pickup */
	{ SG_FLOW_TCP_SYN_SENT, FWD, E_ACK, SG_FLOW_TCP_ESTABLISHED },	/* DSR */
	{ SG_FLOW_TCP_SYN_SENT, REV, E_SYNACK, SG_FLOW_TCP_SYN_RECV },
	{ SG_FLOW_TCP_SYN_SENT, REV, E_SYN, SG_FLOW_TCP_SYN_RECV },	/* simultaneous open */
	{ SG_FLOW_TCP_SYN_RECV, FWD, E_ACK, SG_FLOW_TCP_ESTABLISHED },
	{ SG_FLOW_TCP_SYN_RECV, FWD, E_SYNACK, SG_FLOW_TCP_ESTABLISHED },
	{ SG_FLOW_TCP_SYN_RECV, FWD, E_FIN, SG_FLOW_TCP_FIN_WAIT },
	{ SG_FLOW_TCP_SYN_RECV, REV, E_FIN, SG_FLOW_TCP_CLOSE_WAIT },
	{ SG_FLOW_TCP_ESTABLISHED, FWD, E_FIN, SG_FLOW_TCP_FIN_WAIT },
	{ SG_FLOW_TCP_ESTABLISHED, REV, E_FIN, SG_FLOW_TCP_CLOSE_WAIT },
	{ SG_FLOW_TCP_FIN_WAIT, REV, E_FIN, SG_FLOW_TCP_LAST_ACK },
	{ SG_FLOW_TCP_CLOSE_WAIT, FWD, E_FIN, SG_FLOW_TCP_LAST_ACK },
	{ SG_FLOW_TCP_LAST_ACK, FWD, E_ACK, SG_FLOW_TCP_TIME_WAIT },
	{ SG_FLOW_TCP_LAST_ACK, REV, E_ACK, SG_FLOW_TCP_TIME_WAIT },
	{ SG_FLOW_TCP_TIME_WAIT, FWD, E_SYN, SG_FLOW_TCP_SYN_SENT },	/* re-open */
	{ SG_FLOW_TCP_CLOSE, FWD, E_SYN, SG_FLOW_TCP_SYN_SENT },	/* re-open */
};

/* Flag bytes that must all mean the same event. */
static const uint8_t event_flags[E_MAX][4] = {
	[E_SYN] = { SYN, SYN | ECE | CWR, SYN | PSH, 0 },
	[E_SYNACK] = { SYN | ACK, SYN | ACK | ECE, 0, 0 },
	[E_FIN] = { FIN, FIN | ACK, FIN | ACK | PSH, FIN | URG | ACK },
	[E_ACK] = { ACK, ACK | PSH, ACK | URG, ACK | ECE | CWR },
	[E_RST] = { RST, RST | ACK, RST | SYN, RST | FIN | ACK },
};

static void
test_tcp_table(void **state)
{
	unsigned int checked = 0;

	(void)state;
	for (uint8_t s = SG_FLOW_TCP_NEW; s <= SG_FLOW_TCP_CLOSE; s++) {
		for (unsigned int dir = FWD; dir <= REV; dir++) {
			for (unsigned int ev = 0; ev < E_MAX; ev++) {
				uint8_t want = s;

				if (ev == E_RST)
					want = SG_FLOW_TCP_CLOSE;
				for (size_t r = 0; r < sizeof(tcp_rules) / sizeof(tcp_rules[0]); r++)
					if (tcp_rules[r].from == s && tcp_rules[r].dir == dir &&
					    tcp_rules[r].event == ev)
						want = tcp_rules[r].to;
				for (unsigned int j = 0; j < 4 && event_flags[ev][j] != 0; j++) {
					uint8_t got = sg_flow_tcp_next(s, dir, event_flags[ev][j]);

					if (got != want)
						fail_msg("%s %s flags 0x%02x: %s, want %s",
							 sg_flow_state_name(s), dir ? "rev" : "fwd",
							 event_flags[ev][j], sg_flow_state_name(got),
							 sg_flow_state_name(want));
					checked++;
				}
			}
		}
	}
	assert_true(checked > 9 * 2 * 5);
}

static void
test_tcp_ignored(void **state)
{
	/* SYN+FIN, or nothing that means anything, changes no state. */
	static const uint8_t noise[] = { 0, PSH, URG, ECE | CWR, SYN | FIN, SYN | FIN | ACK };

	(void)state;
	for (uint8_t s = SG_FLOW_TCP_NEW; s <= SG_FLOW_TCP_CLOSE; s++)
		for (unsigned int dir = FWD; dir <= REV; dir++)
			for (size_t i = 0; i < sizeof(noise); i++)
				assert_int_equal(sg_flow_tcp_next(s, dir, noise[i]), s);
	/* States that are not TCP, and directions that are not directions. */
	for (uint8_t s = SG_FLOW_UDP; s <= SG_FLOW_STATE_MAX; s++)
		assert_int_equal(sg_flow_tcp_next(s, FWD, SYN), s);
	assert_int_equal(sg_flow_tcp_next(SG_FLOW_TCP_NEW, 2, SYN), SG_FLOW_TCP_NEW);
	assert_int_equal(sg_flow_tcp_next(SG_FLOW_TCP_ESTABLISHED, 7, RST),
			 SG_FLOW_TCP_ESTABLISHED);
}

struct tcp_step {
	uint8_t dir, flags, want;
};

struct tcp_story {
	const char *name;
	uint8_t start;
	struct tcp_step steps[8];
};

/* Whole connections, one segment at a time. */
static const struct tcp_story tcp_stories[] = {
	{ "handshake", SG_FLOW_TCP_NEW, {
		{ FWD, SYN, SG_FLOW_TCP_SYN_SENT },
		{ FWD, SYN, SG_FLOW_TCP_SYN_SENT },		/* retransmitted */
		{ REV, SYN | ACK, SG_FLOW_TCP_SYN_RECV },
		{ REV, SYN | ACK, SG_FLOW_TCP_SYN_RECV },
		{ FWD, ACK, SG_FLOW_TCP_ESTABLISHED },
		{ FWD, ACK | PSH, SG_FLOW_TCP_ESTABLISHED },
		{ REV, ACK | PSH, SG_FLOW_TCP_ESTABLISHED },
		{ FWD, SYN, SG_FLOW_TCP_ESTABLISHED } } },	/* stray SYN */
	{ "DSR, client side only", SG_FLOW_TCP_NEW, {
		{ FWD, SYN, SG_FLOW_TCP_SYN_SENT },
		{ FWD, ACK, SG_FLOW_TCP_ESTABLISHED },
		{ FWD, ACK | PSH, SG_FLOW_TCP_ESTABLISHED },
		{ FWD, FIN | ACK, SG_FLOW_TCP_FIN_WAIT },
		{ FWD, ACK, SG_FLOW_TCP_FIN_WAIT } } },
	{ "client closes first", SG_FLOW_TCP_ESTABLISHED, {
		{ FWD, FIN | ACK, SG_FLOW_TCP_FIN_WAIT },
		{ FWD, FIN | ACK, SG_FLOW_TCP_FIN_WAIT },	/* retransmitted */
		{ REV, ACK, SG_FLOW_TCP_FIN_WAIT },
		{ REV, ACK | PSH, SG_FLOW_TCP_FIN_WAIT },	/* half-closed, data */
		{ REV, FIN | ACK, SG_FLOW_TCP_LAST_ACK },
		{ REV, FIN | ACK, SG_FLOW_TCP_LAST_ACK },
		{ FWD, ACK, SG_FLOW_TCP_TIME_WAIT },
		{ FWD, ACK, SG_FLOW_TCP_TIME_WAIT } } },
	{ "backend closes first", SG_FLOW_TCP_ESTABLISHED, {
		{ REV, FIN | ACK, SG_FLOW_TCP_CLOSE_WAIT },
		{ FWD, ACK, SG_FLOW_TCP_CLOSE_WAIT },
		{ FWD, ACK | PSH, SG_FLOW_TCP_CLOSE_WAIT },
		{ REV, FIN | ACK, SG_FLOW_TCP_CLOSE_WAIT },
		{ FWD, FIN | ACK, SG_FLOW_TCP_LAST_ACK },
		{ REV, ACK, SG_FLOW_TCP_TIME_WAIT } } },
	{ "simultaneous close", SG_FLOW_TCP_ESTABLISHED, {
		{ FWD, FIN | ACK, SG_FLOW_TCP_FIN_WAIT },
		{ REV, FIN | ACK, SG_FLOW_TCP_LAST_ACK },
		{ REV, ACK, SG_FLOW_TCP_TIME_WAIT },
		{ FWD, ACK, SG_FLOW_TCP_TIME_WAIT } } },
	{ "simultaneous close, backend's FIN first", SG_FLOW_TCP_ESTABLISHED, {
		{ REV, FIN | ACK, SG_FLOW_TCP_CLOSE_WAIT },
		{ FWD, FIN | ACK, SG_FLOW_TCP_LAST_ACK },
		{ FWD, ACK, SG_FLOW_TCP_TIME_WAIT },
		{ REV, ACK, SG_FLOW_TCP_TIME_WAIT } } },
	{ "simultaneous open", SG_FLOW_TCP_NEW, {
		{ FWD, SYN, SG_FLOW_TCP_SYN_SENT },
		{ REV, SYN, SG_FLOW_TCP_SYN_RECV },
		{ REV, SYN | ACK, SG_FLOW_TCP_SYN_RECV },
		{ FWD, SYN | ACK, SG_FLOW_TCP_ESTABLISHED } } },
	{ "refused", SG_FLOW_TCP_NEW, {
		{ FWD, SYN, SG_FLOW_TCP_SYN_SENT },
		{ REV, RST | ACK, SG_FLOW_TCP_CLOSE },
		{ FWD, ACK, SG_FLOW_TCP_CLOSE },
		{ FWD, SYN, SG_FLOW_TCP_SYN_SENT } } },		/* client retries */
	{ "reset while established", SG_FLOW_TCP_ESTABLISHED, {
		{ FWD, RST, SG_FLOW_TCP_CLOSE },
		{ REV, ACK, SG_FLOW_TCP_CLOSE },
		{ REV, SYN, SG_FLOW_TCP_CLOSE } } },		/* only the client re-opens */
	{ "port reuse after TIME_WAIT", SG_FLOW_TCP_TIME_WAIT, {
		{ REV, SYN, SG_FLOW_TCP_TIME_WAIT },
		{ FWD, SYN, SG_FLOW_TCP_SYN_SENT },
		{ REV, SYN | ACK, SG_FLOW_TCP_SYN_RECV },
		{ FWD, ACK, SG_FLOW_TCP_ESTABLISHED } } },
	{ "picked up mid-stream", SG_FLOW_TCP_NEW, {
		{ FWD, ACK | PSH, SG_FLOW_TCP_ESTABLISHED },
		{ REV, ACK, SG_FLOW_TCP_ESTABLISHED } } },
	{ "reply before anything", SG_FLOW_TCP_NEW, {
		{ REV, SYN | ACK, SG_FLOW_TCP_NEW },
		{ REV, ACK, SG_FLOW_TCP_NEW },
		{ REV, RST, SG_FLOW_TCP_CLOSE } } },
};

/* sg_flow_tcp_seen() is sg_flow_tcp_update(), for every state, direction and flag byte. */
static void
test_tcp_seen(void **state)
{
	(void)state;
	for (unsigned int st = 0; st < SG_FLOW_STATE_MAX; st++)
		for (unsigned int dir = 0; dir < 2; dir++)
			for (unsigned int fl = 0; fl < 256; fl++) {
				struct sg_flow a = { .state = (uint8_t)st, .last_seen = 1 };
				struct sg_flow b = a;

				assert_int_equal(sg_flow_tcp_seen(&a, dir, (uint8_t)fl, 42),
						 sg_flow_tcp_update(&b, dir, (uint8_t)fl, 42));
				assert_int_equal(a.state, b.state);
				assert_int_equal(a.last_seen, b.last_seen);
			}
}

static void
test_tcp_stories(void **state)
{
	struct sg_flow f;

	(void)state;
	for (size_t i = 0; i < sizeof(tcp_stories) / sizeof(tcp_stories[0]); i++) {
		const struct tcp_story *s = &tcp_stories[i];
		uint64_t now = T0;

		memset(&f, 0, sizeof(f));
		f.state = s->start;
		for (size_t j = 0; j < 8 && s->steps[j].flags != 0; j++) {
			uint8_t got = sg_flow_tcp_update(&f, s->steps[j].dir, s->steps[j].flags, ++now);

			if (got != s->steps[j].want || f.state != got || f.last_seen != now)
				fail_msg("%s, step %zu: %s, want %s", s->name, j,
					 sg_flow_state_name(f.state),
					 sg_flow_state_name(s->steps[j].want));
		}
	}
}

static void
test_touch(void **state)
{
	struct sg_flow f;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.state = SG_FLOW_UDP;
	sg_flow_touch(&f, FWD, T0 + 1);
	assert_int_equal(f.state, SG_FLOW_UDP);
	assert_int_equal(f.last_seen, T0 + 1);
	sg_flow_touch(&f, REV, T0 + 2);
	assert_int_equal(f.state, SG_FLOW_UDP_ASSURED);
	sg_flow_touch(&f, FWD, T0 + 3);
	assert_int_equal(f.state, SG_FLOW_UDP_ASSURED);
	assert_int_equal(f.last_seen, T0 + 3);

	/* Only UDP has an assured state. */
	f.state = SG_FLOW_ICMP;
	sg_flow_touch(&f, REV, T0 + 4);
	assert_int_equal(f.state, SG_FLOW_ICMP);
	f.state = SG_FLOW_TCP_SYN_SENT;
	sg_flow_touch(&f, REV, T0 + 5);
	assert_int_equal(f.state, SG_FLOW_TCP_SYN_SENT);
	assert_int_equal(f.last_seen, T0 + 5);
}

/* --- timeouts and names ------------------------------------------------- */

static const uint32_t want_default_ms[SG_FLOW_STATE_MAX] = {
	[SG_FLOW_TCP_NEW] = 30000,
	[SG_FLOW_TCP_SYN_SENT] = 30000,
	[SG_FLOW_TCP_SYN_RECV] = 30000,
	[SG_FLOW_TCP_ESTABLISHED] = 7440000,
	[SG_FLOW_TCP_FIN_WAIT] = 120000,
	[SG_FLOW_TCP_CLOSE_WAIT] = 120000,
	[SG_FLOW_TCP_LAST_ACK] = 30000,
	[SG_FLOW_TCP_TIME_WAIT] = 120000,
	[SG_FLOW_TCP_CLOSE] = 10000,
	[SG_FLOW_UDP] = 30000,
	[SG_FLOW_UDP_ASSURED] = 120000,
	[SG_FLOW_ICMP] = 30000,
	[SG_FLOW_OTHER] = 600000,
};

static void
test_timeouts_and_names(void **state)
{
	struct sg_flow_conf c = conf_of("tmo", 16);
	struct sg_flow_table *t;

	(void)state;
	for (unsigned int s = 0; s < SG_FLOW_STATE_MAX; s++) {
		assert_int_equal(sg_flow_default_timeout(s), want_default_ms[s]);
		assert_string_not_equal(sg_flow_state_name(s), "?");
		for (unsigned int o = 0; o < s; o++)
			assert_string_not_equal(sg_flow_state_name(s), sg_flow_state_name(o));
	}
	assert_int_equal(sg_flow_default_timeout(SG_FLOW_STATE_MAX), 0);
	assert_string_equal(sg_flow_state_name(SG_FLOW_STATE_MAX), "?");
	assert_string_equal(sg_flow_state_name(SG_FLOW_TCP_TIME_WAIT), "TIME_WAIT");

	/* 0 takes the default, anything else is kept. */
	c.timeout_ms[SG_FLOW_TCP_ESTABLISHED] = 300000;
	c.timeout_ms[SG_FLOW_UDP] = 1;
	t = table_of(&c);
	for (unsigned int s = 0; s < SG_FLOW_STATE_MAX; s++)
		assert_int_equal(sg_flow_timeout(t, s), c.timeout_ms[s] ? c.timeout_ms[s] :
						       want_default_ms[s]);
	assert_int_equal(sg_flow_timeout(t, SG_FLOW_STATE_MAX), 0);
	sg_flow_table_free(t);
}

/* --- insert, both directions, translation -------------------------------- */

static void
test_nat_flow(void **state)
{
	struct sg_flow_table *t = table("nat", 16);
	rte_be32_t client = ip4(198, 51, 100, 10), vip = ip4(192, 0, 2, 10);
	rte_be32_t pod = ip4(203, 0, 113, 5), snat = ip4(192, 0, 2, 100);
	struct sg_flow_key fwd, rev, k;
	struct sg_flow_xlate x;
	struct sg_flow *f = NULL;
	uint8_t dir = 0xff;

	(void)state;
	sg_flow_key_init(&fwd, SG_FLOW_V4, IPPROTO_TCP, &client, &vip, be16(40000), be16(80));
	sg_flow_key_init(&rev, SG_FLOW_V4, IPPROTO_TCP, &pod, &snat, be16(8080), be16(50000));
	assert_null(sg_flow_lookup(t, &fwd, T0, &dir));
	assert_int_equal(sg_flow_insert(t, &fwd, &rev, 42, 7, 3, T0, &f), 0);
	assert_non_null(f);
	assert_int_equal(f->service_id, 42);
	assert_int_equal(f->backend, 7);
	assert_int_equal(f->mode, 3);
	assert_int_equal(f->state, SG_FLOW_TCP_NEW);
	assert_int_equal(f->family, SG_FLOW_V4);
	assert_int_equal(f->proto, IPPROTO_TCP);
	assert_true(f->flags & SG_FLOW_F_REVERSE);
	assert_int_equal(f->created, T0);
	assert_int_equal(f->last_seen, T0);
	assert_int_equal(sg_flow_count(t), 1);

	assert_ptr_equal(sg_flow_lookup(t, &fwd, T0, &dir), f);
	assert_int_equal(dir, FWD);
	assert_ptr_equal(sg_flow_lookup(t, &rev, T0, &dir), f);
	assert_int_equal(dir, REV);

	/* Client to pod: from the SNAT address, to the pod. */
	sg_flow_xlate(f, FWD, &x);
	assert_memory_equal(x.src, &snat, 4);
	assert_int_equal(x.sport, be16(50000));
	assert_memory_equal(x.dst, &pod, 4);
	assert_int_equal(x.dport, be16(8080));
	/* Pod to client: from the VIP, to the client. */
	sg_flow_xlate(f, REV, &x);
	assert_memory_equal(x.src, &vip, 4);
	assert_int_equal(x.sport, be16(80));
	assert_memory_equal(x.dst, &client, 4);
	assert_int_equal(x.dport, be16(40000));

	assert_int_equal(sg_flow_get_key(f, FWD, &k), 0);
	assert_memory_equal(&k, &fwd, sizeof(k));
	assert_int_equal(sg_flow_get_key(f, REV, &k), 0);
	assert_memory_equal(&k, &rev, sizeof(k));

	/* The other protocol, ports swapped, the other address: other flows. */
	k = fwd;
	k.proto = IPPROTO_UDP;
	assert_null(sg_flow_lookup(t, &k, T0, &dir));
	k = fwd;
	k.sport = fwd.dport;
	k.dport = fwd.sport;
	assert_null(sg_flow_lookup(t, &k, T0, &dir));
	k = fwd;
	k.src[3]++;
	assert_null(sg_flow_lookup(t, &k, T0, &dir));

	/* A delete takes both keys. */
	assert_int_equal(sg_flow_delete(t, f), 0);
	assert_null(sg_flow_lookup(t, &fwd, T0, &dir));
	assert_null(sg_flow_lookup(t, &rev, T0, &dir));
	assert_int_equal(sg_flow_count(t), 0);
	sg_flow_table_free(t);
}

static void
test_dsr_and_initial_states(void **state)
{
	static const struct {
		uint8_t proto, state;
	} init[] = {
		{ IPPROTO_TCP, SG_FLOW_TCP_NEW }, { IPPROTO_UDP, SG_FLOW_UDP },
		{ IPPROTO_ICMP, SG_FLOW_ICMP }, { IPPROTO_ICMPV6, SG_FLOW_ICMP },
		{ IPPROTO_SCTP, SG_FLOW_OTHER }, { IPPROTO_GRE, SG_FLOW_OTHER },
	};
	struct sg_flow_table *t = table("dsr", 16);
	struct sg_flow_key fwd, rev;

	(void)state;
	for (uint32_t i = 0; i < sizeof(init) / sizeof(init[0]); i++) {
		struct sg_flow *f = insert_i(t, i, init[i].proto, 0, T0);

		assert_int_equal(f->state, init[i].state);
		assert_false(f->flags & SG_FLOW_F_REVERSE);
		flow_keys(i, init[i].proto, &fwd, &rev);
		assert_ptr_equal(find_i(t, i, init[i].proto, FWD, T0), f);
		/* No reverse key: the reply tuple is unknown here. */
		assert_null(sg_flow_lookup(t, &rev, T0, NULL));
	}
	assert_int_equal(sg_flow_count(t), 6);
	sg_flow_table_free(t);
}

static void
test_exists(void **state)
{
	struct sg_flow_conf c = conf_of("exists", 16);
	struct sg_flow_table *t;
	struct sg_flow_key f1, r1, f2, r2;
	struct sg_flow *a = NULL, *b = NULL;
	const struct sg_flow_stats *st;

	(void)state;
	c.timeout_ms[SG_FLOW_UDP] = 1000;
	t = table_of(&c);
	st = sg_flow_stats(t);
	flow_keys(1, IPPROTO_UDP, &f1, &r1);
	flow_keys(2, IPPROTO_UDP, &f2, &r2);
	assert_int_equal(sg_flow_insert(t, &f1, &r1, 1, 1, 0, T0, &a), 0);

	/* The same client tuple again (two packets of one flow in a burst). */
	assert_int_equal(sg_flow_insert(t, &f1, NULL, 9, 9, 0, T0, &b), -EEXIST);
	/* Another client on a reverse tuple in use (a SNAT port taken). */
	assert_int_equal(sg_flow_insert(t, &f2, &r1, 9, 9, 0, T0, &b), -EEXIST);
	assert_null(sg_flow_lookup(t, &f2, T0, NULL));
	/* A forward key that is a live flow's reverse key. */
	assert_int_equal(sg_flow_insert(t, &r1, &r2, 9, 9, 0, T0, &b), -EEXIST);
	assert_null(sg_flow_lookup(t, &r2, T0, NULL));
	assert_null(b);
	assert_int_equal(st->exists, 3);
	assert_int_equal(sg_flow_count(t), 1);
	assert_int_equal(a->service_id, 1);

	/* Once flow 1 is expired, its keys are free without a sweep. */
	assert_int_equal(sg_flow_insert(t, &f2, &r1, 2, 2, 0, T0 + 1001, &b), 0);
	assert_int_equal(st->expired_lazy, 1);
	assert_int_equal(sg_flow_count(t), 1);
	assert_null(sg_flow_lookup(t, &f1, T0 + 1001, NULL));
	assert_ptr_equal(sg_flow_lookup(t, &r1, T0 + 1001, NULL), b);
	assert_int_equal(b->service_id, 2);
	sg_flow_table_free(t);
}

/* --- IPv6 --------------------------------------------------------------- */

static void
v6addr(uint8_t a[16], uint16_t net, uint16_t host)
{
	memset(a, 0, 16);
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	a[4] = (uint8_t)(net >> 8);
	a[5] = (uint8_t)net;
	a[14] = (uint8_t)(host >> 8);
	a[15] = (uint8_t)host;
}

static void
v6keys(uint16_t i, struct sg_flow_key *fwd, struct sg_flow_key *rev)
{
	uint8_t client[16], vip[16], pod[16];

	v6addr(client, 1, i);
	v6addr(vip, 2, 10);
	v6addr(pod, 3, i);
	sg_flow_key_init(fwd, SG_FLOW_V6, IPPROTO_TCP, client, vip, be16(40000), be16(443));
	sg_flow_key_init(rev, SG_FLOW_V6, IPPROTO_TCP, pod, client, be16(8443), be16(40000));
}

static void
test_ipv6(void **state)
{
	struct sg_flow_conf c = conf_of("v6", 8);
	struct sg_flow_table *t;
	struct sg_flow_key fwd, rev, k, v4, v6;
	struct sg_flow_xlate x;
	struct sg_flow *f[3], *g;
	uint8_t a[16], dir;
	rte_be32_t four = ip4(198, 51, 100, 1);

	(void)state;
	c.max_flows_v6 = 2;
	t = table_of(&c);

	for (uint16_t i = 0; i < 2; i++) {
		v6keys(i, &fwd, &rev);
		assert_int_equal(sg_flow_insert(t, &fwd, &rev, i, i, 0, T0, &f[i]), 0);
		assert_int_equal(f[i]->family, SG_FLOW_V6);
	}
	for (uint16_t i = 0; i < 2; i++) {
		v6keys(i, &fwd, &rev);
		assert_ptr_equal(sg_flow_lookup(t, &fwd, T0, &dir), f[i]);
		assert_int_equal(dir, FWD);
		assert_ptr_equal(sg_flow_lookup(t, &rev, T0, &dir), f[i]);
		assert_int_equal(dir, REV);
		sg_flow_xlate(f[i], FWD, &x);
		assert_memory_equal(x.src, rev.dst, 16);	/* DNAT: client kept */
		assert_memory_equal(x.dst, rev.src, 16);
		assert_int_equal(x.dport, be16(8443));
		sg_flow_xlate(f[i], REV, &x);
		v6addr(a, 2, 10);
		assert_memory_equal(x.src, a, 16);
		assert_int_equal(x.sport, be16(443));
		assert_int_equal(sg_flow_get_key(f[i], REV, &k), 0);
		assert_memory_equal(&k, &rev, sizeof(k));
	}

	/* The IPv6 share is full; IPv4 still has room. */
	v6keys(2, &fwd, &rev);
	assert_int_equal(sg_flow_insert(t, &fwd, &rev, 2, 2, 0, T0, &f[2]), -ENOSPC);
	assert_int_equal(sg_flow_stats(t)->table_full, 1);
	g = insert_i(t, 1, IPPROTO_TCP, 1, T0);

	/* A freed IPv6 block is reused, with nothing of its past. */
	assert_int_equal(sg_flow_delete(t, f[0]), 0);
	assert_int_equal(sg_flow_insert(t, &fwd, NULL, 2, 2, 0, T0, &f[2]), 0);
	assert_int_equal(sg_flow_get_key(f[2], FWD, &k), 0);
	assert_memory_equal(&k, &fwd, sizeof(k));
	memset(a, 0, sizeof(a));
	assert_memory_equal(sg_flow_addr(f[2], SG_FLOW_REV_SRC), a, 16);
	assert_memory_equal(sg_flow_addr(f[2], SG_FLOW_REV_DST), a, 16);

	/* An IPv4 address and an IPv6 one with the same first bytes differ. */
	memset(a, 0, sizeof(a));
	memcpy(a, &four, 4);
	sg_flow_key_init(&v4, SG_FLOW_V4, IPPROTO_UDP, &four, &four, be16(1), be16(2));
	sg_flow_key_init(&v6, SG_FLOW_V6, IPPROTO_UDP, a, a, be16(1), be16(2));
	assert_int_equal(sg_flow_insert(t, &v4, NULL, 4, 0, 0, T0, &f[0]), 0);
	assert_int_equal(sg_flow_insert(t, &v6, NULL, 6, 0, 0, T0, &f[1]), -ENOSPC);
	assert_int_equal(sg_flow_delete(t, f[2]), 0);
	assert_int_equal(sg_flow_insert(t, &v6, NULL, 6, 0, 0, T0, &f[1]), 0);
	assert_int_equal(sg_flow_lookup(t, &v4, T0, NULL)->service_id, 4);
	assert_int_equal(sg_flow_lookup(t, &v6, T0, NULL)->service_id, 6);
	assert_int_equal(g->service_id, 1);
	sg_flow_table_free(t);
}

/* --- the index: signatures, buckets, stash ------------------------------------ */

static void
check_index(const struct sg_flow_table *t)
{
	char why[256];

	if (flow_table_check(t, why, sizeof(why)) != 0)
		fail_msg("index: %s", why);
}

static struct flow_key_place
place_of(const struct sg_flow_table *t, const struct sg_flow_key *k)
{
	struct flow_key_place pl;

	flow_table_place(t, k, &pl);
	return pl;
}

/*
 * Keys with a chosen signature, so that tests can make keys collide. A
 * signature is CRC32c of the key's words, which is affine in the key's
 * bits: flipping a set of bits changes it by the XOR of what each bit alone
 * changes it by. Gaussian elimination over GF(2) of those changes, for the
 * bits of some bytes of a base key, gives a set of bits for any change in
 * their span, and the sets that change nothing (the null space), which
 * combine into as many keys with one signature as a test wants.
 */
struct sig_solver {
	const struct sg_flow_table *t;
	struct sg_flow_key base;
	unsigned int bytes[8];
	unsigned int nbits;
	uint32_t basis_img[32];	/* by pivot bit */
	uint64_t basis_set[32];
	uint64_t null[64];
	unsigned int n_null;
};

static void
flip(struct sg_flow_key *k, const struct sig_solver *sv, uint64_t set)
{
	for (unsigned int m = 0; m < sv->nbits; m++)
		if (set & (UINT64_C(1) << m))
			((uint8_t *)k)[sv->bytes[m / 8]] ^= (uint8_t)(1u << (m % 8));
}

/* Reduce img by the basis; returns the residue, *set the bits that made the rest. */
static uint32_t
reduce(const struct sig_solver *sv, uint32_t img, uint64_t *set)
{
	*set = 0;
	for (int p = 31; p >= 0 && img != 0; p--) {
		if (!(img & (UINT32_C(1) << p)) || sv->basis_img[p] == 0)
			continue;
		img ^= sv->basis_img[p];
		*set ^= sv->basis_set[p];
	}
	return img;
}

static void
solver_init(struct sig_solver *sv, const struct sg_flow_table *t, const struct sg_flow_key *base,
	    const unsigned int *bytes, unsigned int nbytes)
{
	uint32_t s0 = place_of(t, base).sig;

	memset(sv, 0, sizeof(*sv));
	sv->t = t;
	sv->base = *base;
	memcpy(sv->bytes, bytes, nbytes * sizeof(*bytes));
	sv->nbits = 8 * nbytes;
	for (unsigned int n = 0; n < sv->nbits; n++) {
		struct sg_flow_key k = *base;
		uint64_t set;
		uint32_t img;

		flip(&k, sv, UINT64_C(1) << n);
		img = reduce(sv, place_of(t, &k).sig ^ s0, &set);
		set ^= UINT64_C(1) << n;
		if (img == 0) {
			sv->null[sv->n_null++] = set;
		} else {
			int p = 31 - __builtin_clz(img);

			sv->basis_img[p] = img;
			sv->basis_set[p] = set;
		}
	}
}

/*
 * Key number j (from 0) of those with signature sig, all differing from
 * the base only in the solver's bytes. Fails the test if there is none.
 */
static void
key_with_sig(const struct sig_solver *sv, uint32_t sig, unsigned int j, struct sg_flow_key *out)
{
	uint64_t set;

	if (reduce(sv, sig ^ place_of(sv->t, &sv->base).sig, &set) != 0)
		fail_msg("no key with signature %#x (has the hash changed?)", sig);
	if (j >= (1u << RTE_MIN(sv->n_null, 20u)))
		fail_msg("key %u of signature %#x: only %u free bits", j, sig, sv->n_null);
	for (unsigned int b = 0; j >> b != 0; b++)
		if (j & (1u << b))
			set ^= sv->null[b];
	*out = sv->base;
	flip(out, sv, set);
	if (place_of(sv->t, out).sig != sig)
		fail_msg("key %u: signature %#x, want %#x", j, place_of(sv->t, out).sig, sig);
}

/* The client's address and port of an IPv4 key; the client address of an IPv6 one. */
static const unsigned int v4_client_bytes[] = { 0, 1, 2, 3, 32, 33 };
static const unsigned int v6_client_bytes[] = { 8, 9, 10, 11, 12, 13, 14, 15 };

/* Keys that differ but share a signature: the table has to compare them. */
static void
test_hash_collisions(void **state)
{
	/* Each 8-byte word of a key; family and padding left alone. */
	static const unsigned int words[5][8] = {
		{ 0, 1, 2, 3, 4, 5, 6, 7 }, { 8, 9, 10, 11, 12, 13, 14, 15 },
		{ 16, 17, 18, 19, 20, 21, 22, 23 }, { 24, 25, 26, 27, 28, 29, 30, 31 },
		{ 32, 33, 34, 35, 37 },
	};
	static const unsigned int nbytes[5] = { 8, 8, 8, 8, 5 };
	struct sg_flow_table *t = table("collide", 16);
	struct sig_solver sv;
	struct sg_flow_key a, b;
	struct sg_flow *fa, *fb;
	uint8_t addr[16];

	(void)state;
	v6addr(addr, 1, 1);
	for (unsigned int w = 0; w < 5; w++) {
		sg_flow_key_init(&a, SG_FLOW_V6, IPPROTO_TCP, addr, addr, be16(1000 + w), be16(80));
		solver_init(&sv, t, &a, words[w], nbytes[w]);
		key_with_sig(&sv, place_of(t, &a).sig, 1, &b);
		assert_memory_not_equal(&a, &b, sizeof(a));
		assert_int_equal(sg_flow_insert(t, &a, NULL, 2 * w, 0, 0, T0, &fa), 0);
		assert_null(sg_flow_lookup(t, &b, T0, NULL));
		assert_int_equal(sg_flow_insert(t, &b, NULL, 2 * w + 1, 0, 0, T0, &fb), 0);
		assert_ptr_equal(sg_flow_lookup(t, &a, T0, NULL), fa);
		assert_ptr_equal(sg_flow_lookup(t, &b, T0, NULL), fb);
		assert_int_equal(sg_flow_delete(t, fa), 0);
		assert_ptr_equal(sg_flow_lookup(t, &b, T0, NULL), fb);
		assert_int_equal(sg_flow_delete(t, fb), 0);
	}
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * Several keys under one signature in one bucket, of both families: each
 * lookup finds its own flow whichever slot comes first, single and bulk, in
 * both directions; a key of the other family with the same signature and
 * the same first bytes is another key.
 */
static void
test_signature_collisions(void **state)
{
	struct sg_flow_table *t = table("sigcoll", 64);
	struct sg_flow_key k4[6], k6[2], rev, miss[2], junk;
	const struct sg_flow_key *kp[10];
	struct sg_flow *f[8], *fl[10];
	struct sig_solver sv4, sv6;
	uint8_t dirs[10], a6[16];
	uint32_t sig;

	(void)state;
	flow_keys(7, IPPROTO_TCP, &k4[0], &rev);
	solver_init(&sv4, t, &k4[0], v4_client_bytes, RTE_DIM(v4_client_bytes));
	sig = place_of(t, &k4[0]).sig;
	for (unsigned int j = 1; j < 6; j++)
		key_with_sig(&sv4, sig, j, &k4[j]);
	/* IPv6 keys whose first four bytes are those of an IPv4 key. */
	memset(a6, 0, sizeof(a6));
	memcpy(a6, k4[0].src, 4);
	sg_flow_key_init(&k6[0], SG_FLOW_V6, IPPROTO_TCP, a6, k4[0].dst, k4[0].sport, k4[0].dport);
	solver_init(&sv6, t, &k6[0], v6_client_bytes, RTE_DIM(v6_client_bytes));
	key_with_sig(&sv6, sig, 0, &k6[0]);
	key_with_sig(&sv6, sig, 1, &k6[1]);
	key_with_sig(&sv4, sig, 6, &miss[0]);
	key_with_sig(&sv6, sig, 2, &miss[1]);

	/* The first one with a reverse key, under another signature. */
	assert_int_equal(sg_flow_insert(t, &k4[0], &rev, 0, 0, 0, T0, &f[0]), 0);
	for (unsigned int j = 1; j < 6; j++)
		assert_int_equal(sg_flow_insert(t, &k4[j], NULL, j, 0, 0, T0, &f[j]), 0);
	assert_int_equal(sg_flow_insert(t, &k6[0], NULL, 6, 0, 0, T0, &f[6]), 0);
	/* Seven keys of one signature, a full bucket, nothing elsewhere: each found. */
	for (unsigned int j = 0; j < 6; j++)
		kp[j] = &k4[5 - j];
	kp[6] = &miss[0];
	kp[7] = &k6[0];
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 8, T0, fl, dirs), 7);
	for (unsigned int j = 0; j < 6; j++)
		assert_ptr_equal(fl[j], f[5 - j]);
	assert_null(fl[6]);
	assert_ptr_equal(fl[7], f[6]);
	assert_int_equal(sg_flow_insert(t, &k6[1], NULL, 7, 0, 0, T0, &f[7]), 0);
	check_index(t);
	for (unsigned int j = 0; j < 6; j++)
		assert_int_equal(place_of(t, &k4[j]).at, FLOW_AT_PRIMARY);
	/* Seven slots in a bucket: the eighth key of the signature went to the other. */
	assert_int_equal(place_of(t, &k6[0]).at, FLOW_AT_PRIMARY);
	assert_int_equal(place_of(t, &k6[1]).at, FLOW_AT_OTHER);
	assert_int_equal(sg_flow_insert(t, &k4[3], NULL, 99, 0, 0, T0, &fl[0]), -EEXIST);

	/* Last in first: every lookup meets the others' slots before its own. */
	for (unsigned int j = 0; j < 6; j++)
		kp[j] = &k4[5 - j];
	kp[6] = &k6[1];
	kp[7] = &miss[0];
	kp[8] = &miss[1];
	kp[9] = &k6[0];
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 10, T0, fl, dirs), 8);
	for (unsigned int j = 0; j < 6; j++) {
		assert_ptr_equal(fl[j], f[5 - j]);
		assert_int_equal(dirs[j], FWD);
		assert_ptr_equal(sg_flow_lookup(t, &k4[j], T0, NULL), f[j]);
	}
	assert_ptr_equal(fl[6], f[7]);
	assert_null(fl[7]);
	assert_null(fl[8]);
	assert_ptr_equal(fl[9], f[6]);
	assert_null(sg_flow_lookup(t, &miss[0], T0, NULL));
	assert_null(sg_flow_lookup(t, &miss[1], T0, NULL));
	assert_ptr_equal(sg_flow_lookup(t, &k6[1], T0, NULL), f[7]);
	flow_keys(7, IPPROTO_TCP, &junk, &rev);
	assert_ptr_equal(sg_flow_lookup(t, &rev, T0, dirs), f[0]);
	assert_int_equal(dirs[0], REV);

	/* Deleting one leaves the others where they are, and found. */
	assert_int_equal(sg_flow_delete(t, f[2]), 0);
	assert_null(sg_flow_lookup(t, &k4[2], T0, NULL));
	assert_ptr_equal(sg_flow_lookup(t, &k4[3], T0, NULL), f[3]);
	assert_ptr_equal(sg_flow_lookup(t, &k6[1], T0, NULL), f[7]);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * Keys of one signature share both buckets: seven go to the primary, seven
 * to the other, the next FLOW_STASH to the stash, and the one after is
 * refused as a full table would refuse it, with nothing left behind. Every
 * one of them is found; a freed bucket slot takes a stashed key back.
 */
static void
test_overflow(void **state)
{
	enum { N = 2 * FLOW_SLOTS + FLOW_STASH };
	struct sg_flow_table *t = table("overflow", 1024);
	const struct sg_flow_stats *st = sg_flow_stats(t);
	struct sg_flow_key k[N + 2], rev, junk;
	const struct sg_flow_key *kp[N];
	struct sg_flow *f[N + 1], *fl[N], *g = NULL;
	struct flow_index_info info;
	struct sig_solver sv;
	uint8_t dirs[N];
	uint32_t sig, n;

	(void)state;
	flow_keys(1, IPPROTO_UDP, &k[0], NULL);
	solver_init(&sv, t, &k[0], v4_client_bytes, RTE_DIM(v4_client_bytes));
	sig = place_of(t, &k[0]).sig;
	for (unsigned int j = 1; j < N + 2; j++)
		key_with_sig(&sv, sig, j, &k[j]);
	for (unsigned int j = 0; j < N; j++) {
		int want = j < FLOW_SLOTS ? FLOW_AT_PRIMARY :
			   j < 2 * FLOW_SLOTS ? FLOW_AT_OTHER : FLOW_AT_STASH;

		assert_int_equal(sg_flow_insert(t, &k[j], NULL, j, 0, 0, T0, &f[j]), 0);
		if (place_of(t, &k[j]).at != want)
			fail_msg("key %u: at %d, want %d", j, place_of(t, &k[j]).at, want);
	}
	check_index(t);
	flow_table_index_info(t, &info);
	assert_int_equal(info.keys, N);
	assert_int_equal(info.spilled, FLOW_SLOTS);
	assert_int_equal(info.stash_n, FLOW_STASH);
	assert_int_equal(info.moves, 0);	/* nowhere to move a key of that signature */

	/* Both buckets and the stash are full: refused, counted, nothing kept. */
	assert_int_equal(sg_flow_insert(t, &k[N], NULL, N, 0, 0, T0, &g), -ENOSPC);
	assert_null(g);
	assert_int_equal(st->table_full, 1);
	assert_int_equal(sg_flow_count(t), N);
	assert_null(sg_flow_lookup(t, &k[N], T0, NULL));
	/* A NAT flow whose reverse key does not fit takes its forward key back. */
	flow_keys(2, IPPROTO_UDP, &junk, &rev);
	assert_int_equal(sg_flow_insert(t, &rev, &k[N], N, 0, 0, T0, &g), -ENOSPC);
	assert_null(sg_flow_lookup(t, &rev, T0, NULL));
	assert_int_equal(st->table_full, 2);
	assert_int_equal(sg_flow_count(t), N);
	check_index(t);
	/* Other keys still go in. */
	assert_int_equal(sg_flow_insert(t, &junk, &rev, 9999, 0, 0, T0, &g), 0);

	/* Every key found, in one bulk call and one by one. */
	for (unsigned int j = 0; j < N; j++)
		kp[j] = &k[N - 1 - j];
	assert_int_equal(sg_flow_lookup_bulk(t, kp, N, T0, fl, dirs), N);
	for (unsigned int j = 0; j < N; j++) {
		assert_ptr_equal(fl[j], f[N - 1 - j]);
		assert_ptr_equal(sg_flow_lookup(t, &k[j], T0, NULL), f[j]);
	}

	/* A slot freed in the primary takes a key of the stash. */
	assert_int_equal(sg_flow_delete(t, f[3]), 0);
	flow_table_index_info(t, &info);
	assert_int_equal(info.stash_n, FLOW_STASH - 1);
	check_index(t);
	/* Deleting from the stash itself, then refilling it to the brim. */
	assert_int_equal(sg_flow_delete(t, f[N - 1]), 0);
	assert_int_equal(sg_flow_delete(t, f[2 * FLOW_SLOTS + 5]), 0);
	flow_table_index_info(t, &info);
	assert_int_equal(info.stash_n, FLOW_STASH - 3);
	check_index(t);
	for (unsigned int j = N; j < N + 2; j++)
		assert_int_equal(sg_flow_insert(t, &k[j], NULL, j, 0, 0, T0, &g), 0);
	assert_int_equal(sg_flow_insert(t, &k[3], NULL, 3, 0, 0, T0, &g), 0);
	assert_int_equal(sg_flow_insert(t, &k[N - 1], NULL, 3, 0, 0, T0, &g), -ENOSPC);
	check_index(t);

	/* Stashed flows expire like the others: lazily, and by the sweep. */
	n = sg_flow_count(t);
	assert_null(sg_flow_lookup(t, &k[N + 1], T0 + 30001, NULL));
	assert_int_equal(sg_flow_sweep(t, T0 + 30001, 100000), n - 1);
	assert_int_equal(sg_flow_count(t), 0);
	flow_table_index_info(t, &info);
	assert_int_equal(info.stash_n, 0);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * A bulk lookup that removes an expired flow frees a slot in the bucket of
 * a later key of its burst, whose key is in the stash: the key must not move
 * into the slot before the burst is done, or its lookup, which already
 * compared the bucket's signatures, would find it neither there nor the
 * stash flagged. Here bucket p holds the expiring flow's key and six of the
 * stashed key's signature, bucket q keys whose other bucket is p, so the
 * stashed key has nowhere else to go and nothing of p is elsewhere.
 */
static void
test_bulk_expired_frees_for_stash(void **state)
{
	enum { CAND = 1u << 16 };
	struct sg_flow_conf c = conf_of("expstash", 64);
	struct sg_flow_key a[FLOW_SLOTS], k0, key;
	const struct sg_flow_key *kp[2] = { &k0, &a[FLOW_SLOTS - 1] };
	struct sg_flow *fa[FLOW_SLOTS], *f0, *f, *fl[2];
	struct flow_key_place pa;
	struct flow_index_info info;
	struct sg_flow_table *t;
	struct sig_solver sv;
	unsigned int nq = 0, n0 = 0;
	uint8_t dirs[2];

	(void)state;
	c.timeout_ms[SG_FLOW_UDP] = 1000;
	t = table_of(&c);
	flow_keys(CAND + 1, IPPROTO_UDP, &a[0], NULL);
	pa = place_of(t, &a[0]);
	solver_init(&sv, t, &a[0], v4_client_bytes, RTE_DIM(v4_client_bytes));
	for (unsigned int j = 1; j < FLOW_SLOTS; j++)
		key_with_sig(&sv, pa.sig, j, &a[j]);
	/* Seven keys of primary q and other p; then k0, of p and q, another signature. */
	for (uint32_t i = 0; i < CAND && (nq < FLOW_SLOTS || n0 == 0); i++) {
		struct flow_key_place pl;

		flow_keys(i, IPPROTO_UDP, &key, NULL);
		pl = place_of(t, &key);
		if (nq < FLOW_SLOTS && pl.primary == pa.other && pl.other == pa.primary) {
			assert_int_equal(sg_flow_insert(t, &key, NULL, 100 + i, 0, 0, T0, &f), 0);
			f->last_seen = T0 + 900;
			nq++;
		} else if (n0 == 0 && pl.primary == pa.primary && pl.other == pa.other &&
			   pl.sig != pa.sig) {
			k0 = key;
			n0++;
		}
	}
	if (nq < FLOW_SLOTS || n0 == 0)
		fail_msg("no keys for buckets %u and %u", pa.primary, pa.other);
	assert_int_equal(sg_flow_insert(t, &k0, NULL, 0, 0, 0, T0, &f0), 0);
	for (unsigned int j = 0; j < FLOW_SLOTS; j++) {
		assert_int_equal(sg_flow_insert(t, &a[j], NULL, 1 + j, 0, 0, T0, &fa[j]), 0);
		fa[j]->last_seen = T0 + 900;
	}
	assert_int_equal(place_of(t, &k0).at, FLOW_AT_PRIMARY);
	assert_int_equal(place_of(t, &a[FLOW_SLOTS - 2]).at, FLOW_AT_PRIMARY);
	assert_int_equal(place_of(t, &a[FLOW_SLOTS - 1]).at, FLOW_AT_STASH);
	check_index(t);

	/* k0 is expired, the others are not. */
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 2, T0 + 1001, fl, dirs), 1);
	assert_null(fl[0]);
	assert_ptr_equal(fl[1], fa[FLOW_SLOTS - 1]);
	/* After the burst the stashed key took the freed slot. */
	flow_table_index_info(t, &info);
	assert_int_equal(info.stash_n, 0);
	assert_int_equal(place_of(t, &a[FLOW_SLOTS - 1]).at, FLOW_AT_PRIMARY);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * A key that lives in its other bucket, behind a primary bucket full of
 * other signatures, is still caught as in use: the duplicate check of an
 * insert must not stop at the primary bucket.
 */
static void
test_exists_away(void **state)
{
	struct sg_flow_table *t = table("away", 64);
	struct sg_flow_key k, x, other;
	struct flow_key_place px;
	struct sg_flow *f = NULL;
	unsigned int in_p = 0;

	(void)state;
	flow_keys(0, IPPROTO_UDP, &x, NULL);
	px = place_of(t, &x);
	for (uint32_t i = 1; i < 4096 && in_p < FLOW_SLOTS; i++) {
		flow_keys(i, IPPROTO_UDP, &k, NULL);
		if (place_of(t, &k).primary != px.primary || place_of(t, &k).sig == px.sig)
			continue;
		assert_int_equal(sg_flow_insert(t, &k, NULL, i, 0, 0, T0, &f), 0);
		in_p++;
	}
	if (in_p < FLOW_SLOTS)
		fail_msg("only %u keys for bucket %u", in_p, px.primary);
	assert_int_equal(sg_flow_insert(t, &x, NULL, 0, 0, 0, T0, &f), 0);
	assert_int_equal(place_of(t, &x).at, FLOW_AT_OTHER);

	assert_int_equal(sg_flow_insert(t, &x, NULL, 9, 0, 0, T0, &f), -EEXIST);
	flow_keys(5000, IPPROTO_UDP, &other, NULL);
	assert_int_equal(sg_flow_insert(t, &other, &x, 9, 0, 0, T0, &f), -EEXIST);
	assert_int_equal(sg_flow_stats(t)->exists, 2);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * Both buckets of a new key full, with room one move away: the search moves
 * a key of the primary to its other bucket and the new key takes its slot.
 * Keys are picked from many by where they land, so this holds for any seed.
 */
static void
test_search_moves(void **state)
{
	struct sg_flow_table *t = table("moves", 64);
	struct sg_flow_key k, cand[4096], in[2 * FLOW_SLOTS];
	struct flow_key_place pl[4096], pk;
	struct flow_index_info info;
	unsigned int n_p = 0, n_q = 0, i;
	struct sg_flow *f;

	(void)state;
	/* The new key, and its two buckets. */
	flow_keys(0, IPPROTO_UDP, &k, NULL);
	pk = place_of(t, &k);
	for (i = 0; i < RTE_DIM(cand); i++) {
		flow_keys(i + 1, IPPROTO_UDP, &cand[i], NULL);
		pl[i] = place_of(t, &cand[i]);
	}
	/* Seven keys of primary p whose other bucket is not q; seven of primary q. */
	for (i = 0; i < RTE_DIM(cand) && (n_p < FLOW_SLOTS || n_q < FLOW_SLOTS); i++) {
		if (pl[i].primary == pk.primary && pl[i].other != pk.other && n_p < FLOW_SLOTS)
			in[n_p++] = cand[i];
		else if (pl[i].primary == pk.other && pl[i].other != pk.primary &&
			 n_q < FLOW_SLOTS)
			in[FLOW_SLOTS + n_q++] = cand[i];
	}
	if (n_p < FLOW_SLOTS || n_q < FLOW_SLOTS)
		fail_msg("only %u and %u keys for buckets %u and %u", n_p, n_q, pk.primary,
			 pk.other);
	for (i = 0; i < 2 * FLOW_SLOTS; i++) {
		assert_int_equal(sg_flow_insert(t, &in[i], NULL, i, 0, 0, T0, &f), 0);
		assert_int_equal(place_of(t, &in[i]).at, FLOW_AT_PRIMARY);
	}
	assert_int_equal(sg_flow_insert(t, &k, NULL, 100, 0, 0, T0, &f), 0);
	flow_table_index_info(t, &info);
	assert_int_equal(info.moves, 1);
	assert_int_equal(info.stash_n, 0);
	assert_int_equal(info.spilled, 1);
	assert_int_equal(place_of(t, &k).at, FLOW_AT_PRIMARY);
	/* The key moved is now in its other bucket, and found there. */
	for (i = 0, n_p = 0; i < 2 * FLOW_SLOTS; i++) {
		n_p += place_of(t, &in[i]).at == FLOW_AT_OTHER;
		assert_int_equal(sg_flow_lookup(t, &in[i], T0, NULL)->service_id, i);
	}
	assert_int_equal(n_p, 1);
	assert_int_equal(sg_flow_lookup(t, &k, T0, NULL)->service_id, 100);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * A key whose primary bucket was full lives in its other bucket; once a
 * slot of its primary is free again, a lookup that meets the key moves it
 * back, so that later lookups read one bucket. A bulk lookup does so only
 * after its burst, in which the key may come twice.
 */
static void
test_settle(void **state)
{
	struct sg_flow_table *t = table("settle", 1024);
	struct sg_flow_key k[FLOW_SLOTS + 2], other;
	const struct sg_flow_key *kp[4];
	struct sg_flow *f[FLOW_SLOTS + 2], *fl[4];
	struct flow_index_info info;
	struct sig_solver sv;
	uint8_t dirs[4];
	uint32_t sig;

	(void)state;
	flow_keys(3, IPPROTO_UDP, &k[0], NULL);
	solver_init(&sv, t, &k[0], v4_client_bytes, RTE_DIM(v4_client_bytes));
	sig = place_of(t, &k[0]).sig;
	for (unsigned int j = 1; j < FLOW_SLOTS + 2; j++)
		key_with_sig(&sv, sig, j, &k[j]);
	for (unsigned int j = 0; j < FLOW_SLOTS + 2; j++)
		assert_int_equal(sg_flow_insert(t, &k[j], NULL, j, 0, 0, T0, &f[j]), 0);
	assert_int_equal(place_of(t, &k[FLOW_SLOTS]).at, FLOW_AT_OTHER);
	assert_int_equal(place_of(t, &k[FLOW_SLOTS + 1]).at, FLOW_AT_OTHER);

	/* Primary full: a lookup leaves the key where it is. */
	assert_ptr_equal(sg_flow_lookup(t, &k[FLOW_SLOTS], T0, NULL), f[FLOW_SLOTS]);
	assert_int_equal(place_of(t, &k[FLOW_SLOTS]).at, FLOW_AT_OTHER);

	/* One slot free: a bulk lookup finds the key twice in its burst, then moves it. */
	assert_int_equal(sg_flow_delete(t, f[0]), 0);
	flow_keys(4, IPPROTO_UDP, &other, NULL);
	kp[0] = &k[FLOW_SLOTS];
	kp[1] = &other;
	kp[2] = &k[FLOW_SLOTS];
	kp[3] = &k[1];
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 4, T0, fl, dirs), 3);
	assert_ptr_equal(fl[0], f[FLOW_SLOTS]);
	assert_null(fl[1]);
	assert_ptr_equal(fl[2], f[FLOW_SLOTS]);
	assert_ptr_equal(fl[3], f[1]);
	assert_int_equal(place_of(t, &k[FLOW_SLOTS]).at, FLOW_AT_PRIMARY);
	check_index(t);

	/* Again, one key at a time. */
	assert_int_equal(sg_flow_delete(t, f[1]), 0);
	assert_ptr_equal(sg_flow_lookup(t, &k[FLOW_SLOTS + 1], T0, NULL), f[FLOW_SLOTS + 1]);
	assert_int_equal(place_of(t, &k[FLOW_SLOTS + 1]).at, FLOW_AT_PRIMARY);
	flow_table_index_info(t, &info);
	assert_int_equal(info.settled, 2);
	assert_int_equal(info.spilled, 0);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * Room two moves away. A key's two buckets differ by an odd distance, so
 * buckets of one parity only ever pair with the other's; here the keys in
 * the primary p of a new key all have r as their other bucket, those in its
 * other bucket q all have r2, both r and r2 are full, and the keys of r
 * have room in their other buckets. The search moves a key of r out, a key
 * of p into r, and the new key takes the slot in p.
 */
static void
test_search_two_moves(void **state)
{
	enum { CAND = 1u << 16 };
	struct sg_flow_table *t = table("moves2", 64);
	struct flow_key_place *pl = malloc(CAND * sizeof(*pl));
	struct sg_flow_key k, key;
	struct flow_index_info info;
	uint32_t p, q, r, r2, nb;
	struct sg_flow *f;
	unsigned int n[4] = { 0 }, away = 0;

	(void)state;
	assert_non_null(pl);
	flow_table_index_info(t, &info);
	nb = info.buckets;
	flow_keys(0, IPPROTO_UDP, &k, NULL);
	p = place_of(t, &k).primary;
	q = place_of(t, &k).other;
	for (uint32_t i = 0; i < CAND; i++) {
		flow_keys(i + 1, IPPROTO_UDP, &key, NULL);
		pl[i] = place_of(t, &key);
	}
	/* The first r with seven keys (p, r), the first r2 with seven (q, r2). */
	for (r = 0, r2 = 0; r < nb; r++) {
		unsigned int np = 0;

		for (uint32_t i = 0; i < CAND; i++)
			np += pl[i].primary == p && pl[i].other == r;
		if (r != q && np >= FLOW_SLOTS)
			break;
	}
	for (; r2 < nb; r2++) {
		unsigned int nq = 0;

		for (uint32_t i = 0; i < CAND; i++)
			nq += pl[i].primary == q && pl[i].other == r2;
		if (r2 != p && nq >= FLOW_SLOTS)
			break;
	}
	if (r == nb || r2 == nb)
		fail_msg("no buckets for %u and %u", p, q);
	/* r's and r2's own keys first: r's with room in their other buckets. */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < CAND; i++) {
			unsigned int *c = NULL;

			if (pass == 0 && pl[i].primary == r && pl[i].other != p &&
			    pl[i].other != r2)
				c = &n[0];
			else if (pass == 0 && pl[i].primary == r2)
				c = &n[1];
			else if (pass == 1 && pl[i].primary == p && pl[i].other == r)
				c = &n[2];
			else if (pass == 1 && pl[i].primary == q && pl[i].other == r2)
				c = &n[3];
			if (c == NULL || *c == FLOW_SLOTS)
				continue;
			(*c)++;
			flow_keys(i + 1, IPPROTO_UDP, &key, NULL);
			assert_int_equal(sg_flow_insert(t, &key, NULL, i + 1, 0, 0, T0, &f), 0);
			assert_int_equal(place_of(t, &key).at, FLOW_AT_PRIMARY);
		}
	}
	for (unsigned int j = 0; j < 4; j++)
		assert_int_equal(n[j], FLOW_SLOTS);

	assert_int_equal(sg_flow_insert(t, &k, NULL, 0, 0, 0, T0, &f), 0);
	flow_table_index_info(t, &info);
	assert_int_equal(info.moves, 2);
	assert_int_equal(info.stash_n, 0);
	assert_int_equal(place_of(t, &k).at, FLOW_AT_PRIMARY);
	for (uint32_t i = 0; i < CAND; i++) {
		const struct sg_flow *g;

		flow_keys(i + 1, IPPROTO_UDP, &key, NULL);
		g = sg_flow_lookup(t, &key, T0, NULL);
		if (g == NULL)
			continue;
		assert_int_equal(g->service_id, i + 1);
		away += place_of(t, &key).at == FLOW_AT_OTHER;
	}
	assert_int_equal(away, 2);
	check_index(t);
	free(pl);
	sg_flow_table_free(t);
}

/*
 * The keys of one primary bucket must not all share one other bucket, or a
 * crowded bucket pair could only spill into each other: the other bucket
 * comes from the signature through a multiply, not from the primary alone.
 */
static void
test_other_buckets_spread(void **state)
{
	struct sg_flow_table *t = table("spread", 1792);	/* 1024 buckets */
	struct flow_index_info info;
	uint8_t seen[1024] = { 0 };
	unsigned int keys = 0, others = 0;

	(void)state;
	flow_table_index_info(t, &info);
	assert_int_equal(info.buckets, 1024);
	for (uint32_t i = 0; i < 200000; i++) {
		struct sg_flow_key k;
		struct flow_key_place pl;

		flow_keys(i, IPPROTO_TCP, &k, NULL);
		pl = place_of(t, &k);
		assert_int_not_equal(pl.other, pl.primary);
		assert_true(pl.other < 1024);
		if (pl.primary != 5)
			continue;
		keys++;
		others += !seen[pl.other];
		seen[pl.other] = 1;
	}
	/* About 200 keys, over the 512 buckets of the other parity. */
	if (keys < 100 || others < keys / 2)
		fail_msg("%u keys of bucket 5 have %u other buckets", keys, others);
	sg_flow_table_free(t);
}

/* xorshift64* (Vigna 2016), fixed seed: every run makes the same moves. */
static uint64_t
rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/*
 * Churn where the index is crowded: CROWD keys have both buckets among four,
 * far more keys than those hold, so keys spill, move, go to the stash and
 * are refused; the others have their primary among eight other buckets and
 * spill out into the rest of the table. All are inserted, then flows are
 * deleted and created at random, NAT and DSR mixed, with the invariants
 * checked and every live flow found (bulk, with the other keys as misses)
 * as it goes.
 */
static void
test_churn_crowded(void **state)
{
	enum { POOL = 200, CROWD = 120, ROUNDS = 4000 };
	struct sg_flow_table *t = table("churn", 256);
	struct sg_flow_key fwd[POOL], rev[POOL];
	const struct sg_flow_key *kp[2 * POOL];
	struct sg_flow *live[POOL], *fl[2 * POOL];
	struct flow_index_info info;
	uint8_t dirs[2 * POOL];
	uint64_t seed = 0x5eed5eed;
	unsigned int n = 0, i, c;

	(void)state;
	for (i = 0; n < POOL; i++) {
		struct sg_flow_key f, r;
		struct flow_key_place pl;

		assert_true(i < (1u << 24));
		flow_keys(i, IPPROTO_UDP, &f, &r);
		pl = place_of(t, &f);
		if (n < CROWD ? pl.primary >= 4 || pl.other >= 4 :
				pl.primary < 4 || pl.primary >= 12)
			continue;
		fwd[n] = f;
		rev[n] = r;
		live[n++] = NULL;
	}
	for (unsigned int round = 0; round < POOL + ROUNDS; round++) {
		unsigned int j = round < POOL ? round : (unsigned int)(rng(&seed) % POOL);

		if (live[j] != NULL) {
			assert_int_equal(sg_flow_delete(t, live[j]), 0);
			live[j] = NULL;
		} else {
			int rc = sg_flow_insert(t, &fwd[j], j % 3 ? &rev[j] : NULL, j, 0, 0, T0,
						&live[j]);

			/* Only keys of the crowded pair of buckets can run out of room. */
			if (rc == -ENOSPC && j < CROWD)
				live[j] = NULL;
			else
				assert_int_equal(rc, 0);
		}
		if (round % 97 != 0 && round != POOL + ROUNDS - 1)
			continue;
		check_index(t);
		for (i = 0, c = 0; i < POOL; i++) {
			kp[c++] = &fwd[i];
			kp[c++] = &rev[i];
		}
		sg_flow_lookup_bulk(t, kp, c, T0, fl, dirs);
		for (i = 0; i < POOL; i++) {
			assert_ptr_equal(fl[2 * i], live[i]);
			assert_ptr_equal(fl[2 * i + 1], i % 3 ? live[i] : NULL);
			if (live[i] != NULL)
				assert_int_equal(dirs[2 * i + 1] | (dirs[2 * i] << 1),
						 i % 3 ? 1 : 0);
		}
	}
	flow_table_index_info(t, &info);
	/* The crowding did what it was for. */
	assert_true(info.moves > 0);
	assert_true(info.stashed > 0);
	assert_true(sg_flow_stats(t)->table_full > 0);
	for (i = 0; i < POOL; i++)
		if (live[i] != NULL)
			assert_int_equal(sg_flow_delete(t, live[i]), 0);
	flow_table_index_info(t, &info);
	assert_int_equal(info.keys, 0);
	assert_int_equal(info.spilled, 0);
	assert_int_equal(info.stash_n, 0);
	check_index(t);
	sg_flow_table_free(t);
}

/* --- bulk lookup ----------------------------------------------------------- */

static void
test_bulk(void **state)
{
	struct sg_flow_table *t = table("bulk", 64);
	struct sg_flow_key keys[70];
	const struct sg_flow_key *kp[70];
	struct sg_flow *fl[70], *by_i[10];
	uint8_t dirs[70];
	const struct sg_flow_stats *st = sg_flow_stats(t);

	(void)state;
	for (uint32_t i = 0; i < 10; i++)
		by_i[i] = insert_i(t, i, IPPROTO_TCP, 1, T0);
	/* Keys 7j: flow j forward; 7j+3: flow j reverse; the rest unknown. */
	for (uint32_t i = 0; i < 70; i++) {
		struct sg_flow_key junk;

		if (i % 7 == 0)
			flow_keys(i / 7, IPPROTO_TCP, &keys[i], &junk);
		else if (i % 7 == 3)
			flow_keys(i / 7, IPPROTO_TCP, &junk, &keys[i]);
		else
			flow_keys(1000 + i, IPPROTO_TCP, &keys[i], &junk);
		kp[i] = &keys[i];
	}
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 0, T0, fl, dirs), 0);
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 70, T0, fl, dirs), 20);
	for (uint32_t i = 0; i < 70; i++) {
		if (i % 7 == 0 || i % 7 == 3) {
			assert_ptr_equal(fl[i], by_i[i / 7]);
			assert_int_equal(dirs[i], i % 7 == 0 ? FWD : REV);
		} else {
			assert_null(fl[i]);
		}
	}
	assert_int_equal(st->lookups, 70);
	assert_int_equal(st->hits, 20);
	sg_flow_table_free(t);
}

static void
test_bulk_expired_twice_in_burst(void **state)
{
	struct sg_flow_table *t = table("bulkexp", 16);
	struct sg_flow_key fwd, rev;
	const struct sg_flow_key *kp[4] = { &fwd, &rev, &fwd, &rev };
	struct sg_flow *fl[4];
	uint8_t dirs[4];

	(void)state;
	insert_i(t, 1, IPPROTO_UDP, 1, T0);
	flow_keys(1, IPPROTO_UDP, &fwd, &rev);
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 4, T0 + 30000, fl, dirs), 4);
	/* Both keys of the expired flow in one burst: removed once, all misses. */
	assert_int_equal(sg_flow_lookup_bulk(t, kp, 4, T0 + 30001, fl, dirs), 0);
	for (int i = 0; i < 4; i++)
		assert_null(fl[i]);
	assert_int_equal(sg_flow_stats(t)->expired_lazy, 1);
	assert_int_equal(sg_flow_count(t), 0);
	/* And the caller can create it again. */
	insert_i(t, 1, IPPROTO_UDP, 1, T0 + 30001);
	sg_flow_table_free(t);
}

/*
 * One bulk call over three bursts of IPv4 and IPv6 keys, NAT and DSR,
 * forward and reverse, hits and misses (IPv6 keys with an IPv4 key's first
 * bytes among them), and flows found expired, both keys of one in the same
 * burst and across a burst's edge: every answer as sg_flow_lookup() gives it.
 */
static void
test_bulk_mixed_families(void **state)
{
	enum { N = 3 * SG_MAX_BURST - 5 };
	struct sg_flow_conf c = conf_of("bulkmix", 64);
	struct sg_flow_key keys[N], f4[8], r4[8], f6[8], r6[8];
	const struct sg_flow_key *kp[N];
	struct sg_flow *fl[N], *by4[8], *by6[8];
	struct sg_flow_table *t;
	const struct sg_flow_stats *st;
	uint8_t dirs[N], a6[16];
	unsigned int want_hits = 0;

	(void)state;
	c.max_flows_v6 = 8;
	c.timeout_ms[SG_FLOW_UDP] = 1000;
	t = table_of(&c);
	st = sg_flow_stats(t);
	/* Flows 0-3 of each family TCP, 4-7 UDP (1 s); even ones NAT, odd ones DSR. */
	for (uint16_t i = 0; i < 8; i++) {
		uint8_t proto = i < 4 ? IPPROTO_TCP : IPPROTO_UDP;

		flow_keys(i, proto, &f4[i], &r4[i]);
		v6keys(i, &f6[i], &r6[i]);
		f6[i].proto = r6[i].proto = proto;
		assert_int_equal(sg_flow_insert(t, &f4[i], i % 2 ? NULL : &r4[i], i, 0, 0, T0,
						&by4[i]), 0);
		assert_int_equal(sg_flow_insert(t, &f6[i], i % 2 ? NULL : &r6[i], 100 + i, 0, 0,
						T0, &by6[i]), 0);
	}
	/* Keep flows 4 and 6 of each family alive past the UDP timeout. */
	by4[4]->last_seen = by4[6]->last_seen = T0 + 900;
	by6[4]->last_seen = by6[6]->last_seen = T0 + 900;

	for (unsigned int i = 0; i < N; i++) {
		unsigned int fi = (i / 4) % 8;

		switch (i % 4) {
		case 0: keys[i] = f4[fi]; break;
		case 1: keys[i] = fi % 2 ? r4[fi] : r6[fi]; break;
		case 2: keys[i] = f6[fi]; break;
		default:
			/* Misses: an IPv6 twin of an IPv4 key, or an unknown IPv4 key. */
			if (fi % 2) {
				memset(a6, 0, sizeof(a6));
				memcpy(a6, f4[fi].src, 4);
				sg_flow_key_init(&keys[i], SG_FLOW_V6, f4[fi].proto, a6, f4[fi].dst,
						 f4[fi].sport, f4[fi].dport);
			} else {
				flow_keys(1000 + i, IPPROTO_TCP, &keys[i], NULL);
			}
		}
		kp[i] = &keys[i];
	}
	/* Flows 5 and 7 are expired at T0 + 1001; 4 and 6 are not. */
	want_hits = sg_flow_lookup_bulk(t, kp, N, T0 + 1001, fl, dirs);
	assert_int_equal(st->hits, want_hits);
	want_hits = 0;
	for (unsigned int i = 0; i < N; i++) {
		unsigned int fi = (i / 4) % 8, want_dir = FWD;
		struct sg_flow *want = NULL;
		int expired = fi == 5 || fi == 7;

		switch (i % 4) {
		case 0: want = by4[fi]; break;
		case 1:
			want = fi % 2 ? NULL : by6[fi];	/* DSR: no reverse key */
			want_dir = REV;
			break;
		case 2: want = by6[fi]; break;
		default: break;
		}
		if (expired)
			want = NULL;
		if (fl[i] != want || (want != NULL && dirs[i] != want_dir))
			fail_msg("key %u (flow %u, kind %u): %p dir %u, want %p dir %u", i, fi,
				 i % 4, (void *)fl[i], dirs[i], (void *)want, want_dir);
		want_hits += want != NULL;
	}
	assert_int_equal(st->hits, want_hits);
	assert_int_equal(st->lookups, N);
	/* Flows 5 and 7 of each family, each met expired once and removed. */
	assert_int_equal(st->expired_lazy, 4);
	assert_int_equal(sg_flow_count(t), 12);
	check_index(t);
	sg_flow_table_free(t);
}

/* --- expiry ------------------------------------------------------------- */

static uint8_t
proto_of_state(unsigned int s)
{
	if (s <= SG_FLOW_TCP_CLOSE)
		return IPPROTO_TCP;
	if (s <= SG_FLOW_UDP_ASSURED)
		return IPPROTO_UDP;
	return s == SG_FLOW_ICMP ? IPPROTO_ICMP : IPPROTO_GRE;
}

/* A flow in each state lives exactly its state's timeout, then is a miss. */
static void
lazy_expiry_with(struct sg_flow_table *t)
{
	const struct sg_flow_stats *st = sg_flow_stats(t);

	for (unsigned int s = 0; s < SG_FLOW_STATE_MAX; s++) {
		uint8_t proto = proto_of_state(s);
		uint32_t tmo = sg_flow_timeout(t, s);
		uint64_t before = st->expired_lazy;
		struct sg_flow *f = insert_i(t, s, proto, 1, T0);

		f->state = (uint8_t)s;
		assert_ptr_equal(find_i(t, s, proto, FWD, T0 + tmo), f);
		assert_ptr_equal(find_i(t, s, proto, REV, T0 + tmo), f);
		if (find_i(t, s, proto, REV, T0 + tmo + 1) != NULL)
			fail_msg("%s: alive after %u ms", sg_flow_state_name(s), tmo);
		assert_null(find_i(t, s, proto, FWD, T0 + tmo + 1));
		assert_int_equal(st->expired_lazy, before + 1);
		assert_int_equal(sg_flow_count(t), 0);
	}
}

static void
test_expiry_lazy_by_state(void **state)
{
	struct sg_flow_conf c = conf_of("lazy", 16);
	struct sg_flow_table *t;

	(void)state;
	t = table_of(&c);
	lazy_expiry_with(t);
	sg_flow_table_free(t);

	/* Configured timeouts, all different. */
	for (unsigned int s = 0; s < SG_FLOW_STATE_MAX; s++)
		c.timeout_ms[s] = 1000 + 37 * s;
	t = table_of(&c);
	lazy_expiry_with(t);
	sg_flow_table_free(t);
}

static void
test_expiry_follows_state(void **state)
{
	struct sg_flow_table *t = table("follow", 16);
	struct sg_flow *f;

	(void)state;
	/* A refused connection lives the CLOSE timeout from its RST. */
	f = insert_i(t, 1, IPPROTO_TCP, 1, T0);
	sg_flow_tcp_update(f, FWD, SYN, T0);
	sg_flow_tcp_update(f, REV, RST | ACK, T0 + 5);
	assert_non_null(find_i(t, 1, IPPROTO_TCP, FWD, T0 + 5 + 10000));
	assert_null(find_i(t, 1, IPPROTO_TCP, FWD, T0 + 5 + 10001));

	/* An established one outlives every short timeout. */
	f = insert_i(t, 2, IPPROTO_TCP, 1, T0);
	sg_flow_tcp_update(f, FWD, SYN, T0);
	sg_flow_tcp_update(f, REV, SYN | ACK, T0 + 1);
	sg_flow_tcp_update(f, FWD, ACK, T0 + 2);
	assert_non_null(find_i(t, 2, IPPROTO_TCP, REV, T0 + 2 + 600000));
	assert_non_null(find_i(t, 2, IPPROTO_TCP, REV, T0 + 2 + 7440000));
	assert_null(find_i(t, 2, IPPROTO_TCP, REV, T0 + 2 + 7440001));

	/* A UDP flow that was answered gets the assured timeout. */
	f = insert_i(t, 3, IPPROTO_UDP, 1, T0);
	sg_flow_touch(f, REV, T0 + 10);
	assert_non_null(find_i(t, 3, IPPROTO_UDP, FWD, T0 + 10 + 120000));
	assert_null(find_i(t, 3, IPPROTO_UDP, FWD, T0 + 10 + 120001));

	/* A clock that goes back expires nothing. */
	f = insert_i(t, 4, IPPROTO_UDP, 1, T0);
	assert_ptr_equal(find_i(t, 4, IPPROTO_UDP, FWD, 0), f);
	assert_int_equal(sg_flow_sweep(t, 0, 16), 0);
	sg_flow_table_free(t);
}

static void
test_sweep(void **state)
{
	struct sg_flow_table *t = table("sweep", 1000);
	const struct sg_flow_stats *st = sg_flow_stats(t);
	unsigned int removed, calls;

	(void)state;
	assert_int_equal(sg_flow_sweep(t, T0, 100), 0);	/* empty */

	/* 100 UDP flows (30 s) and 100 established TCP flows, interleaved. */
	for (uint32_t i = 0; i < 200; i++) {
		struct sg_flow *f = insert_i(t, i, i % 2 ? IPPROTO_TCP : IPPROTO_UDP, 1, T0);

		if (i % 2)
			f->state = SG_FLOW_TCP_ESTABLISHED;
	}
	/* Flows 0 and 2 were seen later. */
	find_i(t, 0, IPPROTO_UDP, FWD, T0)->last_seen = T0 + 20000;
	find_i(t, 2, IPPROTO_UDP, FWD, T0)->last_seen = T0 + 20000;

	assert_int_equal(sg_flow_sweep(t, T0 + 30001, 0), 0);
	/* Each call visits 16 entries at most, and picks up where it stopped. */
	removed = 0;
	for (calls = 0; calls < 200 / 16 + 1; calls++) {
		unsigned int r = sg_flow_sweep(t, T0 + 30001, 16);

		assert_true(r <= 8);	/* one entry in two is UDP */
		removed += r;
	}
	assert_int_equal(removed, 98);
	assert_int_equal(st->expired_sweep, 98);
	assert_int_equal(st->expired_lazy, 0);
	assert_int_equal(sg_flow_count(t), 102);
	for (uint32_t i = 0; i < 200; i++) {
		int alive = i % 2 || i == 0 || i == 2;

		assert_int_equal(find_i(t, i, i % 2 ? IPPROTO_TCP : IPPROTO_UDP, REV,
					T0 + 30001) != NULL, alive);
	}
	assert_int_equal(sg_flow_sweep(t, T0 + 30001, 1000), 0);

	/* All expired: two calls of 100 visit the 200 entries between them. */
	removed = sg_flow_sweep(t, T0 + 7440000 + 20001, 100);
	assert_true(removed > 0 && removed < 102);
	removed += sg_flow_sweep(t, T0 + 7440000 + 20001, 100);
	assert_int_equal(removed, 102);
	assert_int_equal(sg_flow_count(t), 0);
	assert_int_equal(sg_flow_sweep(t, T0 + 7440000 + 20001, 5000), 0);
	assert_int_equal(st->expired_sweep, 200);
	sg_flow_table_free(t);
}

/* A prefetch is only a hint: any key, in the table or not, changes nothing. */
static void
test_prefetch(void **state)
{
	struct sg_flow_table *t = table("prefetch", 64);
	struct sg_flow_key kf, kr, junk;
	struct sg_flow *f;

	(void)state;
	flow_keys(1, IPPROTO_TCP, &kf, &kr);
	memset(&junk, 0xff, sizeof(junk));
	sg_flow_prefetch(t, &kf);
	sg_flow_prefetch(t, &kr);
	sg_flow_prefetch(t, &junk);
	assert_int_equal(sg_flow_count(t), 0);
	assert_int_equal(sg_flow_stats(t)->lookups, 0);
	assert_int_equal(sg_flow_insert(t, &kf, &kr, 1, 1, 1, T0, &f), 0);
	sg_flow_prefetch(t, &kf);
	assert_ptr_equal(find_i(t, 1, IPPROTO_TCP, REV, T0), f);
	assert_int_equal(sg_flow_count(t), 1);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * Each direction's checksum change is sg_pkt_nat_csum() of its rewrite,
 * to the bit: for ordinary tuples, and for the ones whose changes fold to
 * either zero (the reverse change is not simply the forward one negated
 * there): an address, a port or both kept, and all-zero to all-ones.
 */
static void
test_nat_csums(void **state)
{
	static const struct {
		uint8_t family;
		uint8_t fs[16], fd[16], rs[16], rd[16];
		uint16_t fsp, fdp, rsp, rdp;
	} cases[] = {
		{ 4, { 198, 51, 100, 7 }, { 192, 0, 2, 10 }, { 203, 0, 113, 5 },
		  { 203, 0, 113, 1 }, 40000, 80, 8080, 1024 },
		/* dnat, addresses unchanged: only the ports move */
		{ 4, { 198, 51, 100, 7 }, { 192, 0, 2, 10 }, { 192, 0, 2, 10 },
		  { 198, 51, 100, 7 }, 40000, 80, 8080, 40000 },
		/* the reverse tuple is the forward one turned around: nothing changes */
		{ 4, { 198, 51, 100, 7 }, { 192, 0, 2, 10 }, { 192, 0, 2, 10 },
		  { 198, 51, 100, 7 }, 40000, 80, 80, 40000 },
		/* all zeroes to all ones */
		{ 4, { 0 }, { 0 }, { 255, 255, 255, 255 }, { 255, 255, 255, 255 }, 0, 0, 0xffff,
		  0xffff },
		/* all ones to all zeroes */
		{ 4, { 255, 255, 255, 255 }, { 255, 255, 255, 255 }, { 0 }, { 0 }, 0xffff, 0xffff,
		  0, 0 },
		{ 6, { 0x20, 0x01, 0x0d, 0xb8, [15] = 7 }, { 0x20, 0x01, 0x0d, 0xb8, [15] = 10 },
		  { 0x20, 0x01, 0x0d, 0xb8, 0, 0xf, [15] = 5 }, { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 },
		  40000, 443, 8443, 2048 },
		{ 6, { 0x20, 0x01, 0x0d, 0xb8, [15] = 7 }, { 0x20, 0x01, 0x0d, 0xb8, [15] = 10 },
		  { 0x20, 0x01, 0x0d, 0xb8, [15] = 10 }, { 0x20, 0x01, 0x0d, 0xb8, [15] = 7 },
		  40000, 443, 443, 40000 },
	};
	struct sg_flow_table *t = table("csums", 64);

	(void)state;
	for (size_t i = 0; i < RTE_DIM(cases); i++) {
		uint32_t alen = cases[i].family == 6 ? 16 : 4;
		struct sg_pkt_nat_csum want_fwd, want_rev;
		struct sg_flow_key fwd, rev;
		struct sg_flow *f;

		sg_flow_key_init(&fwd, cases[i].family, IPPROTO_TCP, cases[i].fs, cases[i].fd,
				 be16(cases[i].fsp), be16(cases[i].fdp));
		sg_flow_key_init(&rev, cases[i].family, IPPROTO_TCP, cases[i].rs, cases[i].rd,
				 be16(cases[i].rsp), be16(cases[i].rdp));
		want_fwd = sg_pkt_nat_csum(alen, fwd.src, fwd.dst, fwd.sport, fwd.dport, rev.dst,
					   rev.src, rev.dport, rev.sport);
		want_rev = sg_pkt_nat_csum(alen, rev.src, rev.dst, rev.sport, rev.dport, fwd.dst,
					   fwd.src, fwd.dport, fwd.sport);
		assert_int_equal(sg_flow_insert(t, &fwd, &rev, 1, 1, 1, T0, &f), 0);
		assert_int_equal(f->csum[SG_FLOW_DIR_FWD].l3, want_fwd.l3);
		assert_int_equal(f->csum[SG_FLOW_DIR_FWD].l4, want_fwd.l4);
		assert_int_equal(f->csum[SG_FLOW_DIR_REV].l3, want_rev.l3);
		assert_int_equal(f->csum[SG_FLOW_DIR_REV].l4, want_rev.l4);
		assert_int_equal(sg_flow_delete(t, f), 0);
	}
	sg_flow_table_free(t);
}

/* sg_flow_key_seen() tells the keys of flows in the table from others, and changes nothing. */
static void
test_key_seen(void **state)
{
	struct sg_flow_table *t = table("seen", 64);
	struct sg_flow_key kf, kr, other_f, other_r;
	struct sg_flow *f;

	(void)state;
	flow_keys(1, IPPROTO_TCP, &kf, &kr);
	flow_keys(2, IPPROTO_TCP, &other_f, &other_r);
	assert_false(sg_flow_key_seen(t, &kf));
	assert_false(sg_flow_key_seen(t, &kr));
	assert_int_equal(sg_flow_insert(t, &kf, &kr, 1, 1, 1, T0, &f), 0);
	assert_true(sg_flow_key_seen(t, &kf));
	assert_true(sg_flow_key_seen(t, &kr));
	assert_false(sg_flow_key_seen(t, &other_f));
	assert_false(sg_flow_key_seen(t, &other_r));
	assert_int_equal(sg_flow_stats(t)->lookups, 0);
	assert_int_equal(sg_flow_stats(t)->expired_lazy, 0);
	assert_int_equal(sg_flow_count(t), 1);
	check_index(t);
	sg_flow_table_free(t);
}

/*
 * The sweep removes expired flows in batches (their buckets prefetched
 * together): a call that meets more expired flows than a batch holds
 * removes exactly those it visits, and no more entries than its budget,
 * IPv6 and flows without a reverse key included, and the index stays
 * consistent after every call.
 */
static void
test_sweep_batches(void **state)
{
	struct sg_flow_table *t = table("sweepb", 4096);
	const struct sg_flow_stats *st = sg_flow_stats(t);
	const uint32_t n = 1000;
	unsigned int removed = 0;
	uint32_t visited = 0;

	(void)state;
	/* Three flows in four expire (UDP, 30 s); one in four is seen later. */
	for (uint32_t i = 0; i < n; i++) {
		struct sg_flow *f;

		if (i % 5 == 4) {
			struct sg_flow_key kf, kr;
			uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8 }, b[16] = { 0x20, 0x01, 0x0d, 0xb8 };

			a[15] = 1;
			b[14] = (uint8_t)(i >> 8);
			b[15] = (uint8_t)i;
			sg_flow_key_init(&kf, SG_FLOW_V6, IPPROTO_UDP, b, a, be16((uint16_t)i),
					 be16(53));
			sg_flow_key_init(&kr, SG_FLOW_V6, IPPROTO_UDP, a, b, be16(53),
					 be16((uint16_t)i));
			assert_int_equal(sg_flow_insert(t, &kf, &kr, i, 1, 1, T0, &f), 0);
		} else {
			f = insert_i(t, i, IPPROTO_UDP, i % 3 != 0, T0);
		}
		if (i % 4 == 3)
			f->last_seen = T0 + 20000;
	}
	check_index(t);
	/* Budgets of 100: 75 expired a call, more than a batch. */
	while (visited < n) {
		unsigned int r = sg_flow_sweep(t, T0 + 30001, 100);

		assert_int_equal(r, 75);
		removed += r;
		visited += 100;
		assert_int_equal(sg_flow_count(t), n - removed);
		check_index(t);
	}
	assert_int_equal(st->expired_sweep, 750);
	for (uint32_t i = 0; i < n; i++) {
		if (i % 5 == 4)
			continue;
		assert_int_equal(find_i(t, i, IPPROTO_UDP, FWD, T0 + 30001) != NULL, i % 4 == 3);
		if (i % 3 != 0)
			assert_int_equal(find_i(t, i, IPPROTO_UDP, REV, T0 + 30001) != NULL,
					 i % 4 == 3);
	}
	/* One entry of budget: at most one removed a call. */
	for (uint32_t i = 0; i < n; i++)
		assert_true(sg_flow_sweep(t, T0 + 20000 + 30001, 1) <= 1);
	assert_int_equal(sg_flow_count(t), 0);
	check_index(t);
	sg_flow_table_free(t);
}

/* --- capacity, rate ------------------------------------------------------- */

/*
 * The arrays' sizes: two slots of the index for every key of a full table,
 * and no more than an even count of buckets needs (not a power of two).
 */
static void
test_table_memory(void **state)
{
	struct sg_flow_conf c = conf_of("memory", 1000);
	struct flow_index_info info;
	struct sg_flow_memory m;
	struct sg_flow_table *t;

	(void)state;
	c.max_flows_v6 = 10;
	t = table_of(&c);
	sg_flow_table_memory(t, &m);
	flow_table_index_info(t, &info);
	assert_int_equal(m.index, info.bytes);
	assert_int_equal(m.index, (uint64_t)info.buckets * RTE_CACHE_LINE_SIZE);
	assert_int_equal(info.buckets, 572);	/* 4,000 slots / 7, rounded up to even */
	assert_int_equal(m.entries, 1000 * RTE_CACHE_LINE_SIZE);
	assert_int_equal(m.addr6, 10 * sizeof(struct sg_flow_addr6));
	sg_flow_table_free(t);
	sg_flow_table_memory(NULL, &m);
	assert_int_equal(m.index + m.entries + m.addr6, 0);
}

static void
test_full_table(void **state)
{
	struct sg_flow_table *t = table("full", 64);
	const struct sg_flow_stats *st = sg_flow_stats(t);
	struct sg_flow_key fwd, rev;
	struct sg_flow *f = NULL;

	(void)state;
	assert_int_equal(sg_flow_free(t), 64);
	/* Half NAT (two keys), half DSR (one). */
	for (uint32_t i = 0; i < 64; i++)
		insert_i(t, i, IPPROTO_TCP, i % 2 == 0, T0);
	assert_int_equal(sg_flow_free(t), 0);
	flow_keys(64, IPPROTO_TCP, &fwd, &rev);
	assert_int_equal(sg_flow_insert(t, &fwd, &rev, 64, 1, 0, T0, &f), -ENOSPC);
	assert_int_equal(sg_flow_insert(t, &fwd, NULL, 64, 1, 0, T0, &f), -ENOSPC);
	assert_null(f);
	assert_int_equal(st->table_full, 2);
	assert_int_equal(sg_flow_count(t), 64);
	assert_null(sg_flow_lookup(t, &fwd, T0, NULL));
	/* Everything in it is still found. */
	for (uint32_t i = 0; i < 64; i++) {
		assert_non_null(find_i(t, i, IPPROTO_TCP, FWD, T0));
		if (i % 2 == 0)
			assert_non_null(find_i(t, i, IPPROTO_TCP, REV, T0));
	}
	/* Make room for 10: exactly 10 more fit. */
	for (uint32_t i = 10; i < 20; i++)
		assert_int_equal(sg_flow_delete(t, find_i(t, i, IPPROTO_TCP, FWD, T0)), 0);
	assert_int_equal(sg_flow_free(t), 10);
	for (uint32_t i = 100; i < 110; i++)
		insert_i(t, i, IPPROTO_TCP, 1, T0);
	assert_int_equal(sg_flow_free(t), 0);
	assert_int_equal(sg_flow_insert(t, &fwd, &rev, 64, 1, 0, T0, &f), -ENOSPC);
	assert_int_equal(st->table_full, 3);
	assert_int_equal(sg_flow_count(t), 64);
	for (uint32_t i = 100; i < 110; i++)
		assert_int_equal(find_i(t, i, IPPROTO_TCP, REV, T0)->service_id, i);
	assert_int_equal(st->inserted, 74);
	assert_int_equal(st->deleted, 10);
	sg_flow_table_free(t);
	assert_int_equal(sg_flow_free(NULL), 0);
}

/*
 * A kept reverse tuple (DSR's backend): stored, so the flow has it, but
 * not in the index. The flow takes one key; its reverse tuple finds
 * nothing, and another flow may have the same one. Expiry and deletion
 * leave the index empty.
 */
static void
test_insert_kept(void **state)
{
	struct sg_flow_table *t = table("kept", 64);
	struct sg_flow_key fwd, rev, fwd2, got;
	struct flow_index_info info;
	struct sg_flow *f = NULL, *g = NULL;
	uint8_t dir = 0xff;

	(void)state;
	flow_keys(1, IPPROTO_TCP, &fwd, &rev);
	assert_int_equal(sg_flow_insert_kept(t, &fwd, NULL, 1, 1, 1, T0, &f), -EINVAL);
	assert_int_equal(sg_flow_insert_kept(t, &fwd, &rev, 1, 1, 1, T0, &f), 0);
	assert_true(f->flags & SG_FLOW_F_REVERSE);
	assert_int_equal(sg_flow_get_key(f, SG_FLOW_DIR_REV, &got), 0);
	assert_memory_equal(&got, &rev, sizeof(rev));
	assert_ptr_equal(sg_flow_lookup(t, &fwd, T0, &dir), f);
	assert_int_equal(dir, SG_FLOW_DIR_FWD);
	assert_null(sg_flow_lookup(t, &rev, T0, NULL));
	flow_table_index_info(t, &info);
	assert_int_equal(info.keys, 1);
	check_index(t);

	/* Another client port, the same reverse tuple: a second flow. */
	fwd2 = fwd;
	fwd2.dport = be16(81);
	assert_int_equal(sg_flow_insert_kept(t, &fwd2, &rev, 2, 1, 1, T0, &g), 0);
	assert_ptr_not_equal(g, f);
	/* As an indexed reverse key, the same tuple is taken. */
	fwd2.dport = be16(82);
	assert_int_equal(sg_flow_insert(t, &fwd2, &rev, 3, 1, 1, T0, &g), 0);
	fwd2.dport = be16(83);
	assert_int_equal(sg_flow_insert(t, &fwd2, &rev, 4, 1, 1, T0, &g), -EEXIST);
	flow_table_index_info(t, &info);
	assert_int_equal(info.keys, 4);
	check_index(t);

	/* Deleted, and swept once expired: nothing of them left in the index. */
	assert_int_equal(sg_flow_delete(t, f), 0);
	assert_int_equal(sg_flow_sweep(t, T0 + 3600000, 64), 2);
	flow_table_index_info(t, &info);
	assert_int_equal(info.keys, 0);
	assert_int_equal(sg_flow_count(t), 0);
	check_index(t);
	sg_flow_table_free(t);
}

static int
try_insert(struct sg_flow_table *t, uint32_t i, uint64_t now)
{
	struct sg_flow_key fwd, rev;
	struct sg_flow *f;

	flow_keys(i, IPPROTO_TCP, &fwd, &rev);
	return sg_flow_insert(t, &fwd, &rev, i, 1, 0, now, &f);
}

/*
 * A table of a size that puts its index at exactly half full when every
 * flow has two keys: it takes max_flows NAT flows, nearly every key in its
 * primary bucket and none in the stash, and then refuses the next one.
 */
static void
test_full_at_worst_load(void **state)
{
	/* 4 x max_flows / FLOW_SLOTS buckets, even: no slack. */
	const uint32_t max_flows = FLOW_SLOTS * (1u << 14) / 4;
	struct sg_flow_table *t = table("worst", max_flows);
	struct flow_index_info info;

	(void)state;
	for (uint32_t i = 0; i < max_flows; i++)
		if (try_insert(t, i, T0) != 0)
			fail_msg("insert %u of %u failed", i, max_flows);
	assert_int_equal(try_insert(t, max_flows, T0), -ENOSPC);
	flow_table_index_info(t, &info);
	assert_int_equal(info.buckets, 1u << 14);
	assert_int_equal(info.keys, 2 * max_flows);
	assert_int_equal(info.keys * 2, (uint64_t)info.buckets * FLOW_SLOTS);
	assert_int_equal(info.stash_n, 0);
	/*
	 * Keys placed at random, 3.5 a bucket (Poisson), overflow seven slots
	 * by 1.18 % of the keys on average.
	 */
	if (info.spilled * 1000 > info.keys * 15)
		fail_msg("%" PRIu64 " of %" PRIu64 " keys out of their primary bucket",
			 info.spilled, info.keys);
	check_index(t);
	for (uint32_t i = 0; i < max_flows; i += 7)
		assert_non_null(find_i(t, i, IPPROTO_TCP, REV, T0));
	sg_flow_table_free(t);
}

static void
test_rate_limit(void **state)
{
	struct sg_flow_conf c = conf_of("rate", 1000);
	struct sg_flow_table *t;
	const struct sg_flow_stats *st;
	uint32_t i = 0;

	(void)state;
	/* 100 flows/s, bursts of 10. */
	c.rate = 100;
	c.burst = 10;
	t = table_of(&c);
	st = sg_flow_stats(t);
	/* The room is what inserts would get; asking takes nothing. */
	assert_int_equal(sg_flow_rate_room(t, T0), 10);
	assert_int_equal(sg_flow_rate_room(t, T0), 10);
	for (int k = 0; k < 10; k++)
		assert_int_equal(try_insert(t, i++, T0), 0);
	assert_int_equal(sg_flow_rate_room(t, T0), 0);
	assert_int_equal(try_insert(t, i, T0), -EAGAIN);
	assert_int_equal(st->rate_limited, 1);
	/* A refused flow leaves nothing behind. */
	assert_null(find_i(t, i, IPPROTO_TCP, FWD, T0));
	assert_int_equal(sg_flow_count(t), 10);
	/* One flow every 10 ms. */
	assert_int_equal(try_insert(t, i, T0 + 9), -EAGAIN);
	assert_int_equal(sg_flow_rate_room(t, T0 + 9), 0);
	assert_int_equal(sg_flow_rate_room(t, T0 + 10), 1);
	assert_int_equal(try_insert(t, i++, T0 + 10), 0);
	assert_int_equal(try_insert(t, i, T0 + 10), -EAGAIN);
	assert_int_equal(try_insert(t, i++, T0 + 25), 0);	/* 1.5 tokens */
	assert_int_equal(try_insert(t, i++, T0 + 30), 0);	/* the half kept */
	assert_int_equal(try_insert(t, i, T0 + 30), -EAGAIN);
	/* A clock going back refills nothing. */
	assert_int_equal(try_insert(t, i, T0 - 100000), -EAGAIN);
	/* After a long quiet spell, never more than the burst. */
	assert_int_equal(sg_flow_rate_room(t, T0 + 3600000), 10);
	for (int k = 0; k < 10; k++)
		assert_int_equal(try_insert(t, i++, T0 + 3600000), 0);
	assert_int_equal(try_insert(t, i, T0 + 3600000), -EAGAIN);
	/* Topping up a nearly full bucket stops at the burst too. */
	assert_int_equal(try_insert(t, i++, T0 + 3700000), 0);
	for (int k = 0; k < 10; k++)
		assert_int_equal(try_insert(t, i++, T0 + 3700050), 0);
	assert_int_equal(try_insert(t, i, T0 + 3700050), -EAGAIN);
	assert_int_equal(st->rate_limited, 7);
	assert_int_equal(st->inserted, 34);
	sg_flow_table_free(t);

	/*
	 * The largest rates and clock jumps: 2^33 ms at 2^31 flows/s is
	 * 2^64 thousandths of a flow, which must not wrap to an empty bucket.
	 */
	c = conf_of("rate4", 16);
	c.rate = 1u << 31;
	c.burst = 1;
	t = table_of(&c);
	assert_int_equal(try_insert(t, 0, T0), 0);
	assert_int_equal(try_insert(t, 1, T0), -EAGAIN);
	assert_int_equal(sg_flow_rate_room(t, T0 + (UINT64_C(1) << 33)), 1);
	assert_int_equal(try_insert(t, 1, T0 + (UINT64_C(1) << 33)), 0);
	sg_flow_table_free(t);

	/* Default burst: one second's worth. A full table spends no token. */
	c = conf_of("rate2", 2);
	c.rate = 3;
	t = table_of(&c);
	st = sg_flow_stats(t);
	assert_int_equal(try_insert(t, 0, T0), 0);
	assert_int_equal(try_insert(t, 1, T0), 0);
	assert_int_equal(try_insert(t, 2, T0), -ENOSPC);
	assert_int_equal(try_insert(t, 2, T0), -ENOSPC);
	assert_int_equal(sg_flow_delete(t, find_i(t, 0, IPPROTO_TCP, FWD, T0)), 0);
	assert_int_equal(try_insert(t, 2, T0), 0);
	assert_int_equal(sg_flow_delete(t, find_i(t, 1, IPPROTO_TCP, FWD, T0)), 0);
	assert_int_equal(try_insert(t, 3, T0), -EAGAIN);
	assert_int_equal(st->table_full, 2);
	assert_int_equal(st->rate_limited, 1);
	sg_flow_table_free(t);

	/* Rate 0: no limit. */
	c = conf_of("rate3", 500);
	t = table_of(&c);
	assert_int_equal(sg_flow_rate_room(t, T0), UINT32_MAX);
	assert_int_equal(sg_flow_rate_room(NULL, T0), UINT32_MAX);
	for (i = 0; i < 500; i++)
		assert_int_equal(try_insert(t, i, T0), 0);
	assert_int_equal(sg_flow_stats(t)->rate_limited, 0);
	sg_flow_table_free(t);
}

static void
test_iterate(void **state)
{
	struct sg_flow_table *t = table("iter", 16);
	const struct sg_flow *f;
	uint32_t pos = 0, seen = 0;

	(void)state;
	assert_int_equal(sg_flow_iterate(t, &pos, &f), -ENOENT);
	for (uint32_t i = 0; i < 8; i++)
		insert_i(t, i, IPPROTO_UDP, i % 2, T0);
	assert_int_equal(sg_flow_delete(t, find_i(t, 0, IPPROTO_UDP, FWD, T0)), 0);
	assert_int_equal(sg_flow_delete(t, find_i(t, 5, IPPROTO_UDP, FWD, T0)), 0);
	pos = 0;
	while (sg_flow_iterate(t, &pos, &f) == 0)
		seen |= 1u << f->service_id;
	assert_int_equal(seen, 0xff & ~(1u << 0) & ~(1u << 5));
	assert_int_equal(sg_flow_iterate(t, &pos, &f), -ENOENT);
	sg_flow_table_free(t);
}

/* --- one million flows ----------------------------------------------------- */

#define MILLION 1000000u

static void
test_million(void **state)
{
	struct sg_flow_conf c = conf_of("million", 1u << 20);
	struct flow_index_info info;
	struct sg_flow_table *t;
	const struct sg_flow_stats *st;
	struct sg_flow_key keys[SG_MAX_BURST];
	const struct sg_flow_key *kp[SG_MAX_BURST];
	struct sg_flow *fl[SG_MAX_BURST];
	uint8_t dirs[SG_MAX_BURST];
	unsigned int calls = 0;
	uint64_t swept = 0;

	(void)state;
	c.max_flows_v6 = 1;
	t = table_of(&c);
	st = sg_flow_stats(t);
	for (uint32_t i = 0; i < MILLION; i++) {
		struct sg_flow_key fwd, rev;
		struct sg_flow *f;

		flow_keys(i, IPPROTO_UDP, &fwd, &rev);
		if (sg_flow_insert(t, &fwd, &rev, i, 1, 0, T0, &f) != 0)
			fail_msg("insert %u failed", i);
	}
	assert_int_equal(sg_flow_count(t), MILLION);
	flow_table_index_info(t, &info);
	assert_int_equal(info.keys, 2 * MILLION);
	assert_int_equal(info.stash_n, 0);
	/* 3.34 keys a bucket at random overflow seven slots by 0.95 % of them. */
	if (info.spilled * 1000 > info.keys * 12)
		fail_msg("%" PRIu64 " keys out of their primary bucket", info.spilled);
	check_index(t);

	/* Every key found in bursts, each to its flow, in its direction. */
	for (int k = 0; k < SG_MAX_BURST; k++)
		kp[k] = &keys[k];
	for (uint32_t base = 0; base < 2 * MILLION; base += SG_MAX_BURST) {
		unsigned int n = RTE_MIN(SG_MAX_BURST, 2 * MILLION - base);

		for (unsigned int k = 0; k < n; k++) {
			struct sg_flow_key junk;
			uint32_t j = base + k;

			if (j % 2 == 0)
				flow_keys(j / 2, IPPROTO_UDP, &keys[k], &junk);
			else
				flow_keys(j / 2, IPPROTO_UDP, &junk, &keys[k]);
		}
		if (sg_flow_lookup_bulk(t, kp, n, T0 + 1, fl, dirs) != n)
			fail_msg("misses in keys %u..%u", base, base + n - 1);
		for (unsigned int k = 0; k < n; k++)
			if (fl[k]->service_id != (base + k) / 2 || dirs[k] != (base + k) % 2)
				fail_msg("key %u: flow %u dir %u", base + k, fl[k]->service_id,
					 dirs[k]);
	}

	/* Half deleted, the other half left to the sweep. */
	for (uint32_t i = 0; i < MILLION; i += 2)
		assert_int_equal(sg_flow_delete(t, find_i(t, i, IPPROTO_UDP, FWD, T0 + 1)), 0);
	assert_int_equal(sg_flow_count(t), MILLION / 2);
	while (sg_flow_count(t) > 0 && calls < 1000) {
		unsigned int r = sg_flow_sweep(t, T0 + 30001, 4096);

		assert_true(r <= 4096);
		swept += r;
		calls++;
	}
	assert_int_equal(swept, MILLION / 2);
	assert_true(calls <= (MILLION + 4095) / 4096);
	assert_int_equal(st->inserted, MILLION);
	assert_int_equal(st->deleted, MILLION / 2);
	assert_int_equal(st->expired_sweep, MILLION / 2);
	for (uint32_t i = 0; i < MILLION; i += 997)
		assert_null(find_i(t, i, IPPROTO_UDP, REV, T0 + 30001));
	/* Empty again, and its entries are reused. */
	for (uint32_t i = 0; i < MILLION; i += 1000)
		insert_i(t, i + 1, IPPROTO_UDP, 1, T0 + 30001);
	assert_int_equal(sg_flow_count(t), MILLION / 1000);
	check_index(t);
	sg_flow_table_free(t);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_invalid),
		cmocka_unit_test(test_null_handles),
		cmocka_unit_test(test_insert_invalid),
		cmocka_unit_test(test_delete_invalid),
		cmocka_unit_test(test_get_key_iterate_invalid),
		cmocka_unit_test(test_key_init),
		cmocka_unit_test(test_tcp_table),
		cmocka_unit_test(test_tcp_ignored),
		cmocka_unit_test(test_tcp_stories),
		cmocka_unit_test(test_tcp_seen),
		cmocka_unit_test(test_touch),
		cmocka_unit_test(test_timeouts_and_names),
		cmocka_unit_test(test_nat_flow),
		cmocka_unit_test(test_nat_csums),
		cmocka_unit_test(test_dsr_and_initial_states),
		cmocka_unit_test(test_exists),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_hash_collisions),
		cmocka_unit_test(test_signature_collisions),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_bulk_expired_frees_for_stash),
		cmocka_unit_test(test_exists_away),
		cmocka_unit_test(test_search_moves),
		cmocka_unit_test(test_search_two_moves),
		cmocka_unit_test(test_settle),
		cmocka_unit_test(test_other_buckets_spread),
		cmocka_unit_test(test_churn_crowded),
		cmocka_unit_test(test_bulk),
		cmocka_unit_test(test_bulk_expired_twice_in_burst),
		cmocka_unit_test(test_bulk_mixed_families),
		cmocka_unit_test(test_expiry_lazy_by_state),
		cmocka_unit_test(test_expiry_follows_state),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_sweep_batches),
		cmocka_unit_test(test_prefetch),
		cmocka_unit_test(test_key_seen),
		cmocka_unit_test(test_table_memory),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_insert_kept),
		cmocka_unit_test(test_full_at_worst_load),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_iterate),
		cmocka_unit_test(test_million),
	};

	(void)argc;
	/* A million flows take about 200 MB; room for that and the small tables. */
	sg_test_eal_init(argv[0], "1024");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
