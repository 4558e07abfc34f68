/* Growing arrays kept as a pointer and a capacity. */
#ifndef BERTH_ARRAY_H
#define BERTH_ARRAY_H

#include <stddef.h>

/* Room for at least need elements of size bytes in the array *arrp (any
 * pointer type) of *cap elements: the capacity doubles, from first when
 * there is none yet. 0, or -1 with the array as it was when memory runs
 * out. */
int array_reserve(void *arrp, size_t *cap, size_t need, size_t size, size_t first);

#endif
