#include "common/array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int array_reserve(void *arrp, size_t *cap, size_t need, size_t size, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : first;
	while (n < need)
		n *= 2;
	if (n > SIZE_MAX / size)
		return -1;
	void *old;
	memcpy(&old, arrp, sizeof(old));
	void *p = realloc(old, n * size);
	if (!p)
		return -1;
	memcpy(arrp, &p, sizeof(p));
	*cap = n;
	return 0;
}
