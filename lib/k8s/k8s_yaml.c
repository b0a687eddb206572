/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A reader for the subset of YAML 1.2 that kubeconfig files are written in,
 * so that svcgw needs no YAML library: block mappings and sequences by
 * indentation (a sequence may sit at its parent key's indentation, the
 * "clusters:\n- cluster:" form kubectl writes), plain and quoted scalars,
 * comments, and flow collections on one line ("preferences: {}",
 * "args: [a, b]"). What kubeconfig files do not use is refused with an
 * error naming the line, never half-read: block scalars, anchors and
 * aliases, tags, complex keys, several documents, scalars over several
 * lines.
 *
 * The text is split into lines first (comments and trailing blanks cut,
 * blank lines dropped), then read by recursive descent on indentation. The
 * entry of a sequence ("- key: v") is handled by rewriting its line as if
 * the content after "- " started the line at that column, which makes
 * "- a: 1\n  b: 2" an ordinary mapping at that column.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_private.h"

/* Deeper than any kubeconfig; stops a hostile file from exhausting the stack. */
#define DEPTH_MAX 64

struct yline {
	uint32_t no;		/* 1-based line number */
	uint32_t indent;	/* column of text */
	char *text;		/* trimmed, comment cut; points into the copy */
};

struct yparser {
	struct yline *lines;
	uint32_t n;
	uint32_t pos;
	int depth;
	int rc;			/* first error: -EINVAL or -ENOMEM */
	const char *name;
	char *err;
	size_t errlen;
};

static void *
yerr(struct yparser *p, uint32_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void *
yerr(struct yparser *p, uint32_t line, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (p->rc != 0)
		return NULL;
	p->rc = -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->name, line, msg);
	return NULL;
}

static void *
ynomem(struct yparser *p)
{
	if (p->rc == 0) {
		p->rc = -ENOMEM;
		if (p->err != NULL && p->errlen > 0)
			snprintf(p->err, p->errlen, "%s: out of memory", p->name);
	}
	return NULL;
}

/* ---- nodes --------------------------------------------------------------- */

void
k8s_yaml_free(struct k8s_yaml *y)
{
	if (y == NULL)
		return;
	for (uint32_t i = 0; i < y->n; i++) {
		if (y->keys != NULL)
			free(y->keys[i]);
		k8s_yaml_free(y->vals[i]);
	}
	free(y->keys);
	free(y->vals);
	free(y->str);
	free(y);
}

static struct k8s_yaml *
node_new(struct yparser *p, uint8_t kind, uint32_t line)
{
	struct k8s_yaml *y = calloc(1, sizeof(*y));

	if (y == NULL)
		return ynomem(p);
	y->kind = kind;
	y->line = line;
	return y;
}

/* Append; takes key and val in every case (freed on failure). */
static int
node_add(struct yparser *p, struct k8s_yaml *y, char *key, struct k8s_yaml *val, uint32_t line)
{
	struct k8s_yaml **vals;

	if (key != NULL) {
		for (uint32_t i = 0; i < y->n; i++) {
			if (strcmp(y->keys[i], key) != 0)
				continue;
			yerr(p, line, "duplicate key \"%.64s\"", key);
			free(key);
			k8s_yaml_free(val);
			return p->rc;
		}
		char **keys = realloc(y->keys, (y->n + 1) * sizeof(*keys));

		if (keys == NULL)
			goto nomem;
		y->keys = keys;
	}
	vals = realloc(y->vals, (y->n + 1) * sizeof(*vals));
	if (vals == NULL)
		goto nomem;
	y->vals = vals;
	if (key != NULL)
		y->keys[y->n] = key;
	y->vals[y->n++] = val;
	return 0;
nomem:
	free(key);
	k8s_yaml_free(val);
	ynomem(p);
	return p->rc;
}

const struct k8s_yaml *
k8s_yaml_get(const struct k8s_yaml *y, const char *key)
{
	if (y == NULL || y->kind != K8S_YAML_MAP)
		return NULL;
	for (uint32_t i = 0; i < y->n; i++)
		if (strcmp(y->keys[i], key) == 0)
			return y->vals[i];
	return NULL;
}

/* ---- scalars ------------------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t
put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The escapes of YAML 1.2 §5.7 that a one-line scalar can hold. */
static int
unescape(struct yparser *p, uint32_t line, const char **sp, char *o, size_t *olen)
{
	const char *s = *sp;
	unsigned int digits = 0;
	uint32_t cp = 0;
	char c;

	switch (*s) {
	case '0': c = '\0'; break;
	case 'a': c = '\a'; break;
	case 'b': c = '\b'; break;
	case 't': case '\t': c = '\t'; break;
	case 'n': c = '\n'; break;
	case 'v': c = '\v'; break;
	case 'f': c = '\f'; break;
	case 'r': c = '\r'; break;
	case 'e': c = '\x1b'; break;
	case ' ': c = ' '; break;
	case '"': c = '"'; break;
	case '/': c = '/'; break;
	case '\\': c = '\\'; break;
	case 'x': digits = 2; break;
	case 'u': digits = 4; break;
	case 'U': digits = 8; break;
	default:
		yerr(p, line, "unknown escape \"\\%c\" in a double-quoted scalar", *s ? *s : ' ');
		return p->rc;
	}
	if (digits == 0) {
		o[(*olen)++] = c;
		*sp = s + 1;
		return 0;
	}
	for (unsigned int i = 1; i <= digits; i++) {
		int h = hexval(s[i]);

		if (h < 0) {
			yerr(p, line, "\"\\%c\" needs %u hex digits", *s, digits);
			return p->rc;
		}
		cp = cp << 4 | (uint32_t)h;
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		yerr(p, line, "\"\\%c\" escape is not a character", *s);
		return p->rc;
	}
	*olen += put_utf8(o + *olen, cp);
	*sp = s + 1 + digits;
	return 0;
}

/*
 * A quoted scalar at *sp (on its quote): the unquoted value, *sp moved past
 * the closing quote. Never longer than its source, so one buffer of the
 * source's length holds it.
 */
static char *
parse_quoted(struct yparser *p, uint32_t line, const char **sp)
{
	const char *s = *sp;
	char q = *s++, *o = malloc(strlen(s) + 1);
	size_t n = 0;

	if (o == NULL)
		return ynomem(p);
	for (;;) {
		if (*s == '\0') {
			free(o);
			return yerr(p, line, "%s-quoted scalar not closed on its line (multi-line "
				    "scalars are not supported)", q == '"' ? "double" : "single");
		}
		if (q == '\'' && *s == '\'') {
			if (s[1] != '\'')
				break;
			o[n++] = '\'';
			s += 2;
			continue;
		}
		if (q == '"' && *s == '"')
			break;
		if (q == '"' && *s == '\\') {
			s++;
			if (unescape(p, line, &s, o, &n) < 0) {
				free(o);
				return NULL;
			}
			continue;
		}
		o[n++] = *s++;
	}
	o[n] = '\0';
	*sp = s + 1;
	return o;
}

static int
is_null_word(const char *s)
{
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static struct k8s_yaml *
scalar_node(struct yparser *p, uint32_t line, char *str)
{
	struct k8s_yaml *y;

	if (str == NULL)
		return NULL;
	y = node_new(p, K8S_YAML_SCALAR, line);
	if (y == NULL) {
		free(str);
		return NULL;
	}
	y->str = str;
	return y;
}

static struct k8s_yaml *
plain_node(struct yparser *p, uint32_t line, const char *s, size_t len)
{
	char *str;

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	str = strndup(s, len);
	if (str == NULL)
		return ynomem(p);
	if (is_null_word(str)) {
		free(str);
		return node_new(p, K8S_YAML_NULL, line);
	}
	return scalar_node(p, line, str);
}

/* Indicators a plain scalar may not start with, and what they would mean: 0 or -EINVAL. */
static int
check_indicator(struct yparser *p, uint32_t line, char c)
{
	switch (c) {
	case '|':
	case '>':
		yerr(p, line, "block scalars (| and >) are not supported");
		break;
	case '&':
	case '*':
		yerr(p, line, "anchors and aliases (& and *) are not supported");
		break;
	case '!':
		yerr(p, line, "tags (!) are not supported");
		break;
	case '@':
	case '`':
		yerr(p, line, "'%c' cannot start a plain scalar (quote it)", c);
		break;
	default:
		return 0;
	}
	return p->rc;
}

/* ---- flow collections ---------------------------------------------------- */

static const char *
skip_blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static struct k8s_yaml *parse_flow(struct yparser *p, uint32_t line, const char **sp);

/* A value inside a flow collection, up to one of stops. */
static struct k8s_yaml *
flow_value(struct yparser *p, uint32_t line, const char **sp, const char *stops)
{
	const char *s = skip_blank(*sp);
	size_t len;

	if (*s == '[' || *s == '{') {
		*sp = s;
		return parse_flow(p, line, sp);
	}
	if (*s == '"' || *s == '\'') {
		*sp = s;
		return scalar_node(p, line, parse_quoted(p, line, sp));
	}
	if (check_indicator(p, line, *s) < 0)
		return NULL;
	len = strcspn(s, stops);
	*sp = s + len;
	return plain_node(p, line, s, len);
}

/* A flow collection at *sp ('[' or '{'), closed on the same line. */
static struct k8s_yaml *
parse_flow(struct yparser *p, uint32_t line, const char **sp)
{
	char close = **sp == '[' ? ']' : '}';
	struct k8s_yaml *y;
	const char *s = *sp + 1;

	if (++p->depth > DEPTH_MAX)
		return yerr(p, line, "nested deeper than %d", DEPTH_MAX);
	y = node_new(p, close == ']' ? K8S_YAML_SEQ : K8S_YAML_MAP, line);
	if (y == NULL)
		return NULL;
	for (;;) {
		struct k8s_yaml *v;
		char *key = NULL;

		s = skip_blank(s);
		if (*s == close)
			break;
		if (*s == '\0')
			goto unclosed;
		if (close == '}') {
			size_t len;

			if (*s == '"' || *s == '\'') {
				key = parse_quoted(p, line, &s);
			} else {
				len = strcspn(s, ":,}");
				while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
					len--;
				key = strndup(s, len);
				if (key == NULL)
					ynomem(p);
				s += strcspn(s, ":,}");
			}
			if (key == NULL)
				goto fail;
			s = skip_blank(s);
			if (*s == ':') {
				s++;
				v = flow_value(p, line, &s, ",}");
			} else {
				v = node_new(p, K8S_YAML_NULL, line);
			}
		} else {
			v = flow_value(p, line, &s, ",]");
		}
		if (v == NULL) {
			free(key);
			goto fail;
		}
		if (node_add(p, y, key, v, line) < 0)
			goto fail;
		s = skip_blank(s);
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s == '\0')
			goto unclosed;
		if (*s != close) {
			yerr(p, line, "expected ',' or '%c' in a flow collection", close);
			goto fail;
		}
	}
	*sp = s + 1;
	p->depth--;
	return y;
unclosed:
	yerr(p, line, "'%c' not closed on its line (multi-line flow collections are not "
	     "supported)", close == ']' ? '[' : '{');
fail:
	k8s_yaml_free(y);
	return NULL;
}

/* ---- lines --------------------------------------------------------------- */

/* Where a quote may open a quoted scalar: at a token's start, not inside "don't". */
static int
quote_opens(const char *s, size_t i)
{
	size_t j = i;

	while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t'))
		j--;
	if (j == 0)
		return 1;
	if (strchr("[{,", s[j - 1]) != NULL)
		return 1;
	return (s[j - 1] == ':' || s[j - 1] == '-' || s[j - 1] == '?') && j < i;
}

/* Cut a comment: '#' at the start or after a blank, outside quotes. */
static void
cut_comment(char *s)
{
	int sq = 0, dq = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (dq) {
			if (c == '\\' && s[i + 1] != '\0')
				i++;
			else if (c == '"')
				dq = 0;
			continue;
		}
		if (sq) {
			if (c == '\'' && s[i + 1] == '\'')
				i++;
			else if (c == '\'')
				sq = 0;
			continue;
		}
		if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
			s[i] = '\0';
			return;
		}
		if ((c == '"' || c == '\'') && quote_opens(s, i)) {
			dq = c == '"';
			sq = c == '\'';
		}
	}
}

static int
split_lines(struct yparser *p, char *text)
{
	uint32_t no = 0, cap = 0;
	char *line = text;
	int started = 0;

	while (line != NULL) {
		char *nl = strchr(line, '\n'), *s;
		size_t len;
		uint32_t ind = 0;

		if (nl != NULL)
			*nl = '\0';
		no++;
		s = line;
		line = nl != NULL ? nl + 1 : NULL;
		while (s[ind] == ' ')
			ind++;
		cut_comment(s + ind);
		len = strlen(s);
		while (len > ind && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
			len--;
		s[len] = '\0';
		if (s[ind] == '\t') {
			const char *t = skip_blank(s + ind);

			if (*t == '\0')
				continue;
			return yerr(p, no, "tab in indentation (YAML indents with spaces)"), p->rc;
		}
		if (s[ind] == '\0')
			continue;
		if (ind == 0 && strcmp(s, "---") == 0) {
			if (started)
				return yerr(p, no, "several documents are not supported"), p->rc;
			started = 1;
			continue;
		}
		if (ind == 0 && strcmp(s, "...") == 0)
			break;
		if (ind == 0 && s[0] == '%')
			return yerr(p, no, "directives (%%) are not supported"), p->rc;
		if (ind == 0 && strncmp(s, "--- ", 4) == 0)
			return yerr(p, no, "content after \"---\" is not supported"), p->rc;
		started = 1;
		if (p->n == cap) {
			struct yline *v;

			cap = cap != 0 ? cap * 2 : 64;
			v = realloc(p->lines, cap * sizeof(*v));
			if (v == NULL)
				return ynomem(p), p->rc;
			p->lines = v;
		}
		p->lines[p->n++] = (struct yline){ .no = no, .indent = ind, .text = s + ind };
	}
	return 0;
}

/* ---- block structure ----------------------------------------------------- */

static int
is_seq_entry(const char *t)
{
	return t[0] == '-' && (t[1] == ' ' || t[1] == '\0');
}

/* If t is "key: value" or "key:", the offset of that ':'; else -1. */
static long
key_colon(const char *t)
{
	const char *s = t;

	if (*s == '[' || *s == '{' || is_seq_entry(s))
		return -1;
	if (*s == '"' || *s == '\'') {
		char q = *s++;

		while (*s != '\0') {
			if (*s == '\\' && q == '"' && s[1] != '\0')
				s += 2;
			else if (*s == q && q == '\'' && s[1] == '\'')
				s += 2;
			else if (*s == q)
				break;
			else
				s++;
		}
		if (*s == '\0')
			return -1;
		s = skip_blank(s + 1);
		return *s == ':' && (s[1] == ' ' || s[1] == '\0') ? s - t : -1;
	}
	for (; *s != '\0'; s++)
		if (*s == ':' && (s[1] == ' ' || s[1] == '\t' || s[1] == '\0'))
			return s - t;
	return -1;
}

/* A value written after "key: " or "- ", or alone on its line. */
static struct k8s_yaml *
parse_inline(struct yparser *p, uint32_t line, const char *s)
{
	struct k8s_yaml *y;
	const char *rest;

	if (*s == '"' || *s == '\'' || *s == '[' || *s == '{') {
		rest = s;
		if (*s == '[' || *s == '{')
			y = parse_flow(p, line, &rest);
		else
			y = scalar_node(p, line, parse_quoted(p, line, &rest));
		if (y == NULL)
			return NULL;
		if (*skip_blank(rest) != '\0') {
			k8s_yaml_free(y);
			return yerr(p, line, "text after the end of a %s",
				    *s == '[' || *s == '{' ? "flow collection" : "quoted scalar");
		}
		return y;
	}
	if (check_indicator(p, line, *s) < 0)
		return NULL;
	if (key_colon(s) >= 0)
		return yerr(p, line, "\": \" inside a plain scalar (quote the value)");
	return plain_node(p, line, s, strlen(s));
}

static struct k8s_yaml *parse_node(struct yparser *p);

/* The text of a key, unquoted. */
static char *
key_text(struct yparser *p, uint32_t line, const char *t, long colon)
{
	const char *s = t;

	if (*t == '"' || *t == '\'')
		return parse_quoted(p, line, &s);
	if (check_indicator(p, line, *t) < 0)
		return NULL;
	while (colon > 0 && (t[colon - 1] == ' ' || t[colon - 1] == '\t'))
		colon--;
	s = strndup(t, (size_t)colon);
	return s != NULL ? (char *)s : ynomem(p);
}

static struct k8s_yaml *
bad_indent(struct yparser *p)
{
	return yerr(p, p->lines[p->pos].no, "bad indentation");
}

static struct k8s_yaml *
parse_seq(struct yparser *p, uint32_t ind)
{
	struct k8s_yaml *y = node_new(p, K8S_YAML_SEQ, p->lines[p->pos].no);

	if (y == NULL)
		return NULL;
	while (p->pos < p->n && p->lines[p->pos].indent == ind &&
	       is_seq_entry(p->lines[p->pos].text)) {
		struct yline *l = &p->lines[p->pos];
		const char *rest = skip_blank(l->text + 1);
		struct k8s_yaml *item;

		if (*rest == '\0') {
			p->pos++;
			if (p->pos < p->n && p->lines[p->pos].indent > ind)
				item = parse_node(p);
			else
				item = node_new(p, K8S_YAML_NULL, l->no);
		} else {
			/* The entry's content as a line of its own at its column. */
			l->indent = ind + (uint32_t)(rest - l->text);
			l->text = (char *)rest;
			item = parse_node(p);
		}
		if (item == NULL || node_add(p, y, NULL, item, l->no) < 0)
			goto fail;
		if (p->pos < p->n && p->lines[p->pos].indent > ind) {
			bad_indent(p);
			goto fail;
		}
	}
	return y;
fail:
	k8s_yaml_free(y);
	return NULL;
}

static struct k8s_yaml *
parse_map(struct yparser *p, uint32_t ind)
{
	struct k8s_yaml *y = node_new(p, K8S_YAML_MAP, p->lines[p->pos].no);

	if (y == NULL)
		return NULL;
	while (p->pos < p->n && p->lines[p->pos].indent == ind) {
		const struct yline *l = &p->lines[p->pos];
		uint32_t no = l->no;
		struct k8s_yaml *val;
		const char *rest;
		char *key;
		long colon;

		if (is_seq_entry(l->text)) {
			yerr(p, no, "a sequence entry where a key was expected");
			goto fail;
		}
		if (strncmp(l->text, "? ", 2) == 0 || strcmp(l->text, "?") == 0) {
			yerr(p, no, "complex keys (?) are not supported");
			goto fail;
		}
		colon = key_colon(l->text);
		if (colon < 0) {
			yerr(p, no, "expected \"key: value\"");
			goto fail;
		}
		key = key_text(p, no, l->text, colon);
		if (key == NULL)
			goto fail;
		rest = skip_blank(l->text + colon + 1);
		p->pos++;
		if (*rest != '\0')
			val = parse_inline(p, no, rest);
		else if (p->pos < p->n && p->lines[p->pos].indent > ind)
			val = parse_node(p);
		else if (p->pos < p->n && p->lines[p->pos].indent == ind &&
			 is_seq_entry(p->lines[p->pos].text))
			val = parse_seq(p, ind);	/* kubectl's "key:\n- item" */
		else
			val = node_new(p, K8S_YAML_NULL, no);
		if (val == NULL) {
			free(key);
			goto fail;
		}
		/* Errors about a value name its key's line. */
		val->line = no;
		if (node_add(p, y, key, val, no) < 0)
			goto fail;
		if (p->pos < p->n && p->lines[p->pos].indent > ind) {
			bad_indent(p);
			goto fail;
		}
	}
	return y;
fail:
	k8s_yaml_free(y);
	return NULL;
}

static struct k8s_yaml *
parse_node(struct yparser *p)
{
	const struct yline *l = &p->lines[p->pos];
	struct k8s_yaml *y;

	if (++p->depth > DEPTH_MAX)
		return yerr(p, l->no, "nested deeper than %d", DEPTH_MAX);
	if (is_seq_entry(l->text)) {
		y = parse_seq(p, l->indent);
	} else if (strncmp(l->text, "? ", 2) == 0) {
		y = yerr(p, l->no, "complex keys (?) are not supported");
	} else if (key_colon(l->text) >= 0) {
		y = parse_map(p, l->indent);
	} else {
		uint32_t ind = l->indent;

		y = parse_inline(p, l->no, l->text);
		p->pos++;
		if (y != NULL && p->pos < p->n && p->lines[p->pos].indent > ind) {
			k8s_yaml_free(y);
			y = yerr(p, p->lines[p->pos].no, "bad indentation (a scalar over several "
				 "lines? write it on one)");
		}
	}
	p->depth--;
	return y;
}

struct k8s_yaml *
k8s_yaml_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
	struct yparser p = { .name = name != NULL ? name : "yaml", .err = err,
			     .errlen = errlen };
	struct k8s_yaml *root = NULL;
	char *copy;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (memchr(text, '\0', len) != NULL) {
		uint32_t no = 1;

		for (const char *s = text; *s != '\0'; s++)
			no += *s == '\n';
		yerr(&p, no, "contains a NUL byte");
		errno = EINVAL;
		return NULL;
	}
	copy = strndup(text, len);
	if (copy == NULL) {
		ynomem(&p);
		errno = ENOMEM;
		return NULL;
	}
	if (split_lines(&p, copy) == 0) {
		if (p.n == 0)
			root = node_new(&p, K8S_YAML_NULL, 1);
		else
			root = parse_node(&p);
		if (root != NULL && p.pos < p.n) {
			k8s_yaml_free(root);
			root = bad_indent(&p);
		}
	}
	free(p.lines);
	free(copy);
	if (root == NULL)
		errno = p.rc == -ENOMEM ? ENOMEM : EINVAL;
	return root;
}
