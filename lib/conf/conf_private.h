/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside lib/conf: the table of settings that drives loading, freeing and
 * reload checks (conf.c walks it, conf_schema.c fills it and holds the
 * checks across settings), the integer scan that makes up for libconfig
 * 1.5's silent integer wrap-around (conf_lex.c), and the parsers of
 * addresses and names (conf_util.c).
 */
#ifndef SG_CONF_PRIVATE_H
#define SG_CONF_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>

#include "conf.h"

/* How a setting is written in the file and stored in our structs. */
enum setting_kind {
	SK_INT,		/* int or int64 in [min, max]; uint32_t */
	SK_BOOL,	/* true or false; uint8_t 0 or 1 */
	SK_ENUM,	/* one of names[]; uint8_t */
	SK_STR,		/* a string passed by check(); char[size], or char * if size is 0 */
	SK_ADDR,	/* a unicast address; struct sg_conf_addr */
	SK_PREFIX,	/* a unicast address/length (an interface address) */
	SK_CIDR,	/* a network/length, host bits zero */
	SK_ARRAY,	/* [ ... ] or ( ... ) of elem; pointer at off, uint32_t count at
			 * count_off */
	SK_GROUP,	/* { ... }; the struct at off */
	SK_LIST,	/* ( { ... }, ... ); pointer at off, uint32_t count at count_off */
};

/* setting.flags */
#define F_REQUIRED 0x01u	/* missing is an error */
#define F_DEFAULT 0x02u		/* missing takes def (SK_INT, SK_BOOL, SK_ENUM) */
#define F_NORELOAD 0x04u	/* a reload may not change it (nor anything inside) */
#define F_POW2 0x08u		/* SK_INT: a power of two */
#define F_PRIME 0x10u		/* SK_INT: a prime */
#define F_UNIQUE 0x20u		/* SK_ARRAY: no element twice */
#define F_NOADD 0x40u		/* SK_GROUP with a line: a reload may not add or remove it
				 * (what is inside may change) */

struct conf_ctx;
struct group;

struct enum_name {
	const char *name;
	uint8_t value;
};

struct setting {
	const char *name;
	uint8_t kind;		/* enum setting_kind */
	uint8_t elem;		/* SK_ARRAY: kind of the elements */
	uint8_t flags;		/* F_* */
	uint8_t family;		/* addresses: SG_CONF_V4, SG_CONF_V6, or 0 for either */
	size_t off;		/* field in the enclosing struct */
	size_t count_off;	/* SK_ARRAY, SK_LIST: the uint32_t count */
	size_t size;		/* SK_STR buffer (0: allocated) */
	int64_t min, max;	/* SK_INT (of elements for SK_ARRAY) */
	int64_t def;		/* with F_DEFAULT */
	uint32_t cmin, cmax;	/* SK_ARRAY, SK_LIST: number of elements */
	/* SK_INT: the noun of range errors ("a port"); SK_ENUM, SK_STR: what a
	 * valid value is ("a mode", "a DNS-1123 label (...)"). */
	const char *what;
	const struct enum_name *names;	/* SK_ENUM, NULL-terminated */
	int (*check)(const char *s);	/* SK_STR: 1 if valid */
	const struct group *group;	/* SK_GROUP, SK_LIST */
	/* Missing and not F_DEFAULT: fill the default in from other settings
	 * (obj is the enclosing struct). 0 or a negative errno, err set. */
	int (*dflt)(struct conf_ctx *ctx, const config_setting_t *gs, void *obj);
};

struct group {
	const struct setting *settings;
	unsigned int n;
	size_t size;		/* of the struct; of each element in a list */
	size_t line_off;	/* its uint32_t line, or NO_LINE */
	/*
	 * Checks across the settings of one group, once each of them is
	 * decoded and defaulted: obj = base + idx * size, idx being the
	 * position in the list (0 outside lists), so a list element can be
	 * compared with those before it. 0 or a negative errno, err set.
	 */
	int (*check)(struct conf_ctx *ctx, const config_setting_t *gs, void *base,
		     unsigned int idx);
};
#define NO_LINE SIZE_MAX

/* One load in progress. */
struct conf_ctx {
	const char *path;	/* for messages */
	char *err;
	size_t errlen;
	struct sg_conf *conf;	/* being filled; settings are decoded in table order */
	int noreload;		/* inside a F_NORELOAD setting: record lines */
};

/* The settings at the root of the file. */
extern const struct group sg_conf_root_group;

/* Enum tables, shared with the public name helpers. */
extern const struct enum_name sg_conf_modes[];
extern const struct enum_name sg_conf_types[];
extern const struct enum_name sg_conf_protos[];
extern const struct enum_name sg_conf_roles[];
extern const struct enum_name sg_conf_k8s_sources[];

/* ---- errors (conf.c) ---------------------------------------------------- */

/*
 * "<file>:<line>: <path of s>: <message>" into ctx->err; s NULL or the root
 * gives no path, line 0 no line. Returns -EINVAL for the caller to return.
 */
int conf_err(struct conf_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same at a line (0: none) with no setting named. */
int conf_err_line(struct conf_ctx *ctx, unsigned int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "<parent>: missing setting "<name>"<extra>" at the parent's line. */
int conf_err_missing(struct conf_ctx *ctx, const config_setting_t *parent, const char *name,
		     const char *extra);
/* "out of memory" without a line; returns -ENOMEM. */
int conf_err_nomem(struct conf_ctx *ctx);
/* The setting called name in group gs, or NULL. */
const config_setting_t *conf_member(const config_setting_t *gs, const char *name);
/* Setting names joined by "." and list positions as "[i]": "services.[3].port". */
void conf_path(const config_setting_t *s, char *buf, size_t size);

/* ---- integer literals (conf_lex.c) ---------------------------------------- */

/*
 * libconfig 1.5 keeps an integer literal that does not fit 32 bits (without
 * an L suffix) as its low 32 bits, so "port = 4294967376;" reads as 80.
 * conf_lex_scan() reads the text the way libconfig's scanner does, before
 * libconfig parses it, and lists its integer literals: (*wrapped)[i] is the
 * text of the i-th if libconfig cuts it short, else NULL. Returns 0, or:
 *  -EINVAL  the text uses @include (the file must stand alone), or ends
 *           inside a string (err set);
 *  -ENOMEM  out of memory (err set).
 * conf_lex_mark() then hooks each integer setting of the parsed tree whose
 * literal was cut short with that text (config_setting_get_hook()), which
 * the range check reports instead of the wrapped value.
 */
int conf_lex_scan(struct conf_ctx *ctx, const char *text, char ***wrapped, size_t *n);
void conf_lex_mark(config_t *cfg, char **wrapped, size_t n);
void conf_lex_free(char **texts, size_t n);

/* ---- values (conf_util.c) ---------------------------------------------------- */

/*
 * Parse an address setting of kind SK_ADDR, SK_PREFIX or SK_CIDR, of the
 * given family (0: either). Returns 0, or -1 with the reason in why
 * ("\"x\" is not an IPv4 address").
 */
int conf_parse_addr(const char *s, unsigned int kind, unsigned int family,
		    struct sg_conf_addr *a, char *why, size_t whylen);
/* 1 if a (with a->len) contains b's address. */
int conf_prefix_contains(const struct sg_conf_addr *a, const struct sg_conf_addr *b);
/* 1 if the prefixes a and b have an address in common. */
int conf_prefix_overlap(const struct sg_conf_addr *a, const struct sg_conf_addr *b);
/* 1 if the two addresses are equal (family and bytes; lengths ignored). */
int conf_addr_eq(const struct sg_conf_addr *a, const struct sg_conf_addr *b);
/* Order of addresses: family, then bytes. */
int conf_addr_cmp(const struct sg_conf_addr *a, const struct sg_conf_addr *b);
/* 1 if the host part of a/len is all zeros or (IPv4) all ones. */
int conf_addr_is_net_or_bcast(const struct sg_conf_addr *a);
/* SG_CONF_FAM_* of a family. */
unsigned int conf_fam_bit(unsigned int family);
/* "IPv4" or "IPv6" */
const char *conf_fam_name(unsigned int family);

/* String checks for SK_STR: 1 if valid. */
int conf_is_port_name(const char *s);
int conf_is_dns_label(const char *s);
int conf_is_device(const char *s);
int conf_is_eal_arg(const char *s);
int conf_is_path(const char *s);
int conf_is_context(const char *s);
/* The device without its arguments, PCI addresses in full lower-case form. */
void conf_device_id(const char *dev, char *buf, size_t size);

/* s, cut to 64 characters and with anything unprintable as '?', for messages. */
const char *conf_quote(const char *s, char *buf, size_t size);
/* Edit distance, capped: max + 1 when above max. */
unsigned int conf_distance(const char *a, const char *b, unsigned int max);

/* Name of value in names, or NULL. */
const char *conf_enum_name(const struct enum_name *names, unsigned int value);
/* Value of name in names, or -1. */
int conf_enum_value(const struct enum_name *names, const char *name);

#endif /* SG_CONF_PRIVATE_H */
