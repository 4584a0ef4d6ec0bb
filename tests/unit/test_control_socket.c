/* The control socket's file: it appears only once it accepts connections
 * (a client that waits for the file and connects at once is never
 * refused), owner only, with nothing else left beside it; a busy path is
 * refused, a stale one replaced, and stopping removes it. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/commands.h"
#include "control/server.h"

static char dir[32], path[64];
static struct control_ctx ctx;

/* 0 once connected and greeted, else -errno. */
static int connect_to(const char *p)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval bound = { .tv_sec = 10 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;
	char greeting[64];

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", p);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		rc = -errno;
	else if (recv(fd, greeting, sizeof(greeting), 0) <= 0)
		rc = -EPIPE;
	close(fd);
	return rc;
}

static int entries(void)
{
	DIR *d = opendir(dir);
	int n = 0;

	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static int watching;

/* Waits for the file to appear, then connects at once. */
static void *first_client(void *arg)
{
	time_t give_up = time(NULL) + 10;
	struct stat st;

	__atomic_store_n(&watching, 1, __ATOMIC_RELEASE);
	while (lstat(path, &st) < 0)
		if (time(NULL) > give_up) {
			*(int *)arg = -ETIMEDOUT;
			return NULL;
		}
	*(int *)arg = connect_to(path);
	return NULL;
}

static void test_appears_ready(void **state)
{
	(void)state;
	for (int i = 0; i < 200; i++) {
		struct control_server *srv;
		pthread_t t;
		int got = 1;

		__atomic_store_n(&watching, 0, __ATOMIC_RELEASE);
		pthread_create(&t, NULL, first_client, &got);
		while (!__atomic_load_n(&watching, __ATOMIC_ACQUIRE))
			;
		assert_int_equal(control_start(path, &ctx, &srv), 0);
		pthread_join(t, NULL);
		assert_int_equal(got, 0);
		control_stop(srv);
		assert_int_equal(entries(), 0);
	}
}

static void test_file(void **state)
{
	struct control_server *srv, *other;
	struct stat st;

	(void)state;
	assert_int_equal(control_start(path, &ctx, &srv), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(entries(), 1);
	assert_int_equal(control_start(path, &ctx, &other), -EADDRINUSE);
	control_stop(srv);
	assert_int_equal(entries(), 0);
}

static void test_stale_replaced(void **state)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct control_server *srv;

	(void)state;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd); /* a killed ferry's file: nothing listens */
	assert_int_equal(connect_to(path), -ECONNREFUSED);
	assert_int_equal(control_start(path, &ctx, &srv), 0);
	assert_int_equal(connect_to(path), 0);
	control_stop(srv);
	assert_int_equal(entries(), 0);
}

static void test_too_long(void **state)
{
	char longer[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct control_server *srv;

	(void)state;
	snprintf(longer, sizeof(longer), "%s/%0*d", dir, (int)(sizeof(longer) - strlen(dir) - 2),
		 0);
	assert_int_equal(control_start(longer, &ctx, &srv), -ENAMETOOLONG);
	assert_int_equal(entries(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_appears_ready),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_stale_replaced),
		cmocka_unit_test(test_too_long),
	};
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/ferry-ctl.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/vm.sock", dir);
	ctx_init(&ctx);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	ctx_destroy(&ctx);
	rmdir(dir);
	return rc;
}
