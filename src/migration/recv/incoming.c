#include "migration/recv/incoming.h"
#include "migration/recv/incoming_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration/handshake.h"
#include "migration/recv/apply.h"
#include "migration/recv/postcopy.h"
#include "migration/recv/receiver.h"
#include "migration/recv/urgent.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "transport/tls.h"
#include "transport/uri.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"
#include "vm/prefault.h"
#include "vm/state.h"
#include "vm/uffd.h"

/* How long a running vCPU may take to beat after the guest starts here. */
#define FELT_WAIT_MS 1000

/* A record on the main channel; after the switch to post-copy the fault
 * thread writes there too. */
int incoming_say(struct incoming *in, uint32_t type, const struct iovec *body, int n)
{
	if (in->post)
		return postcopy_send(in->post, type, body, n);
	return n ? wire_send(in->chan, type, body, n) : wire_send_empty(in->chan, type);
}

static void progress(struct incoming *in)
{
	struct incoming_progress p = { .id = in->hello.id,
				       .pages = in->pages.pages + receivers_pages(in->rx),
				       .bytes = in->chan->bytes_received,
				       .rounds = in->round };

	in->ev->progress(in->ev->opaque, &p);
}

/* A data channel that failed broke this channel's read on purpose: its
 * reason is the one to tell. */
static int channel_error(struct incoming *in, int rc)
{
	if (rc < 0 && in->rx && receivers_error(in->rx) < 0)
		rc = receivers_error(in->rx);
	if (rc < 0 && prefault_failed(in->prefault) < 0)
		rc = prefault_failed(in->prefault);
	return rc;
}

/* The next record; the body of a page batch is left to load_pages. */
int incoming_next_record(struct incoming *in)
{
	int rc = wire_recv_header(in->chan, &in->hdr, &in->buf);

	if (rc == 0 && !is_page_batch(in->hdr.type))
		rc = wire_recv_body(in->chan, &in->hdr, &in->buf);
	return channel_error(in, rc);
}

/* Whether the guest needs memory this destination has yet to find: not
 * when the source hands its own over, or memory made ready holds it. */
static bool needs_memory(const struct incoming *in)
{
	struct ready_info r = ready_mem_info(in->ready);

	return !(in->hello.config.flags & CONFIG_LOCAL) &&
	       !(r.state == READY_READY && r.bytes >= in->hello.config.mem_bytes);
}

/* What this destination accepts, before it builds anything. */
static int refuse_hello(const struct incoming *in)
{
	const struct rec_config *cfg = &in->hello.config;
	char want[32], limit[32];
	struct uri u;

	if (in->o->mem_limit && cfg->mem_bytes > in->o->mem_limit)
		return err_set(-E2BIG, "guest memory %s exceeds this destination's limit of %s",
			       size_format(cfg->mem_bytes, want, sizeof(want)),
			       size_format(in->o->mem_limit, limit, sizeof(limit)));
	if (needs_memory(in) && mem_check_room(cfg->mem_bytes, in->o->mem_backend) < 0)
		return -ENOMEM;
	if ((cfg->flags & CONFIG_POSTCOPY) && uffd_supported(in->o->mem_backend) < 0)
		return err_wrap(-EOPNOTSUPP, "the source may switch to post-copy, but here");
	if ((cfg->flags & CONFIG_POSTCOPY) && uri_parse(in->uri, &u) == 0 && u.kind == URI_FD)
		return err_set(-EPROTO,
			       "the source may switch to post-copy, whose urgent pages need a "
			       "connection of their own, but %s is one connection",
			       in->uri);
	if ((cfg->flags & CONFIG_LOCAL) && (cfg->flags & (CONFIG_POSTCOPY | CONFIG_CHANNELS)))
		return err_set(-EPROTO, "a local migration sends no page, so neither data "
					"channels nor post-copy");
	if (in->hello.channels.count && uri_parse(in->uri, &u) == 0 && u.kind == URI_FD)
		return err_set(-EPROTO,
			       "the source wants %u data channels, but %s is one connection",
			       in->hello.channels.count, in->uri);
	return 0;
}

static int join_channels(struct incoming *in)
{
	int rc = receivers_accept(in->lfd, in->uri, &in->hello.channels, (int)in->o->io_timeout_ms,
				  in->chan->cancel, in->o->tls, in->peer, &in->rx);

	in->chan->company = &in->heard;
	if (rc == 0)
		rc = receivers_start(in->rx, &in->vm->mem, in->written, in->damaged, &in->waiting,
				     in->chan);
	if (rc == 0)
		log_info("%u data channels joined", in->hello.channels.count);
	return rc;
}

/* Whether a channel is at work rather than waiting for the link: the
 * prefault yields to them (vm/prefault.h). */
static bool receiving(void *opaque)
{
	const struct incoming *in = opaque;
	uint32_t channels = 1 + (in->rx ? receivers_count(in->rx) : 0);

	return __atomic_load_n(&in->waiting, __ATOMIC_RELAXED) < channels;
}

/* The prefault found the host short of memory: break the main channel's
 * read, whose error then tells why (channel_error), before the guest runs
 * here. */
static void ran_short(void *opaque)
{
	struct incoming *in = opaque;

	chan_shutdown_read(in->chan);
}

/* Memory that was not made ready is faulted in by a background thread
 * while the channels wait for the link (vm/prefault.h), stopped at END; or
 * on demand. */
static void start_prefault(struct incoming *in)
{
	struct prefault_yield yield = { receiving, in, ran_short };

	if (in->hello.config.flags & CONFIG_LOCAL)
		return; /* the source's pages, in place */
	if (in->lent) {
		log_info("the guest's %llu MiB go into memory made ready before it came",
			 (unsigned long long)(in->vm->mem.size >> 20));
		return;
	}
	if (in->o->no_background_prefault)
		return;
	in->chan->waiting = &in->waiting;
	if (prefault_start(&in->vm->mem, yield, &in->prefault) < 0)
		log_warn("guest memory faults in on demand: %s", err_msg());
}

/* Whether the peer opens with a ferry stream in the clear: its first bytes
 * (as many as came) are the stream's magic. */
static bool speaks_plain(struct chan *c)
{
	uint64_t magic = STREAM_MAGIC;
	uint8_t first[sizeof(magic)];
	ssize_t n = chan_peek(c, first, sizeof(first));

	return n > 0 && !memcmp(first, &magic, (size_t)n);
}

/* With TLS: the handshake, before any byte of the stream; the source's
 * identity is every later channel's. */
static int secure(struct incoming *in)
{
	char what[512];
	int rc;

	if (!in->o->tls)
		return 0;
	if (speaks_plain(in->chan))
		return err_set(-EACCES, "this destination takes TLS only: migrate to it with "
					"--tls-creds");
	rc = chan_start_tls(in->chan, in->o->tls, NULL);
	if (rc < 0 && !in->chan->tls)
		chan_shutdown(
			in->chan); /* a TLS peer: a refusal in the clear means nothing to it */
	if (rc < 0)
		return rc;
	snprintf(in->peer, sizeof(in->peer), "%s", tls_session_peer(in->chan->tls));
	log_info("TLS: the source is '%s': %s", in->peer,
		 tls_session_describe(in->chan->tls, what, sizeof(what)));
	return 0;
}

/* The opening, the VM, the data channels; then READY. */
static int open_migration(struct incoming *in)
{
	int rc;

	chan_set_deadline(in->chan, "the handshake", in->o->handshake_timeout_s);
	rc = secure(in);
	if (rc == 0)
		rc = handshake_receive(in->chan, &in->buf, &in->hello);

	if (rc == 0) {
		progress(in);
		rc = refuse_hello(in);
	}
	if (rc == 0)
		rc = incoming_build_vm(in);
	if (rc == 0 && in->hello.channels.count)
		rc = join_channels(in);
	if (rc < 0)
		return rc;
	start_prefault(in);
	chan_set_deadline(in->chan, "the migration before COMMIT", in->o->transfer_timeout_s);
	return handshake_ready(in->chan);
}

int incoming_load_pages(struct incoming *in)
{
	int rc;

	if (in->rx && !in->post)
		return err_set(-EPROTO,
			       "%s on the main channel while data channels carry the pages",
			       rec_type_name(in->hdr.type));
	if (in->state && !in->post)
		return err_set(-EPROTO, "pages after the VM state");
	rc = page_writer_recv(&in->pages, in->chan, &in->hdr, &in->buf, in->round);
	progress(in);
	return channel_error(in, rc);
}

/* ROUND on the main channel: the round it ends must be the one in progress,
 * and the pages it announces must be the pages that came. Without data
 * channels they came here; with them, the total is checked at END. */
static int end_round(struct incoming *in)
{
	struct rec_round marker;
	uint64_t got = in->pages.pages - in->round_start_pages;
	int rc = rec_parse_round(in->buf.data, in->hdr.length, &marker);

	if (rc == 0 && marker.round != in->round)
		rc = err_set(-EPROTO, "ROUND ends round %u while round %u is in progress",
			     marker.round, in->round);
	if (rc == 0 && !in->rx && marker.pages != got)
		rc = err_set(-EPROTO, "round %u announced %llu pages, %llu arrived", in->round,
			     (unsigned long long)marker.pages, (unsigned long long)got);
	if (rc < 0)
		return rc;
	in->announced_pages += marker.pages;
	in->round_start_pages = in->pages.pages;
	in->round++;
	progress(in);
	return 0;
}

/* END: the data channels' last pages are in, every round lined up. */
static int end_channels(struct incoming *in)
{
	int rc = in->rx ? receivers_finish(in->rx) : 0;

	if (rc == 0 && in->rx && receivers_rounds(in->rx) != in->round)
		rc = err_set(-EPROTO, "the data channels ended %u rounds, the main channel %u",
			     receivers_rounds(in->rx), in->round);
	if (rc == 0 && in->rx && receivers_pages(in->rx) != in->announced_pages)
		rc = err_set(-EPROTO, "the rounds announced %llu pages, %llu arrived",
			     (unsigned long long)in->announced_pages,
			     (unsigned long long)receivers_pages(in->rx));
	progress(in);
	return rc;
}

/* END: every page a running guest changed under the send came again
 * whole; a page still damaged was broken in transit. */
static int check_damage(struct incoming *in)
{
	uint64_t copies = in->pages.damaged_copies + receivers_damaged_copies(in->rx);
	/* Only a damaged copy marks a page: without one there is nothing to
	 * count (a 16 GiB bitmap takes a quarter of a millisecond, paused). */
	uint64_t left = copies ? bitmap_count(in->damaged, in->npages) : 0;

	if (left)
		return err_set(-EIO,
			       "a page arrived damaged and was not sent again (at %#llx; "
			       "%llu in all): the stream was corrupted in transit",
			       (unsigned long long)bitmap_next(in->damaged, in->npages, 0) *
				       FERRY_PAGE_SIZE,
			       (unsigned long long)left);
	if (copies)
		log_info("%llu pages changed while they were sent and came again",
			 (unsigned long long)copies);
	return 0;
}

/* Tell the source how each channel fared (RECEIVED), just before LOADED. */
static int send_account(struct incoming *in)
{
	struct rec_received_chan acct[CHANNELS_MAX] = { 0 };
	uint32_t n = in->rx ? receivers_count(in->rx) : 1;
	uint32_t head[2] = { n, 0 };
	struct iovec body[2] = { { head, sizeof(head) }, { acct, n * sizeof(acct[0]) } };

	if (in->rx)
		receivers_account(in->rx, acct);
	else
		acct[0] = (struct rec_received_chan){ .bytes = in->chan->bytes_received,
						      .batches = in->pages.batches,
						      .decompress_ns = in->pages.decompress_ns };
	return incoming_say(in, REC_RECEIVED, body, 2);
}

static int keep_state(struct incoming *in)
{
	if (in->state)
		return err_set(-EPROTO, "the stream has a second STATE record");
	in->state = malloc(in->hdr.length);
	if (!in->state)
		return err_set(-ENOMEM, "out of memory for the VM state");
	memcpy(in->state, in->buf.data, in->hdr.length);
	in->state_len = in->hdr.length;
	return 0;
}

static int keep_hashes(struct incoming *in)
{
	struct hashes_view v;
	int rc;

	if (!in->hashes)
		return err_set(-EPROTO, "HASHES arrived but CONFIG did not announce them");
	rc = rec_parse_hashes(in->buf.data, in->hdr.length, in->npages, &v);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < v.count; i++) {
		in->hashes[v.first_gfn + i] = v.hash[i];
		bitmap_set(in->hashed, v.first_gfn + i);
	}
	return 0;
}

/* Compare every page with the source's hash (but pages still to come in
 * post-copy, checked as they are placed); name the first mismatches. */
static int verify_pages(struct incoming *in)
{
	char list[200] = "";
	uint64_t bad = 0;
	size_t used = 0;

	for (uint64_t g = 0; g < in->npages; g++) {
		const void *page = mem_host(&in->vm->mem, g * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);

		if (!bitmap_test(in->hashed, g))
			return err_set(-EPROTO, "the source sent no hash for page %llu",
				       (unsigned long long)g);
		if ((in->pending && bitmap_test(in->pending, g)) ||
		    hash64(page, FERRY_PAGE_SIZE) == in->hashes[g])
			continue;
		if (bad++ < 8 && used < sizeof(list) - 24)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%#llx",
						 used ? ", " : "",
						 (unsigned long long)g * FERRY_PAGE_SIZE);
	}
	if (bad)
		return err_set(-EIO, "verify: %llu pages differ from the source's (at %s%s)",
			       (unsigned long long)bad, list, bad > 8 ? ", ..." : "");
	return 0;
}

int incoming_end_prefault(struct incoming *in)
{
	double share;
	int rc;

	if (!in->prefault)
		return 0;
	rc = prefault_stop(in->prefault, &share);
	in->prefault = NULL;
	if (rc == 0)
		log_info("guest memory faulted in ahead of the guest: %.0f%%", share * 100);
	return rc;
}

/* Restore the state and check the hashes. */
int incoming_restore(struct incoming *in)
{
	int rc;

	if (!in->state)
		return err_set(-EPROTO, "the stream ended without the VM state");
	rc = incoming_end_prefault(in);
	if (rc == 0)
		rc = state_restore(in->vm, in->state, in->state_len);
	if (rc == 0 && in->hashes)
		rc = verify_pages(in);
	return rc;
}

/* LOADED, after the channels' account (RECEIVED) unless they still
 * receive: in post-copy they do. */
int incoming_say_loaded(struct incoming *in)
{
	int rc = in->post ? 0 : send_account(in);

	if (rc == 0)
		rc = incoming_say(in, REC_LOADED, NULL, 0);
	if (rc == 0)
		in->ev->loaded(in->ev->opaque);
	return rc;
}

/* END: restore, check, answer LOADED. */
static int load_machine(struct incoming *in)
{
	int rc = incoming_restore(in);

	return rc < 0 ? rc : incoming_say_loaded(in);
}

/* COMMIT: start the guest, unless the destination refuses it now; then
 * what the guest felt of the switchover. (In post-copy this thread may not
 * touch guest memory: a page still to come would wait for this very thread
 * to read it. What the guest felt is told once every page is here.) */
static int start_guest(struct incoming *in)
{
	uint64_t beats[VM_MAX_VCPUS] = { 0 };
	struct felt f;
	int rc = in->ev->commit(in->ev->opaque);

	if (!in->post)
		felt_before(in->vm, beats);
	if (rc < 0)
		return rc;
	vm_release(in->vm);
	/* The guest runs here now, whatever happens to the answer: a source
	 * that misses it stays paused (unknown). */
	if (incoming_say(in, REC_RESUMED, NULL, 0) < 0)
		log_warn("the guest runs here, but the source did not hear RESUMED: %s", err_msg());
	if (in->post)
		return 0;
	f = felt_after(in->vm, beats, FELT_WAIT_MS);
	if (f.known)
		log_info("the guest felt a %.1f ms gap at the switchover; its longest stall during "
			 "the migration: %.1f ms",
			 f.gap_ms, f.stall_max_ms);
	in->ev->felt(in->ev->opaque, &f);
	return 0;
}

static bool carries_pages(uint32_t type)
{
	return is_page_batch(type) || type == REC_ROUND || type == REC_FORGET ||
	       type == REC_POSTCOPY;
}

/* One record before LOADED. */
static int take(struct incoming *in)
{
	if ((in->hello.config.flags & CONFIG_LOCAL) && carries_pages(in->hdr.type))
		return err_set(-EPROTO, "%s in a local migration, which sends no page",
			       rec_type_name(in->hdr.type));
	switch (in->hdr.type) {
	case REC_PAGES:
	case REC_LPAGES:
	case REC_ZPAGES:
		return incoming_load_pages(in);
	case REC_ROUND:
		return end_round(in);
	case REC_STATE:
		return keep_state(in);
	case REC_HASHES:
		return keep_hashes(in);
	case REC_FORGET:
		return incoming_forget(in);
	case REC_POSTCOPY:
		return incoming_take_pending(in);
	case REC_END: {
		int rc = end_channels(in);

		if (rc == 0)
			rc = check_damage(in);
		return rc < 0 ? rc : load_machine(in);
	}
	case REC_COMMIT:
		return err_set(-EPROTO, "COMMIT before the VM was loaded");
	}
	return err_set(-EPROTO, "unexpected %s record from the source",
		       rec_type_name(in->hdr.type));
}

/* Records until END and LOADED (or the switch to post-copy); then COMMIT
 * and only COMMIT; in post-copy, the pages still to come. */
static int receive(struct incoming *in)
{
	int rc;

	do {
		rc = incoming_next_record(in);
		if (rc == 0)
			rc = take(in);
	} while (rc == 0 && in->hdr.type != REC_END && !in->post);
	if (rc < 0)
		return rc;
	rc = incoming_next_record(in);
	if (rc < 0)
		return err_wrap(rc, "no COMMIT after LOADED");
	if (in->hdr.type != REC_COMMIT)
		return err_set(-EPROTO, "%s after LOADED; only COMMIT may follow",
			       rec_type_name(in->hdr.type));
	chan_set_deadline(in->chan, NULL, 0); /* the guest runs here: no end to its pages */
	rc = start_guest(in);
	return rc == 0 && in->post ? incoming_receive_pending(in) : rc;
}

/* Let go of the attempt; the VM too unless it runs (keep_vm). Memory it
 * borrowed goes back zeroed, or stays with the VM. */
static void discard(struct incoming *in, bool keep_vm)
{
	prefault_stop(in->prefault, NULL);
	if (in->post && !keep_vm) /* a guest lost in post-copy: its vCPUs stop first */
		vm_stop(in->vm, true, 1, "post-copy broke");
	urgent_free(in->urgent);
	postcopy_end(in->post); /* a vCPU still waiting for a page runs on zeros, to its stop */
	in->chan->waiting = NULL;
	in->chan->company = NULL;
	receivers_free(in->rx);
	page_writer_free(&in->pages);
	if (keep_vm && in->lent)
		ready_mem_keep(in->ready, &in->vm->mem);
	if (!keep_vm)
		vm_destroy(in->vm);
	if (!keep_vm && in->lent)
		ready_mem_give_back(in->ready, in->written, in->npages);
	free(in->written);
	free(in->damaged);
	free(in->state);
	free(in->hashes);
	free(in->hashed);
	free(in->pending);
	free(in->forgotten);
	wire_buf_free(&in->buf);
}

int incoming_receive(struct chan *c, int lfd, const char *uri, const struct mig_dest_opts *o,
		     struct ready_mem *ready, struct vm **shell, const struct incoming_events *ev,
		     struct vm **out)
{
	struct incoming in = {
		.o = o, .ev = ev, .lfd = lfd, .uri = uri, .chan = c, .ready = ready, .shell = shell
	};
	int rc = open_migration(&in);

	if (rc == 0)
		rc = receive(&in);
	if (rc == 0)
		*out = in.vm;
	discard(&in, rc == 0);
	chan_set_deadline(c, NULL, 0); /* an ERROR may still go */
	return rc;
}
