/* upgrade: replace the process serving this VM with a new ferry binary, by
 * a local migration into it (docs/migration.md, "Live upgrade").
 *
 * Why a new process and not exec() with the fds kept: until COMMIT the old
 * process still has the guest, running, so a new binary that does not
 * start, refuses the stream or fails on the way costs nothing: the old one
 * kills it and runs on. After an exec() there is nothing to go back to.
 *
 * The new ferry is spawned with one end of a socketpair as its --incoming
 * (fd:3: no listener, no path to race for), with the same control path and
 * --takeover (it serves a path of its own until the guest runs there, then
 * moves its socket onto this one), and with this process's stderr, so its
 * log goes on where this one's went. Once the guest runs there, the answer
 * goes out and this process stops. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/commands.h"
#include "migration/send/source.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/vm.h"

#define EXIT_GRACE_MS 200  /* for a new ferry that failed to end on its own */
#define REAP_MS	      3000 /* one told to stop gets this long before SIGKILL */

extern char **environ;

/* The binary on disk now at the path this one was started from (it may
 * have been replaced: that is the point of an upgrade). */
static int binary_on_disk(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	static const char deleted[] = " (deleted)";

	if (n < 0)
		return err_set(-errno, "cannot find this ferry's binary: %s", strerror(errno));
	out[n] = '\0';
	if ((size_t)n > sizeof(deleted) - 1 && !strcmp(out + n - (sizeof(deleted) - 1), deleted))
		out[n - (sizeof(deleted) - 1)] = '\0';
	return 0;
}

/* binary run --incoming fd:3 --control PATH --takeover, fd as its 3. */
static int spawn(struct control_ctx *ctx, const char *binary, int fd, pid_t *pid)
{
	char *argv[] = { (char *)binary,
			 "run",
			 "--incoming",
			 "fd:3",
			 "--control",
			 (char *)ctx->control_path,
			 "--takeover",
			 "--log-level",
			 (char *)log_level_name(),
			 NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int rc;

	sigemptyset(&none); /* this process blocks SIGINT and SIGTERM for its signal thread */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 3);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(pid, binary, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc ? err_set(-rc, "cannot start %s: %s", binary, strerror(rc)) : 0;
}

/* waitpid for up to ms: pid once it ended (its status in *status), or 0. */
static pid_t wait_for(pid_t pid, int *status, uint64_t ms)
{
	uint64_t deadline = time_now_ns() + ms * NS_PER_MS;
	pid_t r;

	while ((r = waitpid(pid, status, WNOHANG)) == 0 && time_now_ns() < deadline)
		time_sleep_ns(5 * NS_PER_MS);
	return r;
}

/* The new ferry failed to take the guest: stop it, unless it ended on its
 * own (a binary that did not start, a ferry that refused: then how says
 * how). */
static void reap(pid_t pid, char *how, size_t len)
{
	int status = 0;

	how[0] = '\0';
	if (wait_for(pid, &status, EXIT_GRACE_MS) == pid) {
		if (WIFEXITED(status))
			snprintf(how, len, "; the new ferry exited with status %d",
				 WEXITSTATUS(status));
		return;
	}
	kill(pid, SIGTERM);
	if (wait_for(pid, &status, REAP_MS) != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

static bool poll_upgrade(struct control_ctx *ctx, struct control_later *l, json_t **result)
{
	enum mig_status st = mig_source_stats(ctx->migration).status;
	json_t *report;
	char how[96], why[128];

	if (!mig_status_final(st))
		return false;
	report = control_query_migrate(ctx, NULL); /* final: it says what happened */
	*result = NULL;
	if (st == MIG_COMPLETED) {
		*result = json_pack("{s:i,s:s,s:o}", "pid", (int)l->child, "binary", l->binary,
				    "report", report);
		snprintf(why, sizeof(why), "upgraded: the guest runs in ferry %d now",
			 (int)l->child);
		ctx_request_stop(ctx, why); /* after this answer: the server sends it first */
		return true;
	}
	if (st == MIG_UNKNOWN) /* the guest may run there: nothing to stop */
		err_set(-EIO, "%s (the new ferry is %d)",
			json_string_value(json_object_get(report, "reason")), (int)l->child);
	else {
		reap(l->child, how, sizeof(how));
		err_set(-EIO, "the upgrade failed (%s%s): the guest runs on here, in ferry %d",
			json_string_value(json_object_get(report, "reason")), how, (int)getpid());
	}
	json_decref(report);
	return true;
}

int control_upgrade(struct control_ctx *ctx, json_t *args, struct control_later *l)
{
	json_t *bin = json_object_get(args, "binary"), *mig;
	struct vm *vm = ctx_vm(ctx);
	int sv[2], rc = 0;

	l->child = 0;
	if (json_object_size(args) > (bin ? 1u : 0u))
		return err_set(-EINVAL, "upgrade takes only \"binary\"");
	if (bin && !json_is_string(bin))
		return err_set(-EINVAL, "binary must be the path of a ferry executable");
	if (!ctx->control_path)
		return err_set(-EINVAL, "no control socket path to hand over");
	if (!vm)
		return -ENODEV;
	if (vm->mem.memfd < 0) /* refused before a process is started for nothing */
		return err_set(-EINVAL,
			       "guest memory is %s, which another process cannot map: only a VM "
			       "started with --mem-backend memfd or hugetlb is upgraded in place",
			       mem_backend_name(vm->mem.backend));
	if (bin)
		snprintf(l->binary, sizeof(l->binary), "%s", json_string_value(bin));
	else
		rc = binary_on_disk(l->binary, sizeof(l->binary));
	if (rc == 0 && access(l->binary, X_OK) < 0)
		rc = err_set(-errno, "%s is not an executable: %s", l->binary, strerror(errno));
	if (rc == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		rc = err_set(-errno, "socketpair: %s", strerror(errno));
	if (rc < 0)
		return rc;
	rc = spawn(ctx, l->binary, sv[1], &l->child);
	close(sv[1]);
	if (rc == 0) {
		char uri[32];
		json_t *margs;

		snprintf(uri, sizeof(uri), "fd:%d", sv[0]);
		margs = json_pack("{s:s,s:b}", "uri", uri, "local", 1);
		mig = control_migrate(ctx, margs);
		rc = mig ? 0 : -EINVAL; /* it said why */
		json_decref(mig);
		json_decref(margs);
	}
	if (rc < 0) {
		char how[96];

		close(sv[0]);
		if (l->child > 0)
			reap(l->child, how, sizeof(how));
		return rc;
	}
	l->poll = poll_upgrade;
	log_info("upgrade: ferry %d (%s) takes the guest over", (int)l->child, l->binary);
	return 0;
}
