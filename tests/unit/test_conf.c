/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/conf: arguments and unreadable files first, then a table
 * of broken files, each with the exact error line it must produce (one
 * cmocka case per row), then files that must load (the reference and demo
 * configs, defaults, integer forms libconfig 1.5 gets wrong, a dual-stack
 * service, a service of 1000 endpoints), 2000 fixed-seed mutations of the
 * reference, the reload rules, and the name and address helpers. Files are
 * written to a private temporary directory, removed at the end.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sg_common.h"
#include "conf.h"

/*
 * libconfig 1.5 leaks the string token it holds when it meets a syntax error
 * (its grammar frees no token on error), e.g. in a = "x", "y"; lib/conf
 * cannot reach it. Keep LeakSanitizer quiet about that one allocation site,
 * for the syntax errors of test_mutations().
 */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\n";
}

/* Sizes that leave room for a file name after each. */
static char tmpdir[256];
static char config_dir[1200];

/* ---- helpers --------------------------------------------------------------------- */

static void
write_file(char *path, size_t size, const char *name, const char *text, size_t len)
{
	FILE *f;

	snprintf(path, size, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static struct sg_conf *
load_text(const char *name, const char *text)
{
	char path[PATH_MAX], err[512];
	struct sg_conf *c = NULL;
	int rc;

	write_file(path, sizeof(path), name, text, strlen(text));
	rc = sg_conf_load(path, &c, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s: unexpected error %d: %s", name, rc, err);
	assert_string_equal(err, "");
	assert_non_null(c);
	return c;
}

/* Load text, expect -EINVAL and "<path>:<expect>" as the error. */
static void
expect_error(const char *name, const char *text, const char *expect)
{
	char path[PATH_MAX], err[512], want[PATH_MAX + 512];
	struct sg_conf *c = (struct sg_conf *)&c;	/* must be reset to NULL */
	int rc;

	write_file(path, sizeof(path), name, text, strlen(text));
	rc = sg_conf_load(path, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:%s", path, expect);
	assert_string_equal(err, want);
	assert_int_equal(rc, -EINVAL);
	assert_null(c);
}

static void
find_config_dir(void)
{
	const char *env = getenv("SG_CONFIG_DIR");
	char exe[1024], cand[4][sizeof(config_dir)];
	ssize_t n;

	snprintf(cand[0], sizeof(cand[0]), "%s", env != NULL ? env : "");
	/* __FILE__ is relative to the build directory, where meson runs tests. */
	snprintf(cand[1], sizeof(cand[1]), "%.*s/../../config",
		 (int)(strrchr(__FILE__, '/') != NULL ? strrchr(__FILE__, '/') - __FILE__ : 1),
		 strrchr(__FILE__, '/') != NULL ? __FILE__ : ".");
	/* A build directory inside the source tree: <src>/<build>/tests/unit/test_conf. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	if (strrchr(exe, '/') != NULL)
		*strrchr(exe, '/') = '\0';
	snprintf(cand[2], sizeof(cand[2]), "%s/../../../config", exe);
	snprintf(cand[3], sizeof(cand[3]), "config");
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(cand); i++) {
		char f[sizeof(config_dir) + 16];

		snprintf(f, sizeof(f), "%.1100s/svcgw.conf", cand[i]);
		if (cand[i][0] != '\0' && access(f, R_OK) == 0) {
			snprintf(config_dir, sizeof(config_dir), "%.1100s", cand[i]);
			return;
		}
	}
	config_dir[0] = '\0';
}

static struct sg_conf *
load_shipped(const char *name)
{
	char path[sizeof(config_dir) + 64], err[512];
	struct sg_conf *c = NULL;
	int rc;

	if (config_dir[0] == '\0')
		fail_msg("config/ not found; set SG_CONFIG_DIR");
	snprintf(path, sizeof(path), "%s/%s", config_dir, name);
	rc = sg_conf_load(path, &c, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s: %s", name, err);
	return c;
}

static void
assert_addr(const struct sg_conf_addr *a, const char *want)
{
	char buf[SG_CONF_ADDR_STRLEN];

	assert_string_equal(sg_conf_addr_str(a, buf, sizeof(buf)), want);
}

/* ---- configs the rows below are built from; each macro is one line ----------------- */

#define WORKERS "workers = [ 1 ];\n"
#define PORT(extra) "ports = ( { name = \"ext\"; device = \"net_null0\"; role = \"both\"; " \
	"address = \"192.0.2.1/24\"; " extra "} );\n"
#define SNAT "snat_addresses = [ \"192.0.2.1\" ];\n"
#define BASE WORKERS PORT("") SNAT
/* Services, at line 4 after BASE. */
#define SVC(fields) "services = ( { namespace = \"demo\"; name = \"web\"; " fields "} );\n"
#define LBF "type = \"LoadBalancer\"; vips = [ \"192.0.2.100\" ]; "
#define NPF "type = \"NodePort\"; "
#define P80 "ports = ( { port = 80; } ); "
#define EP11 "endpoints = ( { address = \"203.0.113.11\"; } ); "
#define WEB SVC(LBF P80 EP11)
/* Two services on line 4: demo/a, then demo/b. */
#define SVC2(a, b) "services = ( { namespace = \"demo\"; name = \"a\"; " a "}, " \
	"{ namespace = \"demo\"; name = \"b\"; " b "} );\n"

struct bad {
	const char *name;
	const char *text;
	const char *expect;	/* the error after "<path>:" */
};

static const struct bad bad_rows[] = {
	/* What libconfig itself refuses, and what we refuse before it reads. */
	{ "syntax", BASE "services = ( { namespace = \"demo\" } \n",
	  "5: syntax error" },
	{ "syntax_dup_name", BASE WORKERS,
	  "4: duplicate setting name" },
	{ "include", BASE "@include \"other.conf\"\n",
	  "4: @include is not supported (keep the whole configuration in one file)" },

	/* Unknown settings, at every level, with a hint when one is close. */
	{ "unknown_root", "wokers = [ 1 ];\n" PORT("") SNAT,
	  "1: wokers: unknown setting (did you mean \"workers\"?)" },
	{ "unknown_root_far", BASE "verbose = true;\n",
	  "4: verbose: unknown setting" },
	{ "unknown_port", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "rol = \"both\"; address = \"192.0.2.1/24\"; } );\n" SNAT,
	  "2: ports.[0].rol: unknown setting (did you mean \"role\"?)" },
	{ "unknown_snat_ports", BASE "snat_ports = { low = 2000; };\n",
	  "4: snat_ports.low: unknown setting" },
	{ "unknown_tables", BASE "tables = { flow = 4096; };\n",
	  "4: tables.flow: unknown setting (did you mean \"flows\"?)" },
	{ "unknown_timeouts", BASE "timeouts = { tcp_syn_sent = 5; };\n",
	  "4: timeouts.tcp_syn_sent: unknown setting" },
	{ "unknown_service", BASE SVC(LBF P80 "vip = [ \"192.0.2.1\" ]; "),
	  "4: services.[0].vip: unknown setting (did you mean \"vips\"?)" },
	{ "unknown_svc_port", BASE SVC(LBF "ports = ( { port = 80; nodePort = 30080; } ); "),
	  "4: services.[0].ports.[0].nodePort: unknown setting (did you mean \"node_port\"?)" },
	{ "unknown_endpoint", BASE SVC(LBF P80 "endpoints = ( { ip = \"203.0.113.11\"; } ); "),
	  "4: services.[0].endpoints.[0].ip: unknown setting" },
	{ "unknown_case", BASE SVC(LBF P80 "Mode = \"nat\"; "),
	  "4: services.[0].Mode: unknown setting (did you mean \"mode\"?)" },

	/* Missing required settings: the line and path of the enclosing group. */
	{ "missing_workers", PORT("") SNAT,
	  " missing setting \"workers\"" },
	{ "missing_ports", WORKERS SNAT,
	  " missing setting \"ports\"" },
	{ "missing_port_address", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\";\n"
	  "  role = \"both\"; } );\n",
	  "2: ports.[0]: missing setting \"address\"" },
	{ "missing_svc_type", BASE SVC(P80),
	  "4: services.[0]: missing setting \"type\"" },
	{ "missing_svc_port", BASE SVC(LBF "ports = ( { protocol = \"UDP\"; } ); "),
	  "4: services.[0].ports.[0]: missing setting \"port\"" },
	{ "missing_lb_vips", BASE SVC("type = \"LoadBalancer\"; " P80),
	  "4: services.[0]: missing setting \"vips\"" },
	{ "missing_port_name", BASE SVC(LBF "ports = ( { name = \"a\"; port = 80; }, "
	  "{ port = 81; } ); "),
	  "4: services.[0].ports.[1]: missing setting \"name\" (each port of a service with "
	  "several is named)" },

	/* Types. */
	{ "type_workers", "workers = 1;\n" PORT("") SNAT,
	  "1: workers: must be an array [ ... ], not an integer" },
	{ "type_mtu_string", WORKERS PORT("mtu = \"1500\"; ") SNAT,
	  "2: ports.[0].mtu: must be an integer, not a string" },
	{ "type_mtu_float", WORKERS PORT("mtu = 1500.0; ") SNAT,
	  "2: ports.[0].mtu: must be an integer, not a float" },
	{ "type_bool", BASE SVC(LBF P80 "endpoints = ( { address = \"203.0.113.11\"; "
	  "ready = 1; } ); "),
	  "4: services.[0].endpoints.[0].ready: must be a boolean (true or false), "
	  "not an integer" },
	{ "type_ports_group", WORKERS "ports = { name = \"ext\"; };\n" SNAT,
	  "2: ports: must be a list ( { ... }, ... ), not a group" },
	{ "type_ports_elem", WORKERS "ports = ( \"ext\" );\n" SNAT,
	  "2: ports.[0]: must be a group { ... }, not a string" },
	{ "type_tables_list", BASE "tables = ( );\n",
	  "4: tables: must be a group { ... }, not a list" },
	{ "type_eal_elem", "eal = [ 512 ];\n" BASE,
	  "1: eal.[0]: must be a string, not an integer" },
	{ "type_address", WORKERS PORT("address6 = 64; ") SNAT,
	  "2: ports.[0].address6: must be a string, not an integer" },

	/* Ranges, with the literal as written. */
	{ "range_port_high", BASE SVC(LBF "ports = ( { port = 70000; } ); "),
	  "4: services.[0].ports.[0].port: 70000 is not a port (1-65535)" },
	{ "range_port_zero", BASE SVC(LBF "ports = ( { port = 80; node_port = 0; } ); "),
	  "4: services.[0].ports.[0].node_port: 0 is not a port (1-65535)" },
	{ "range_port_negative", BASE SVC(LBF "ports = ( { port = 80; target_port = -80; } ); "),
	  "4: services.[0].ports.[0].target_port: -80 is not a port (1-65535)" },
	{ "range_mtu_low", WORKERS PORT("mtu = 575; ") SNAT,
	  "2: ports.[0].mtu: 575 is out of range (576-9216)" },
	{ "range_mtu_high", WORKERS PORT("mtu = 9217; ") SNAT,
	  "2: ports.[0].mtu: 9217 is out of range (576-9216)" },
	{ "range_desc_pow2", WORKERS PORT("rx_desc = 1000; ") SNAT,
	  "2: ports.[0].rx_desc: 1000 is not a power of two" },
	{ "range_lcore", "workers = [ 1, 128 ];\n" PORT("") SNAT,
	  "1: workers.[1]: 128 is not an lcore id (0-127)" },
	{ "range_workers_empty", "workers = [ ];\n" PORT("") SNAT,
	  "1: workers: must have 1 to 128 entries, not 0" },
	{ "range_maglev_prime", BASE "tables = { maglev_max_size = 65536; };\n",
	  "4: tables.maglev_max_size: 65536 is not a prime" },
	{ "range_maglev_low", BASE "tables = { maglev_max_size = 97; };\n",
	  "4: tables.maglev_max_size: 97 is out of range (101-1638431)" },
	{ "range_flows", BASE "tables = { flows = 1023; };\n",
	  "4: tables.flows: 1023 is out of range (1024-268435456)" },
	{ "range_flows_v6", BASE "tables = { flows = 2048; flows_v6 = 4096; };\n",
	  "4: tables.flows_v6: 4096 is above flows (2048)" },
	{ "range_service_keys", BASE "tables = { services = 100; service_keys = 99; };\n",
	  "4: tables.service_keys: 99 is below services (100): each service port has a key" },
	{ "range_timeout", BASE "timeouts = { tcp_established = 0; };\n",
	  "4: timeouts.tcp_established: 0 is out of range (1-604800)" },
	{ "range_affinity", BASE SVC(LBF P80 "session_affinity = \"ClientIP\"; "
	  "affinity_timeout = 86401; "),
	  "4: services.[0].affinity_timeout: 86401 is out of range (1-86400)" },
	{ "range_weight", BASE SVC(LBF P80 "endpoints = ( { address = \"203.0.113.11\"; "
	  "weight = 65536; } ); "),
	  "4: services.[0].endpoints.[0].weight: 65536 is out of range (0-65535)" },
	{ "range_vips_count", BASE SVC("type = \"LoadBalancer\"; vips = [ \"192.0.2.1\", "
	  "\"192.0.2.2\", \"192.0.2.3\", \"192.0.2.4\", \"192.0.2.5\", \"192.0.2.6\", "
	  "\"192.0.2.7\", \"192.0.2.8\", \"192.0.2.9\" ]; " P80),
	  "4: services.[0].vips: must have 0 to 8 entries, not 9" },
	{ "range_eal_empty", "eal = [ \"--no-huge\", \"\" ];\n" BASE,
	  "1: eal.[1]: \"\" is not an EAL argument (1 to 1023 characters)" },
	{ "range_snat_order", BASE "snat_ports = { min = 2000; max = 2000; };\n",
	  "4: snat_ports.max: 2000 is not above min (2000)" },
	{ "range_snat_per_worker", "workers = [ 1, 2 ];\n" PORT("") SNAT
	  "snat_ports = { min = 1024; max = 1150; };\n",
	  "4: snat_ports: 127 ports are fewer than 64 for each of 2 workers" },
	/* libconfig 1.5 reads 4294967376 as 80 and 0x100000400 as 1024. */
	{ "range_wrapped", BASE SVC(LBF "ports = ( { port = 4294967376; } ); "),
	  "4: services.[0].ports.[0].port: 4294967376 is not a port (1-65535)" },
	{ "range_wrapped_hex", BASE "tables = { flows = 0x100000400; };\n",
	  "4: tables.flows: 0x100000400 is out of range (1024-268435456)" },
	{ "range_wrapped_elem", "workers = [ 1, 4294967298 ];\n" PORT("") SNAT,
	  "1: workers.[1]: 4294967298 is not an lcore id (0-127)" },
	{ "range_wrapped_int64", BASE "flow_rate = 99999999999999999999L;\n",
	  "4: flow_rate: 99999999999999999999L is out of range (0-100000000)" },

	/* Addresses. */
	{ "addr_bad", WORKERS PORT("gateway = \"192.0.2.300\"; ") SNAT,
	  "2: ports.[0].gateway: \"192.0.2.300\" is not an IPv4 address" },
	{ "addr_family", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "role = \"both\"; address = \"2001:db8::1/64\"; } );\n" SNAT,
	  "2: ports.[0].address: \"2001:db8::1/64\" is not an IPv4 address/length" },
	{ "addr_no_prefix", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "role = \"both\"; address = \"192.0.2.1\"; } );\n" SNAT,
	  "2: ports.[0].address: \"192.0.2.1\" has no prefix length (write address/length)" },
	{ "addr_prefix_len", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "role = \"both\"; address = \"192.0.2.1/33\"; } );\n" SNAT,
	  "2: ports.[0].address: \"192.0.2.1/33\": prefix length must be 1-32" },
	{ "addr_prefix6_len", WORKERS PORT("address6 = \"2001:db8::1/0\"; ") SNAT,
	  "2: ports.[0].address6: \"2001:db8::1/0\": prefix length must be 1-128" },
	{ "addr_with_prefix", BASE SVC("type = \"LoadBalancer\"; vips = [ \"192.0.2.100/32\" ]; "
	  P80),
	  "4: services.[0].vips.[0]: \"192.0.2.100/32\" is not an IP address" },
	{ "addr_network", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "role = \"both\"; address = \"192.0.2.0/24\"; } );\n" SNAT,
	  "2: ports.[0].address: 192.0.2.0/24 is the network or broadcast address of its prefix" },
	{ "addr_broadcast", WORKERS PORT("gateway = \"192.0.2.255\"; ") SNAT,
	  "2: ports.[0].gateway: 192.0.2.255 is the network or broadcast address of 192.0.2.1/24" },
	{ "addr_multicast", BASE SVC("type = \"LoadBalancer\"; vips = [ \"224.0.0.1\" ]; " P80),
	  "4: services.[0].vips.[0]: 224.0.0.1 is not a unicast address" },
	{ "addr_loopback6", "node_addresses = [ \"::1\" ];\n" BASE,
	  "1: node_addresses.[0]: ::1 is not a unicast address" },
	{ "addr_host_bits", BASE SVC(LBF P80 "source_ranges = [ \"198.51.100.1/24\" ]; "),
	  "4: services.[0].source_ranges.[0]: \"198.51.100.1/24\" has host bits set "
	  "(did you mean 198.51.100.0/24?)" },
	{ "addr_gateway_outside", WORKERS PORT("gateway = \"192.0.3.254\"; ") SNAT,
	  "2: ports.[0].gateway: 192.0.3.254 is not inside address 192.0.2.1/24" },
	{ "addr_gateway_self", WORKERS PORT("gateway = \"192.0.2.1\"; ") SNAT,
	  "2: ports.[0].gateway: 192.0.2.1 is the port's own address" },
	{ "addr_gateway6_alone", WORKERS PORT("gateway6 = \"fe80::1\"; ") SNAT,
	  "2: ports.[0].gateway6: needs address6" },

	/* Names and choices. */
	{ "name_port", WORKERS "ports = ( { name = \"External\"; device = \"net_null0\"; "
	  "role = \"both\"; address = \"192.0.2.1/24\"; } );\n" SNAT,
	  "2: ports.[0].name: \"External\" is not a port name (a-z, 0-9, '_' and '-', 1 to 15)" },
	{ "name_device", WORKERS "ports = ( { name = \"ext\"; device = \"net_tap\"; "
	  "role = \"both\"; address = \"192.0.2.1/24\"; } );\n" SNAT,
	  "2: ports.[0].device: \"net_tap\" is not a PCI address (0000:01:00.0) or a virtual "
	  "device (net_<driver><n>[,args])" },
	{ "name_pci_device", WORKERS "ports = ( { name = \"ext\"; device = \"0000:3b:20.0\"; "
	  "role = \"both\"; address = \"192.0.2.1/24\"; } );\n" SNAT,
	  "2: ports.[0].device: \"0000:3b:20.0\" is not a PCI address (0000:01:00.0) or a virtual "
	  "device (net_<driver><n>[,args])" },
	{ "name_namespace", BASE "services = ( { namespace = \"Demo\"; name = \"web\"; " LBF P80
	  "} );\n",
	  "4: services.[0].namespace: \"Demo\" is not a DNS-1123 label (a-z, 0-9 and '-', 1 to 63, "
	  "starting and ending with a letter or digit)" },
	/* 64 characters, shown cut at 64 in the message. */
	{ "name_long", BASE "services = ( { namespace = \"demo\"; name = \""
	  "a123456789b123456789c123456789d123456789e123456789f123456789g1234"
	  "\"; " LBF P80 "} );\n",
	  "4: services.[0].name: \""
	  "a123456789b123456789c123456789d123456789e123456789f123456789g123"
	  "...\" is not a DNS-1123 label (a-z, 0-9 and '-', 1 to 63, starting and ending with a "
	  "letter or digit)" },
	{ "enum_type", BASE SVC("type = \"Loadbalancer\"; " P80),
	  "4: services.[0].type: \"Loadbalancer\" is not a service type (\"LoadBalancer\", "
	  "\"NodePort\")" },
	{ "enum_mode", BASE "default_mode = \"dsr\";\n",
	  "4: default_mode: \"dsr\" is not a mode (\"nat\", \"dnat\", \"dsr-ipip\", \"dsr-gue\", "
	  "\"dsr-l2\")" },
	{ "enum_protocol", BASE SVC(LBF "ports = ( { port = 80; protocol = \"tcp\"; } ); "),
	  "4: services.[0].ports.[0].protocol: \"tcp\" is not a protocol (\"TCP\", \"UDP\", "
	  "\"SCTP\")" },

	/* Duplicates of each kind. */
	{ "dup_worker", "workers = [ 1, 2, 1 ];\n" PORT("") SNAT,
	  "1: workers.[2]: 1 is listed twice" },
	{ "dup_node_address", "node_addresses = [ \"192.0.2.1\", \"192.0.2.1\" ];\n" BASE,
	  "1: node_addresses.[1]: 192.0.2.1 is listed twice" },
	{ "dup_vip", BASE SVC("type = \"LoadBalancer\"; vips = [ \"192.0.2.100\", "
	  "\"192.0.2.100\" ]; " P80),
	  "4: services.[0].vips.[1]: 192.0.2.100 is listed twice" },
	{ "dup_port_name", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "role = \"external\"; address = \"192.0.2.1/24\"; },\n"
	  "  { name = \"ext\"; device = \"net_null1\"; role = \"internal\"; "
	  "address = \"203.0.113.1/24\"; } );\n" SNAT,
	  "3: ports.[1].name: \"ext\" is already the name of ports.[0]" },
	{ "dup_device", WORKERS "ports = ( { name = \"ext\"; device = \"0000:3b:00.0\"; "
	  "role = \"external\"; address = \"192.0.2.1/24\"; },\n"
	  "  { name = \"int\"; device = \"3B:00.0,txq_inline=128\"; role = \"internal\"; "
	  "address = \"203.0.113.1/24\"; } );\n" SNAT,
	  "3: ports.[1].device: 0000:3b:00.0 is already the device of ports.[0]" },
	{ "dup_overlap", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "role = \"external\"; address = \"192.0.2.1/24\"; },\n"
	  "  { name = \"int\"; device = \"net_null1\"; role = \"internal\"; "
	  "address = \"192.0.2.130/25\"; } );\n" SNAT,
	  "3: ports.[1].address: 192.0.2.130/25 overlaps address 192.0.2.1/24 of ports.[0]" },
	{ "dup_endpoint", BASE SVC(LBF P80 "endpoints = ( { address = \"203.0.113.12\"; }, "
	  "{ address = \"203.0.113.11\"; }, { address = \"203.0.113.12\"; } ); "),
	  "4: services.[0].endpoints.[2].address: 203.0.113.12 is already endpoints.[0]" },
	{ "dup_svc_port", BASE SVC(LBF "ports = ( { name = \"a\"; port = 80; }, "
	  "{ name = \"b\"; port = 80; } ); "),
	  "4: services.[0].ports.[1].port: 80/TCP is already ports.[0]" },
	{ "dup_svc_port_name", BASE SVC(LBF "ports = ( { name = \"a\"; port = 80; }, "
	  "{ name = \"a\"; port = 80; protocol = \"UDP\"; } ); "),
	  "4: services.[0].ports.[1].name: \"a\" is already the name of ports.[0]" },
	{ "dup_service", BASE "services = ( { namespace = \"demo\"; name = \"web\"; " LBF P80
	  "},\n  { namespace = \"demo\"; name = \"web\"; type = \"NodePort\"; "
	  "ports = ( { port = 81; node_port = 30081; } ); } );\n",
	  "5: services.[1].name: demo/web is already services.[0]" },
	{ "dup_vip_port", BASE SVC2(LBF P80, "type = \"LoadBalancer\"; "
	  "vips = [ \"192.0.2.101\", \"192.0.2.100\" ]; " P80),
	  "4: services.[1].ports.[0].port: 192.0.2.100:80/TCP is already served by demo/a "
	  "(services.[0].ports.[0])" },
	{ "dup_node_port", BASE SVC2(NPF "ports = ( { port = 80; node_port = 30080; } ); ",
	  NPF "ports = ( { port = 81; node_port = 30080; } ); "),
	  "4: services.[1].ports.[0].node_port: 30080/TCP is already the node_port of demo/a "
	  "(services.[0].ports.[0])" },
	{ "dup_vip_on_node_port", BASE SVC2(NPF "ports = ( { port = 80; node_port = 30080; } ); ",
	  "type = \"LoadBalancer\"; vips = [ \"192.0.2.1\" ]; ports = ( { port = 30080; } ); "),
	  "4: services.[1].ports.[0].port: 192.0.2.1:30080/TCP is already served by demo/a "
	  "(services.[0].ports.[0])" },

	/* Rules across settings. */
	{ "roles_no_internal", WORKERS "ports = ( { name = \"ext\"; device = \"net_null0\"; "
	  "role = \"external\"; address = \"192.0.2.1/24\"; } );\n" SNAT,
	  "2: ports: no port has role \"internal\" or \"both\"" },
	{ "nodeport_without_node_port", BASE SVC(NPF P80 EP11),
	  "4: services.[0].ports: a NodePort service needs a node_port on at least one port" },
	{ "nodeport_with_vips", BASE SVC(NPF "vips = [ \"192.0.2.100\" ]; "
	  "ports = ( { port = 80; node_port = 30080; } ); "),
	  "4: services.[0].vips: a NodePort service has no VIPs (or make it a LoadBalancer)" },
	{ "nodeport_source_ranges", BASE SVC(NPF "source_ranges = [ \"198.51.100.0/24\" ]; "
	  "ports = ( { port = 80; node_port = 30080; } ); "),
	  "4: services.[0].source_ranges: only a LoadBalancer has source ranges" },
	{ "lb_empty_vips", BASE SVC("type = \"LoadBalancer\"; vips = [ ]; " P80),
	  "4: services.[0].vips: a LoadBalancer needs 1 to 8 addresses" },
	{ "nat_without_snat", WORKERS PORT("") WEB,
	  "3: services.[0]: nat (default_mode) needs an IPv4 address in snat_addresses" },
	{ "nat_without_snat6", BASE SVC("type = \"LoadBalancer\"; mode = \"nat\"; "
	  "vips = [ \"2001:db8::100\" ]; " P80),
	  "4: services.[0].mode: nat needs an IPv6 address in snat_addresses" },
	{ "local_with_nat", BASE SVC(LBF P80 "mode = \"nat\"; external_traffic_policy = \"Local\"; "),
	  "4: services.[0].external_traffic_policy: \"Local\" keeps the client address, which "
	  "mode nat replaces (use dnat or a dsr mode)" },
	{ "affinity_without_clientip", BASE SVC(LBF P80 "affinity_timeout = 60; "),
	  "4: services.[0].affinity_timeout: only with session_affinity \"ClientIP\"" },
	{ "endpoint_family", BASE SVC(LBF P80 "endpoints = ( { address = \"203.0.113.11\"; }, "
	  "{ address = \"2001:db8::11\"; } ); "),
	  "4: services.[0].endpoints.[1].address: 2001:db8::11 is IPv6 but the service's VIPs "
	  "are IPv4 only" },
	{ "too_many_service_ports", BASE "tables = { services = 1; service_keys = 16; };\n"
	  SVC(LBF "ports = ( { name = \"a\"; port = 80; }, { name = \"b\"; port = 81; } ); "),
	  "5: services: 2 service ports, more than tables.services (1)" },
	{ "too_many_service_keys", BASE "tables = { services = 1; service_keys = 1; };\n"
	  SVC(LBF "ports = ( { port = 80; node_port = 30080; } ); "),
	  "5: services: 2 service keys, more than tables.service_keys (1)" },

	/* The failover group: Leases need the API, and renewals fit the lease. */
	{ "failover_without_k8s", BASE "failover = { name = \"gw-a\"; namespace = \"svcgw\"; };\n",
	  "4: failover: needs the kubernetes group (the Leases are in the API)" },
	{ "failover_missing_name", BASE "kubernetes = { source = \"in-cluster\"; };\n"
	  "failover = { namespace = \"svcgw\"; };\n",
	  "5: failover: missing setting \"name\"" },
	{ "failover_name_label", BASE "kubernetes = { source = \"in-cluster\"; };\n"
	  "failover = { name = \"GW_A\"; namespace = \"svcgw\"; };\n",
	  "5: failover.name: \"GW_A\" is not a DNS-1123 label (a-z, 0-9 and '-', 1 to 63, "
	  "starting and ending with a letter or digit)" },
	{ "failover_renew", BASE "kubernetes = { source = \"in-cluster\"; };\n"
	  "failover = { name = \"gw-a\"; namespace = \"svcgw\"; lease_duration = 1; "
	  "renew_interval_ms = 400; };\n",
	  "5: failover.renew_interval_ms: 400 ms: at most a third of lease_duration (1 s)" },
	{ "failover_leader_is_heartbeat", BASE "kubernetes = { source = \"in-cluster\"; };\n"
	  "failover = { name = \"gw-a\"; namespace = \"svcgw\"; leader_lease = \"svcgw-gw-a\"; };\n",
	  "5: failover.leader_lease: \"svcgw-gw-a\" is the heartbeat Lease of this gateway" },
	{ "failover_announce_count", BASE "kubernetes = { source = \"in-cluster\"; };\n"
	  "failover = { name = \"gw-a\"; namespace = \"svcgw\"; announce_count = 0; };\n",
	  "5: failover.announce_count: 0 is out of range (1-16)" },

	/* The kubernetes group, line 4 after BASE. */
	{ "k8s_type", BASE "kubernetes = \"in-cluster\";\n",
	  "4: kubernetes: must be a group { ... }, not a string" },
	{ "k8s_unknown", BASE "kubernetes = { source = \"in-cluster\"; page_sise = 10; };\n",
	  "4: kubernetes.page_sise: unknown setting (did you mean \"page_size\"?)" },
	{ "k8s_missing_source", BASE "kubernetes = { page_size = 10; };\n",
	  "4: kubernetes: missing setting \"source\"" },
	{ "k8s_source", BASE "kubernetes = { source = \"incluster\"; };\n",
	  "4: kubernetes.source: \"incluster\" is not a credential source (\"in-cluster\", "
	  "\"kubeconfig\")" },
	{ "k8s_missing_kubeconfig", BASE "kubernetes = { source = \"kubeconfig\"; "
	  "context = \"edge\"; };\n",
	  "4: kubernetes: missing setting \"kubeconfig\" (source \"kubeconfig\" reads that file)" },
	{ "k8s_kubeconfig_in_cluster", BASE "kubernetes = { source = \"in-cluster\";\n"
	  "  kubeconfig = \"/etc/svcgw/kubeconfig\"; };\n",
	  "5: kubernetes.kubeconfig: only with source \"kubeconfig\"" },
	{ "k8s_context_in_cluster", BASE "kubernetes = { source = \"in-cluster\"; "
	  "context = \"edge\"; };\n",
	  "4: kubernetes.context: only with source \"kubeconfig\"" },
	{ "k8s_kubeconfig_empty", BASE "kubernetes = { source = \"kubeconfig\"; "
	  "kubeconfig = \"\"; };\n",
	  "4: kubernetes.kubeconfig: \"\" is not a path (1 to 4095 characters, none of them "
	  "control characters)" },
	{ "k8s_kubeconfig_control", BASE "kubernetes = { source = \"kubeconfig\"; "
	  "kubeconfig = \"/etc/kube\\nconfig\"; };\n",
	  "4: kubernetes.kubeconfig: \"/etc/kube?config\" is not a path (1 to 4095 characters, "
	  "none of them control characters)" },
	{ "k8s_kubeconfig_type", BASE "kubernetes = { source = \"kubeconfig\"; "
	  "kubeconfig = 1; };\n",
	  "4: kubernetes.kubeconfig: must be a string, not an integer" },
	{ "k8s_context_empty", BASE "kubernetes = { source = \"kubeconfig\"; "
	  "kubeconfig = \"k\"; context = \"\"; };\n",
	  "4: kubernetes.context: \"\" is not a context name (1 to 253 characters, none of them "
	  "control characters)" },
	{ "k8s_service_account_kubeconfig", BASE "kubernetes = { source = \"kubeconfig\"; "
	  "kubeconfig = \"k\";\n  service_account = \"/run/sa\"; };\n",
	  "5: kubernetes.service_account: only with source \"in-cluster\"" },
	{ "k8s_service_account_empty", BASE "kubernetes = { source = \"in-cluster\"; "
	  "service_account = \"\"; };\n",
	  "4: kubernetes.service_account: \"\" is not a path (1 to 4095 characters, none of "
	  "them control characters)" },
	/* The lb group (address pools), line 5 after BASE and a kubernetes group. */
#define K8S "kubernetes = { source = \"in-cluster\"; };\n"
#define POOL(f) "lb = { pools = ( { name = \"p\"; " f "} ); };\n"
	{ "lb_no_k8s", BASE "lb = { };\n",
	  "4: lb: needs a kubernetes group (the pools serve its Services)" },
	{ "lb_missing_name", BASE K8S "lb = { pools = ( { addresses = [ \"192.0.2.0/28\" ]; } ); };\n",
	  "5: lb.pools.[0]: missing setting \"name\"" },
	{ "lb_missing_addresses", BASE K8S POOL(""),
	  "5: lb.pools.[0]: missing setting \"addresses\"" },
	{ "lb_bad_addr", BASE K8S POOL("addresses = [ \"192.0.2.0/28\", \"192.0.2.300\" ]; "),
	  "5: lb.pools.[0].addresses.[1]: \"192.0.2.300\" is not an IP address" },
	{ "lb_host_bits", BASE K8S POOL("addresses = [ \"192.0.2.1/28\" ]; "),
	  "5: lb.pools.[0].addresses.[0]: \"192.0.2.1/28\" has host bits set (did you mean "
	  "192.0.2.0/28?)" },
	{ "lb_range_backwards", BASE K8S POOL("addresses = [ \"192.0.2.20-192.0.2.10\" ]; "),
	  "5: lb.pools.[0].addresses.[0]: \"192.0.2.20-192.0.2.10\": the first address is "
	  "above the last" },
	{ "lb_range_families", BASE K8S POOL("addresses = [ \"192.0.2.20-2001:db8::1\" ]; "),
	  "5: lb.pools.[0].addresses.[0]: \"2001:db8::1\" is not an IPv4 address" },
	{ "lb_overlap", BASE K8S POOL("addresses = [ \"192.0.2.0/28\", \"192.0.2.10-192.0.2.20\" ]; "),
	  "5: lb.pools.[0].addresses.[1]: overlaps addresses.[0] of this pool" },
	{ "lb_overlap_pools", BASE K8S "lb = { pools = ( { name = \"a\"; addresses = "
	  "[ \"192.0.2.0/28\" ]; },\n  { name = \"b\"; addresses = [ \"192.0.2.8/29\" ]; } ); };\n",
	  "6: lb.pools.[1].addresses.[0]: overlaps pool \"a\" (line 5)" },
	{ "lb_dup_name", BASE K8S "lb = { pools = ( { name = \"a\"; addresses = "
	  "[ \"192.0.2.0/28\" ]; },\n  { name = \"a\"; addresses = [ \"192.0.2.16/28\" ]; } ); };\n",
	  "6: lb.pools.[1].name: pool \"a\" is already defined at line 5" },
	{ "lb_namespace", BASE K8S POOL("addresses = [ \"192.0.2.0/28\" ]; namespaces = [ \"Dev\" ]; "),
	  "5: lb.pools.[0].namespaces.[0]: \"Dev\" is not a DNS-1123 label (a-z, 0-9 and '-', "
	  "1 to 63, starting and ending with a letter or digit)" },
	{ "lb_priority", BASE K8S POOL("addresses = [ \"192.0.2.0/28\" ]; priority = -1; "),
	  "5: lb.pools.[0].priority: -1 is out of range (0-1000000)" },
	{ "lb_unknown", BASE K8S "lb = { allocte = true; };\n",
	  "5: lb.allocte: unknown setting (did you mean \"allocate\"?)" },
	{ "k8s_page_size", BASE "kubernetes = { source = \"in-cluster\"; page_size = 0; };\n",
	  "4: kubernetes.page_size: 0 is out of range (1-100000)" },
	{ "k8s_page_size_high", BASE "kubernetes = { source = \"in-cluster\"; "
	  "page_size = 100001; };\n",
	  "4: kubernetes.page_size: 100001 is out of range (1-100000)" },
	{ "k8s_watch_timeout", BASE "kubernetes = { source = \"in-cluster\"; "
	  "watch_timeout = 9; };\n",
	  "4: kubernetes.watch_timeout: 9 is out of range (10-86400)" },
	{ "k8s_watch_timeout_high", BASE "kubernetes = { source = \"in-cluster\"; "
	  "watch_timeout = 86401; };\n",
	  "4: kubernetes.watch_timeout: 86401 is out of range (10-86400)" },
	{ "k8s_request_timeout", BASE "kubernetes = { source = \"in-cluster\"; "
	  "request_timeout = 0; };\n",
	  "4: kubernetes.request_timeout: 0 is out of range (1-3600)" },
	{ "k8s_request_timeout_high", BASE "kubernetes = { source = \"in-cluster\"; "
	  "request_timeout = 3601; };\n",
	  "4: kubernetes.request_timeout: 3601 is out of range (1-3600)" },

	/* The examples of the brief, over several lines. */
	{ "multiline", "# a comment\n"
	  "workers = [ 1 ];\n"
	  "ports = (\n"
	  "  {\n"
	  "    name = \"ext\";\n"
	  "    device = \"net_null0\";\n"
	  "    role = \"both\";\n"
	  "    address = \"192.0.2.1/24\";\n"
	  "  }\n"
	  ");\n"
	  SNAT
	  "services = (\n"
	  "  {\n"
	  "    namespace = \"demo\";\n"
	  "    name = \"web\";\n"
	  "    type = \"LoadBalancer\";\n"
	  "    vips = [ \"192.0.2.100\" ];\n"
	  "    ports = (\n"
	  "      {\n"
	  "        port = 70000;\n"
	  "      }\n"
	  "    );\n"
	  "  }\n"
	  ");\n",
	  "20: services.[0].ports.[0].port: 70000 is not a port (1-65535)" },
};

static void
test_bad_row(void **state)
{
	const struct bad *b = *state;
	char name[96];

	snprintf(name, sizeof(name), "%s.conf", b->name);
	expect_error(name, b->text, b->expect);
}

/* ---- arguments and files ---------------------------------------------------------------- */

static void
test_load_args(void **state)
{
	struct sg_conf *c = (struct sg_conf *)&c;
	char err[128], path[PATH_MAX];

	(void)state;
	write_file(path, sizeof(path), "args.conf", BASE WEB, strlen(BASE WEB));
	assert_int_equal(sg_conf_load(NULL, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	assert_string_equal(err, "sg_conf_load: no path given");
	assert_int_equal(sg_conf_load(path, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "sg_conf_load: no result given");
	/* err NULL is fine only with errlen 0. */
	assert_int_equal(sg_conf_load(path, &c, NULL, 16), -EINVAL);
	assert_int_equal(sg_conf_load(path, &c, NULL, 0), 0);
	assert_non_null(c);
	sg_conf_free(c);
	assert_int_equal(sg_conf_load("/nonexistent/x.conf", &c, NULL, 0), -ENOENT);
	assert_null(c);
}

static void
test_load_files(void **state)
{
	struct sg_conf *c = NULL;
	char err[256], path[PATH_MAX], want[PATH_MAX + 64];
	const char nul[] = BASE "\n\0services = ();\n";

	(void)state;
	assert_int_equal(sg_conf_load("/nonexistent/x.conf", &c, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/x.conf: cannot open: No such file or directory");
	assert_int_equal(sg_conf_load(tmpdir, &c, err, sizeof(err)), -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot open: Is a directory", tmpdir);
	assert_string_equal(err, want);

	/* libconfig would stop at the NUL and never see the services. */
	write_file(path, sizeof(path), "nul.conf", nul, sizeof(nul) - 1);
	assert_int_equal(sg_conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:5: contains a NUL byte", path);
	assert_string_equal(err, want);
	assert_null(c);

	/* An error longer than the buffer is cut, and still terminated. */
	assert_int_equal(sg_conf_load("/nonexistent/x.conf", &c, err, 12), -ENOENT);
	assert_string_equal(err, "/nonexisten");
}

static void
test_free_null(void **state)
{
	(void)state;
	sg_conf_free(NULL);
}

/* ---- files that load -------------------------------------------------------------------- */

static void
test_reference(void **state)
{
	struct sg_conf *c = load_shipped("svcgw.conf");

	(void)state;
	/* The lb group: defaults filled in, CIDRs without network and broadcast. */
	assert_true(c->lb.line > 0);
	assert_int_equal(c->lb.allocate, 1);
	assert_int_equal(c->lb.default_class, 0);
	assert_int_equal(c->lb.n_pools, 2);
	assert_string_equal(c->lb.pools[0].name, "public");
	assert_int_equal(c->lb.pools[0].auto_assign, 1);
	assert_int_equal(c->lb.pools[0].priority, 100);
	assert_int_equal(c->lb.pools[0].n_namespaces, 0);
	assert_addr(&c->lb.pools[0].ranges[0].first, "192.0.2.65");
	assert_addr(&c->lb.pools[0].ranges[0].last, "192.0.2.94");
	assert_addr(&c->lb.pools[0].ranges[1].first, "2001:db8:64::1");
	assert_addr(&c->lb.pools[0].ranges[1].last, "2001:db8:64::ff");
	assert_int_equal(c->lb.pools[1].auto_assign, 0);
	assert_addr(&c->lb.pools[1].ranges[0].first, "192.0.2.200");
	assert_addr(&c->lb.pools[1].ranges[0].last, "192.0.2.209");
	assert_int_equal(c->n_ports, 2);
	assert_string_equal(c->ports[0].name, "ext");
	assert_int_equal(c->ports[0].role, SG_CONF_ROLE_EXTERNAL);
	assert_addr(&c->ports[0].address6, "2001:db8::1/64");
	assert_addr(&c->ports[0].gateway, "192.0.2.254");
	assert_int_equal(c->n_node_addrs, 2);
	assert_int_equal(c->n_services, 2);
	assert_int_equal(c->services[0].n_ports, 2);
	assert_int_equal(c->services[0].ports[1].proto, IPPROTO_TCP);
	assert_int_equal(c->services[0].endpoints[2].ready, 0);
	assert_int_equal(c->services[0].endpoints[2].terminating, 1);
	assert_int_equal(c->services[1].type, SG_CONF_TYPE_NODEPORT);
	assert_int_equal(c->services[1].families, SG_CONF_FAM_V4);
	/* Every value written in the reference is its default. */
	assert_int_equal(c->tables.flows, 262144);
	assert_int_equal(c->tables.maglev_max_size, 65537);
	assert_int_equal(c->timeouts.tcp_established, 7440);
	assert_int_equal(c->snat_ports.min, 1024);
	assert_int_equal(c->snat_ports.max, 65535);
	assert_int_equal(c->kubernetes.source, SG_CONF_K8S_IN_CLUSTER);
	assert_null(c->kubernetes.kubeconfig);
	assert_null(c->kubernetes.context);
	assert_int_equal(c->kubernetes.page_size, 500);
	assert_int_equal(c->kubernetes.watch_timeout, 300);
	assert_int_equal(c->kubernetes.request_timeout, 30);
	sg_conf_free(c);
}

/* The kubernetes group: left out, the smallest, and every setting given. */
static void
test_kubernetes(void **state)
{
	struct sg_conf *c = load_text("k8s_none.conf", BASE);

	(void)state;
	assert_int_equal(c->kubernetes.source, SG_CONF_K8S_NONE);
	assert_null(c->kubernetes.kubeconfig);
	assert_int_equal(c->kubernetes.line, 0);
	sg_conf_free(c);

	c = load_text("k8s_in_cluster.conf", BASE "kubernetes = { source = \"in-cluster\"; };\n");
	assert_int_equal(c->kubernetes.source, SG_CONF_K8S_IN_CLUSTER);
	assert_null(c->kubernetes.kubeconfig);
	assert_null(c->kubernetes.context);
	assert_int_equal(c->kubernetes.page_size, 500);
	assert_int_equal(c->kubernetes.watch_timeout, 300);
	assert_int_equal(c->kubernetes.request_timeout, 30);
	assert_int_equal(c->kubernetes.line, 4);
	assert_null(c->kubernetes.service_account);
	sg_conf_free(c);

	c = load_text("k8s_sa.conf", BASE "kubernetes = { source = \"in-cluster\"; "
		      "service_account = \"/run/svcgw/sa\"; };\n");
	assert_int_equal(c->kubernetes.source, SG_CONF_K8S_IN_CLUSTER);
	assert_string_equal(c->kubernetes.service_account, "/run/svcgw/sa");
	sg_conf_free(c);

	c = load_text("k8s_file.conf", BASE WEB "kubernetes = {\n  source = \"kubeconfig\";\n"
		      "  kubeconfig = \"../kube/config\";\n"
		      "  context = \"arn:aws:eks:x:1:cluster/a b\";\n"
		      "  page_size = 1; watch_timeout = 86400; request_timeout = 1;\n};\n");
	assert_int_equal(c->kubernetes.source, SG_CONF_K8S_KUBECONFIG);
	assert_string_equal(c->kubernetes.kubeconfig, "../kube/config");
	assert_string_equal(c->kubernetes.context, "arn:aws:eks:x:1:cluster/a b");
	assert_int_equal(c->kubernetes.page_size, 1);
	assert_int_equal(c->kubernetes.watch_timeout, 86400);
	assert_int_equal(c->kubernetes.request_timeout, 1);
	assert_int_equal(c->kubernetes.line, 5);
	/* Static services load beside it. */
	assert_int_equal(c->n_services, 1);
	sg_conf_free(c);

	assert_string_equal(sg_conf_k8s_source_name(SG_CONF_K8S_IN_CLUSTER), "in-cluster");
	assert_string_equal(sg_conf_k8s_source_name(SG_CONF_K8S_KUBECONFIG), "kubeconfig");
	assert_string_equal(sg_conf_k8s_source_name(SG_CONF_K8S_NONE), "?");
	assert_int_equal(sg_conf_k8s_source_parse("kubeconfig"), SG_CONF_K8S_KUBECONFIG);
	assert_int_equal(sg_conf_k8s_source_parse("in-cluster"), SG_CONF_K8S_IN_CLUSTER);
	assert_int_equal(sg_conf_k8s_source_parse("In-Cluster"), -EINVAL);
	assert_int_equal(sg_conf_k8s_source_parse(NULL), -EINVAL);
}

static void
test_demo(void **state)
{
	struct sg_conf *c = load_shipped("demo.conf");
	const struct sg_conf_service *web, *echo;
	static const char *const pods[] = { "203.0.113.11", "203.0.113.12", "203.0.113.13" };

	(void)state;
	assert_int_equal(c->n_eal, 4);
	assert_string_equal(c->eal[0], "--no-huge");
	assert_string_equal(c->eal[3], "--no-pci");
	assert_int_equal(c->n_workers, 1);
	assert_int_equal(c->workers[0], 1);
	assert_int_equal(c->n_ports, 2);
	assert_string_equal(c->ports[0].name, "ext");
	assert_string_equal(c->ports[0].device, "net_af_xdp0,iface=gw-ext");
	assert_int_equal(c->ports[0].role, SG_CONF_ROLE_EXTERNAL);
	assert_addr(&c->ports[0].address, "198.51.100.1/24");
	assert_string_equal(c->ports[1].name, "int");
	assert_string_equal(c->ports[1].device, "net_af_xdp1,iface=gw-int");
	assert_int_equal(c->ports[1].role, SG_CONF_ROLE_INTERNAL);
	assert_addr(&c->ports[1].address, "203.0.113.1/24");
	assert_int_equal(c->n_node_addrs, 1);
	assert_addr(&c->node_addrs[0], "192.0.2.1");
	assert_int_equal(c->n_snat_addrs, 1);
	assert_addr(&c->snat_addrs[0], "203.0.113.1");
	assert_int_equal(c->n_services, 2);

	web = &c->services[0];
	echo = &c->services[1];
	assert_string_equal(web->namespace, "demo");
	assert_string_equal(web->name, "web");
	assert_int_equal(web->type, SG_CONF_TYPE_LOADBALANCER);
	assert_int_equal(web->mode, SG_CONF_MODE_NAT);
	assert_addr(&web->vips[0], "192.0.2.100");
	assert_int_equal(web->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(web->ports[0].port, 80);
	assert_int_equal(web->ports[0].node_port, 30080);
	assert_int_equal(web->ports[0].target_port, 8080);
	assert_string_equal(echo->name, "echo");
	assert_addr(&echo->vips[0], "192.0.2.100");
	assert_int_equal(echo->ports[0].proto, IPPROTO_UDP);
	assert_int_equal(echo->ports[0].port, 53);
	assert_int_equal(echo->ports[0].node_port, 0);
	assert_int_equal(echo->ports[0].target_port, 5353);
	for (unsigned int s = 0; s < 2; s++) {
		assert_int_equal(c->services[s].n_endpoints, 3);
		for (unsigned int i = 0; i < 3; i++) {
			assert_addr(&c->services[s].endpoints[i].address, pods[i]);
			assert_int_equal(c->services[s].endpoints[i].ready, 1);
		}
	}
	sg_conf_free(c);
}

/* Everything left out takes its documented default. */
static void
test_defaults(void **state)
{
	struct sg_conf *c = load_text("defaults.conf",
				      WORKERS PORT("address6 = \"2001:db8::1/64\"; ") SNAT WEB);
	const struct sg_conf_service *s;

	(void)state;
	assert_int_equal(c->n_eal, 0);
	assert_null(c->eal);
	assert_int_equal(c->ports[0].mtu, 1500);
	assert_int_equal(c->ports[0].rx_desc, 1024);
	assert_int_equal(c->ports[0].tx_desc, 1024);
	assert_int_equal(c->ports[0].gateway.family, 0);
	assert_int_equal(c->ports[0].gateway6.family, 0);
	assert_int_equal(c->ports[0].line, 2);
	/* Node addresses: those of the external (here one-arm) port. */
	assert_int_equal(c->n_node_addrs, 2);
	assert_addr(&c->node_addrs[0], "192.0.2.1");
	assert_addr(&c->node_addrs[1], "2001:db8::1");
	assert_int_equal(c->snat_ports.min, 1024);
	assert_int_equal(c->snat_ports.max, 65535);
	assert_int_equal(c->default_mode, SG_CONF_MODE_NAT);
	assert_int_equal(c->gue_port, 6080);
	assert_int_equal(c->flow_rate, 0);
	assert_int_equal(c->tables.flows, 262144);
	assert_int_equal(c->tables.flows_v6, 0);
	assert_int_equal(c->tables.services, 4096);
	assert_int_equal(c->tables.service_keys, 16384);
	assert_int_equal(c->tables.maglev_max_size, 65537);
	assert_int_equal(c->tables.neighbours, 4096);
	assert_int_equal(c->tables.mbufs, 16383);
	assert_int_equal(c->timeouts.tcp_syn, 30);
	assert_int_equal(c->timeouts.tcp_established, 7440);
	assert_int_equal(c->timeouts.tcp_fin, 120);
	assert_int_equal(c->timeouts.tcp_close, 10);
	assert_int_equal(c->timeouts.udp, 30);
	assert_int_equal(c->timeouts.udp_assured, 120);
	assert_int_equal(c->timeouts.icmp, 30);
	assert_int_equal(c->timeouts.neighbour, 300);

	s = &c->services[0];
	assert_int_equal(s->line, 4);
	assert_int_equal(s->mode, SG_CONF_MODE_NAT);
	assert_int_equal(s->affinity, 0);
	assert_int_equal(s->affinity_timeout, 0);
	assert_int_equal(s->local, 0);
	assert_int_equal(s->families, SG_CONF_FAM_V4);
	assert_int_equal(s->n_source_ranges, 0);
	assert_string_equal(s->ports[0].name, "");
	assert_int_equal(s->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(s->ports[0].node_port, 0);
	assert_int_equal(s->ports[0].target_port, 80);
	assert_int_equal(s->endpoints[0].ready, 1);
	assert_int_equal(s->endpoints[0].serving, 1);
	assert_int_equal(s->endpoints[0].terminating, 0);
	assert_int_equal(s->endpoints[0].weight, 1);
	sg_conf_free(c);

	/* No services at all, and ClientIP's default timeout. */
	c = load_text("no_services.conf", BASE "services = ( );\n");
	assert_int_equal(c->n_services, 0);
	assert_null(c->services);
	sg_conf_free(c);
	c = load_text("affinity.conf", BASE SVC(LBF P80 "session_affinity = \"ClientIP\"; "));
	assert_int_equal(c->services[0].affinity, 1);
	assert_int_equal(c->services[0].affinity_timeout, 10800);
	sg_conf_free(c);
}

/* Local with nat only by default: forwarded as dnat (issue 5, DESIGN.md Modes). */
static void
test_local_default_mode(void **state)
{
	struct sg_conf *c = load_text("local.conf", BASE
		SVC(LBF P80 "external_traffic_policy = \"Local\"; "));

	(void)state;
	assert_int_equal(c->services[0].local, 1);
	assert_int_equal(c->services[0].mode, SG_CONF_MODE_DNAT);
	sg_conf_free(c);
}

/* Values set explicitly come through, and default_mode reaches services without a mode. */
static void
test_values(void **state)
{
	struct sg_conf *c = load_text("values.conf", BASE
		"default_mode = \"dsr-gue\";\ngue_port = 7000;\nflow_rate = 5000;\n"
		"tables = { flows = 2048L; flows_v6 = 0x400; maglev_max_size = 101; };\n"
		"snat_ports = { min = 20000; max = 29999; };\n"
		SVC(LBF "external_traffic_policy = \"Local\"; session_affinity = \"ClientIP\"; "
		    "affinity_timeout = 60; source_ranges = [ \"0.0.0.0/0\", \"2001:db8::/32\" ]; "
		    "ports = ( { name = \"dns\"; protocol = \"UDP\"; port = 53; node_port = 30053; "
		    "target_port = 5353; }, { name = \"sctp\"; protocol = \"SCTP\"; port = 9; } ); "
		    "endpoints = ( { address = \"203.0.113.11\"; weight = 0; ready = false; "
		    "serving = false; terminating = true; } ); "));
	const struct sg_conf_service *s = &c->services[0];

	(void)state;
	assert_int_equal(c->default_mode, SG_CONF_MODE_DSR_GUE);
	assert_int_equal(c->gue_port, 7000);
	assert_int_equal(c->flow_rate, 5000);
	assert_int_equal(c->tables.flows, 2048);
	assert_int_equal(c->tables.flows_v6, 1024);
	assert_int_equal(c->tables.maglev_max_size, 101);
	assert_int_equal(c->snat_ports.min, 20000);
	assert_int_equal(c->snat_ports.max, 29999);
	assert_int_equal(s->mode, SG_CONF_MODE_DSR_GUE);
	assert_int_equal(s->local, 1);
	assert_int_equal(s->affinity, 1);
	assert_int_equal(s->affinity_timeout, 60);
	assert_int_equal(s->n_source_ranges, 2);
	assert_addr(&s->source_ranges[0], "0.0.0.0/0");
	assert_addr(&s->source_ranges[1], "2001:db8::/32");
	assert_int_equal(s->ports[0].proto, IPPROTO_UDP);
	assert_int_equal(s->ports[0].target_port, 5353);
	assert_int_equal(s->ports[1].proto, IPPROTO_SCTP);
	assert_int_equal(s->ports[1].target_port, 9);
	assert_int_equal(s->endpoints[0].weight, 0);
	assert_int_equal(s->endpoints[0].ready, 0);
	assert_int_equal(s->endpoints[0].serving, 0);
	assert_int_equal(s->endpoints[0].terminating, 1);
	sg_conf_free(c);
}

/*
 * The integer scan must agree with libconfig on every token before a cut
 * literal, or the cut goes unnoticed: strings with digits, quotes and
 * comment markers, comments of every form with numbers in them, floats in
 * comments, signed and 64-bit integers, hex.
 */
static void
test_integer_scan(void **state)
{
	static const char text[] =
		"eal = [ \"-m\", \"512\", \"--x=\\\"1 2\\\" # 3 // 4\", \"\\\\\", \"/* 5 */\" ];\n"
		"# 6 7 8\n"
		"// 9 10\n"
		"/* 11\n   12 */ workers = [ 1, 2 ]; /* 1.5e3 */\n"
		"ports = ( { name = \"e-1\"; device = \"net_null0\"; role = \"both\";\n"
		"  address = \"192.0.2.1/24\"; mtu = +1500; rx_desc = 0x400;\n"
		"  tx_desc = 1024L; } );\n"
		SNAT
		"tables = { flows = 4096LL; };\n"
		"timeouts = { tcp_syn = 4294967297; };\n";
	char path[PATH_MAX], err[512], want[PATH_MAX + 128];
	struct sg_conf *c = NULL;

	(void)state;
	write_file(path, sizeof(path), "scan.conf", text, strlen(text));
	assert_int_equal(sg_conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:11: timeouts.tcp_syn: 4294967297 is out of range (1-604800)", path);
	assert_string_equal(err, want);

	/* The same file with the last value in range loads, and reads as written. */
	{
		char ok[sizeof(text)];

		memcpy(ok, text, sizeof(text));
		memcpy(strstr(ok, "4294967297"), "0000000042", 10);
		c = load_text("scan_ok.conf", ok);
	}
	assert_int_equal(c->n_eal, 5);
	assert_string_equal(c->eal[2], "--x=\"1 2\" # 3 // 4");
	assert_string_equal(c->eal[3], "\\");
	assert_int_equal(c->n_workers, 2);
	assert_int_equal(c->ports[0].mtu, 1500);
	assert_int_equal(c->ports[0].rx_desc, 1024);
	assert_int_equal(c->tables.flows, 4096);
	assert_int_equal(c->timeouts.tcp_syn, 42);
	sg_conf_free(c);
}

static void
test_dual_stack(void **state)
{
	struct sg_conf *c = load_text("dual.conf", WORKERS
		PORT("address6 = \"2001:db8::1/64\"; gateway6 = \"fe80::1\"; ")
		"snat_addresses = [ \"192.0.2.1\", \"2001:db8::1\" ];\n"
		SVC("type = \"LoadBalancer\"; vips = [ \"192.0.2.100\", \"2001:db8::100\" ]; " P80
		    "endpoints = ( { address = \"203.0.113.11\"; }, "
		    "{ address = \"2001:db8:1::11\"; } ); "));

	(void)state;
	assert_int_equal(c->services[0].families, SG_CONF_FAM_V4 | SG_CONF_FAM_V6);
	assert_addr(&c->ports[0].gateway6, "fe80::1");
	assert_addr(&c->services[0].endpoints[1].address, "2001:db8:1::11");
	sg_conf_free(c);

	/* A NodePort takes its families from its endpoints. */
	c = load_text("np6.conf", WORKERS PORT("address6 = \"2001:db8::1/64\"; ")
		      "snat_addresses = [ \"2001:db8::1\" ];\n"
		      SVC(NPF "ports = ( { port = 80; node_port = 30080; } ); "
			  "endpoints = ( { address = \"2001:db8:1::11\"; } ); "));
	assert_int_equal(c->services[0].families, SG_CONF_FAM_V6);
	sg_conf_free(c);
}

/*
 * A service of 1000 endpoints after a line of tables (line 4, perhaps
 * empty): the service starts on line 5, endpoint i is on line 6 + i.
 * Endpoint `dup` repeats endpoint 17 when below 1000.
 */
static void
many_text(char *text, size_t size, const char *tables, unsigned int dup)
{
	size_t o = (size_t)snprintf(text, size, BASE "%s\nservices = ( { namespace = \"demo\"; "
				    "name = \"web\"; " LBF P80 "endpoints = (\n", tables);

	for (unsigned int i = 0; i < 1000 && o < size; i++) {
		unsigned int a = i == dup ? 17 : i;

		o += (size_t)snprintf(text + o, size - o, "{ address = \"10.0.%u.%u\"; }%s\n",
				      a / 250, a % 250 + 1, i < 999 ? "," : "");
	}
	if (o < size)
		snprintf(text + o, size - o, "); } );\n");
}

/* Endpoint checks that are sorted, not pairwise: a large service, a late duplicate. */
static void
test_many_endpoints(void **state)
{
	static char text[64 * 1024];
	char path[PATH_MAX], err[512], want[PATH_MAX + 128];
	struct sg_conf *c;

	(void)state;
	many_text(text, sizeof(text), "", 1000);
	c = load_text("many.conf", text);
	assert_int_equal(c->services[0].n_endpoints, 1000);
	assert_addr(&c->services[0].endpoints[999].address, "10.0.3.250");
	sg_conf_free(c);

	many_text(text, sizeof(text), "", 998);
	write_file(path, sizeof(path), "many_dup.conf", text, strlen(text));
	c = (struct sg_conf *)&c;
	assert_int_equal(sg_conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1004: services.[0].endpoints.[998].address: 10.0.0.18 is "
		 "already endpoints.[17]", path);
	assert_string_equal(err, want);
	assert_null(c);

	/* More weighted endpoints than the largest Maglev table has slots. */
	many_text(text, sizeof(text), "tables = { maglev_max_size = 997; };", 1000);
	write_file(path, sizeof(path), "many_cap.conf", text, strlen(text));
	assert_int_equal(sg_conf_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:5: services.[0].endpoints: 1000 endpoints have a weight, "
		 "more than tables.maglev_max_size (997)", path);
	assert_string_equal(err, want);
}

/*
 * Broken variants of the reference file, made by a fixed-seed generator:
 * characters replaced by ones that matter to the syntax, spans deleted or
 * repeated. Whatever comes out, each must load or be refused with one line
 * naming the file, and nothing may leak or read out of bounds (ASan).
 */
static uint64_t
rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
test_mutations(void **state)
{
	static const char alphabet[] = "0123456789-+.xL,;:=\"{}[]()#/*\n \\aZ_@";
	char path[sizeof(config_dir) + 64], out[PATH_MAX], err[512];
	unsigned int loaded = 0, refused = 0;
	uint64_t seed = 20240611;
	char *text, *buf;
	size_t len;
	FILE *f;

	(void)state;
	if (config_dir[0] == '\0')
		fail_msg("config/ not found; set SG_CONFIG_DIR");
	snprintf(path, sizeof(path), "%s/svcgw.conf", config_dir);
	f = fopen(path, "r");
	assert_non_null(f);
	text = malloc(1 << 20);
	buf = malloc(3 << 20);
	assert_non_null(text);
	assert_non_null(buf);
	len = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(len > 0);

	for (unsigned int round = 0; round < 2000; round++) {
		struct sg_conf *c = NULL;
		size_t n = len;
		int rc;

		memcpy(buf, text, len);
		for (unsigned int k = 1 + (unsigned int)(rnd(&seed) % 3); k > 0; k--) {
			size_t at = (size_t)(rnd(&seed) % n), span = 1 + (size_t)(rnd(&seed) % 40);

			if (at + span > n)
				span = n - at;
			switch (rnd(&seed) % 3) {
			case 0:
				buf[at] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
				break;
			case 1:
				memmove(buf + at, buf + at + span, n - at - span);
				n -= span;
				break;
			default:
				memmove(buf + at + span, buf + at, n - at);
				n += span;
				break;
			}
			if (n == 0)
				break;
		}
		write_file(out, sizeof(out), "mutant.conf", buf, n);
		rc = sg_conf_load(out, &c, err, sizeof(err));
		if (rc == 0) {
			assert_non_null(c);
			sg_conf_free(c);
			loaded++;
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		assert_null(c);
		assert_true(strncmp(err, out, strlen(out)) == 0 && err[strlen(out)] == ':');
		assert_null(strchr(err, '\n'));
		refused++;
	}
	/* Both outcomes happen, so both paths were walked. */
	assert_true(loaded > 0 && refused > 0);
	free(buf);
	free(text);
}

/* ---- reload ------------------------------------------------------------------------------ */

/* Lines 1-6; the fixed settings of every reload case. */
#define RELOAD_BASE "eal = [ \"--no-huge\" ];\n" WORKERS PORT("") \
	"tables = {\n  flows = 4096;\n};\n"

static void
expect_reload(const struct sg_conf *old, const char *name, const char *text, int rc_want,
	      const char *expect)
{
	struct sg_conf *c = load_text(name, text);
	char err[512], want[PATH_MAX + 256];

	assert_int_equal(sg_conf_reload_check(old, c, err, sizeof(err)), rc_want);
	if (expect == NULL) {
		assert_string_equal(err, "");
	} else {
		snprintf(want, sizeof(want), "%s:%s", c->path, expect);
		assert_string_equal(err, want);
	}
	sg_conf_free(c);
}

static void
test_reload_allowed(void **state)
{
	struct sg_conf *old = load_text("r_old.conf", RELOAD_BASE SNAT WEB);

	(void)state;
	assert_int_equal(sg_conf_reload_check(old, old, NULL, 0), 0);
	/* Services, endpoints, node and SNAT addresses, mode and GUE port may change. */
	expect_reload(old, "r_svc.conf", RELOAD_BASE
		      "snat_addresses = [ \"192.0.2.1\", \"192.0.2.7\" ];\n"
		      "default_mode = \"dnat\";\ngue_port = 6081;\n"
		      "node_addresses = [ \"192.0.2.2\" ];\n"
		      SVC(LBF P80 "endpoints = ( { address = \"203.0.113.12\"; } ); "), 0, NULL);
	expect_reload(old, "r_none.conf", RELOAD_BASE, 0, NULL);
	/* Spelling out a default is no change. */
	expect_reload(old, "r_spelled.conf", RELOAD_BASE SNAT "flow_rate = 0;\n"
		      "timeouts = { tcp_syn = 30; };\nsnat_ports = { max = 65535; };\n", 0, NULL);
	sg_conf_free(old);
}

static void
test_reload_refused(void **state)
{
	struct sg_conf *old = load_text("r_old2.conf", RELOAD_BASE SNAT WEB);

	(void)state;
	expect_reload(old, "r_workers.conf", "eal = [ \"--no-huge\" ];\nworkers = [ 2 ];\n"
		      PORT("") "tables = {\n  flows = 4096;\n};\n", -EPERM,
		      "2: workers: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_eal.conf", "eal = [ \"--no-huge\", \"-m\", \"512\" ];\n" WORKERS
		      PORT("") "tables = {\n  flows = 4096;\n};\n", -EPERM,
		      "1: eal: cannot change on reload (restart svcgw)");
	/* A left-out setting is blamed on its group's line, or on the file. */
	expect_reload(old, "r_eal_gone.conf", WORKERS PORT("") "tables = {\n  flows = 4096;\n};\n",
		      -EPERM, " eal: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_mtu.conf", "eal = [ \"--no-huge\" ];\n" WORKERS PORT("mtu = 9000; ")
		      "tables = {\n  flows = 4096;\n};\n", -EPERM,
		      "3: ports.[0].mtu: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_port_count.conf", "eal = [ \"--no-huge\" ];\n" WORKERS
		      "ports = ( { name = \"ext\"; device = \"net_null0\"; role = \"external\"; "
		      "address = \"192.0.2.1/24\"; },\n { name = \"int\"; device = \"net_null1\"; "
		      "role = \"internal\"; address = \"203.0.113.1/24\"; } );\n"
		      "tables = {\n  flows = 4096;\n};\n", -EPERM,
		      "3: ports: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_flows.conf", "eal = [ \"--no-huge\" ];\n" WORKERS PORT("")
		      "tables = {\n  flows = 8192;\n};\n", -EPERM,
		      "5: tables.flows: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_flows_gone.conf", "eal = [ \"--no-huge\" ];\n" WORKERS PORT("")
		      "tables = {\n  neighbours = 4096;\n};\n", -EPERM,
		      "4: tables.flows: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_timeouts.conf", RELOAD_BASE "timeouts = { udp = 60; };\n", -EPERM,
		      "7: timeouts.udp: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_snat_ports.conf", RELOAD_BASE "snat_ports = { min = 2048; };\n",
		      -EPERM, "7: snat_ports.min: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_flow_rate.conf", RELOAD_BASE "flow_rate = 1000;\n", -EPERM,
		      "7: flow_rate: cannot change on reload (restart svcgw)");
	/* The Kubernetes client is set up once: adding it needs a restart. */
	expect_reload(old, "r_k8s_added.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"in-cluster\";\n};\n", -EPERM,
		      "8: kubernetes.source: cannot change on reload (restart svcgw)");
	sg_conf_free(old);

	old = load_text("r_old_k8s.conf", RELOAD_BASE "kubernetes = {\n  source = \"kubeconfig\";\n"
			"  kubeconfig = \"/k\";\n};\n");
	expect_reload(old, "r_k8s_same.conf", RELOAD_BASE "kubernetes = { source = \"kubeconfig\"; "
		      "kubeconfig = \"/k\"; page_size = 500; };\n", 0, NULL);
	expect_reload(old, "r_k8s_path.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"kubeconfig\";\n  kubeconfig = \"/k2\";\n};\n", -EPERM,
		      "9: kubernetes.kubeconfig: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_k8s_context.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"kubeconfig\";\n  kubeconfig = \"/k\"; context = \"b\";\n};\n",
		      -EPERM, "9: kubernetes.context: cannot change on reload (restart svcgw)");
	expect_reload(old, "r_k8s_timeout.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"kubeconfig\";\n  kubeconfig = \"/k\";\n  watch_timeout = 60;\n"
		      "};\n", -EPERM,
		      "10: kubernetes.watch_timeout: cannot change on reload (restart svcgw)");
	/* Left out: blamed on the file, as every left-out group. */
	expect_reload(old, "r_k8s_gone.conf", RELOAD_BASE, -EPERM,
		      " kubernetes.source: cannot change on reload (restart svcgw)");
	sg_conf_free(old);

	old = load_text("r_old_sa.conf", RELOAD_BASE "kubernetes = {\n  source = \"in-cluster\";\n"
			"  service_account = \"/sa\";\n};\n");
	expect_reload(old, "r_sa_moved.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"in-cluster\";\n  service_account = \"/sa2\";\n};\n", -EPERM,
		      "9: kubernetes.service_account: cannot change on reload (restart svcgw)");
	/* The LoadBalancer provider is set up at start: it may change, not come or go. */
	expect_reload(old, "r_lb_added.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"in-cluster\";\n  service_account = \"/sa\";\n};\n"
		      "lb = { pools = ( { name = \"p\"; addresses = [ \"192.0.2.96/30\" ]; } ); };\n",
		      -EPERM, "11: lb: cannot be added on reload (restart svcgw)");
	sg_conf_free(old);

	old = load_text("r_old_lb.conf", RELOAD_BASE "kubernetes = {\n  source = \"in-cluster\";\n"
			"};\nlb = { pools = ( { name = \"p\"; addresses = [ \"192.0.2.96/30\" ]; } ); };\n");
	expect_reload(old, "r_lb_edited.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"in-cluster\";\n};\nlb = { default_class = true; pools = ( "
		      "{ name = \"q\"; addresses = [ \"192.0.2.64/30\" ]; } ); };\n", 0, NULL);
	expect_reload(old, "r_lb_removed.conf", RELOAD_BASE "kubernetes = {\n"
		      "  source = \"in-cluster\";\n};\n", -EPERM,
		      " lb: cannot be removed on reload (restart svcgw)");
	sg_conf_free(old);
}

static void
test_reload_args(void **state)
{
	struct sg_conf *c = load_text("r_args.conf", BASE);
	char err[128];

	(void)state;
	assert_int_equal(sg_conf_reload_check(NULL, c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "sg_conf_reload_check: no old configuration given");
	assert_int_equal(sg_conf_reload_check(c, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "sg_conf_reload_check: no new configuration given");
	assert_int_equal(sg_conf_reload_check(c, c, NULL, 8), -EINVAL);
	assert_int_equal(sg_conf_reload_check(c, c, err, sizeof(err)), 0);
	sg_conf_free(c);
}

/* ---- helpers of the API ------------------------------------------------------------------ */

static void
test_names(void **state)
{
	(void)state;
	for (unsigned int m = 0; m < SG_CONF_MODE_COUNT; m++)
		assert_int_equal(sg_conf_mode_parse(sg_conf_mode_name(m)), (int)m);
	assert_string_equal(sg_conf_mode_name(SG_CONF_MODE_DSR_L2), "dsr-l2");
	assert_string_equal(sg_conf_mode_name(SG_CONF_MODE_COUNT), "?");
	assert_int_equal(sg_conf_mode_parse("NAT"), -EINVAL);
	assert_int_equal(sg_conf_mode_parse(NULL), -EINVAL);

	assert_int_equal(sg_conf_type_parse("NodePort"), SG_CONF_TYPE_NODEPORT);
	assert_int_equal(sg_conf_type_parse("LoadBalancer"), SG_CONF_TYPE_LOADBALANCER);
	assert_int_equal(sg_conf_type_parse("ClusterIP"), -EINVAL);
	assert_string_equal(sg_conf_type_name(SG_CONF_TYPE_NODEPORT), "NodePort");
	assert_string_equal(sg_conf_type_name(SG_CONF_TYPE_COUNT), "?");

	assert_int_equal(sg_conf_proto_parse("TCP"), IPPROTO_TCP);
	assert_int_equal(sg_conf_proto_parse("UDP"), IPPROTO_UDP);
	assert_int_equal(sg_conf_proto_parse("SCTP"), IPPROTO_SCTP);
	assert_int_equal(sg_conf_proto_parse("ICMP"), -EINVAL);
	assert_string_equal(sg_conf_proto_name(IPPROTO_SCTP), "SCTP");
	assert_string_equal(sg_conf_proto_name(IPPROTO_ICMP), "?");

	assert_int_equal(sg_conf_role_parse("both"), SG_CONF_ROLE_BOTH);
	assert_int_equal(sg_conf_role_parse("outside"), -EINVAL);
	assert_string_equal(sg_conf_role_name(SG_CONF_ROLE_INTERNAL), "internal");
	assert_string_equal(sg_conf_role_name(0), "?");
}

static void
test_addr_format(void **state)
{
	const uint8_t v4[4] = { 192, 0, 2, 1 };
	const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct sg_conf_addr a = { .family = SG_CONF_V6, .len = 128 };
	char buf[SG_CONF_ADDR_STRLEN], small[8];

	(void)state;
	assert_string_equal(sg_conf_ip_str(SG_CONF_V4, v4, buf, sizeof(buf)), "192.0.2.1");
	assert_string_equal(sg_conf_ip_str(SG_CONF_V6, v6, buf, sizeof(buf)), "2001:db8::1");
	assert_string_equal(sg_conf_ip_str(5, v4, buf, sizeof(buf)), "?");
	assert_string_equal(sg_conf_ip_str(SG_CONF_V4, NULL, buf, sizeof(buf)), "?");
	assert_string_equal(sg_conf_ip_str(SG_CONF_V4, v4, NULL, 0), "");
	assert_string_equal(sg_conf_ip_str(SG_CONF_V4, v4, small, sizeof(small)), "192.0.2");

	/* Parsing, the other way: one address, of the family asked for if any. */
	assert_int_equal(sg_conf_ip_parse(NULL, 0, &a), -EINVAL);
	assert_int_equal(sg_conf_ip_parse("192.0.2.1", 0, NULL), -EINVAL);
	assert_int_equal(sg_conf_ip_parse("192.0.2.1/32", 0, &a), -EINVAL);
	assert_int_equal(a.family, 0);
	assert_int_equal(sg_conf_ip_parse(" 192.0.2.1", 0, &a), -EINVAL);
	assert_int_equal(sg_conf_ip_parse("2001:db8::1", SG_CONF_V4, &a), -EINVAL);
	assert_int_equal(sg_conf_ip_parse("192.0.2.1", SG_CONF_V6, &a), -EINVAL);
	assert_int_equal(sg_conf_ip_parse("192.0.2.1", 0, &a), 0);
	assert_true(a.family == SG_CONF_V4 && a.len == 32 && memcmp(a.addr, v4, 4) == 0);
	assert_int_equal(sg_conf_ip_parse("2001:db8::1", SG_CONF_V6, &a), 0);
	assert_true(a.family == SG_CONF_V6 && a.len == 128 && memcmp(a.addr, v6, 16) == 0);

	memcpy(a.addr, v6, 16);
	assert_string_equal(sg_conf_addr_str(&a, buf, sizeof(buf)), "2001:db8::1");
	a.len = 64;
	assert_string_equal(sg_conf_addr_str(&a, buf, sizeof(buf)), "2001:db8::1/64");
	a.addr[15] = 0xff;
	memset(a.addr, 0xff, 16);
	a.len = 128;
	assert_string_equal(sg_conf_addr_str(&a, buf, sizeof(buf)),
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_true(strlen(buf) + strlen("/128") < SG_CONF_ADDR_STRLEN);
	assert_string_equal(sg_conf_addr_str(NULL, buf, sizeof(buf)), "?");
	a.family = 0;
	assert_string_equal(sg_conf_addr_str(&a, buf, sizeof(buf)), "?");
}

/* ---- main ------------------------------------------------------------------------------- */

static int
setup(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_conf.XXXXXX", t != NULL && t[0] ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	find_config_dir();
	return 0;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_load_args),
		cmocka_unit_test(test_load_files),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_kubernetes),
		cmocka_unit_test(test_demo),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_local_default_mode),
		cmocka_unit_test(test_integer_scan),
		cmocka_unit_test(test_dual_stack),
		cmocka_unit_test(test_many_endpoints),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_reload_args),
		cmocka_unit_test(test_reload_allowed),
		cmocka_unit_test(test_reload_refused),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_addr_format),
	};
	static char names[SG_ARRAY_SIZE(bad_rows)][64];
	struct CMUnitTest tests[SG_ARRAY_SIZE(fixed) + SG_ARRAY_SIZE(bad_rows)];
	unsigned int n = SG_ARRAY_SIZE(fixed);

	memcpy(tests, fixed, sizeof(fixed));
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(bad_rows); i++, n++) {
		snprintf(names[i], sizeof(names[i]), "error_%s", bad_rows[i].name);
		tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_bad_row,
									(void *)&bad_rows[i]);
		tests[n].name = names[i];
	}
	return cmocka_run_group_tests_name("conf", tests, setup, teardown);
}
