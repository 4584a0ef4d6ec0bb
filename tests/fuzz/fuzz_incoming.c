/* Fuzz target: a whole incoming migration on real KVM (migration/recv/
 * incoming.c incoming_receive): the stream header, then records framed from
 * the input (frame.h) on a socket, as a source would send them: CONFIG and
 * SESSION, CHANNELS (data channels that never JOIN), pages, state restored
 * into a real VM, hashes, END, COMMIT, post-copy's records, in any order.
 * Each is refused with a sentence or taken; a guest that starts is stopped.
 * The destination accepts at most 64 MiB and waits 200 ms for anything. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "migration/recv/incoming.h"
#include "stream/record.h"
#include "util/error.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void progress(void *opaque, const struct incoming_progress *p)
{
	(void)opaque, (void)p;
}

static void loaded(void *opaque)
{
	(void)opaque;
}

static int commit(void *opaque)
{
	(void)opaque;
	return 0;
}

static void felt(void *opaque, const struct felt *f)
{
	(void)opaque, (void)f;
}

static int paused(void *opaque, const char *why, struct recover_ask *ask)
{
	(void)opaque, (void)ask;
	return err_set(-ECANCELED, "post-copy broke (%s); no recovery here", why);
}

static void recovered(void *opaque, double ms)
{
	(void)opaque, (void)ms;
}

static const struct incoming_events events = { NULL, progress, loaded,	 commit,
					       felt, paused,   recovered };
static const struct mig_dest_opts opts = { .mem_limit = 64ull << 20,
					   .io_timeout_ms = 200,
					   .handshake_timeout_s = 2,
					   .transfer_timeout_s = 5 };
static char uri[64];
static int lfd = -1;
static struct ready_mem *ready;

static void remove_socket(void)
{
	unlink(uri + 5);
}

/* KVM, a listener for data channels that will not come, no ready memory. */
static void set_up(void)
{
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		fprintf(stderr, "fuzz_incoming: no /dev/kvm here: skipped\n");
		exit(77);
	}
	log_set_level(LOG_ERR);
	snprintf(uri, sizeof(uri), "unix:/tmp/ferry-fuzz-incoming-%d.sock", (int)getpid());
	remove_socket();
	lfd = chan_listen(uri);
	if (lfd < 0 || ready_mem_create(&ready) < 0)
		abort();
	atexit(remove_socket);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream_header h;
	struct vm *shell = NULL, *vm = NULL;
	struct chan c;

	if (lfd < 0)
		set_up();
	stream_header_init(&h);
	if (frame_chan(&h, sizeof(h), data, size, &c) < 0)
		return 0;
	c.timeout_ms = (int)opts.io_timeout_ms;
	if (incoming_receive(&c, lfd, uri, &opts, ready, &shell, &events, &vm) == 0)
		vm_destroy(vm);
	chan_close(&c);
	return 0;
}
