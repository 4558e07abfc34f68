/* Log lines: one line per message, whatever the message quotes. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Runs log_warn(fmt, arg) with stderr on a pipe and returns what it wrote. */
static void capture(const char *arg, char *out, size_t cap)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	log_set_name("hub");
	log_warn("refused %s", arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	ssize_t n = read(p[0], out, cap - 1);
	close(p[0]);
	assert_true(n > 0);
	out[n] = '\0';
}

static void a_message_is_one_line_with_its_control_characters_replaced(void **state)
{
	char line[256], want[256];
	capture("a/b\nhub[1]: info: forged\r\t\x7f", line, sizeof(line));
	snprintf(want, sizeof(want), "hub[%d]: warning: refused a/b?hub[1]: info: forged???\n",
		 (int)getpid());
	assert_string_equal(line, want);
}

static void utf8_text_is_kept(void **state)
{
	char line[256], want[256];
	capture("Käsefabrik/ü", line, sizeof(line));
	snprintf(want, sizeof(want), "hub[%d]: warning: refused Käsefabrik/ü\n", (int)getpid());
	assert_string_equal(line, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_message_is_one_line_with_its_control_characters_replaced),
	    cmocka_unit_test(utf8_text_is_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
