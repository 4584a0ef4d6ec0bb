#include "migration/recv/incoming.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/handshake.h"
#include "migration/recv/apply.h"
#include "migration/recv/postcopy.h"
#include "migration/recv/receiver.h"
#include "migration/recv/urgent.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "transport/uri.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"
#include "util/time.h"
#include "vm/guest_status.h"
#include "vm/prefault.h"
#include "vm/state.h"
#include "vm/uffd.h"

/* How long a running vCPU may take to beat after the guest starts here. */
#define FELT_WAIT_MS 1000

struct incoming {
	const struct mig_dest_opts *o;
	const struct incoming_events *ev;
	int lfd;
	const char *uri;
	struct chan *chan;
	struct wire_buf buf;
	struct rec_header hdr;
	struct handshake hello;
	struct vm *vm;
	struct ready_mem *ready; /* memory made ready before the source came */
	bool lent;		 /* the VM borrows it */
	uint64_t npages;
	uint8_t *state; /* STATE body, kept until END */
	size_t state_len;
	uint64_t *hashes;  /* HASHES, one per page, when verifying */
	uint64_t *hashed;  /* bitmap of pages with a hash */
	uint64_t *written; /* pages the stream wrote; the others are still zero */
	uint64_t *damaged; /* pages whose newest copy failed its hash (apply.h) */
	uint32_t waiting;  /* channels waiting for the link (chan.waiting) */
	uint64_t heard;	   /* bytes all channels received (chan.company) */
	struct prefault *prefault;
	struct receivers *rx;	    /* the data channels */
	struct page_writer pages;   /* the main channel's pages */
	uint32_t round;		    /* rounds ended on the main channel */
	uint64_t round_start_pages; /* main-channel pages before this round */
	uint64_t announced_pages;   /* by the ROUND records so far */
	uint64_t *pending;	    /* POSTCOPY: pages still to come, until the switch */
	uint64_t pending_next;	    /* where the next POSTCOPY record starts */
	uint32_t pending_round;	    /* the round they come in */
	struct postcopy *post;	    /* after the switch to post-copy */
	struct urgent *urgent;	    /* post-copy's asked-for pages */
	uint64_t recover_asked_ns;  /* migrate-recover took the link up again */
};

/* A record on the main channel; after the switch to post-copy the fault
 * thread writes there too. */
static int say(struct incoming *in, uint32_t type, const struct iovec *body, int n)
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
	return rc;
}

static bool is_page_batch(uint32_t type)
{
	return type == REC_PAGES || type == REC_LPAGES || type == REC_ZPAGES;
}

/* The next record; the body of a page batch is left to load_pages. */
static int next_record(struct incoming *in)
{
	int rc = wire_recv_header(in->chan, &in->hdr, &in->buf);

	if (rc == 0 && !is_page_batch(in->hdr.type))
		rc = wire_recv_body(in->chan, &in->hdr, &in->buf);
	return channel_error(in, rc);
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
	if ((cfg->flags & CONFIG_POSTCOPY) && uffd_supported(in->o->mem_backend) < 0)
		return err_wrap(-EOPNOTSUPP, "the source may switch to post-copy, but here");
	if ((cfg->flags & CONFIG_POSTCOPY) && uri_parse(in->uri, &u) == 0 && u.kind == URI_FD)
		return err_set(-EPROTO,
			       "the source may switch to post-copy, whose urgent pages need a "
			       "connection of their own, but %s is one connection",
			       in->uri);
	if (in->hello.channels.count && uri_parse(in->uri, &u) == 0 && u.kind == URI_FD)
		return err_set(-EPROTO,
			       "the source wants %u data channels, but %s is one connection",
			       in->hello.channels.count, in->uri);
	return 0;
}

/* A VM of the shape CONFIG gives, and what receiving into it needs. Its
 * memory is the destination's ready memory when there is enough of it. */
static int build_vm(struct incoming *in)
{
	struct vm_config vc = { .mem_bytes = in->hello.config.mem_bytes,
				.vcpus = in->hello.config.vcpus,
				.mem_backend = in->o->mem_backend,
				.dirty_backend = in->o->dirty_backend };
	int rc;

	in->lent = ready_mem_lend(in->ready, vc.mem_bytes, &vc.lend_from) == 0;
	rc = vm_create(&vc, &in->vm);

	if (rc < 0)
		return rc;
	in->npages = vc.mem_bytes / FERRY_PAGE_SIZE;
	in->written = calloc(BITMAP_WORDS(in->npages), 8);
	in->damaged = calloc(BITMAP_WORDS(in->npages), 8);
	if (!in->written || !in->damaged)
		return err_set(-ENOMEM, "out of memory");
	if (in->hello.config.flags & CONFIG_VERIFY) {
		in->hashes = calloc(in->npages, 8);
		in->hashed = calloc(BITMAP_WORDS(in->npages), 8);
		if (!in->hashes || !in->hashed)
			return err_set(-ENOMEM, "out of memory for page hashes");
	}
	return page_writer_init(&in->pages, &in->vm->mem, in->written, in->damaged);
}

static int join_channels(struct incoming *in)
{
	int rc = receivers_accept(in->lfd, in->uri, &in->hello.channels, (int)in->o->io_timeout_ms,
				  in->chan->cancel, &in->rx);

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

/* Memory that was not made ready is faulted in by a background thread
 * while the channels wait for the link (vm/prefault.h), stopped at END; or
 * on demand. */
static void start_prefault(struct incoming *in)
{
	struct prefault_yield yield = { receiving, in };

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

/* The opening, the VM, the data channels; then READY. */
static int open_migration(struct incoming *in)
{
	int rc = handshake_receive(in->chan, &in->buf, &in->hello);

	if (rc == 0) {
		progress(in);
		rc = refuse_hello(in);
	}
	if (rc == 0)
		rc = build_vm(in);
	if (rc == 0 && in->hello.channels.count)
		rc = join_channels(in);
	if (rc < 0)
		return rc;
	start_prefault(in);
	return wire_send_empty(in->chan, REC_READY);
}

static int load_pages(struct incoming *in)
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
	uint64_t left = bitmap_count(in->damaged, in->npages);

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
	return say(in, REC_RECEIVED, body, 2);
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

/* Restore the state and check the hashes. */
static int restore_machine(struct incoming *in)
{
	int rc;

	if (!in->state)
		return err_set(-EPROTO, "the stream ended without the VM state");
	if (in->prefault)
		log_info("guest memory faulted in ahead of the guest: %.0f%%",
			 prefault_stop(in->prefault) * 100);
	in->prefault = NULL;
	rc = state_restore(in->vm, in->state, in->state_len);
	if (rc == 0 && in->hashes)
		rc = verify_pages(in);
	return rc;
}

/* LOADED, after the channels' account (RECEIVED) unless they still
 * receive: in post-copy they do. */
static int say_loaded(struct incoming *in)
{
	int rc = in->post ? 0 : send_account(in);

	if (rc == 0)
		rc = say(in, REC_LOADED, NULL, 0);
	if (rc == 0)
		in->ev->loaded(in->ev->opaque);
	return rc;
}

/* END: restore, check, answer LOADED. */
static int load_machine(struct incoming *in)
{
	int rc = restore_machine(in);

	return rc < 0 ? rc : say_loaded(in);
}

/* Post-copy's urgent channel: the source joined it before POSTCOPY (or
 * RECOVER) on lfd, listening on uri. Quiet while nothing is asked for; the
 * other channels keep it company. */
static int accept_urgent(struct incoming *in, int lfd, const char *uri, struct chan *c)
{
	int rc = chan_accept(c, lfd, uri, (int)in->o->io_timeout_ms, in->chan->cancel);

	if (rc == 0) {
		c->timeout_ms = (int)in->o->io_timeout_ms;
		c->company = in->chan->company = &in->heard;
		rc = handshake_check_urgent(c, &in->hello.channels);
		if (rc < 0)
			chan_close(c);
	}
	return rc < 0 ? err_wrap(rc, "the urgent channel") : 0;
}

/* The last POSTCOPY record: every page but the pending ones is the
 * source's as it paused, once the data channels have ended the rounds
 * before. Restore and check what is here (nothing touches a pending page
 * before it is watched), watch the rest, answer LOADED. */
static int switch_to_postcopy(struct incoming *in)
{
	int rc = in->rx ? receivers_wait_rounds(in->rx, in->round, (int)in->o->io_timeout_ms) : 0;
	struct chan urgent;

	if (rc == 0 && in->pending_round != in->round)
		rc = err_set(-EPROTO, "POSTCOPY's pages come in round %u while round %u is next",
			     in->pending_round, in->round);
	if (rc == 0)
		rc = restore_machine(in);
	if (rc == 0)
		rc = accept_urgent(in, in->lfd, in->uri, &urgent);
	if (rc < 0)
		return rc;
	rc = postcopy_begin(in->vm, in->pending, in->hashes, in->chan, &in->post);
	in->pending = NULL; /* post-copy's now */
	if (rc == 0)
		rc = urgent_start(&urgent, &in->vm->mem, in->post, in->written, in->damaged,
				  in->round, in->chan, &in->urgent);
	else
		chan_close(&urgent);
	if (rc < 0)
		return rc;
	in->pages.place = in->post;
	if (in->rx)
		receivers_place(in->rx, in->post);
	return say_loaded(in);
}

/* POSTCOPY: the pages still to come, a record at a time; the last one
 * switches. */
static int take_pending(struct incoming *in)
{
	struct postcopy_view v;
	int rc;

	if (!(in->hello.config.flags & CONFIG_POSTCOPY))
		return err_set(-EPROTO, "POSTCOPY arrived but CONFIG did not allow post-copy");
	rc = rec_parse_postcopy(in->buf.data, in->hdr.length, in->npages, in->pending_next, &v);
	if (rc < 0)
		return rc;
	if (!in->pending && !(in->pending = calloc(BITMAP_WORDS(in->npages), 8)))
		return err_set(-ENOMEM, "out of memory for post-copy");
	memcpy(in->pending + v.first_gfn / 64, v.bits, 8 * ((v.count + 63ull) / 64));
	in->pending_next += v.count;
	in->pending_round = v.round;
	return in->pending_next == in->npages ? switch_to_postcopy(in) : 0;
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
	if (rc == 0)
		rc = vm_start(in->vm);
	if (rc < 0)
		return rc;
	/* The guest runs here now, whatever happens to the answer: a source
	 * that misses it stays paused (unknown). */
	if (say(in, REC_RESUMED, NULL, 0) < 0)
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

/* One record before LOADED. */
static int take(struct incoming *in)
{
	switch (in->hdr.type) {
	case REC_PAGES:
	case REC_LPAGES:
	case REC_ZPAGES:
		return load_pages(in);
	case REC_ROUND:
		return end_round(in);
	case REC_STATE:
		return keep_state(in);
	case REC_HASHES:
		return keep_hashes(in);
	case REC_POSTCOPY:
		return take_pending(in);
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

/* Pages flow again after a recovery: say how soon. */
static void note_flowing(struct incoming *in)
{
	uint64_t t = postcopy_flowing_ns(in->post);

	if (!in->recover_asked_ns || !t)
		return;
	in->ev->recovered(in->ev->opaque, (double)(t - in->recover_asked_ns) / 1e6);
	in->recover_asked_ns = 0;
}

/* The guest running: pages (asked for, or pushed on the main channel) until
 * END, which follows PLACED; or the link breaks. */
static int receive_until_end(struct incoming *in)
{
	int rc = 0;

	while (rc == 0 && in->hdr.type != REC_END) {
		rc = next_record(in);
		if (rc == 0 && is_page_batch(in->hdr.type))
			rc = load_pages(in);
		else if (rc == 0 && in->hdr.type != REC_END)
			rc = err_set(-EPROTO, "unexpected %s record during post-copy",
				     rec_type_name(in->hdr.type));
		if (rc == 0)
			rc = postcopy_error(in->post);
		note_flowing(in);
	}
	if (rc < 0 && urgent_error(in->urgent) < 0) /* it broke this channel's read */
		rc = urgent_error(in->urgent);
	if (rc == 0)
		rc = urgent_finish(in->urgent);
	if (rc == 0 && in->rx)
		rc = receivers_finish(in->rx);
	return rc;
}

/* The link broke: let go of every channel. The guest runs on; a vCPU that
 * touches a missing page waits. */
static void drop_links(struct incoming *in)
{
	postcopy_detach(in->post);
	urgent_free(in->urgent);
	in->urgent = NULL;
	receivers_free(in->rx);
	in->rx = NULL;
	in->chan->company = NULL;
	chan_close(in->chan);
	in->hdr.type = 0;
}

/* A source that comes back to ask->uri: this migration's (RESUME), told
 * which pages are still to come (RECOVER); its urgent channel joins. The
 * rest comes on the main channel. */
static int reconnect(struct incoming *in, const struct recover_ask *ask)
{
	struct chan urgent;
	int rc = chan_accept(in->chan, ask->lfd, ask->uri, ask->wait_ms, in->chan->cancel);

	if (rc < 0)
		return rc;
	in->chan->timeout_ms = (int)in->o->io_timeout_ms;
	rc = handshake_check_resume(in->chan, in->hello.id, in->hello.channels.token);
	if (rc == 0)
		rc = wire_send_pending(in->chan, REC_RECOVER, postcopy_pending(in->post),
				       in->npages, in->round);
	if (rc == 0)
		rc = accept_urgent(in, ask->lfd, ask->uri, &urgent);
	if (rc < 0) {
		handshake_refuse(in->chan, rc, err_msg());
		chan_close(in->chan);
		return rc;
	}
	rc = urgent_start(&urgent, &in->vm->mem, in->post, in->written, in->damaged, in->round,
			  in->chan, &in->urgent);
	return rc == 0 ? postcopy_attach(in->post, in->chan) : rc;
}

/* Wait for migrate-recover and the source, as many tries as it takes,
 * until the link is back or the guest is given up. */
static int recover(struct incoming *in)
{
	char why[512];
	struct recover_ask ask = { .lfd = -1 };
	int rc;

	snprintf(why, sizeof(why), "%s", err_msg());
	log_warn("post-copy: the link to the source broke (%s); the guest runs on here, and a "
		 "vCPU that needs a page still to come waits: migrate-recover takes it up again",
		 why);
	drop_links(in);
	do {
		rc = in->ev->paused(in->ev->opaque, why, &ask);
		if (rc == 0)
			rc = reconnect(in, &ask);
		if (ask.own_lfd && ask.lfd >= 0)
			close(ask.lfd);
		ask.lfd = -1;
		if (rc < 0 && rc != -ECANCELED) {
			snprintf(why, sizeof(why), "recovery on %s failed: %s", ask.uri, err_msg());
			log_warn("post-copy: %s", why);
		}
	} while (rc < 0 && rc != -ECANCELED);
	if (rc == 0) {
		in->recover_asked_ns = ask.asked_ns;
		log_info("post-copy: the source is back on %s", ask.uri);
	}
	if (rc == 0 && !postcopy_stats(in->post).left) { /* no page to flow: back is all */
		in->ev->recovered(in->ev->opaque, (double)(time_now_ns() - ask.asked_ns) / 1e6);
		in->recover_asked_ns = 0;
	}
	return rc;
}

/* After the switch to post-copy, the guest running: the pages still to
 * come, through as many broken links as migrate-recover mends. */
static int receive_pending(struct incoming *in)
{
	struct postcopy_stats st;
	struct felt f = { 0 };
	int rc = postcopy_running(in->post);

	if (rc == 0)
		rc = receive_until_end(in);
	while (rc < 0 && chan_broken(rc) && postcopy_error(in->post) == 0) {
		rc = recover(in);
		if (rc == 0)
			rc = receive_until_end(in);
	}
	st = postcopy_stats(in->post);
	if (rc == 0 && st.left)
		rc = err_set(-EPROTO, "the source ended post-copy with %llu pages still to come",
			     (unsigned long long)st.left);
	if (rc < 0)
		return err_wrap(rc, "post-copy broke after the guest started here, and without "
				    "the pages still to come it is lost");
	f.stall_max_ms = guest_stall_max_ms(in->vm); /* every page is here: no fault */
	f.stall_known = true;
	log_info("post-copy: %llu pages came after the switch, %llu of them asked for "
		 "(%llu faults); the wait for one: p50 %.3f ms, p99 %.3f ms, max %.3f ms; "
		 "the guest's longest stall: %.1f ms",
		 (unsigned long long)st.pending, (unsigned long long)st.asked,
		 (unsigned long long)st.faults, latency_percentile_ns(&st.latency, 0.5) / 1e6,
		 latency_percentile_ns(&st.latency, 0.99) / 1e6, st.latency.max_ns / 1e6,
		 f.stall_max_ms);
	in->ev->felt(in->ev->opaque, &f);
	return 0;
}

/* Records until END and LOADED (or the switch to post-copy); then COMMIT
 * and only COMMIT; in post-copy, the pages still to come. */
static int receive(struct incoming *in)
{
	int rc;

	do {
		rc = next_record(in);
		if (rc == 0)
			rc = take(in);
	} while (rc == 0 && in->hdr.type != REC_END && !in->post);
	if (rc < 0)
		return rc;
	rc = next_record(in);
	if (rc < 0)
		return err_wrap(rc, "no COMMIT after LOADED");
	if (in->hdr.type != REC_COMMIT)
		return err_set(-EPROTO, "%s after LOADED; only COMMIT may follow",
			       rec_type_name(in->hdr.type));
	rc = start_guest(in);
	return rc == 0 && in->post ? receive_pending(in) : rc;
}

/* Let go of the attempt; the VM too unless it runs (keep_vm). Memory it
 * borrowed goes back zeroed, or stays with the VM. */
static void discard(struct incoming *in, bool keep_vm)
{
	prefault_stop(in->prefault);
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
	wire_buf_free(&in->buf);
}

int incoming_receive(struct chan *c, int lfd, const char *uri, const struct mig_dest_opts *o,
		     struct ready_mem *ready, const struct incoming_events *ev, struct vm **out)
{
	struct incoming in = {
		.o = o, .ev = ev, .lfd = lfd, .uri = uri, .chan = c, .ready = ready
	};
	int rc = open_migration(&in);

	if (rc == 0)
		rc = receive(&in);
	if (rc == 0)
		*out = in.vm;
	discard(&in, rc == 0);
	return rc;
}
