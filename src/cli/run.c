/* ferry run: create a VM, load the built-in guest, serve the control socket
 * and wait until the VM stops (quit, guest exit, fault, or a signal). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "control/commands.h"
#include "control/server.h"
#include "migration/migration.h"
#include "migration/recv/dest.h"
#include "transport/tls.h"
#include "util/error.h"
#include "util/log.h"
#include "util/notify.h"
#include "util/size.h"
#include "util/time.h"
#include "vm/loader.h"
#include "vm/vm.h"
#include "vm/workload.h"

static const char run_help[] =
	"Usage: ferry run [OPTIONS]\n"
	"\n"
	"Run a VM whose guest is ferry's built-in ring-3 program, until 'quit' arrives\n"
	"on the control socket, the guest exits or faults, or ferry gets SIGINT/SIGTERM.\n"
	"\n"
	"  --mem SIZE            guest memory, a multiple of 2M (default 1G)\n"
	"  --vcpus N             number of vCPUs, 1 to 64 (default 1)\n"
	"  --workload SPEC       what the guest does (default idle), see below\n"
	"  --control NAME|PATH   serve the control socket (JSON lines, QMP's shapes) at\n"
	"                        PATH, or for a NAME in the run directory ($FERRY_RUN_DIR,\n"
	"                        else $XDG_RUNTIME_DIR/ferry or /run/ferry for root),\n"
	"                        where 'ferry list' finds it and other commands take NAME\n"
	"  --mem-backend KIND    anon (default); memfd: shareable with another process;\n"
	"                        hugetlb: 2 MiB pages from the host's pool (vm.nr_hugepages)\n"
	"  --dirty-backend KIND  bitmap (default) or ring: how KVM reports dirty pages\n"
	"  --dirty-ring-size N   entries in each vCPU's dirty ring, a power of two (16384)\n"
	"  --host-reserve SIZE   memory ferry leaves to the host whenever it takes some for\n"
	"                        a guest (default 5% of the host's, at least 256M; 0: none):\n"
	"                        a guest that would need it is refused, and faulting memory\n"
	"                        in (--prealloc, the background prefault) stops with a\n"
	"                        sentence where the host runs short, not at the OOM killer\n"
	"  --prealloc            fault in all guest memory before the guest starts; with\n"
	"                        --incoming, --mem of it before listening, so that pages\n"
	"                        arrive into memory that is ready (the fastest migration)\n"
	"  --incoming URI        wait for a migration on URI (tcp:HOST:PORT, unix:PATH, fd:N)\n"
	"                        instead of starting a guest; the VM's shape comes from the\n"
	"                        source, --mem becomes the largest guest accepted (and the\n"
	"                        VM for a guest of exactly that size is made ahead, so that\n"
	"                        its migration does not wait for it), and a failed attempt\n"
	"                        is discarded while ferry waits for the next\n"
	"  --io-timeout-ms N     with --incoming: a connection that stalls this long fails\n"
	"                        the attempt, and LOADED waits this long for COMMIT\n"
	"                        (default 10000)\n"
	"  --recover-timeout S   with --incoming: when post-copy's link breaks, the guest\n"
	"                        runs on and waits this long for 'migrate-recover' to\n"
	"                        bring its source back, then is lost (default 300; 0:\n"
	"                        for ever)\n"
	"  --handshake-timeout S with --incoming: a source must go from connecting to\n"
	"                        READY within this (default 30; 0: no end)\n"
	"  --transfer-timeout S  with --incoming: and from READY to COMMIT within this\n"
	"                        (default 3600; 0: no end), so that no peer holds the\n"
	"                        destination's one listener for ever\n"
	"  --tls-creds DIR       with --incoming: every connection speaks TLS 1.3 with the\n"
	"                        credentials in DIR: ca-cert.pem, server-cert.pem,\n"
	"                        server-key.pem (x509: the source must show a certificate\n"
	"                        the CA signed), or keys.psk (IDENTITY:HEXKEY lines); a\n"
	"                        source that does not is refused with a sentence\n"
	"  --tls-authz NAMES     with --tls-creds: accept only sources whose identity\n"
	"                        (certificate common name, or PSK identity) is one of\n"
	"                        NAMES, comma-separated\n"
	"  --background-prefault on|off\n"
	"                        with --incoming: memory that was not made ready is faulted\n"
	"                        in by an idle-priority thread while the receivers wait\n"
	"                        for the link (on, the default), or page by page as the\n"
	"                        pages land (off)\n"
	"  --takeover            with --incoming and --control PATH: PATH belongs to the\n"
	"                        ferry this one replaces (ferry upgrade starts it so):\n"
	"                        serve PATH.new until the guest runs here, then move the\n"
	"                        socket onto PATH\n"
	"  --log-level LEVEL     error, warn, info (default) or debug\n"
	"  -h, --help            show this help\n"
	"\n"
	"Workload SPEC is KIND[:key=value,...]. KIND is one of\n"
	"  idle    fill the working set once, then sleep\n"
	"  dirty   fill the working set, then keep writing its pages\n"
	"  touch   write the pages a test names through the control page\n"
	"and the keys are\n"
	"  wss=SIZE         working set (default: all guest memory past 8 MiB)\n"
	"  rate=RATE        max (default), SIZE per second (100M), or pages/s (5000pps)\n"
	"  pattern=P        random (default), sequential or hotset\n"
	"  hot=PCT hits=PCT hotset: hot share of the working set (10), share of writes to it (90)\n"
	"  write=W          page (default), word or byte: how much of a page one write changes\n"
	"  dirtiers=N       only vCPUs 0..N-1 dirty; the others compute without writing (all)\n"
	"  data=D           random (default), text (compresses ~3:1), counter, or zero (idle only)\n"
	"  check=on|off     self-check: a generation number in every page, verified on read (on)\n"
	"  spin=on|off      busy-wait instead of sleeping in the VMM when idle or paced (off)\n"
	"  seed=N           seed of the page contents and the random pattern (1)\n"
	"\n"
	"Examples:\n"
	"  ferry run --mem 1G --vcpus 2 --control /tmp/vm.sock \\\n"
	"      --workload dirty:wss=512M,rate=100M,pattern=random,write=byte\n"
	"  sysctl vm.nr_hugepages=1024    # 2 GiB of huge pages, for the destination\n"
	"  ferry run --incoming tcp:0.0.0.0:7000 --mem 2G --prealloc --mem-backend hugetlb\n";

struct run_opts {
	struct vm_config cfg;
	bool mem_given;
	const char *workload;
	const char *control;
	const char *incoming;
	uint32_t io_timeout_ms;				   /* 0: the default */
	long long recover_timeout_s;			   /* -1: the default */
	long long handshake_timeout_s, transfer_timeout_s; /* -1: the default */
	const char *tls_creds, *tls_authz;
	int background_prefault; /* -1: not given */
	bool takeover;		 /* --control's path is another ferry's until the guest comes */
};

static int parse_mem(const char *arg, struct run_opts *o)
{
	if (size_parse(arg, &o->cfg.mem_bytes) < 0)
		return usage_error("run", "--mem '%s' is not a size like 512M or 1G", arg);
	return 0;
}

/* Set once, here, before any thread starts (vm/memory.h). */
static int parse_host_reserve(const char *arg)
{
	uint64_t bytes;

	if (size_parse(arg, &bytes) < 0)
		return usage_error("run", "--host-reserve '%s' is not a size like 512M or 2G", arg);
	mem_set_host_reserve(bytes);
	return 0;
}

static int parse_vcpus(const char *arg, struct run_opts *o)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (end == arg || *end || n < 1 || n > VM_MAX_VCPUS)
		return usage_error("run", "--vcpus '%s' is not a number from 1 to %d", arg,
				   VM_MAX_VCPUS);
	o->cfg.vcpus = (unsigned)n;
	return 0;
}

static int parse_choice(const char *flag, const char *arg, const char *a, const char *b, int *out)
{
	if (!strcmp(arg, a))
		*out = 0;
	else if (!strcmp(arg, b))
		*out = 1;
	else
		return usage_error("run", "%s '%s' is not %s or %s", flag, arg, a, b);
	return 0;
}

static int parse_io_timeout(const char *arg, struct run_opts *o)
{
	char *end;
	unsigned long long n = strtoull(arg, &end, 10);

	if (end == arg || *end || n < MIG_IO_TIMEOUT_MS_MIN || n > MIG_IO_TIMEOUT_MS_MAX)
		return usage_error("run",
				   "--io-timeout-ms '%s' is not a whole number from %llu to %llu",
				   arg, MIG_IO_TIMEOUT_MS_MIN, MIG_IO_TIMEOUT_MS_MAX);
	o->io_timeout_ms = (uint32_t)n;
	return 0;
}

/* A number of seconds, 0 (no end) to a week. */
static int parse_seconds(const char *flag, const char *arg, long long *out)
{
	char *end;
	long long n = strtoll(arg, &end, 10);

	if (end == arg || *end || n < 0 || n > (long long)MIG_TIMEOUT_S_MAX)
		return usage_error("run", "%s '%s' is not a whole number of seconds from 0 to %llu",
				   flag, arg, MIG_TIMEOUT_S_MAX);
	*out = n;
	return 0;
}

static int parse_log_level(const char *arg)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(arg, names[i])) {
			log_set_level((enum log_level)i);
			return 0;
		}
	return usage_error("run", "--log-level '%s' is not error, warn, info or debug", arg);
}

static int parse_ring_size(const char *arg, struct run_opts *o)
{
	char *end;
	unsigned long n = strtoul(arg, &end, 10);

	if (end == arg || *end || n < 256 || n > (1u << 20) || (n & (n - 1)))
		return usage_error(
			"run", "--dirty-ring-size '%s' is not a power of two from 256 to 1048576",
			arg);
	o->cfg.dirty_ring_entries = (uint32_t)n;
	return 0;
}

/* Options that only mean something together. */
static int check_incoming_args(const struct run_opts *o)
{
	if (o->io_timeout_ms && !o->incoming)
		return usage_error(
			"run",
			"--io-timeout-ms goes with --incoming (a source sets its own on ferry migrate)");
	if (o->recover_timeout_s >= 0 && !o->incoming)
		return usage_error(
			"run",
			"--recover-timeout goes with --incoming (a source sets its own on ferry migrate)");
	if ((o->handshake_timeout_s >= 0 || o->transfer_timeout_s >= 0) && !o->incoming)
		return usage_error("run", "--handshake-timeout and --transfer-timeout go with "
					  "--incoming: they bound what a source may take");
	if (o->tls_creds && !o->incoming)
		return usage_error("run", "--tls-creds goes with --incoming (a source gives its "
					  "own on ferry migrate)");
	if (o->tls_authz && !o->tls_creds)
		return usage_error("run", "--tls-authz goes with --tls-creds");
	if (o->takeover && (!o->incoming || !o->control))
		return usage_error("run", "--takeover goes with --incoming and --control");
	if (o->background_prefault >= 0 && !o->incoming)
		return usage_error("run", "--background-prefault goes with --incoming");
	if (o->incoming && o->cfg.prealloc && !o->mem_given)
		return usage_error("run",
				   "--prealloc with --incoming needs --mem SIZE: the memory to "
				   "make ready, and the largest guest accepted");
	if (o->incoming && o->cfg.prealloc && o->cfg.mem_bytes % (2u << 20))
		return usage_error("run", "--mem must be a multiple of 2M");
	if (o->incoming && o->cfg.prealloc && o->background_prefault >= 0)
		return usage_error("run",
				   "--background-prefault has nothing to do with --prealloc");
	return 0;
}

static int parse_args(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "workload", required_argument, NULL, 'w' },
		{ "control", required_argument, NULL, 's' },
		{ "mem-backend", required_argument, NULL, 'b' },
		{ "dirty-backend", required_argument, NULL, 'd' },
		{ "dirty-ring-size", required_argument, NULL, 'r' },
		{ "prealloc", no_argument, NULL, 'p' },
		{ "host-reserve", required_argument, NULL, 'M' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "incoming", required_argument, NULL, 'i' },
		{ "io-timeout-ms", required_argument, NULL, 't' },
		{ "background-prefault", required_argument, NULL, 'f' },
		{ "recover-timeout", required_argument, NULL, 'R' },
		{ "handshake-timeout", required_argument, NULL, 'H' },
		{ "transfer-timeout", required_argument, NULL, 'T' },
		{ "tls-creds", required_argument, NULL, 'C' },
		{ "tls-authz", required_argument, NULL, 'A' },
		{ "takeover", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, rc = 0, choice = 0;

	*o = (struct run_opts){ .cfg = { .mem_bytes = 1ull << 30, .vcpus = 1 },
				.workload = "idle",
				.background_prefault = -1,
				.recover_timeout_s = -1,
				.handshake_timeout_s = -1,
				.transfer_timeout_s = -1 };
	opterr = 0;
	while (rc == 0 && (opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			rc = parse_mem(optarg, o);
			o->mem_given = true;
			break;
		case 'i':
			o->incoming = optarg;
			break;
		case 't':
			rc = parse_io_timeout(optarg, o);
			break;
		case 'R':
			rc = parse_seconds("--recover-timeout", optarg, &o->recover_timeout_s);
			break;
		case 'H':
			rc = parse_seconds("--handshake-timeout", optarg, &o->handshake_timeout_s);
			break;
		case 'T':
			rc = parse_seconds("--transfer-timeout", optarg, &o->transfer_timeout_s);
			break;
		case 'C':
			o->tls_creds = optarg;
			break;
		case 'A':
			o->tls_authz = optarg;
			break;
		case 'c':
			rc = parse_vcpus(optarg, o);
			break;
		case 'w':
			o->workload = optarg;
			break;
		case 's':
			o->control = control_path(optarg);
			break;
		case 'b':
			if (mem_backend_parse(optarg, &o->cfg.mem_backend) < 0)
				rc = usage_error("run",
						 "--mem-backend '%s' is not anon, memfd or hugetlb",
						 optarg);
			break;
		case 'f':
			rc = parse_choice("--background-prefault", optarg, "off", "on",
					  &o->background_prefault);
			break;
		case 'd':
			rc = parse_choice("--dirty-backend", optarg, "bitmap", "ring", &choice);
			o->cfg.dirty_backend = choice ? DIRTY_RING : DIRTY_BITMAP;
			break;
		case 'r':
			rc = parse_ring_size(optarg, o);
			break;
		case 'p':
			o->cfg.prealloc = true;
			break;
		case 'M':
			rc = parse_host_reserve(optarg);
			break;
		case 'k':
			o->takeover = true;
			break;
		case 'l':
			rc = parse_log_level(optarg);
			break;
		case 'h':
			fputs(run_help, stdout);
			return -1;
		default:
			return option_error("run", opt, argv);
		}
	}
	if (rc == 0 && optind < argc)
		return extra_args_error("run", argc, argv);
	return rc ? rc : check_incoming_args(o);
}

/* SIGINT and SIGTERM are taken by a thread of their own (every other thread
 * blocks them), which asks for a stop the way 'quit' does: an incoming
 * migration in progress fails before COMMIT, so its source resumes. */
struct signals {
	sigset_t set;
	pthread_t thread;
	struct control_ctx *ctx;
};

static void *signal_thread(void *arg)
{
	struct signals *s = arg;
	int sig;

	pthread_setname_np(pthread_self(), "signals");
	for (;;) {
		if (sigwait(&s->set, &sig))
			continue;
		/* Finish the request even if ferry run is ending meanwhile. */
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		ctx_request_stop(s->ctx,
				 sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	}
	return NULL;
}

/* Before any other thread exists, so that all of them inherit the mask. */
static int catch_signals(struct signals *s, struct control_ctx *ctx)
{
	int rc;

	s->ctx = ctx;
	sigemptyset(&s->set);
	sigaddset(&s->set, SIGINT);
	sigaddset(&s->set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &s->set, NULL);
	rc = pthread_create(&s->thread, NULL, signal_thread, s);
	return rc ? fail("cannot start the signal thread: %s", strerror(rc)) : 0;
}

static void release_signals(struct signals *s)
{
	pthread_cancel(s->thread);
	pthread_join(s->thread, NULL);
}

static void announce(const struct run_opts *o, const struct vm *vm, const char *workload)
{
	char mem[32];

	size_format(vm->mem.size, mem, sizeof(mem));
	log_info("VM running: %s, %u vCPU%s; workload %s%s%s", mem, vm->nr_vcpus,
		 vm->nr_vcpus > 1 ? "s" : "", workload, o->control ? "; control socket " : "",
		 o->control ? o->control : "");
}

static void send_stop_event(struct control_server *srv, struct vm *vm)
{
	struct vm_status st = vm_get_status(vm);

	control_event(srv, "VM_STOPPED",
		      json_pack("{s:s,s:b,s:i}", "reason", st.stop_reason, "failed", st.failed,
				"exit_code", st.exit_code));
}

/* A new VM running the built-in guest. */
static int start_local(const struct run_opts *o, struct control_ctx *ctx, struct vm **out)
{
	if (workload_check(o->workload, o->cfg.mem_bytes, ctx->workload, sizeof(ctx->workload)) < 0)
		return usage_error("run", "%s", err_msg());
	if (vm_create(&o->cfg, out) < 0)
		return fail("%s", err_msg());
	if (loader_load_builtin(*out, o->workload) < 0 || vm_start(*out) < 0) {
		vm_destroy(*out);
		*out = NULL;
		return fail("%s", err_msg());
	}
	return 0;
}

/* Listen for an incoming migration, before the control socket answers, so
 * that whoever sees the socket can migrate here at once. */
static int open_incoming(const struct run_opts *o, struct control_ctx *ctx)
{
	struct mig_dest_opts d = {
		.mem_limit = o->mem_given ? o->cfg.mem_bytes : 0,
		.mem_backend = o->cfg.mem_backend,
		.dirty_backend = o->cfg.dirty_backend,
		.io_timeout_ms = o->io_timeout_ms ? o->io_timeout_ms : ctx->params.io_timeout_ms,
		.prealloc = o->cfg.prealloc,
		.no_background_prefault = o->background_prefault == 0,
		.recover_timeout_s = (uint32_t)(o->recover_timeout_s >= 0 ? o->recover_timeout_s
									  : MIG_RECOVER_S_DEFAULT),
		.handshake_timeout_s =
			(uint32_t)(o->handshake_timeout_s >= 0 ? o->handshake_timeout_s
							       : MIG_HANDSHAKE_S_DEFAULT),
		.transfer_timeout_s =
			(uint32_t)(o->transfer_timeout_s >= 0 ? o->transfer_timeout_s
							      : MIG_TRANSFER_S_DEFAULT),
	};

	if (o->tls_creds &&
	    tls_creds_load(&(struct tls_config){ .dir = o->tls_creds, .authz = o->tls_authz },
			   TLS_SERVER, &ctx->tls) < 0)
		return fail("%s", err_msg());
	d.tls = ctx->tls;
	ctx->incoming_opts = d;
	ctx->has_incoming_opts = true;
	return mig_dest_open(o->incoming, &d, &ctx->incoming) < 0 ? fail("%s", err_msg()) : 0;
}

/* The VM an incoming migration brings, already running; none if stopped
 * first (not an error: the operator asked). */
static int run_incoming(struct control_ctx *ctx, struct vm **out)
{
	if (mig_dest_run(ctx->incoming, out) < 0)
		return ctx_stopping(ctx) ? 0 : fail("%s", err_msg());
	workload_of_guest(*out, ctx->workload, sizeof(ctx->workload));
	return 0;
}

/* The control socket at --control, or (--takeover) beside it until the
 * guest comes. */
static int start_control(const struct run_opts *o, struct control_ctx *ctx,
			 struct control_server **srv)
{
	char path[256];

	/* --control NAME: the run directory, made on first use, for us only. */
	if (!strncmp(o->control, run_dir(), strlen(run_dir())))
		(void)!mkdir(run_dir(), 0700);
	snprintf(path, sizeof(path), "%s%s", o->control, o->takeover ? ".new" : "");
	return control_start(path, ctx, srv);
}

/* Tell a service manager (ferry@.service: Type=notify) how ferry stands. */
static void notify(const char *fmt, int pid)
{
	char state[64];
	int rc;

	snprintf(state, sizeof(state), fmt, pid);
	rc = service_notify(state);
	if (rc < 0)
		log_warn("cannot tell the service manager %s: %s", state, strerror(-rc));
}

/* After a vCPU shut down: whether the guest's memory changed where nothing
 * may write, or the CPU lost its way with everything in place. */
static void tell_intact(struct vm *vm)
{
	if (loader_check_intact(vm) < 0)
		log_err("%s (the memory changed, or the guest came from another ferry build)",
			err_msg());
	else
		log_err("the guest's code, page tables, GDT, TSS and IDT are as this ferry builds "
			"them: the vCPU lost its way with its memory in place");
}

/* Until the VM stops (quit, the guest exits, a signal). Exit status. */
static int run_until_stopped(struct control_server *srv, struct vm *vm)
{
	struct vm_status st;

	vm_wait_stopped(vm, -1);
	st = vm_get_status(vm);
	if (st.shut_down)
		tell_intact(vm);
	if (st.failed)
		fail("%s", st.stop_reason);
	if (srv)
		send_stop_event(srv, vm);
	return st.failed ? 1 : 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct control_ctx ctx;
	struct control_server *srv = NULL;
	struct signals sig;
	struct vm *vm = NULL;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	ctx_init(&ctx);
	rc = catch_signals(&sig, &ctx);
	if (rc)
		goto out_ctx;
	rc = o.incoming ? open_incoming(&o, &ctx) : start_local(&o, &ctx, &vm);
	if (rc)
		goto out_signals;
	ctx_set_vm(&ctx, vm);
	ctx.control_path = o.control;
	if (o.control && start_control(&o, &ctx, &srv) < 0) {
		rc = fail("%s", err_msg());
		goto out_signals;
	}
	if (!o.takeover) /* serving: the guest runs, or ferry listens for one */
		notify("READY=1\nMAINPID=%d", getpid());
	if (o.incoming && (rc = run_incoming(&ctx, &vm)) == 0 && vm)
		ctx_set_vm(&ctx, vm);
	if (rc == 0 && vm && o.takeover && control_move(srv, o.control) < 0)
		log_warn("%s: the control socket stays at %s.new", err_msg(), o.control);
	if (rc == 0 && vm && o.takeover) /* the upgraded ferry: this process serves now */
		notify("MAINPID=%d\nREADY=1", getpid());
	/* Until the VM stops; again while migrate-incoming brings another. */
	while (rc == 0 && vm) {
		announce(&o, vm, ctx.workload);
		rc = run_until_stopped(srv, vm);
		if (rc || !ctx_take_next(&ctx, &vm))
			break;
		rc = run_incoming(&ctx, &vm);
		if (rc == 0 && vm)
			ctx_set_vm(&ctx, vm);
	}
	control_stop(srv);
out_signals:
	release_signals(&sig);
out_ctx:
	ctx_destroy(&ctx); /* an outgoing migration ends before its VM goes */
	vm_destroy(vm);
	mig_dest_close(ctx.incoming);
	tls_creds_free(ctx.tls);
	return rc;
}
