/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Values of the configuration file that are more than a number: addresses
 * and prefixes, port and Kubernetes names, device arguments, choices by
 * name; and the public helpers that name them back for the daemon's logs.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_private.h"

const struct enum_name sg_conf_modes[] = {
	{ "nat", SG_CONF_MODE_NAT },
	{ "dnat", SG_CONF_MODE_DNAT },
	{ "dsr-ipip", SG_CONF_MODE_DSR_IPIP },
	{ "dsr-gue", SG_CONF_MODE_DSR_GUE },
	{ "dsr-l2", SG_CONF_MODE_DSR_L2 },
	{ NULL, 0 },
};

const struct enum_name sg_conf_types[] = {
	{ "LoadBalancer", SG_CONF_TYPE_LOADBALANCER },
	{ "NodePort", SG_CONF_TYPE_NODEPORT },
	{ NULL, 0 },
};

const struct enum_name sg_conf_protos[] = {
	{ "TCP", IPPROTO_TCP },
	{ "UDP", IPPROTO_UDP },
	{ "SCTP", IPPROTO_SCTP },
	{ NULL, 0 },
};

const struct enum_name sg_conf_roles[] = {
	{ "external", SG_CONF_ROLE_EXTERNAL },
	{ "internal", SG_CONF_ROLE_INTERNAL },
	{ "both", SG_CONF_ROLE_BOTH },
	{ NULL, 0 },
};

/* SG_CONF_K8S_NONE has no name: it is the group left out. */
const struct enum_name sg_conf_k8s_sources[] = {
	{ "in-cluster", SG_CONF_K8S_IN_CLUSTER },
	{ "kubeconfig", SG_CONF_K8S_KUBECONFIG },
	{ NULL, 0 },
};

const char *
conf_enum_name(const struct enum_name *names, unsigned int value)
{
	for (; names->name != NULL; names++)
		if (names->value == value)
			return names->name;
	return NULL;
}

int
conf_enum_value(const struct enum_name *names, const char *name)
{
	if (name == NULL)
		return -1;
	for (; names->name != NULL; names++)
		if (strcmp(names->name, name) == 0)
			return names->value;
	return -1;
}

static const char *
name_or_what(const struct enum_name *names, unsigned int value)
{
	const char *n = conf_enum_name(names, value);

	return n != NULL ? n : "?";
}

static int
parse_or_einval(const struct enum_name *names, const char *name)
{
	int v = conf_enum_value(names, name);

	return v < 0 ? -EINVAL : v;
}

const char *
sg_conf_mode_name(unsigned int mode)
{
	return name_or_what(sg_conf_modes, mode);
}

int
sg_conf_mode_parse(const char *name)
{
	return parse_or_einval(sg_conf_modes, name);
}

const char *
sg_conf_type_name(unsigned int type)
{
	return name_or_what(sg_conf_types, type);
}

int
sg_conf_type_parse(const char *name)
{
	return parse_or_einval(sg_conf_types, name);
}

const char *
sg_conf_proto_name(unsigned int proto)
{
	return name_or_what(sg_conf_protos, proto);
}

int
sg_conf_proto_parse(const char *name)
{
	return parse_or_einval(sg_conf_protos, name);
}

const char *
sg_conf_role_name(unsigned int role)
{
	return name_or_what(sg_conf_roles, role);
}

int
sg_conf_role_parse(const char *name)
{
	return parse_or_einval(sg_conf_roles, name);
}

const char *
sg_conf_k8s_source_name(unsigned int source)
{
	return name_or_what(sg_conf_k8s_sources, source);
}

int
sg_conf_k8s_source_parse(const char *name)
{
	return parse_or_einval(sg_conf_k8s_sources, name);
}

/* ---- addresses ----------------------------------------------------------- */

static unsigned int
full_len(unsigned int family)
{
	return family == SG_CONF_V6 ? 128 : 32;
}

int
sg_conf_ip_parse(const char *s, unsigned int family, struct sg_conf_addr *a)
{
	if (a == NULL)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	if (s == NULL)
		return -EINVAL;
	if (family != SG_CONF_V6 && inet_pton(AF_INET, s, a->addr) == 1) {
		a->family = SG_CONF_V4;
		a->len = 32;
		return 0;
	}
	if (family != SG_CONF_V4 && inet_pton(AF_INET6, s, a->addr) == 1) {
		a->family = SG_CONF_V6;
		a->len = 128;
		return 0;
	}
	memset(a, 0, sizeof(*a));
	return -EINVAL;
}

const char *
sg_conf_ip_str(unsigned int family, const void *addr, char *buf, size_t size)
{
	char tmp[INET6_ADDRSTRLEN];
	int af = family == SG_CONF_V4 ? AF_INET : family == SG_CONF_V6 ? AF_INET6 : -1;

	if (buf == NULL || size == 0)
		return "";
	if (af < 0 || addr == NULL || inet_ntop(af, addr, tmp, sizeof(tmp)) == NULL)
		snprintf(buf, size, "?");
	else
		snprintf(buf, size, "%s", tmp);
	return buf;
}

const char *
sg_conf_addr_str(const struct sg_conf_addr *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (buf == NULL || size == 0)
		return "";
	if (a == NULL) {
		snprintf(buf, size, "?");
		return buf;
	}
	sg_conf_ip_str(a->family, a->addr, ip, sizeof(ip));
	if (a->family != 0 && a->len != full_len(a->family))
		snprintf(buf, size, "%s/%u", ip, a->len);
	else
		snprintf(buf, size, "%s", ip);
	return buf;
}

unsigned int
conf_fam_bit(unsigned int family)
{
	return family == SG_CONF_V6 ? SG_CONF_FAM_V6 : SG_CONF_FAM_V4;
}

const char *
conf_fam_name(unsigned int family)
{
	return family == SG_CONF_V6 ? "IPv6" : "IPv4";
}

static int
is_unicast(const struct sg_conf_addr *a)
{
	static const uint8_t zero[16];

	if (a->family == SG_CONF_V4)
		/* 0/8 "this network", 127/8 loopback, 224/4 multicast and above:
		 * RFC 6890 §2.2.2, RFC 5771. */
		return a->addr[0] != 0 && a->addr[0] != 127 && a->addr[0] < 224;
	/* Unspecified, loopback, multicast: RFC 4291 §2.5.2, §2.5.3, §2.7. */
	if (memcmp(a->addr, zero, 16) == 0 || a->addr[0] == 0xff)
		return 0;
	return !(memcmp(a->addr, zero, 15) == 0 && a->addr[15] == 1);
}

/* Bit i of the address (0: the most significant bit of the first byte). */
static unsigned int
addr_bit(const uint8_t *addr, unsigned int i)
{
	return (addr[i / 8] >> (7 - i % 8)) & 1u;
}

static int
host_bits_zero(const struct sg_conf_addr *a)
{
	for (unsigned int i = a->len; i < full_len(a->family); i++)
		if (addr_bit(a->addr, i))
			return 0;
	return 1;
}

static void
clear_host_bits(struct sg_conf_addr *a)
{
	for (unsigned int i = a->len; i < full_len(a->family); i++)
		a->addr[i / 8] &= (uint8_t)~(1u << (7 - i % 8));
}

int
conf_addr_is_net_or_bcast(const struct sg_conf_addr *a)
{
	unsigned int all = full_len(a->family);
	unsigned int ones = 0;

	/* /31 and /32 (RFC 3021) and IPv6 /127, /128 (RFC 6164) have no
	 * network or broadcast address to avoid. */
	if ((unsigned int)a->len + 1 >= all)
		return 0;
	if (host_bits_zero(a))
		return 1;	/* IPv4 network, IPv6 subnet-router anycast (RFC 4291 §2.6.1) */
	for (unsigned int i = a->len; i < all; i++)
		ones += addr_bit(a->addr, i);
	return a->family == SG_CONF_V4 && ones == all - a->len;
}

int
conf_prefix_contains(const struct sg_conf_addr *a, const struct sg_conf_addr *b)
{
	if (a->family != b->family)
		return 0;
	for (unsigned int i = 0; i < a->len; i++)
		if (addr_bit(a->addr, i) != addr_bit(b->addr, i))
			return 0;
	return 1;
}

int
conf_prefix_overlap(const struct sg_conf_addr *a, const struct sg_conf_addr *b)
{
	/* Two prefixes overlap exactly when the shorter one contains the other. */
	return a->len <= b->len ? conf_prefix_contains(a, b) : conf_prefix_contains(b, a);
}

int
conf_addr_eq(const struct sg_conf_addr *a, const struct sg_conf_addr *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, 16) == 0;
}

int
conf_addr_cmp(const struct sg_conf_addr *a, const struct sg_conf_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, 16);
}

int
conf_parse_addr(const char *s, unsigned int kind, unsigned int family,
		struct sg_conf_addr *a, char *why, size_t whylen)
{
	const char *noun = family == SG_CONF_V4 ? "an IPv4 address" :
			   family == SG_CONF_V6 ? "an IPv6 address" : "an IP address";
	int want_len = kind != SK_ADDR;
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned int fam, maxlen, minlen = kind == SK_PREFIX ? 1 : 0;
	char q[80], ip[INET6_ADDRSTRLEN + 1];

	conf_quote(s, q, sizeof(q));
	memset(a, 0, sizeof(*a));
	if (alen == 0 || alen >= sizeof(ip) || (slash != NULL && !want_len))
		goto bad_addr;
	memcpy(ip, s, alen);
	ip[alen] = '\0';
	if (sg_conf_ip_parse(ip, family, a) < 0)
		goto bad_addr;
	fam = a->family;
	maxlen = full_len(fam);

	if (want_len) {
		const char *p = slash != NULL ? slash + 1 : NULL;
		unsigned int len = 0;
		size_t nd = 0;

		if (p == NULL) {
			snprintf(why, whylen, "%s has no prefix length (write address/length)", q);
			return -1;
		}
		/* Digits only: "/+24", "/ 24" and "/0x18" are not lengths. */
		for (; p[nd] >= '0' && p[nd] <= '9' && nd < 4; nd++)
			len = len * 10 + (unsigned int)(p[nd] - '0');
		if (nd == 0 || nd > 3 || p[nd] != '\0' || len < minlen || len > maxlen) {
			snprintf(why, whylen, "%s: prefix length must be %u-%u", q, minlen, maxlen);
			return -1;
		}
		a->len = (uint8_t)len;
	}
	if (kind == SK_CIDR) {
		if (!host_bits_zero(a)) {
			struct sg_conf_addr net = *a;
			char ns[SG_CONF_ADDR_STRLEN];

			clear_host_bits(&net);
			snprintf(why, whylen, "%s has host bits set (did you mean %s/%u?)", q,
				 sg_conf_ip_str(net.family, net.addr, ns, sizeof(ns)), net.len);
			return -1;
		}
	} else if (!is_unicast(a)) {
		char as[SG_CONF_ADDR_STRLEN];

		snprintf(why, whylen, "%s is not a unicast address",
			 sg_conf_ip_str(a->family, a->addr, as, sizeof(as)));
		return -1;
	}
	return 0;

bad_addr:
	snprintf(why, whylen, "%s is not %s%s", q, noun,
		 want_len ? (kind == SK_CIDR ? " range (network/length)" : "/length") : "");
	return -1;
}

/* ---- names ------------------------------------------------------------------ */

int
conf_is_port_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SG_CONF_PORT_NAME_SIZE)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return 0;
	return 1;
}

static int
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 §2.1 label as Kubernetes checks it (IsDNS1123Label). */
int
conf_is_dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SG_CONF_K8S_NAME_SIZE || !is_lower_alnum(s[0]) ||
	    !is_lower_alnum(s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static size_t
span_hex(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && isxdigit((unsigned char)s[n]))
		n++;
	return n;
}

/*
 * "dddd:bb:dd.f" or "bb:dd.f" (the form EAL's PCI allow-list takes), hex,
 * device up to 0x1f and function up to 7 as PCI numbers them. Returns the
 * length of the address, 0 if s does not start with one.
 */
static size_t
pci_len(const char *s)
{
	size_t n = span_hex(s, 5), pos = 0;

	if (n == 4 && s[4] == ':')
		pos = 5;
	if (span_hex(s + pos, 3) != 2 || s[pos + 2] != ':')
		return 0;
	pos += 3;
	if (span_hex(s + pos, 3) != 2 || s[pos + 2] != '.')
		return 0;
	if (strtoul((const char[]){ s[pos], s[pos + 1], '\0' }, NULL, 16) > 0x1f)
		return 0;
	pos += 3;
	if (s[pos] < '0' || s[pos] > '7')
		return 0;
	return pos + 1;
}

/* "net_<driver><n>": the driver in [a-z0-9_], starting with a letter. */
static size_t
vdev_len(const char *s)
{
	size_t n = 4, digits = 0, end;

	if (strncmp(s, "net_", 4) != 0 || !(s[4] >= 'a' && s[4] <= 'z'))
		return 0;
	while (s[n] != '\0' && s[n] != ',') {
		if (!is_lower_alnum(s[n]) && s[n] != '_')
			return 0;
		n++;
	}
	end = n;
	while (end > 4 && s[end - 1] >= '0' && s[end - 1] <= '9') {
		end--;
		digits++;
	}
	/* EAL device names are at most RTE_DEV_NAME_MAX_LEN - 1 = 63. */
	if (digits == 0 || n > 63)
		return 0;
	return n;
}

int
conf_is_device(const char *s)
{
	size_t n = pci_len(s);

	if (n == 0)
		n = vdev_len(s);
	if (n == 0 || strlen(s) >= SG_CONF_DEVICE_SIZE)
		return 0;
	if (s[n] == '\0')
		return 1;
	/* Driver arguments: ",key=value,..." with no blanks. */
	if (s[n] != ',' || s[n + 1] == '\0')
		return 0;
	for (s += n + 1; *s != '\0'; s++)
		if (!isgraph((unsigned char)*s))
			return 0;
	return 1;
}

void
conf_device_id(const char *dev, char *buf, size_t size)
{
	size_t n = pci_len(dev);

	if (n == 0) {
		snprintf(buf, size, "%.*s", (int)strcspn(dev, ","), dev);
		return;
	}
	/* EAL reads "01:00.0" as "0000:01:00.0", and hex in either case. */
	snprintf(buf, size, "%s%.*s", n == 7 ? "0000:" : "", (int)n, dev);
	for (char *p = buf; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
}

int
conf_is_eal_arg(const char *s)
{
	return s[0] != '\0' && strlen(s) < 1024;
}

static int
all_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isprint((unsigned char)*s) && !((unsigned char)*s & 0x80))
			return 0;
	return 1;
}

/* Control characters in a path are a mistake (a pasted newline), never intended. */
int
conf_is_path(const char *s)
{
	return s[0] != '\0' && strlen(s) < SG_CONF_PATH_MAX && all_printable(s);
}

/* kubeconfig context names are free-form ("arn:aws:eks:...", "user@cluster"). */
int
conf_is_context(const char *s)
{
	return s[0] != '\0' && strlen(s) < SG_CONF_K8S_CONTEXT_MAX && all_printable(s);
}

const char *
conf_quote(const char *s, char *buf, size_t size)
{
	size_t i, o = 0, max = 64;

	if (size < 8)
		return "";
	buf[o++] = '"';
	for (i = 0; s[i] != '\0' && i < max && o + 5 < size; i++)
		buf[o++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

unsigned int
conf_distance(const char *a, const char *b, unsigned int max)
{
	/* Levenshtein over two rows; names are short, longer ones are no match. */
	unsigned int row[2][65];
	size_t la = strlen(a), lb = strlen(b);

	if (la > 64 || lb > 64)
		return max + 1;
	if ((la > lb ? la - lb : lb - la) > max)
		return max + 1;
	for (size_t j = 0; j <= lb; j++)
		row[0][j] = (unsigned int)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned int *prev = row[(i - 1) & 1], *cur = row[i & 1];

		cur[0] = (unsigned int)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			unsigned int del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	}
	return row[la & 1][lb] > max ? max + 1 : row[la & 1][lb];
}
