/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A second look at the integer literals of a configuration file.
 *
 * libconfig 1.5 (Debian 12) stores a decimal literal that does not fit an
 * int as its low 32 bits and a hexadecimal one through strtoul() into an
 * int, so "port = 4294967376;" reads as 80 and passes any range check.
 * This file finds the literals libconfig cut short: it follows the lexical
 * rules of the libconfig manual (comments, strings, names, and the longest
 * of the integer, 64-bit integer, hexadecimal and float forms), lists every
 * integer literal in file order, and pairs it with the integer settings of
 * the parsed tree, which libconfig builds in the same order. A setting whose
 * literal was cut short gets the literal's text as its hook; the range check
 * then reports that text as out of range.
 *
 * The same scan refuses two things libconfig 1.5 would take silently: a
 * string still open at the end of the file (libconfig drops it and all that
 * follows), and @include (the file must stand alone).
 *
 * Should the two counts ever differ (a lexing case missed here) nothing is
 * marked and values are taken as libconfig gives them, as without this file.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf_private.h"

/* Longest literal text kept for a message. */
#define LIT_TEXT_MAX 40

struct lit_list {
	char **wrapped;		/* per literal: its text if cut short, else NULL */
	size_t n;
	size_t cap;
};

static size_t
n_digits(const char *s)
{
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static size_t
exp_len(const char *s)
{
	size_t i = 1, d;

	if (*s != 'e' && *s != 'E')
		return 0;
	if (s[i] == '+' || s[i] == '-')
		i++;
	d = n_digits(s + i);
	return d != 0 ? i + d : 0;
}

/* [-+]?[0-9]*\.[0-9]*(exp)?  |  [-+]?[0-9]+(\.[0-9]*)?exp */
static size_t
float_len(const char *s)
{
	size_t i = (*s == '+' || *s == '-'), d = n_digits(s + i);

	i += d;
	if (s[i] == '.') {
		i++;
		i += n_digits(s + i);
		return i + exp_len(s + i);
	}
	return d != 0 && exp_len(s + i) != 0 ? i + exp_len(s + i) : 0;
}

/* [-+]?[0-9]+ */
static size_t
int_len(const char *s)
{
	size_t i = (*s == '+' || *s == '-'), d = n_digits(s + i);

	return d != 0 ? i + d : 0;
}

/* 0[Xx][0-9A-Fa-f]+ */
static size_t
hex_len(const char *s)
{
	size_t n = 2;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return 0;
	while (is_hex(s[n]))
		n++;
	return n > 2 ? n : 0;
}

/* The L or LL suffix of the 64-bit forms. */
static size_t
suffix_len(const char *s)
{
	return s[0] != 'L' ? 0 : s[1] == 'L' ? 2 : 1;
}

/* 1 if libconfig 1.5 does not store the literal's true value. */
static int
cut_short(const char *text, size_t len, int hex, int wide)
{
	char buf[LIT_TEXT_MAX + 8];
	char *end;

	if (len >= sizeof(buf))
		return 1;	/* more digits than any 64-bit value has */
	memcpy(buf, text, len);
	buf[len] = '\0';
	errno = 0;
	if (hex) {
		unsigned long long v = strtoull(buf, &end, 16);

		return errno == ERANGE || v > (wide ? (unsigned long long)INT64_MAX :
					       (unsigned long long)INT_MAX);
	} else {
		long long v = strtoll(buf, &end, 10);

		return errno == ERANGE || (!wide && (v < INT_MIN || v > INT_MAX));
	}
}

static int
lit_add(struct lit_list *l, const char *text, size_t len, int wrapped)
{
	char *t = NULL;

	if (l->n == l->cap) {
		size_t cap = l->cap != 0 ? l->cap * 2 : 64;
		char **w = realloc(l->wrapped, cap * sizeof(*w));

		if (w == NULL)
			return -ENOMEM;
		l->wrapped = w;
		l->cap = cap;
	}
	if (wrapped) {
		size_t keep = len > LIT_TEXT_MAX ? LIT_TEXT_MAX : len;

		t = malloc(keep + 4);
		if (t == NULL)
			return -ENOMEM;
		memcpy(t, text, keep);
		strcpy(t + keep, len > keep ? "..." : "");
	}
	l->wrapped[l->n++] = t;
	return 0;
}

static int
is_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*';
}

static int
is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* "@include" then blanks then a quote, first on its line: libconfig's form. */
static int
is_include(const char *p)
{
	size_t i = 8;

	if (strncmp(p, "@include", 8) != 0 || (p[i] != ' ' && p[i] != '\t'))
		return 0;
	while (p[i] == ' ' || p[i] == '\t')
		i++;
	return p[i] == '"';
}

static int
scan(struct conf_ctx *ctx, const char *p, struct lit_list *l)
{
	unsigned int line = 1;
	int bol = 1;	/* only blanks so far on this line */

	while (*p != '\0') {
		char c = *p;

		if (c == '\n') {
			line++;
			bol = 1;
			p++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
			p++;
			continue;
		}
		if (bol && c == '@' && is_include(p))
			return conf_err_line(ctx, line, "@include is not supported "
					     "(keep the whole configuration in one file)");
		bol = 0;
		if (c == '#' || (c == '/' && p[1] == '/')) {
			while (*p != '\0' && *p != '\n')
				p++;
		} else if (c == '/' && p[1] == '*') {
			for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
				line += *p == '\n';
			if (*p != '\0')
				p += 2;
		} else if (c == '"') {
			unsigned int start = line;

			/* Only \" and \\ can hide a quote; other escapes are harmless here. */
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				else
					line += *p == '\n';
			}
			/* libconfig 1.5 drops a string still open at the end of the file,
			 * and with it the rest of the file, without a word. */
			if (*p == '\0')
				return conf_err_line(ctx, start, "string not closed before the end "
						     "of the file");
			p++;
		} else if (is_name_start(c)) {
			while (is_name_char(*p))
				p++;
		} else if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
			size_t fl = float_len(p), il = int_len(p), hl = hex_len(p);
			size_t il64 = il != 0 ? il + suffix_len(p + il) : 0;
			size_t hl64 = hl != 0 ? hl + suffix_len(p + hl) : 0;
			size_t best = fl > il64 ? fl : il64;
			int rc;

			best = best > hl64 ? best : hl64;
			if (best == 0) {
				p++;	/* a lone sign or dot: a syntax error for libconfig */
				continue;
			}
			if (best == fl) {
				p += fl;
				continue;
			}
			if (hl64 == best)
				rc = lit_add(l, p, best, cut_short(p, hl, 1, hl64 > hl));
			else
				rc = lit_add(l, p, best, cut_short(p, il, 0, il64 > il));
			if (rc < 0)
				return conf_err_nomem(ctx);
			p += best;
		} else {
			p++;
		}
	}
	return 0;
}

static int
is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT ||
	       config_setting_type(s) == CONFIG_TYPE_INT64;
}

static void
count_ints(const config_setting_t *s, size_t *n)
{
	int len;

	if (is_int(s))
		(*n)++;
	if (!config_setting_is_aggregate(s))
		return;
	len = config_setting_length(s);
	for (int i = 0; i < len; i++)
		count_ints(config_setting_get_elem(s, (unsigned int)i), n);
}

static void
mark_ints(config_setting_t *s, char **wrapped, size_t *k)
{
	int len;

	if (is_int(s)) {
		if (wrapped[*k] != NULL)
			config_setting_set_hook(s, wrapped[*k]);
		(*k)++;
	}
	if (!config_setting_is_aggregate(s))
		return;
	len = config_setting_length(s);
	for (int i = 0; i < len; i++)
		mark_ints(config_setting_get_elem(s, (unsigned int)i), wrapped, k);
}

int
conf_lex_scan(struct conf_ctx *ctx, const char *text, char ***wrapped, size_t *n)
{
	struct lit_list l = { NULL, 0, 0 };
	int rc = scan(ctx, text, &l);

	if (rc < 0) {
		conf_lex_free(l.wrapped, l.n);
		*wrapped = NULL;
		*n = 0;
		return rc;
	}
	*wrapped = l.wrapped;
	*n = l.n;
	return 0;
}

void
conf_lex_mark(config_t *cfg, char **wrapped, size_t n)
{
	size_t n_settings = 0, k = 0;

	count_ints(config_root_setting(cfg), &n_settings);
	if (n_settings == n)
		mark_ints(config_root_setting(cfg), wrapped, &k);
}

void
conf_lex_free(char **texts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
}
