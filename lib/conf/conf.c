/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Loading a configuration file, freeing it, and comparing two of them for a
 * reload, all by walking the table of settings (conf_schema.c): one decoder
 * per kind of value, so a setting's type, range, default and reload rule are
 * written once, in the table. Error lines are built here too.
 *
 * Not here: what the settings are and the checks across them
 * (conf_schema.c), address and name parsing (conf_util.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "maglev.h"
#include "sg_common.h"

#include "conf.h"
#include "conf_private.h"

/* Far above any real configuration; stops a wrong path (a disk image, say)
 * from being read into memory whole. */
#define FILE_SIZE_MAX (64u << 20)

/* Where a setting a reload may not change was, by path. */
struct line_rec {
	char *path;
	uint32_t line;
};

struct sg_conf_lines {
	struct line_rec *v;
	size_t n;
	size_t cap;
};

/* ---- error lines ------------------------------------------------------------ */

static void
err_vput(struct conf_ctx *ctx, unsigned int line, const char *path, const char *fmt, va_list ap)
{
	char msg[512], at[16] = "";

	if (ctx->err == NULL || ctx->errlen == 0)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line != 0)
		snprintf(at, sizeof(at), ":%u", line);
	if (path != NULL && path[0] != '\0')
		snprintf(ctx->err, ctx->errlen, "%s%s: %s: %s", ctx->path, at, path, msg);
	else
		snprintf(ctx->err, ctx->errlen, "%s%s: %s", ctx->path, at, msg);
}

void
conf_path(const config_setting_t *s, char *buf, size_t size)
{
	const config_setting_t *chain[32];
	unsigned int n = 0;
	size_t o = 0;

	buf[0] = '\0';
	for (; s != NULL && !config_setting_is_root(s) && n < SG_ARRAY_SIZE(chain);
	     s = config_setting_parent(s))
		chain[n++] = s;
	while (n-- > 0 && o < size) {
		const char *sep = o != 0 ? "." : "";
		int w;

		if (config_setting_name(chain[n]) != NULL)
			w = snprintf(buf + o, size - o, "%s%s", sep, config_setting_name(chain[n]));
		else
			w = snprintf(buf + o, size - o, "%s[%d]", sep,
				     config_setting_index(chain[n]));
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

int
conf_err(struct conf_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
{
	char path[256] = "";
	va_list ap;

	if (s != NULL)
		conf_path(s, path, sizeof(path));
	va_start(ap, fmt);
	err_vput(ctx, s != NULL ? config_setting_source_line(s) : 0, path, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
conf_err_line(struct conf_ctx *ctx, unsigned int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vput(ctx, line, NULL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
conf_err_missing(struct conf_ctx *ctx, const config_setting_t *parent, const char *name,
		 const char *extra)
{
	return conf_err(ctx, parent, "missing setting \"%s\"%s", name, extra);
}

int
conf_err_nomem(struct conf_ctx *ctx)
{
	conf_err_line(ctx, 0, "out of memory");
	return -ENOMEM;
}

const config_setting_t *
conf_member(const config_setting_t *gs, const char *name)
{
	return config_setting_get_member(gs, name);
}

static const char *
type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	case CONFIG_TYPE_GROUP:
		return "a group";
	default:
		return "nothing";
	}
}

static int
err_type(struct conf_ctx *ctx, const config_setting_t *s, const char *want)
{
	return conf_err(ctx, s, "must be %s, not %s", want, type_name(s));
}

/* ---- decoding ------------------------------------------------------------------ */

static size_t
elem_size(const struct setting *e, unsigned int kind)
{
	switch (kind) {
	case SK_INT:
		return sizeof(uint32_t);
	case SK_BOOL:
	case SK_ENUM:
		return sizeof(uint8_t);
	case SK_STR:
		return e->size != 0 ? e->size : sizeof(char *);
	default:
		return sizeof(struct sg_conf_addr);
	}
}

static int
record_line(struct conf_ctx *ctx, const config_setting_t *s)
{
	struct sg_conf_lines *l = ctx->conf->lines;
	char path[256];

	if (l->n == l->cap) {
		size_t cap = l->cap != 0 ? l->cap * 2 : 32;
		struct line_rec *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return conf_err_nomem(ctx);
		l->v = v;
		l->cap = cap;
	}
	conf_path(s, path, sizeof(path));
	l->v[l->n].path = strdup(path);
	if (l->v[l->n].path == NULL)
		return conf_err_nomem(ctx);
	l->v[l->n++].line = config_setting_source_line(s);
	return 0;
}

static int
decode_int(struct conf_ctx *ctx, const config_setting_t *s, const struct setting *e,
	   uint32_t *dst)
{
	const char *wrapped = config_setting_get_hook(s);
	long long v;
	char shown[48];

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return err_type(ctx, s, "an integer");
	v = config_setting_get_int64(s);
	if (wrapped != NULL)
		snprintf(shown, sizeof(shown), "%s", wrapped);
	else
		snprintf(shown, sizeof(shown), "%lld", v);
	if (wrapped != NULL || v < e->min || v > e->max) {
		if (e->what != NULL)
			return conf_err(ctx, s, "%s is not %s (%lld-%lld)", shown, e->what,
					(long long)e->min, (long long)e->max);
		return conf_err(ctx, s, "%s is out of range (%lld-%lld)", shown,
				(long long)e->min, (long long)e->max);
	}
	if ((e->flags & F_POW2) && (v & (v - 1)) != 0)
		return conf_err(ctx, s, "%lld is not a power of two", v);
	if ((e->flags & F_PRIME) && !sg_maglev_is_prime((uint32_t)v))
		return conf_err(ctx, s, "%lld is not a prime", v);
	*dst = (uint32_t)v;
	return 0;
}

static int
decode_enum(struct conf_ctx *ctx, const config_setting_t *s, const struct setting *e,
	    uint8_t *dst)
{
	char q[80], list[160] = "";
	size_t o = 0;
	int v;

	v = conf_enum_value(e->names, config_setting_get_string(s));
	if (v >= 0) {
		*dst = (uint8_t)v;
		return 0;
	}
	for (const struct enum_name *n = e->names; n->name != NULL && o < sizeof(list); n++) {
		int w = snprintf(list + o, sizeof(list) - o, "%s\"%s\"", o != 0 ? ", " : "",
				 n->name);

		if (w < 0)
			break;
		o += (size_t)w;
	}
	return conf_err(ctx, s, "%s is not %s (%s)",
			conf_quote(config_setting_get_string(s), q, sizeof(q)), e->what, list);
}

static int
decode_scalar(struct conf_ctx *ctx, const config_setting_t *s, const struct setting *e,
	      unsigned int kind, void *dst)
{
	const char *str;
	char why[256], q[80];

	switch (kind) {
	case SK_INT:
		return decode_int(ctx, s, e, dst);
	case SK_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return err_type(ctx, s, "a boolean (true or false)");
		*(uint8_t *)dst = config_setting_get_bool(s) != 0;
		return 0;
	default:
		break;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return err_type(ctx, s, "a string");
	str = config_setting_get_string(s);
	switch (kind) {
	case SK_ENUM:
		return decode_enum(ctx, s, e, dst);
	case SK_STR:
		if (!e->check(str) || (e->size != 0 && strlen(str) >= e->size))
			return conf_err(ctx, s, "%s is not %s", conf_quote(str, q, sizeof(q)),
					e->what);
		if (e->size != 0) {
			memcpy(dst, str, strlen(str) + 1);
		} else {
			*(char **)dst = strdup(str);
			if (*(char **)dst == NULL)
				return conf_err_nomem(ctx);
		}
		return 0;
	default:
		if (conf_parse_addr(str, kind, e->family, dst, why, sizeof(why)) < 0)
			return conf_err(ctx, s, "%s", why);
		return 0;
	}
}

/* The value of element i of an array, for "is listed twice". */
static const char *
elem_shown(const struct setting *e, const void *arr, unsigned int i, char *buf, size_t size)
{
	size_t es = elem_size(e, e->elem);
	const void *p = (const uint8_t *)arr + i * es;

	switch (e->elem) {
	case SK_INT:
		snprintf(buf, size, "%u", *(const uint32_t *)p);
		return buf;
	case SK_STR:
		return conf_quote(e->size != 0 ? p : *(char *const *)p, buf, size);
	default:
		return sg_conf_addr_str(p, buf, size);
	}
}

static int
elem_equal(const struct setting *e, const void *arr, unsigned int i, unsigned int j)
{
	size_t es = elem_size(e, e->elem);
	const uint8_t *a = (const uint8_t *)arr + i * es, *b = (const uint8_t *)arr + j * es;

	if (e->elem == SK_STR && e->size == 0)
		return strcmp(*(char *const *)a, *(char *const *)b) == 0;
	if (e->elem == SK_ADDR || e->elem == SK_PREFIX || e->elem == SK_CIDR)
		return memcmp(a, b, sizeof(struct sg_conf_addr)) == 0;
	return memcmp(a, b, es) == 0;
}

static int
check_count(struct conf_ctx *ctx, const config_setting_t *s, const struct setting *e,
	    unsigned int n)
{
	if (n >= e->cmin && n <= e->cmax)
		return 0;
	return conf_err(ctx, s, "must have %u to %u entries, not %u", e->cmin, e->cmax, n);
}

static int decode_group(struct conf_ctx *ctx, const config_setting_t *gs, const struct group *g,
			void *base, unsigned int idx);

static int
decode_array(struct conf_ctx *ctx, const config_setting_t *s, const struct setting *e,
	     void *obj)
{
	void **arrp = (void **)((uint8_t *)obj + e->off);
	uint32_t *count = (uint32_t *)((uint8_t *)obj + e->count_off);
	size_t es = elem_size(e, e->elem);
	unsigned int n;
	int rc;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return err_type(ctx, s, "an array [ ... ]");
	n = (unsigned int)config_setting_length(s);
	rc = check_count(ctx, s, e, n);
	if (rc < 0 || n == 0)
		return rc;
	*arrp = calloc(n, es);
	if (*arrp == NULL)
		return conf_err_nomem(ctx);
	*count = n;	/* zeroed elements are safe to free */
	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *el = config_setting_get_elem(s, i);

		rc = decode_scalar(ctx, el, e, e->elem, (uint8_t *)*arrp + i * es);
		if (rc < 0)
			return rc;
		if (!(e->flags & F_UNIQUE))
			continue;
		for (unsigned int j = 0; j < i; j++) {
			char shown[96];

			if (elem_equal(e, *arrp, i, j))
				return conf_err(ctx, el, "%s is listed twice",
						elem_shown(e, *arrp, i, shown, sizeof(shown)));
		}
	}
	return 0;
}

static int
decode_list(struct conf_ctx *ctx, const config_setting_t *s, const struct setting *e, void *obj)
{
	void **arrp = (void **)((uint8_t *)obj + e->off);
	uint32_t *count = (uint32_t *)((uint8_t *)obj + e->count_off);
	const struct group *g = e->group;
	unsigned int n;
	int rc;

	if (!config_setting_is_list(s))
		return err_type(ctx, s, "a list ( { ... }, ... )");
	n = (unsigned int)config_setting_length(s);
	rc = check_count(ctx, s, e, n);
	if (rc < 0 || n == 0)
		return rc;
	*arrp = calloc(n, g->size);
	if (*arrp == NULL)
		return conf_err_nomem(ctx);
	*count = n;
	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *el = config_setting_get_elem(s, i);

		if (!config_setting_is_group(el))
			return err_type(ctx, el, "a group { ... }");
		rc = decode_group(ctx, el, g, *arrp, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int
decode_entry(struct conf_ctx *ctx, const config_setting_t *s, const struct setting *e, void *obj)
{
	switch (e->kind) {
	case SK_ARRAY:
		return decode_array(ctx, s, e, obj);
	case SK_LIST:
		return decode_list(ctx, s, e, obj);
	case SK_GROUP:
		if (!config_setting_is_group(s))
			return err_type(ctx, s, "a group { ... }");
		return decode_group(ctx, s, e->group, (uint8_t *)obj + e->off, 0);
	default:
		return decode_scalar(ctx, s, e, e->kind, (uint8_t *)obj + e->off);
	}
}

static int
err_unknown(struct conf_ctx *ctx, const config_setting_t *m, const struct group *g)
{
	const char *name = config_setting_name(m);
	unsigned int max = strlen(name) <= 4 ? 1 : 2, best = max + 1;
	const char *hint = NULL;

	for (unsigned int i = 0; i < g->n; i++) {
		unsigned int d = conf_distance(name, g->settings[i].name, max);

		if (d < best) {
			best = d;
			hint = g->settings[i].name;
		}
	}
	if (hint != NULL)
		return conf_err(ctx, m, "unknown setting (did you mean \"%s\"?)", hint);
	return conf_err(ctx, m, "unknown setting");
}

static const struct setting *
find_setting(const struct group *g, const char *name)
{
	for (unsigned int i = 0; i < g->n; i++)
		if (strcmp(g->settings[i].name, name) == 0)
			return &g->settings[i];
	return NULL;
}

static void
store_default(const struct setting *e, void *obj)
{
	void *p = (uint8_t *)obj + e->off;

	if (e->kind == SK_INT)
		*(uint32_t *)p = (uint32_t)e->def;
	else
		*(uint8_t *)p = (uint8_t)e->def;
}

/*
 * A group left out of the file: every setting in it takes its default. No
 * group with a default-only setting needs another setting to fill it in or
 * to be checked, so neither dflt nor check is called here.
 */
static void
default_group(const struct group *g, void *obj)
{
	for (unsigned int i = 0; i < g->n; i++) {
		const struct setting *e = &g->settings[i];

		if (e->flags & F_DEFAULT)
			store_default(e, obj);
		else if (e->kind == SK_GROUP)
			default_group(e->group, (uint8_t *)obj + e->off);
	}
}

/*
 * Decode group gs into element idx of base: unknown names first (a typo is
 * reported as such, not as the setting it misses), then each setting of the
 * table in table order, then the group's own checks.
 */
static int
decode_group(struct conf_ctx *ctx, const config_setting_t *gs, const struct group *g,
	     void *base, unsigned int idx)
{
	void *obj = (uint8_t *)base + (size_t)idx * g->size;
	unsigned int n = (unsigned int)config_setting_length(gs);
	int rc;

	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(gs, i);

		if (find_setting(g, config_setting_name(m)) == NULL)
			return err_unknown(ctx, m, g);
	}
	for (unsigned int i = 0; i < g->n; i++) {
		const struct setting *e = &g->settings[i];
		const config_setting_t *m = conf_member(gs, e->name);
		int saved = ctx->noreload;

		if (m == NULL) {
			if (e->flags & F_REQUIRED)
				return conf_err_missing(ctx, gs, e->name, "");
			if (e->flags & F_DEFAULT)
				store_default(e, obj);
			else if (e->kind == SK_GROUP)
				default_group(e->group, (uint8_t *)obj + e->off);
			else if (e->dflt != NULL && (rc = e->dflt(ctx, gs, obj)) < 0)
				return rc;
			continue;
		}
		if (e->flags & F_NORELOAD)
			ctx->noreload = 1;
		rc = ctx->noreload ? record_line(ctx, m) : 0;
		if (rc == 0)
			rc = decode_entry(ctx, m, e, obj);
		ctx->noreload = saved;
		if (rc < 0)
			return rc;
	}
	if (g->line_off != NO_LINE)
		*(uint32_t *)((uint8_t *)obj + g->line_off) = config_setting_source_line(gs);
	return g->check != NULL ? g->check(ctx, gs, base, idx) : 0;
}

/* ---- freeing ---------------------------------------------------------------------- */

static uint32_t
count_of(const struct setting *e, const void *obj)
{
	return *(const uint32_t *)((const uint8_t *)obj + e->count_off);
}

static void
free_group(const struct group *g, void *obj)
{
	for (unsigned int i = 0; i < g->n; i++) {
		const struct setting *e = &g->settings[i];
		void *p = (uint8_t *)obj + e->off;
		uint8_t *arr;

		switch (e->kind) {
		case SK_STR:
			if (e->size == 0)
				free(*(char **)p);
			break;
		case SK_ARRAY:
			arr = *(uint8_t **)p;
			if (e->elem == SK_STR && e->size == 0)
				for (uint32_t j = 0; j < count_of(e, obj); j++)
					free(((char **)(void *)arr)[j]);
			free(arr);
			break;
		case SK_GROUP:
			free_group(e->group, p);
			break;
		case SK_LIST:
			arr = *(uint8_t **)p;
			for (uint32_t j = 0; j < count_of(e, obj); j++)
				free_group(e->group, arr + (size_t)j * e->group->size);
			free(arr);
			break;
		default:
			break;
		}
	}
}

static void
free_lines(struct sg_conf_lines *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	free(l);
}

void
sg_conf_free(struct sg_conf *c)
{
	if (c == NULL)
		return;
	free_group(&sg_conf_root_group, c);
	free_lines(c->lines);
	free(c->path);
	free(c);
}

/* ---- loading ---------------------------------------------------------------------- */

static int
read_file(struct conf_ctx *ctx, char **text)
{
	struct stat st;
	size_t len = 0, cap = 4096;
	char *buf;
	int fd, rc;

	fd = open(ctx->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		conf_err_line(ctx, 0, "cannot open: %s", strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		conf_err_line(ctx, 0, "cannot open: %s", strerror(EISDIR));
		return -EISDIR;
	}
	buf = malloc(cap);
	for (;;) {
		ssize_t r;

		if (buf == NULL) {
			close(fd);
			return conf_err_nomem(ctx);
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			free(buf);
			close(fd);
			conf_err_line(ctx, 0, "cannot read: %s", strerror(-rc));
			return rc;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > FILE_SIZE_MAX) {
			free(buf);
			close(fd);
			conf_err_line(ctx, 0, "larger than %u MiB", FILE_SIZE_MAX >> 20);
			return -EFBIG;
		}
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap * 2);

			if (nb == NULL)
				free(buf);
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	/* libconfig would stop reading at a NUL and take the rest as missing. */
	if (strlen(buf) != len) {
		unsigned int line = 1;

		for (const char *p = buf; *p != '\0'; p++)
			line += *p == '\n';
		free(buf);
		return conf_err_line(ctx, line, "contains a NUL byte");
	}
	*text = buf;
	return 0;
}

static int
parse(struct conf_ctx *ctx, const char *text, config_t *cfg)
{
	char **wrapped;
	size_t n;
	int rc;

	rc = conf_lex_scan(ctx, text, &wrapped, &n);
	if (rc < 0)
		return rc;
	if (config_read_string(cfg, text) != CONFIG_TRUE) {
		conf_lex_free(wrapped, n);
		return conf_err_line(ctx, (unsigned int)config_error_line(cfg), "%s",
				     config_error_text(cfg));
	}
	conf_lex_mark(cfg, wrapped, n);
	/* The hooks point into wrapped: decode before freeing it. */
	rc = decode_group(ctx, config_root_setting(cfg), &sg_conf_root_group, ctx->conf, 0);
	conf_lex_free(wrapped, n);
	return rc;
}

int
sg_conf_load(const char *path, struct sg_conf **out, char *err, size_t errlen)
{
	struct conf_ctx ctx = { .path = path, .err = err, .errlen = errlen };
	struct sg_conf *c;
	config_t cfg;
	char *text = NULL;
	int rc;

	if (err == NULL && errlen > 0)
		return -EINVAL;
	if (errlen > 0)
		err[0] = '\0';
	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL) {
		ctx.path = "sg_conf_load";
		return conf_err_line(&ctx, 0, "no %s given", path == NULL ? "path" : "result");
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return conf_err_nomem(&ctx);
	c->path = strdup(path);
	c->lines = calloc(1, sizeof(*c->lines));
	if (c->path == NULL || c->lines == NULL) {
		rc = conf_err_nomem(&ctx);
		goto free_conf;
	}
	ctx.conf = c;
	rc = read_file(&ctx, &text);
	if (rc < 0)
		goto free_conf;
	config_init(&cfg);
	rc = parse(&ctx, text, &cfg);
	config_destroy(&cfg);
	free(text);
	if (rc < 0)
		goto free_conf;
	*out = c;
	return 0;

free_conf:
	sg_conf_free(c);
	return rc;
}

/* ---- reload ------------------------------------------------------------------------- */

/* The line of path in c's file, else that of the nearest enclosing setting. */
static unsigned int
line_of(const struct sg_conf *c, const char *path)
{
	char p[256];

	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		char *dot;

		for (size_t i = 0; i < c->lines->n; i++)
			if (strcmp(c->lines->v[i].path, p) == 0)
				return c->lines->v[i].line;
		dot = strrchr(p, '.');
		if (dot == NULL)
			return 0;
		*dot = '\0';
	}
}

/* A group a reload may not add or remove (F_NOADD): added is blamed on its line. */
static int
refuse_presence(struct conf_ctx *ctx, const struct group *g, const void *a, const void *b,
		const char *path)
{
	uint32_t la = *(const uint32_t *)((const uint8_t *)a + g->line_off);
	uint32_t lb = *(const uint32_t *)((const uint8_t *)b + g->line_off);

	if ((la != 0) == (lb != 0))
		return 0;
	conf_err_line(ctx, lb, "%s: cannot be %s on reload (restart svcgw)", path,
		      lb != 0 ? "added" : "removed");
	return -EPERM;
}

static int
refuse(struct conf_ctx *ctx, const struct sg_conf *nc, const char *path)
{
	char msg[320];

	snprintf(msg, sizeof(msg), "%s: cannot change on reload (restart svcgw)", path);
	conf_err_line(ctx, line_of(nc, path), "%s", msg);
	return -EPERM;
}

static int
same_value(const struct setting *e, unsigned int kind, const void *a, const void *b)
{
	if (kind == SK_STR && e->size == 0) {
		const char *sa = *(char *const *)a, *sb = *(char *const *)b;

		return (sa == NULL && sb == NULL) ||
		       (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
	}
	if (kind == SK_STR)
		return strcmp(a, b) == 0;
	return memcmp(a, b, elem_size(e, kind)) == 0;
}

/*
 * Compare the settings of g in a and b that a reload may not change (all of
 * them when fixed is set, inside such a setting); prefix is g's path.
 */
static int
cmp_group(struct conf_ctx *ctx, const struct sg_conf *nc, const struct group *g, const void *a,
	  const void *b, int fixed, const char *prefix)
{
	for (unsigned int i = 0; i < g->n; i++) {
		const struct setting *e = &g->settings[i];
		const uint8_t *pa = (const uint8_t *)a + e->off, *pb = (const uint8_t *)b + e->off;
		uint32_t na = 0, nb = 0;
		char path[256];
		int rc;

		if (!fixed && !(e->flags & (F_NORELOAD | F_NOADD)))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] != '\0' ? "." : "",
			 e->name);
		if (!fixed && !(e->flags & F_NORELOAD)) {
			rc = refuse_presence(ctx, e->group, pa, pb, path);
			if (rc < 0)
				return rc;
			continue;
		}
		if (e->kind == SK_ARRAY || e->kind == SK_LIST) {
			na = count_of(e, a);
			nb = count_of(e, b);
			if (na != nb)
				return refuse(ctx, nc, path);
		}
		switch (e->kind) {
		case SK_ARRAY: {
			const uint8_t *xa = *(uint8_t *const *)pa, *xb = *(uint8_t *const *)pb;
			size_t es = elem_size(e, e->elem);

			for (uint32_t j = 0; j < na; j++)
				if (!same_value(e, e->elem, xa + j * es, xb + j * es))
					return refuse(ctx, nc, path);
			break;
		}
		case SK_GROUP:
			rc = cmp_group(ctx, nc, e->group, pa, pb, 1, path);
			if (rc < 0)
				return rc;
			break;
		case SK_LIST: {
			const uint8_t *xa = *(uint8_t *const *)pa, *xb = *(uint8_t *const *)pb;
			size_t es = e->group->size;

			for (uint32_t j = 0; j < na; j++) {
				char ep[272];

				snprintf(ep, sizeof(ep), "%s.[%u]", path, j);
				rc = cmp_group(ctx, nc, e->group, xa + j * es, xb + j * es, 1, ep);
				if (rc < 0)
					return rc;
			}
			break;
		}
		default:
			if (!same_value(e, e->kind, pa, pb))
				return refuse(ctx, nc, path);
			break;
		}
	}
	return 0;
}

int
sg_conf_reload_check(const struct sg_conf *oc, const struct sg_conf *nc, char *err,
		     size_t errlen)
{
	struct conf_ctx ctx = { .err = err, .errlen = errlen };

	if (err == NULL && errlen > 0)
		return -EINVAL;
	if (errlen > 0)
		err[0] = '\0';
	if (oc == NULL || nc == NULL) {
		ctx.path = "sg_conf_reload_check";
		return conf_err_line(&ctx, 0, "no %s configuration given",
				     oc == NULL ? "old" : "new");
	}
	ctx.path = nc->path;
	return cmp_group(&ctx, nc, &sg_conf_root_group, oc, nc, 0, "");
}
