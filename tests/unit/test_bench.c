/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw-bench's DPDK-free parts: the frame writer (frame.c) checked by
 * lib/pkt's parser and full checksums, the line-rate mode's per-packet
 * checksum update (a template with zeroes, then RFC 1624 with m = 0)
 * against frames written whole, the latency histogram (lat.c) and which
 * run --repeat reports (runs.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pkt.h"
#include "frame.h"
#include "lat.h"
#include "runs.h"

static const uint8_t src4[4] = { 198, 51, 100, 3 }, dst4[4] = { 192, 0, 2, 100 };
static const uint8_t src6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0xc, [15] = 2 };
static const uint8_t dst6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0xa, [15] = 1 };

static struct bench_frame
frame4(uint8_t proto)
{
	struct bench_frame f = {
		.family = 4, .proto = proto, .src = src4, .dst = dst4,
		.sport = htons(10000), .dport = htons(53),
		.dst_mac = { 2, 0, 0, 0, 0, 1 }, .src_mac = { 2, 0, 0, 0, 0, 2 },
	};
	return f;
}

/* Parses, and every checksum is what a full computation gives. */
static void
assert_valid(const uint8_t *buf, int len, uint8_t proto, uint32_t l4_len)
{
	struct sg_pkt_info pi;
	uint16_t field;

	assert_true(len > 0);
	assert_int_equal(sg_pkt_parse(buf, (uint32_t)len, &pi), SG_PKT_OK);
	assert_int_equal(pi.l4_proto, proto);
	assert_int_equal(pi.ip_end - pi.l4_off, l4_len);
	if (pi.l3 == SG_PKT_L3_IPV4) {
		memcpy(&field, buf + pi.l3_off + 10, 2);
		assert_int_equal(field, sg_pkt_ipv4_cksum(buf + pi.l3_off));
	}
	memcpy(&field, buf + pi.l4_off + (proto == IPPROTO_TCP ? 16 : 6), 2);
	assert_int_equal(field, sg_pkt_l4_cksum(buf, &pi));
}

static void
test_frame_invalid(void **state)
{
	uint8_t buf[128];
	struct bench_frame f = frame4(IPPROTO_UDP);

	(void)state;
	f.family = 5;
	assert_int_equal(bench_frame_write(buf, sizeof(buf), &f), -EINVAL);
	f = frame4(IPPROTO_ICMP);
	assert_int_equal(bench_frame_write(buf, sizeof(buf), &f), -EINVAL);
	f = frame4(IPPROTO_UDP);
	f.len = 59; /* below the Ethernet minimum */
	assert_int_equal(bench_frame_write(buf, sizeof(buf), &f), -EINVAL);
	f.len = 0;
	f.payload_len = 40; /* 42 + 40 > 64 */
	assert_int_equal(bench_frame_write(buf, 64, &f), -ENOSPC);
	f.len = 70; /* shorter than headers and payload */
	assert_int_equal(bench_frame_write(buf, sizeof(buf), &f), -EINVAL);
}

static void
test_frame_valid(void **state)
{
	static const uint8_t payload[5] = "hello";
	uint8_t buf[128];
	struct bench_frame f = frame4(IPPROTO_UDP);
	int len;

	(void)state;
	/* Short: padded to 60 outside the datagram. */
	f.payload = payload;
	f.payload_len = sizeof(payload);
	len = bench_frame_write(buf, sizeof(buf), &f);
	assert_int_equal(len, BENCH_FRAME_MIN);
	assert_valid(buf, len, IPPROTO_UDP, BENCH_UDP_LEN + sizeof(payload));
	assert_memory_equal(buf + 42, payload, sizeof(payload));
	/* Sized: padding inside the datagram, an odd length too. */
	f.len = 75;
	len = bench_frame_write(buf, sizeof(buf), &f);
	assert_int_equal(len, 75);
	assert_valid(buf, len, IPPROTO_UDP, 75 - 34);
	/* TCP over IPv4 and IPv6. */
	f = frame4(IPPROTO_TCP);
	f.tcp_flags = 0x10;
	f.tcp_seq = 7;
	len = bench_frame_write(buf, sizeof(buf), &f);
	assert_valid(buf, len, IPPROTO_TCP, BENCH_TCP_LEN);
	f.family = 6;
	f.src = src6;
	f.dst = dst6;
	len = bench_frame_write(buf, sizeof(buf), &f);
	assert_int_equal(len, BENCH_ETH_LEN + BENCH_IP6_LEN + BENCH_TCP_LEN);
	assert_valid(buf, len, IPPROTO_TCP, BENCH_TCP_LEN);
	f.proto = IPPROTO_UDP;
	f.payload = payload;
	f.payload_len = sizeof(payload);
	len = bench_frame_write(buf, sizeof(buf), &f);
	assert_valid(buf, len, IPPROTO_UDP, BENCH_UDP_LEN + sizeof(payload));
}

/*
 * linerate.c: seq and timestamp written over zeroes of a template, the
 * checksum updated by adding their sum, equals the frame written whole.
 */
static void
test_probe_checksum_update(void **state)
{
	uint8_t tmpl[64], whole[64], probe[18] = "SGLR";
	struct bench_frame f = frame4(IPPROTO_UDP);
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	(void)state;
	f.payload = probe;
	f.payload_len = 4;
	f.len = 60;
	assert_int_equal(bench_frame_write(tmpl, sizeof(tmpl), &f), 60);
	f.payload_len = sizeof(probe);
	for (int i = 0; i < 1000; i++) {
		uint16_t csum;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		memcpy(probe + 4, &rng, 8);
		memcpy(probe + 12, &i, 4);
		assert_int_equal(bench_frame_write(whole, sizeof(whole), &f), 60);
		memcpy(tmpl + 46, probe + 4, 12);
		memcpy(&csum, tmpl + 40, 2);
		csum = sg_csum_apply(csum, sg_csum_partial(tmpl + 46, 12, 0));
		if (csum == 0)
			csum = 0xffff;
		memcpy(tmpl + 40, &csum, 2);
		assert_memory_equal(tmpl, whole, 60);
		memset(tmpl + 46, 0, 12);
		assert_int_equal(bench_frame_write(tmpl, sizeof(tmpl), &(struct bench_frame){
			.family = 4, .proto = IPPROTO_UDP, .src = src4, .dst = dst4,
			.sport = f.sport, .dport = f.dport, .payload = "SGLR",
			.payload_len = 4, .len = 60,
			.dst_mac = { 2, 0, 0, 0, 0, 1 }, .src_mac = { 2, 0, 0, 0, 0, 2 } }), 60);
	}
}

static void
test_lat(void **state)
{
	struct bench_lat *l = malloc(sizeof(*l));
	unsigned int prev = 0;

	(void)state;
	assert_non_null(l);
	bench_lat_reset(l);
	assert_int_equal(bench_lat_quantile(l, 0.5), 0);
	/* Buckets: exact below 64, in order, the last one in range. */
	for (uint64_t v = 0; v < 64; v++)
		assert_int_equal(bench_lat_index(v), v);
	for (uint64_t v = 1; v < 1u << 20; v += v / 16 + 1) {
		assert_true(bench_lat_index(v) >= prev);
		prev = bench_lat_index(v);
	}
	assert_true(bench_lat_index(UINT64_MAX) < BENCH_LAT_BUCKETS);
	/* 1..100000: each quantile within the buckets' 3 %. */
	for (uint64_t v = 1; v <= 100000; v++)
		bench_lat_add(l, v);
	assert_int_equal(l->n, 100000);
	assert_int_equal(bench_lat_quantile(l, 0), 1);
	assert_int_equal(bench_lat_quantile(l, 1), 100000);
	for (double q = 0.01; q < 1; q += 0.01) {
		double want = q * 100000, got = (double)bench_lat_quantile(l, q);

		assert_true(got >= want * 0.97 && got <= want * 1.03);
	}
	/* A single sample is every quantile. */
	bench_lat_reset(l);
	bench_lat_add(l, 123456789);
	assert_int_equal(bench_lat_quantile(l, 0.5), 123456789);
	assert_int_equal(bench_lat_quantile(l, 0.99), 123456789);
	free(l);
}

static void
test_median(void **state)
{
	double one[] = { 7 }, odd[] = { 300, 100, 200 }, even[] = { 4, 1, 3, 2 };

	(void)state;
	assert_true(bench_median(one, 1) == 7);
	assert_true(bench_median(odd, 3) == 200);
	assert_true(bench_median(even, 4) == 2.5);
}

static void
test_median_run(void **state)
{
	const double cyc[] = { 250, 120, 900, 200, 130 };
	const bool all[] = { true, true, true, true, true };
	const bool some[] = { true, false, true, true, false };
	const bool none[] = { false, false, false, false, false };
	const double tie[] = { 5, 5, 5 };

	(void)state;
	/* Ranked 120 130 200 250 900: the middle one is run 3 (200). */
	assert_int_equal(bench_median_run(cyc, all, 5), 3);
	/* One run: itself. */
	assert_int_equal(bench_median_run(cyc, all, 1), 0);
	/* Of an even number the slower middle one: 250 of (120 250). */
	assert_int_equal(bench_median_run(cyc, all, 2), 0);
	/* 200 250 900 without the failed runs 1 and 4: run 0 (250). */
	assert_int_equal(bench_median_run(cyc, some, 5), 0);
	assert_int_equal(bench_median_run(cyc, none, 5), -1);
	/* Equal figures: one of them, the middle by position. */
	assert_int_equal(bench_median_run(tie, all, 3), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_invalid),
		cmocka_unit_test(test_frame_valid),
		cmocka_unit_test(test_probe_checksum_update),
		cmocka_unit_test(test_lat),
		cmocka_unit_test(test_median),
		cmocka_unit_test(test_median_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
