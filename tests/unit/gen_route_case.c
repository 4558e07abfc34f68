/* Writes the simple case mapping tables of hub/route_text.c from ICU, whose
 * Unicode version must be the one edgeHub's .NET runtime uses (15.0 for
 * .NET 8). .NET leaves U+0130, U+0131 and U+017F unmapped in its invariant
 * casing, so they are left out here too.
 *
 *   cc tests/unit/gen_route_case.c $(pkg-config --cflags --libs icu-uc) -o gen
 *   ./gen > table.inc */
#include <stdio.h>
#include <unicode/uchar.h>

static void table(const char *name, UChar32 (*map)(UChar32))
{
	UChar32 first = -1, last = -1;
	int delta = 0, stride = 0, n = 0;
	printf("static const struct case_run %s[] = {\n", name);
	for (UChar32 c = 0; c <= 0x110000; c++) {
		int d = 0;
		if (c <= 0x10FFFF && c != 0x130 && c != 0x131 && c != 0x17F)
			d = map(c) - c;
		if (!d)
			continue;
		if (first >= 0 && d == delta &&
		    ((stride == 0 && (c - last == 1 || c - last == 2)) || c - last == stride)) {
			if (!stride)
				stride = c - last;
			last = c;
			continue;
		}
		if (first >= 0) {
			printf("    {0x%05X, 0x%05X, %d, %d},\n", first, last, delta,
			       stride ? stride : 1);
			n++;
		}
		first = last = c;
		delta = d;
		stride = 0;
	}
	printf("    {0x%05X, 0x%05X, %d, %d},\n};\n", first, last, delta, stride ? stride : 1);
	fprintf(stderr, "%s: %d runs\n", name, n + 1);
}

int main(void)
{
	UVersionInfo v;
	u_getUnicodeVersion(v);
	printf("/* Unicode %d.%d simple case mappings */\n", v[0], v[1]);
	table("upper_runs", u_toupper);
	table("lower_runs", u_tolower);
	return 0;
}
