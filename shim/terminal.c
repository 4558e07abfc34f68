#include "shim/terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

void term_make_raw(int fd, struct term_mode *m)
{
	m->raw = false;
	if (tcgetattr(fd, &m->saved) < 0)
		return;
	struct termios t = m->saved;
	cfmakeraw(&t);
	m->raw = tcsetattr(fd, TCSANOW, &t) == 0;
}

void term_restore(int fd, struct term_mode *m)
{
	if (m->raw)
		tcsetattr(fd, TCSANOW, &m->saved);
	m->raw = false;
}

void term_copy_winsize(int from, int to)
{
	struct winsize ws;
	if (ioctl(from, TIOCGWINSZ, &ws) == 0)
		ioctl(to, TIOCSWINSZ, &ws);
}

int term_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = {.fd = fd, .events = POLLOUT};
				poll(&pf, 1, 1000);
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t term_relay(int from, int to)
{
	char buf[16384];
	ssize_t n;
	do
		n = read(from, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n > 0 && term_write_all(to, buf, (size_t)n) < 0)
		return -1;
	return n;
}

void term_drain(int master, int to)
{
	fcntl(master, F_SETFL, O_NONBLOCK);
	while (term_relay(master, to) > 0)
		;
}
