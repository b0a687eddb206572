/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/flow: argument checks, the TCP state machine (as an
 * independent table of every transition), timeouts and expiry, lazy and by
 * sweep, on a fake clock; capacity, the new-flow rate limit, both directions,
 * IPv6, bulk lookup, and one million flows.
 */
#include <errno.h>
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

/*
 * Keys that differ but hash the same, so that the table has to compare them.
 * CRC32 is affine in the key: flipping a set of bits changes the hash by the
 * XOR of what each bit alone changes it by. Among the bits of the chosen
 * bytes, find a set whose changes cancel (Gaussian elimination over GF(2)).
 */
static uint32_t
key_hash(const struct sg_flow_key *k)
{
	return rte_hash_crc(k, sizeof(*k), 0x5eed);	/* conf_of()'s seed */
}

static int
colliding_key(const struct sg_flow_key *base, const unsigned int *bytes, unsigned int nbytes,
	      struct sg_flow_key *out)
{
	uint32_t basis_img[32] = { 0 };
	uint64_t basis_set[32] = { 0 };
	uint32_t h0 = key_hash(base);
	unsigned int n = 0;

	for (unsigned int b = 0; b < nbytes; b++) {
		for (unsigned int bit = 0; bit < 8 && n < 64; bit++, n++) {
			struct sg_flow_key k = *base;
			uint32_t img;
			uint64_t set = UINT64_C(1) << n;

			((uint8_t *)&k)[bytes[b]] ^= (uint8_t)(1u << bit);
			img = key_hash(&k) ^ h0;
			for (int p = 31; p >= 0 && img != 0; p--) {
				if (!(img & (UINT32_C(1) << p)))
					continue;
				if (basis_img[p] == 0) {
					basis_img[p] = img;
					basis_set[p] = set;
					img = 0;
					set = 0;
					break;
				}
				img ^= basis_img[p];
				set ^= basis_set[p];
			}
			if (set == 0)
				continue;
			/* These bits flipped together leave the hash as it was. */
			*out = *base;
			for (unsigned int m = 0; m < 64; m++)
				if (set & (UINT64_C(1) << m))
					((uint8_t *)out)[bytes[m / 8]] ^= (uint8_t)(1u << (m % 8));
			return key_hash(out) == h0 && memcmp(out, base, sizeof(*out)) != 0;
		}
	}
	return 0;
}

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
	struct sg_flow_key a, b;
	struct sg_flow *fa, *fb;
	uint8_t addr[16];

	(void)state;
	v6addr(addr, 1, 1);
	for (unsigned int w = 0; w < 5; w++) {
		sg_flow_key_init(&a, SG_FLOW_V6, IPPROTO_TCP, addr, addr, be16(1000 + w), be16(80));
		if (!colliding_key(&a, words[w], nbytes[w], &b))
			fail_msg("word %u: no colliding key (has the hash changed?)", w);
		assert_int_equal(sg_flow_insert(t, &a, NULL, 2 * w, 0, 0, T0, &fa), 0);
		assert_null(sg_flow_lookup(t, &b, T0, NULL));
		assert_int_equal(sg_flow_insert(t, &b, NULL, 2 * w + 1, 0, 0, T0, &fb), 0);
		assert_ptr_equal(sg_flow_lookup(t, &a, T0, NULL), fa);
		assert_ptr_equal(sg_flow_lookup(t, &b, T0, NULL), fb);
		assert_int_equal(sg_flow_delete(t, fa), 0);
		assert_ptr_equal(sg_flow_lookup(t, &b, T0, NULL), fb);
		assert_int_equal(sg_flow_delete(t, fb), 0);
	}
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

/* --- capacity, rate ------------------------------------------------------- */

static void
test_full_table(void **state)
{
	struct sg_flow_table *t = table("full", 64);
	const struct sg_flow_stats *st = sg_flow_stats(t);
	struct sg_flow_key fwd, rev;
	struct sg_flow *f = NULL;

	(void)state;
	/* Half NAT (two keys), half DSR (one). */
	for (uint32_t i = 0; i < 64; i++)
		insert_i(t, i, IPPROTO_TCP, i % 2 == 0, T0);
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
	for (uint32_t i = 100; i < 110; i++)
		insert_i(t, i, IPPROTO_TCP, 1, T0);
	assert_int_equal(sg_flow_insert(t, &fwd, &rev, 64, 1, 0, T0, &f), -ENOSPC);
	assert_int_equal(st->table_full, 3);
	assert_int_equal(sg_flow_count(t), 64);
	for (uint32_t i = 100; i < 110; i++)
		assert_int_equal(find_i(t, i, IPPROTO_TCP, REV, T0)->service_id, i);
	assert_int_equal(st->inserted, 74);
	assert_int_equal(st->deleted, 10);
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
	for (int k = 0; k < 10; k++)
		assert_int_equal(try_insert(t, i++, T0), 0);
	assert_int_equal(try_insert(t, i, T0), -EAGAIN);
	assert_int_equal(st->rate_limited, 1);
	/* A refused flow leaves nothing behind. */
	assert_null(find_i(t, i, IPPROTO_TCP, FWD, T0));
	assert_int_equal(sg_flow_count(t), 10);
	/* One flow every 10 ms. */
	assert_int_equal(try_insert(t, i, T0 + 9), -EAGAIN);
	assert_int_equal(try_insert(t, i++, T0 + 10), 0);
	assert_int_equal(try_insert(t, i, T0 + 10), -EAGAIN);
	assert_int_equal(try_insert(t, i++, T0 + 25), 0);	/* 1.5 tokens */
	assert_int_equal(try_insert(t, i++, T0 + 30), 0);	/* the half kept */
	assert_int_equal(try_insert(t, i, T0 + 30), -EAGAIN);
	/* A clock going back refills nothing. */
	assert_int_equal(try_insert(t, i, T0 - 100000), -EAGAIN);
	/* After a long quiet spell, never more than the burst. */
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
		cmocka_unit_test(test_dsr_and_initial_states),
		cmocka_unit_test(test_exists),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_hash_collisions),
		cmocka_unit_test(test_bulk),
		cmocka_unit_test(test_bulk_expired_twice_in_burst),
		cmocka_unit_test(test_expiry_lazy_by_state),
		cmocka_unit_test(test_expiry_follows_state),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_iterate),
		cmocka_unit_test(test_million),
	};

	(void)argc;
	/* A million flows take about 200 MB; room for that and the small tables. */
	sg_test_eal_init(argv[0], "1024");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
