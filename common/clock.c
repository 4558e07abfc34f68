#include "common/clock.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t boot_ms(void)
{
	return clock_ms(CLOCK_BOOTTIME);
}

int64_t boot_from_wall(int64_t wall)
{
	if (!wall)
		return 0;
	int64_t boot = boot_ms(), age = wall_ms() - wall;
	if (age < 0)
		age = 0;
	if (age >= boot)
		age = boot - 1;
	return boot - age;
}

int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Digits and an optional fraction; the value times `unit` ns. */
static const char *number(const char *p, int64_t unit, int64_t *out)
{
	int64_t whole = 0, frac = 0, scale = 1;
	const char *start = p;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > INT64_MAX / 10 / unit)
			return NULL;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale < 1000000000LL) {
				frac = frac * 10 + (*p - '0');
				scale *= 10;
			}
	}
	if (p == start || (p == start + 1 && *start == '.'))
		return NULL;
	/* Units are whole multiples of the fraction's scale, or below it. */
	*out = whole * unit + (unit >= scale ? frac * (unit / scale) : frac * unit / scale);
	return p;
}

/* "1h30m", "10m", "42s", "1.5h", "250ms" (Go's time.ParseDuration units). */
static int duration_ns(const char *s, int64_t *out)
{
	/* Two-letter units first, so "ms" is not read as "m" then "s". */
	static const struct {
		const char *unit;
		int64_t ns;
	} units[] = {{"ns", 1},
		     {"us", 1000},
		     {"ms", 1000000},
		     {"h", 3600000000000LL},
		     {"m", 60000000000LL},
		     {"s", 1000000000LL}};
	int64_t total = 0;
	const char *p = s;
	if (!*p)
		return -1;
	while (*p) {
		const char *q = p;
		while ((*q >= '0' && *q <= '9') || *q == '.')
			q++;
		size_t i = 0, n = 0;
		for (; i < sizeof(units) / sizeof(units[0]); i++) {
			n = strlen(units[i].unit);
			if (!strncmp(q, units[i].unit, n))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -1;
		int64_t v;
		const char *end = number(p, units[i].ns, &v);
		if (!end || end != q || v > INT64_MAX - total)
			return -1;
		total += v;
		p = q + n;
	}
	*out = total;
	return 0;
}

static bool two(const char *p, int *out)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return false;
	*out = (p[0] - '0') * 10 + (p[1] - '0');
	return true;
}

/* RFC 3339 and its shorter forms: 2024-05-01, 2024-05-01T12:00,
 * 2024-05-01T12:00:00.5Z, 2024-05-01T12:00:00+02:00 (no zone: local time). */
static int rfc3339_ns(const char *s, int64_t *out)
{
	struct tm tm = {0};
	int y = 0, mo, d, h = 0, mi = 0, sec = 0;
	for (int i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		y = y * 10 + (s[i] - '0');
	}
	if (s[4] != '-' || !two(s + 5, &mo) || s[7] != '-' || !two(s + 8, &d))
		return -1;
	const char *p = s + 10;
	int64_t frac = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (!two(p + 1, &h) || p[3] != ':' || !two(p + 4, &mi))
			return -1;
		p += 6;
		if (*p == ':') {
			if (!two(p + 1, &sec))
				return -1;
			p += 3;
			if (*p == '.') {
				int64_t scale = 1000000000LL;
				for (p++; *p >= '0' && *p <= '9'; p++)
					if (scale > 1) {
						scale /= 10;
						frac += (*p - '0') * scale;
					}
			}
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t;
	if (*p == 'Z' || *p == 'z') {
		t = timegm(&tm);
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (!two(p + 1, &oh) || p[3] != ':' || !two(p + 4, &om))
			return -1;
		int off = (oh * 60 + om) * 60;
		t = timegm(&tm) - (*p == '+' ? off : -off);
		p += 6;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	if (*p)
		return -1;
	*out = (int64_t)t * 1000000000LL + frac;
	return 0;
}

int time_arg_parse(const char *s, int64_t now_ns, int64_t *out_ns)
{
	if (!s || strlen(s) > 64)
		return -1;
	int64_t v;
	if (duration_ns(s, &v) == 0) {
		*out_ns = now_ns - v;
		return 0;
	}
	/* Unix time in seconds, with a fraction. */
	const char *end =
	    strspn(s, "0123456789.") == strlen(s) ? number(s, 1000000000LL, &v) : NULL;
	if (end && !*end) {
		*out_ns = v;
		return 0;
	}
	return rfc3339_ns(s, out_ns);
}
