#include "oci/progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/digest.h"

#define BAR_WIDTH 30

struct bar {
	char label[20];
	uint64_t total, done;
	int state;
};

struct progress {
	size_t n;
	int drawn;
	bool one_line; /* more layers than the terminal has rows */
	struct bar bars[];
};

struct progress *progress_new(size_t n)
{
	struct progress *p = calloc(1, sizeof(struct progress) + n * sizeof(struct bar));
	if (!p)
		return NULL;
	p->n = n;
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && n + 1 >= ws.ws_row)
		p->one_line = true;
	return p;
}

void progress_label(struct progress *p, size_t i, const char *digest, uint64_t total)
{
	/* "sha256:0123456789ab" is enough to tell layers apart */
	snprintf(p->bars[i].label, sizeof(p->bars[i].label), "%.19s", digest);
	p->bars[i].total = total;
}

void progress_set(struct progress *p, size_t i, int state, uint64_t done)
{
	p->bars[i].state = state;
	p->bars[i].done = done;
}

static void human(uint64_t v, char *out, size_t cap)
{
	if (v >= 1000000)
		snprintf(out, cap, "%.1f MB", (double)v / 1e6);
	else
		snprintf(out, cap, "%.1f kB", (double)v / 1e3);
}

static void draw_one_line(struct progress *p)
{
	size_t done = 0;
	uint64_t got = 0, total = 0;
	for (size_t i = 0; i < p->n; i++) {
		done += p->bars[i].state == PROGRESS_DONE;
		got += p->bars[i].done;
		total += p->bars[i].total;
	}
	char g[32], t[32];
	human(got, g, sizeof(g));
	human(total, t, sizeof(t));
	fprintf(stderr, "\r\033[2Klayers %zu/%zu done, %s / %s", done, p->n, g, t);
	fflush(stderr);
	p->drawn = 1;
}

void progress_draw(struct progress *p)
{
	if (p->one_line) {
		draw_one_line(p);
		return;
	}
	if (p->drawn)
		fprintf(stderr, "\033[%zuA", p->n);
	for (size_t i = 0; i < p->n; i++) {
		struct bar *b = &p->bars[i];
		char line[160];
		if (b->state == PROGRESS_ACTIVE && b->total) {
			char done[32], total[32];
			int fill = (int)(b->done * BAR_WIDTH / b->total);
			char bar[BAR_WIDTH + 1];
			memset(bar, '=', (size_t)fill);
			memset(bar + fill, ' ', (size_t)(BAR_WIDTH - fill));
			bar[BAR_WIDTH] = '\0';
			human(b->done, done, sizeof(done));
			human(b->total, total, sizeof(total));
			snprintf(line, sizeof(line), "%s [%s] %s / %s", b->label, bar, done, total);
		} else {
			static const char *const words[] = {"waiting", "downloading", "done",
							    "failed"};
			snprintf(line, sizeof(line), "%s %s", b->label, words[b->state & 3]);
		}
		fprintf(stderr, "\r\033[2K%s\n", line);
	}
	fflush(stderr);
	p->drawn = 1;
}

void progress_free(struct progress *p)
{
	if (p && p->one_line && p->drawn)
		fputc('\n', stderr);
	free(p);
}
