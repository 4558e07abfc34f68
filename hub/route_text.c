/* Text as edgeHub's .NET runtime sees it, for the route language: strings
 * are sequences of UTF-16 code units (lengths, indexes and the ordinal order
 * count units), letters change case by Unicode's simple mappings as .NET's
 * invariant casing does, and "ignore case" compares those mappings.
 *
 * Strings are kept as UTF-8. A lone surrogate (which .NET strings can hold,
 * from a "\ud800" escape or a substring that splits a pair) is kept as its
 * 3-byte form (ED A0..BF xx); a high one followed by a low one is always
 * joined into the 4-byte form, so equal strings have equal bytes. A byte
 * that starts no valid sequence reads as U+FFFD. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "hub/route_internal.h"

/* ---- decoding ---- */

size_t route_cp_next(const char *str, size_t n, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	*cp = 0xFFFD;
	if (!n)
		return 0;
	unsigned char b = s[0];
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	size_t len;
	uint32_t v;
	unsigned char lo = 0x80, hi = 0xBF;
	if (b >= 0xC2 && b <= 0xDF) {
		len = 2, v = b & 0x1F;
	} else if (b >= 0xE0 && b <= 0xEF) {
		len = 3, v = b & 0x0F;
		if (b == 0xE0)
			lo = 0xA0;
	} else if (b >= 0xF0 && b <= 0xF4) {
		len = 4, v = b & 0x07;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;
	} else {
		return 1;
	}
	if (n < len)
		return 1;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = s[i];
		if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xBF))
			return 1;
		v = v << 6 | (c & 0x3F);
	}
	*cp = v;
	return len;
}

size_t route_utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

bool route_is_high_surrogate(uint32_t u)
{
	return u >= 0xD800 && u < 0xDC00;
}

bool route_is_low_surrogate(uint32_t u)
{
	return u >= 0xDC00 && u < 0xE000;
}

/* Plain text (valid UTF-8 without surrogates) needs none of the unit-wise
 * paths: byte order, byte search and code points agree with UTF-16 there,
 * except for the order of U+E000..U+FFFF against U+10000 and above. */
bool route_text_plain(const char *s, size_t n)
{
	size_t i = route_ascii_prefix(s, n);
	while (i < n) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		uint32_t cp;
		size_t k = route_cp_next(s + i, n - i, &cp);
		if (cp == 0xFFFD && k == 1)
			return false;
		if (cp >= 0xD800 && cp < 0xE000)
			return false;
		i += k;
	}
	return true;
}

size_t route_ascii_prefix(const char *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080ull)
			break;
	}
	while (i < n && (unsigned char)s[i] < 0x80)
		i++;
	return i;
}

void route_units_init(struct route_units *it, const char *s, size_t n)
{
	it->s = s;
	it->n = n;
	it->pos = 0;
	it->pending = 0;
}

/* The next UTF-16 code unit, or -1 at the end. */
int32_t route_units_next(struct route_units *it)
{
	if (it->pending) {
		int32_t u = (int32_t)it->pending;
		it->pending = 0;
		return u;
	}
	if (it->pos >= it->n)
		return -1;
	uint32_t cp;
	it->pos += route_cp_next(it->s + it->pos, it->n - it->pos, &cp);
	if (cp < 0x10000)
		return (int32_t)cp;
	it->pending = 0xDC00 + ((cp - 0x10000) & 0x3FF);
	return (int32_t)(0xD800 + ((cp - 0x10000) >> 10));
}

size_t route_utf16_len(const char *s, size_t n)
{
	size_t units = 0;
	for (size_t i = 0; i < n;) {
		if ((unsigned char)s[i] < 0x80) {
			units++, i++;
			continue;
		}
		uint32_t cp;
		i += route_cp_next(s + i, n - i, &cp);
		units += cp >= 0x10000 ? 2 : 1;
	}
	return units;
}

/* string.Compare(a, b, StringComparison.Ordinal): code unit by code unit,
 * from the code point where the bytes first differ. */
int route_text_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, n = an < bn ? an : bn;
	while (i < n && a[i] == b[i])
		i++;
	if (i == n && an == bn)
		return 0;
	/* Every byte that is not a continuation byte starts a code point. */
	while (i && ((i < an && ((unsigned char)a[i] & 0xC0) == 0x80) ||
		     (i < bn && ((unsigned char)b[i] & 0xC0) == 0x80)))
		i--;
	struct route_units x, y;
	route_units_init(&x, a + i, an - i);
	route_units_init(&y, b + i, bn - i);
	for (;;) {
		int32_t u = route_units_next(&x), v = route_units_next(&y);
		if (u != v)
			return u < v ? -1 : 1;
		if (u < 0)
			return 0;
	}
}

/* ---- case ---- */

/* Code points first, first + stride, ... up to last map to cp + delta.
 * Generated from Unicode 15.0 (.NET 8's version) by tests/unit/gen_route_case.c. */
struct case_run {
	uint32_t first, last;
	int32_t delta;
	uint32_t stride;
};

static const struct case_run upper_runs[] = {
    {0x00061, 0x0007A, -32, 1},	   {0x000B5, 0x000B5, 743, 1},	  {0x000E0, 0x000F6, -32, 1},
    {0x000F8, 0x000FE, -32, 1},	   {0x000FF, 0x000FF, 121, 1},	  {0x00101, 0x0012F, -1, 2},
    {0x00133, 0x00137, -1, 2},	   {0x0013A, 0x00148, -1, 2},	  {0x0014B, 0x00177, -1, 2},
    {0x0017A, 0x0017E, -1, 2},	   {0x00180, 0x00180, 195, 1},	  {0x00183, 0x00185, -1, 2},
    {0x00188, 0x00188, -1, 1},	   {0x0018C, 0x0018C, -1, 1},	  {0x00192, 0x00192, -1, 1},
    {0x00195, 0x00195, 97, 1},	   {0x00199, 0x00199, -1, 1},	  {0x0019A, 0x0019A, 163, 1},
    {0x0019E, 0x0019E, 130, 1},	   {0x001A1, 0x001A5, -1, 2},	  {0x001A8, 0x001A8, -1, 1},
    {0x001AD, 0x001AD, -1, 1},	   {0x001B0, 0x001B0, -1, 1},	  {0x001B4, 0x001B6, -1, 2},
    {0x001B9, 0x001B9, -1, 1},	   {0x001BD, 0x001BD, -1, 1},	  {0x001BF, 0x001BF, 56, 1},
    {0x001C5, 0x001C5, -1, 1},	   {0x001C6, 0x001C6, -2, 1},	  {0x001C8, 0x001C8, -1, 1},
    {0x001C9, 0x001C9, -2, 1},	   {0x001CB, 0x001CB, -1, 1},	  {0x001CC, 0x001CC, -2, 1},
    {0x001CE, 0x001DC, -1, 2},	   {0x001DD, 0x001DD, -79, 1},	  {0x001DF, 0x001EF, -1, 2},
    {0x001F2, 0x001F2, -1, 1},	   {0x001F3, 0x001F3, -2, 1},	  {0x001F5, 0x001F5, -1, 1},
    {0x001F9, 0x0021F, -1, 2},	   {0x00223, 0x00233, -1, 2},	  {0x0023C, 0x0023C, -1, 1},
    {0x0023F, 0x00240, 10815, 1},  {0x00242, 0x00242, -1, 1},	  {0x00247, 0x0024F, -1, 2},
    {0x00250, 0x00250, 10783, 1},  {0x00251, 0x00251, 10780, 1},  {0x00252, 0x00252, 10782, 1},
    {0x00253, 0x00253, -210, 1},   {0x00254, 0x00254, -206, 1},	  {0x00256, 0x00257, -205, 1},
    {0x00259, 0x00259, -202, 1},   {0x0025B, 0x0025B, -203, 1},	  {0x0025C, 0x0025C, 42319, 1},
    {0x00260, 0x00260, -205, 1},   {0x00261, 0x00261, 42315, 1},  {0x00263, 0x00263, -207, 1},
    {0x00265, 0x00265, 42280, 1},  {0x00266, 0x00266, 42308, 1},  {0x00268, 0x00268, -209, 1},
    {0x00269, 0x00269, -211, 1},   {0x0026A, 0x0026A, 42308, 1},  {0x0026B, 0x0026B, 10743, 1},
    {0x0026C, 0x0026C, 42305, 1},  {0x0026F, 0x0026F, -211, 1},	  {0x00271, 0x00271, 10749, 1},
    {0x00272, 0x00272, -213, 1},   {0x00275, 0x00275, -214, 1},	  {0x0027D, 0x0027D, 10727, 1},
    {0x00280, 0x00280, -218, 1},   {0x00282, 0x00282, 42307, 1},  {0x00283, 0x00283, -218, 1},
    {0x00287, 0x00287, 42282, 1},  {0x00288, 0x00288, -218, 1},	  {0x00289, 0x00289, -69, 1},
    {0x0028A, 0x0028B, -217, 1},   {0x0028C, 0x0028C, -71, 1},	  {0x00292, 0x00292, -219, 1},
    {0x0029D, 0x0029D, 42261, 1},  {0x0029E, 0x0029E, 42258, 1},  {0x00345, 0x00345, 84, 1},
    {0x00371, 0x00373, -1, 2},	   {0x00377, 0x00377, -1, 1},	  {0x0037B, 0x0037D, 130, 1},
    {0x003AC, 0x003AC, -38, 1},	   {0x003AD, 0x003AF, -37, 1},	  {0x003B1, 0x003C1, -32, 1},
    {0x003C2, 0x003C2, -31, 1},	   {0x003C3, 0x003CB, -32, 1},	  {0x003CC, 0x003CC, -64, 1},
    {0x003CD, 0x003CE, -63, 1},	   {0x003D0, 0x003D0, -62, 1},	  {0x003D1, 0x003D1, -57, 1},
    {0x003D5, 0x003D5, -47, 1},	   {0x003D6, 0x003D6, -54, 1},	  {0x003D7, 0x003D7, -8, 1},
    {0x003D9, 0x003EF, -1, 2},	   {0x003F0, 0x003F0, -86, 1},	  {0x003F1, 0x003F1, -80, 1},
    {0x003F2, 0x003F2, 7, 1},	   {0x003F3, 0x003F3, -116, 1},	  {0x003F5, 0x003F5, -96, 1},
    {0x003F8, 0x003F8, -1, 1},	   {0x003FB, 0x003FB, -1, 1},	  {0x00430, 0x0044F, -32, 1},
    {0x00450, 0x0045F, -80, 1},	   {0x00461, 0x00481, -1, 2},	  {0x0048B, 0x004BF, -1, 2},
    {0x004C2, 0x004CE, -1, 2},	   {0x004CF, 0x004CF, -15, 1},	  {0x004D1, 0x0052F, -1, 2},
    {0x00561, 0x00586, -48, 1},	   {0x010D0, 0x010FA, 3008, 1},	  {0x010FD, 0x010FF, 3008, 1},
    {0x013F8, 0x013FD, -8, 1},	   {0x01C80, 0x01C80, -6254, 1},  {0x01C81, 0x01C81, -6253, 1},
    {0x01C82, 0x01C82, -6244, 1},  {0x01C83, 0x01C84, -6242, 1},  {0x01C85, 0x01C85, -6243, 1},
    {0x01C86, 0x01C86, -6236, 1},  {0x01C87, 0x01C87, -6181, 1},  {0x01C88, 0x01C88, 35266, 1},
    {0x01D79, 0x01D79, 35332, 1},  {0x01D7D, 0x01D7D, 3814, 1},	  {0x01D8E, 0x01D8E, 35384, 1},
    {0x01E01, 0x01E95, -1, 2},	   {0x01E9B, 0x01E9B, -59, 1},	  {0x01EA1, 0x01EFF, -1, 2},
    {0x01F00, 0x01F07, 8, 1},	   {0x01F10, 0x01F15, 8, 1},	  {0x01F20, 0x01F27, 8, 1},
    {0x01F30, 0x01F37, 8, 1},	   {0x01F40, 0x01F45, 8, 1},	  {0x01F51, 0x01F57, 8, 2},
    {0x01F60, 0x01F67, 8, 1},	   {0x01F70, 0x01F71, 74, 1},	  {0x01F72, 0x01F75, 86, 1},
    {0x01F76, 0x01F77, 100, 1},	   {0x01F78, 0x01F79, 128, 1},	  {0x01F7A, 0x01F7B, 112, 1},
    {0x01F7C, 0x01F7D, 126, 1},	   {0x01F80, 0x01F87, 8, 1},	  {0x01F90, 0x01F97, 8, 1},
    {0x01FA0, 0x01FA7, 8, 1},	   {0x01FB0, 0x01FB1, 8, 1},	  {0x01FB3, 0x01FB3, 9, 1},
    {0x01FBE, 0x01FBE, -7205, 1},  {0x01FC3, 0x01FC3, 9, 1},	  {0x01FD0, 0x01FD1, 8, 1},
    {0x01FE0, 0x01FE1, 8, 1},	   {0x01FE5, 0x01FE5, 7, 1},	  {0x01FF3, 0x01FF3, 9, 1},
    {0x0214E, 0x0214E, -28, 1},	   {0x02170, 0x0217F, -16, 1},	  {0x02184, 0x02184, -1, 1},
    {0x024D0, 0x024E9, -26, 1},	   {0x02C30, 0x02C5F, -48, 1},	  {0x02C61, 0x02C61, -1, 1},
    {0x02C65, 0x02C65, -10795, 1}, {0x02C66, 0x02C66, -10792, 1}, {0x02C68, 0x02C6C, -1, 2},
    {0x02C73, 0x02C73, -1, 1},	   {0x02C76, 0x02C76, -1, 1},	  {0x02C81, 0x02CE3, -1, 2},
    {0x02CEC, 0x02CEE, -1, 2},	   {0x02CF3, 0x02CF3, -1, 1},	  {0x02D00, 0x02D25, -7264, 1},
    {0x02D27, 0x02D27, -7264, 1},  {0x02D2D, 0x02D2D, -7264, 1},  {0x0A641, 0x0A66D, -1, 2},
    {0x0A681, 0x0A69B, -1, 2},	   {0x0A723, 0x0A72F, -1, 2},	  {0x0A733, 0x0A76F, -1, 2},
    {0x0A77A, 0x0A77C, -1, 2},	   {0x0A77F, 0x0A787, -1, 2},	  {0x0A78C, 0x0A78C, -1, 1},
    {0x0A791, 0x0A793, -1, 2},	   {0x0A794, 0x0A794, 48, 1},	  {0x0A797, 0x0A7A9, -1, 2},
    {0x0A7B5, 0x0A7C3, -1, 2},	   {0x0A7C8, 0x0A7CA, -1, 2},	  {0x0A7D1, 0x0A7D1, -1, 1},
    {0x0A7D7, 0x0A7D9, -1, 2},	   {0x0A7F6, 0x0A7F6, -1, 1},	  {0x0AB53, 0x0AB53, -928, 1},
    {0x0AB70, 0x0ABBF, -38864, 1}, {0x0FF41, 0x0FF5A, -32, 1},	  {0x10428, 0x1044F, -40, 1},
    {0x104D8, 0x104FB, -40, 1},	   {0x10597, 0x105A1, -39, 1},	  {0x105A3, 0x105B1, -39, 1},
    {0x105B3, 0x105B9, -39, 1},	   {0x105BB, 0x105BC, -39, 1},	  {0x10CC0, 0x10CF2, -64, 1},
    {0x118C0, 0x118DF, -32, 1},	   {0x16E60, 0x16E7F, -32, 1},	  {0x1E922, 0x1E943, -34, 1},
};
static const struct case_run lower_runs[] = {
    {0x00041, 0x0005A, 32, 1},	   {0x000C0, 0x000D6, 32, 1},	  {0x000D8, 0x000DE, 32, 1},
    {0x00100, 0x0012E, 1, 2},	   {0x00132, 0x00136, 1, 2},	  {0x00139, 0x00147, 1, 2},
    {0x0014A, 0x00176, 1, 2},	   {0x00178, 0x00178, -121, 1},	  {0x00179, 0x0017D, 1, 2},
    {0x00181, 0x00181, 210, 1},	   {0x00182, 0x00184, 1, 2},	  {0x00186, 0x00186, 206, 1},
    {0x00187, 0x00187, 1, 1},	   {0x00189, 0x0018A, 205, 1},	  {0x0018B, 0x0018B, 1, 1},
    {0x0018E, 0x0018E, 79, 1},	   {0x0018F, 0x0018F, 202, 1},	  {0x00190, 0x00190, 203, 1},
    {0x00191, 0x00191, 1, 1},	   {0x00193, 0x00193, 205, 1},	  {0x00194, 0x00194, 207, 1},
    {0x00196, 0x00196, 211, 1},	   {0x00197, 0x00197, 209, 1},	  {0x00198, 0x00198, 1, 1},
    {0x0019C, 0x0019C, 211, 1},	   {0x0019D, 0x0019D, 213, 1},	  {0x0019F, 0x0019F, 214, 1},
    {0x001A0, 0x001A4, 1, 2},	   {0x001A6, 0x001A6, 218, 1},	  {0x001A7, 0x001A7, 1, 1},
    {0x001A9, 0x001A9, 218, 1},	   {0x001AC, 0x001AC, 1, 1},	  {0x001AE, 0x001AE, 218, 1},
    {0x001AF, 0x001AF, 1, 1},	   {0x001B1, 0x001B2, 217, 1},	  {0x001B3, 0x001B5, 1, 2},
    {0x001B7, 0x001B7, 219, 1},	   {0x001B8, 0x001B8, 1, 1},	  {0x001BC, 0x001BC, 1, 1},
    {0x001C4, 0x001C4, 2, 1},	   {0x001C5, 0x001C5, 1, 1},	  {0x001C7, 0x001C7, 2, 1},
    {0x001C8, 0x001C8, 1, 1},	   {0x001CA, 0x001CA, 2, 1},	  {0x001CB, 0x001DB, 1, 2},
    {0x001DE, 0x001EE, 1, 2},	   {0x001F1, 0x001F1, 2, 1},	  {0x001F2, 0x001F4, 1, 2},
    {0x001F6, 0x001F6, -97, 1},	   {0x001F7, 0x001F7, -56, 1},	  {0x001F8, 0x0021E, 1, 2},
    {0x00220, 0x00220, -130, 1},   {0x00222, 0x00232, 1, 2},	  {0x0023A, 0x0023A, 10795, 1},
    {0x0023B, 0x0023B, 1, 1},	   {0x0023D, 0x0023D, -163, 1},	  {0x0023E, 0x0023E, 10792, 1},
    {0x00241, 0x00241, 1, 1},	   {0x00243, 0x00243, -195, 1},	  {0x00244, 0x00244, 69, 1},
    {0x00245, 0x00245, 71, 1},	   {0x00246, 0x0024E, 1, 2},	  {0x00370, 0x00372, 1, 2},
    {0x00376, 0x00376, 1, 1},	   {0x0037F, 0x0037F, 116, 1},	  {0x00386, 0x00386, 38, 1},
    {0x00388, 0x0038A, 37, 1},	   {0x0038C, 0x0038C, 64, 1},	  {0x0038E, 0x0038F, 63, 1},
    {0x00391, 0x003A1, 32, 1},	   {0x003A3, 0x003AB, 32, 1},	  {0x003CF, 0x003CF, 8, 1},
    {0x003D8, 0x003EE, 1, 2},	   {0x003F4, 0x003F4, -60, 1},	  {0x003F7, 0x003F7, 1, 1},
    {0x003F9, 0x003F9, -7, 1},	   {0x003FA, 0x003FA, 1, 1},	  {0x003FD, 0x003FF, -130, 1},
    {0x00400, 0x0040F, 80, 1},	   {0x00410, 0x0042F, 32, 1},	  {0x00460, 0x00480, 1, 2},
    {0x0048A, 0x004BE, 1, 2},	   {0x004C0, 0x004C0, 15, 1},	  {0x004C1, 0x004CD, 1, 2},
    {0x004D0, 0x0052E, 1, 2},	   {0x00531, 0x00556, 48, 1},	  {0x010A0, 0x010C5, 7264, 1},
    {0x010C7, 0x010C7, 7264, 1},   {0x010CD, 0x010CD, 7264, 1},	  {0x013A0, 0x013EF, 38864, 1},
    {0x013F0, 0x013F5, 8, 1},	   {0x01C90, 0x01CBA, -3008, 1},  {0x01CBD, 0x01CBF, -3008, 1},
    {0x01E00, 0x01E94, 1, 2},	   {0x01E9E, 0x01E9E, -7615, 1},  {0x01EA0, 0x01EFE, 1, 2},
    {0x01F08, 0x01F0F, -8, 1},	   {0x01F18, 0x01F1D, -8, 1},	  {0x01F28, 0x01F2F, -8, 1},
    {0x01F38, 0x01F3F, -8, 1},	   {0x01F48, 0x01F4D, -8, 1},	  {0x01F59, 0x01F5F, -8, 2},
    {0x01F68, 0x01F6F, -8, 1},	   {0x01F88, 0x01F8F, -8, 1},	  {0x01F98, 0x01F9F, -8, 1},
    {0x01FA8, 0x01FAF, -8, 1},	   {0x01FB8, 0x01FB9, -8, 1},	  {0x01FBA, 0x01FBB, -74, 1},
    {0x01FBC, 0x01FBC, -9, 1},	   {0x01FC8, 0x01FCB, -86, 1},	  {0x01FCC, 0x01FCC, -9, 1},
    {0x01FD8, 0x01FD9, -8, 1},	   {0x01FDA, 0x01FDB, -100, 1},	  {0x01FE8, 0x01FE9, -8, 1},
    {0x01FEA, 0x01FEB, -112, 1},   {0x01FEC, 0x01FEC, -7, 1},	  {0x01FF8, 0x01FF9, -128, 1},
    {0x01FFA, 0x01FFB, -126, 1},   {0x01FFC, 0x01FFC, -9, 1},	  {0x02126, 0x02126, -7517, 1},
    {0x0212A, 0x0212A, -8383, 1},  {0x0212B, 0x0212B, -8262, 1},  {0x02132, 0x02132, 28, 1},
    {0x02160, 0x0216F, 16, 1},	   {0x02183, 0x02183, 1, 1},	  {0x024B6, 0x024CF, 26, 1},
    {0x02C00, 0x02C2F, 48, 1},	   {0x02C60, 0x02C60, 1, 1},	  {0x02C62, 0x02C62, -10743, 1},
    {0x02C63, 0x02C63, -3814, 1},  {0x02C64, 0x02C64, -10727, 1}, {0x02C67, 0x02C6B, 1, 2},
    {0x02C6D, 0x02C6D, -10780, 1}, {0x02C6E, 0x02C6E, -10749, 1}, {0x02C6F, 0x02C6F, -10783, 1},
    {0x02C70, 0x02C70, -10782, 1}, {0x02C72, 0x02C72, 1, 1},	  {0x02C75, 0x02C75, 1, 1},
    {0x02C7E, 0x02C7F, -10815, 1}, {0x02C80, 0x02CE2, 1, 2},	  {0x02CEB, 0x02CED, 1, 2},
    {0x02CF2, 0x02CF2, 1, 1},	   {0x0A640, 0x0A66C, 1, 2},	  {0x0A680, 0x0A69A, 1, 2},
    {0x0A722, 0x0A72E, 1, 2},	   {0x0A732, 0x0A76E, 1, 2},	  {0x0A779, 0x0A77B, 1, 2},
    {0x0A77D, 0x0A77D, -35332, 1}, {0x0A77E, 0x0A786, 1, 2},	  {0x0A78B, 0x0A78B, 1, 1},
    {0x0A78D, 0x0A78D, -42280, 1}, {0x0A790, 0x0A792, 1, 2},	  {0x0A796, 0x0A7A8, 1, 2},
    {0x0A7AA, 0x0A7AA, -42308, 1}, {0x0A7AB, 0x0A7AB, -42319, 1}, {0x0A7AC, 0x0A7AC, -42315, 1},
    {0x0A7AD, 0x0A7AD, -42305, 1}, {0x0A7AE, 0x0A7AE, -42308, 1}, {0x0A7B0, 0x0A7B0, -42258, 1},
    {0x0A7B1, 0x0A7B1, -42282, 1}, {0x0A7B2, 0x0A7B2, -42261, 1}, {0x0A7B3, 0x0A7B3, 928, 1},
    {0x0A7B4, 0x0A7C2, 1, 2},	   {0x0A7C4, 0x0A7C4, -48, 1},	  {0x0A7C5, 0x0A7C5, -42307, 1},
    {0x0A7C6, 0x0A7C6, -35384, 1}, {0x0A7C7, 0x0A7C9, 1, 2},	  {0x0A7D0, 0x0A7D0, 1, 1},
    {0x0A7D6, 0x0A7D8, 1, 2},	   {0x0A7F5, 0x0A7F5, 1, 1},	  {0x0FF21, 0x0FF3A, 32, 1},
    {0x10400, 0x10427, 40, 1},	   {0x104B0, 0x104D3, 40, 1},	  {0x10570, 0x1057A, 39, 1},
    {0x1057C, 0x1058A, 39, 1},	   {0x1058C, 0x10592, 39, 1},	  {0x10594, 0x10595, 39, 1},
    {0x10C80, 0x10CB2, 64, 1},	   {0x118A0, 0x118BF, 32, 1},	  {0x16E40, 0x16E5F, 32, 1},
    {0x1E900, 0x1E921, 34, 1},
};

static uint32_t case_map(const struct case_run *runs, size_t n, uint32_t cp)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp > runs[mid].last)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n || cp < runs[lo].first || (cp - runs[lo].first) % runs[lo].stride)
		return cp;
	return (uint32_t)((int32_t)cp + runs[lo].delta);
}

uint32_t route_upper(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
	return case_map(upper_runs, ARRAY_SIZE(upper_runs), cp);
}

uint32_t route_lower(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	return case_map(lower_runs, ARRAY_SIZE(lower_runs), cp);
}

/* The longest common prefix of a and b under StringComparison.OrdinalIgnoreCase,
 * as bytes of each: code points compare by their simple uppercase mapping. */
void route_text_common_nocase(const char *a, size_t an, const char *b, size_t bn, size_t *ai,
			      size_t *bi)
{
	size_t i = 0, j = 0;
	while (i < an && j < bn) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[j];
		if (x < 0x80 && y < 0x80) {
			if (x != y &&
			    ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z'))
				break;
			i++, j++;
			continue;
		}
		uint32_t u, v;
		size_t k = route_cp_next(a + i, an - i, &u), l = route_cp_next(b + j, bn - j, &v);
		if (u != v && route_upper(u) != route_upper(v))
			break;
		i += k, j += l;
	}
	*ai = i;
	*bi = j;
}

bool route_text_eq_nocase(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i, j;
	route_text_common_nocase(a, an, b, bn, &i, &j);
	return i == an && j == bn;
}

/* ---- blanks ---- */

/* char.IsWhiteSpace: what .NET's string.Trim() removes. */
bool route_dotnet_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* string.Trim(): *s and *n shrink past blanks at both ends. */
void route_dotnet_trim(const char **s, size_t *n)
{
	uint32_t cp;
	size_t k;
	while (*n && (k = route_cp_next(*s, *n, &cp)) && route_dotnet_space(cp))
		*s += k, *n -= k;
	while (*n) {
		size_t start = *n - 1;
		while (start && ((unsigned char)(*s)[start] & 0xC0) == 0x80 && *n - start < 4)
			start--;
		k = route_cp_next(*s + start, *n - start, &cp);
		if (start + k != *n || !route_dotnet_space(cp))
			break;
		*n = start;
	}
}

/* ---- numbers ---- */

/* An integer as .NET's Convert.ToInt32 or Newtonsoft's Int64TryParse reads
 * it here: -?[0-9]+ within [min, max]. */
bool route_int_text(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
	bool neg = n && s[0] == '-';
	if (neg)
		s++, n--;
	if (!n || n > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)((unsigned char)s[i] - '0');
		if (d > 9)
			return false;
		v = v * 10 + d;
	}
	if (neg ? v > (uint64_t) - (min + 1) + 1 : v > (uint64_t)max)
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

#define SIG_DIGITS 780 /* enough for a correctly rounded double */

static bool dotnet_white(char c)
{
	return c == ' ' || (c >= 0x09 && c <= 0x0D);
}

static bool currency_at(const char *s, size_t n, size_t i)
{
	return i + 1 < n && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xA4;
}

/* double.TryParse(s, NumberStyles.Any, CultureInfo.InvariantCulture): blanks
 * around, a sign in front or behind or parentheses, one currency sign
 * (U+00A4), ',' between integer digits, '.', an exponent; NUL characters may
 * follow. "Infinity", "-Infinity" and "NaN" (any case, trimmed) are read too.
 * The digits are rounded once, correctly. */
bool route_parse_number(const char *s, size_t n, double *out)
{
	/* The common case, a plain decimal number, is what strtod reads the
	 * same way (and rounds correctly too). */
	char plain[64];
	if (n && n < sizeof(plain)) {
		memcpy(plain, s, n);
		plain[n] = '\0';
		char *end;
		double d = strtod(plain, &end);
		if (strspn(plain, "0123456789.eE+-") == n && end == plain + n) {
			*out = d;
			return true;
		}
	}
	enum { SIGN = 1, PARENS = 2, DIGITS = 4, NONZERO = 8, DECIMAL = 16, CURRENCY = 32 };
	char digits[SIG_DIGITS + 2];
	size_t nd = 0, i = 0;
	long scale = 0;
	int state = 0;
	bool neg = false, currency = true, tail = false;
	for (; i < n; i++) {
		char c = s[i];
		if (dotnet_white(c) && !((state & SIGN) && !(state & CURRENCY)))
			continue;
		if (!(state & SIGN) && (c == '+' || c == '-')) {
			state |= SIGN;
			neg = c == '-';
		} else if (c == '(' && !(state & SIGN)) {
			state |= SIGN | PARENS;
			neg = true;
		} else if (currency && currency_at(s, n, i)) {
			state |= CURRENCY;
			currency = false;
			i++;
		} else {
			break;
		}
	}
	for (; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			state |= DIGITS;
			if (c != '0' || (state & NONZERO)) {
				if (nd < SIG_DIGITS)
					digits[nd++] = c;
				else if (c != '0')
					tail = true;
				if (!(state & DECIMAL))
					scale++;
				state |= NONZERO;
			} else if (state & DECIMAL) {
				scale--;
			}
		} else if (c == '.' && !(state & DECIMAL)) {
			state |= DECIMAL;
		} else if (c == ',' && (state & DIGITS) && !(state & DECIMAL)) {
			continue;
		} else {
			break;
		}
	}
	if (state & DIGITS) {
		if (i < n && (s[i] == 'e' || s[i] == 'E')) {
			size_t j = i + 1;
			bool eneg = false;
			if (j < n && (s[j] == '+' || s[j] == '-'))
				eneg = s[j++] == '-';
			if (j < n && s[j] >= '0' && s[j] <= '9') {
				long e = 0;
				for (; j < n && s[j] >= '0' && s[j] <= '9'; j++)
					if (e <= 1000)
						e = e * 10 + (s[j] - '0');
				if (e > 1000)
					e = 9999;
				scale += eneg ? -e : e;
				i = j;
			}
		}
		for (; i < n; i++) {
			char c = s[i];
			if (dotnet_white(c))
				continue;
			if (!(state & SIGN) && (c == '+' || c == '-')) {
				state |= SIGN;
				neg = c == '-';
			} else if (c == ')' && (state & PARENS)) {
				state &= ~PARENS;
			} else if (currency && currency_at(s, n, i)) {
				currency = false;
				i++;
			} else {
				break;
			}
		}
	}
	while (i < n && s[i] == '\0')
		i++;
	if ((state & DIGITS) && !(state & PARENS) && i == n) {
		if (tail)
			digits[nd++] = '1';
		char buf[SIG_DIGITS + 32];
		int k = snprintf(buf, sizeof(buf), "%s0.%.*se%ld", neg ? "-" : "", (int)nd, digits,
				 nd ? scale : 0L);
		*out = k > 0 ? strtod(buf, NULL) : 0;
		return true;
	}
	/* Not a number: perhaps one of the invariant culture's symbols. */
	const char *t = s;
	size_t tn = n;
	route_dotnet_trim(&t, &tn);
	if (tn && (t[0] == '+' || t[0] == '-')) {
		bool minus = t[0] == '-';
		if (tn == 9 && strncasecmp(t + 1, "infinity", 8) == 0 && minus) {
			*out = -INFINITY;
			return true;
		}
		t++, tn--;
		if (tn == 8 && strncasecmp(t, "infinity", 8) == 0 && !minus) {
			*out = INFINITY;
			return true;
		}
	} else if (tn == 8 && strncasecmp(t, "infinity", 8) == 0) {
		*out = INFINITY;
		return true;
	}
	if (tn == 3 && strncasecmp(t, "nan", 3) == 0) {
		*out = NAN;
		return true;
	}
	return false;
}
