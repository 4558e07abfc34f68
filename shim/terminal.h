/* Private to shim/: relaying a terminal between the user's and an instance's pseudo-terminal
 * (`berth run` in the foreground, `berth exec -t`): raw mode on the user's
 * side, the window size copied across, bytes moved until either side ends. */
#ifndef BERTH_SHIM_TERMINAL_H
#define BERTH_SHIM_TERMINAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <termios.h>

struct term_mode {
	struct termios saved;
	bool raw; /* saved holds the mode to restore */
};

/* Puts fd (a terminal) into raw mode, keeping what to restore. */
void term_make_raw(int fd, struct term_mode *m);
void term_restore(int fd, struct term_mode *m);
/* The window size of `from` given to `to`. */
void term_copy_winsize(int from, int to);
/* Writes everything or gives up on the first error (a closed terminal);
 * waits for a non-blocking fd to take more. */
int term_write_all(int fd, const char *p, size_t n);
/* Moves what is readable from `from` to `to`: the bytes moved, 0 at end of
 * input, -1 on an error on either side. */
ssize_t term_relay(int from, int to);
/* The rest of what `master` holds, after its program ended. */
void term_drain(int master, int to);

#endif
