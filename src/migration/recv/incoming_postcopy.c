#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/recv/incoming_internal.h"
#include "migration/recv/postcopy.h"
#include "migration/recv/receiver.h"
#include "migration/recv/urgent.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/guest_status.h"
#include "vm/prefault.h"

/* Post-copy's urgent channel: the source joined it before POSTCOPY (or
 * RECOVER) on lfd, listening on uri. Quiet while nothing is asked for; the
 * other channels keep it company. */
static int accept_urgent(struct incoming *in, int lfd, const char *uri, struct chan *c)
{
	int rc = chan_accept(c, lfd, uri, (int)in->o->io_timeout_ms, in->chan->cancel);

	if (rc == 0) {
		c->timeout_ms = (int)in->o->io_timeout_ms;
		c->company = in->chan->company = &in->heard;
		rc = chan_start_tls(c, in->o->tls, in->peer);
		if (rc == 0)
			rc = handshake_check_urgent(c, &in->hello.channels);
		if (rc < 0)
			chan_close(c);
	}
	return rc < 0 ? err_wrap(rc, "the urgent channel") : 0;
}

/* Every page FORGET named must still be to come: the guest would find it
 * empty otherwise. */
static int check_forgotten(const struct incoming *in)
{
	for (uint64_t w = 0; in->forgotten && w < BITMAP_WORDS(in->npages); w++) {
		uint64_t stray = in->forgotten[w] & ~in->pending[w];

		if (stray)
			return err_set(
				-EPROTO, "FORGET named page %llu, which POSTCOPY does not",
				(unsigned long long)(w * 64 + (uint64_t)__builtin_ctzll(stray)));
	}
	return 0;
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
		rc = check_forgotten(in);
	if (rc == 0)
		rc = incoming_restore(in);
	if (rc == 0)
		rc = accept_urgent(in, in->lfd, in->uri, &urgent);
	if (rc < 0)
		return rc;
	rc = postcopy_begin(in->vm, in->pending, in->forgotten, in->hashes, in->chan, &in->post);
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
	return incoming_say_loaded(in);
}

/* The last FORGET: once the data channels have ended the rounds before
 * (nothing writes guest memory after), forget; no background fault-in
 * may bring the pages back. */
static int forget_now(struct incoming *in)
{
	int rc = in->rx ? receivers_wait_rounds(in->rx, in->round, (int)in->o->io_timeout_ms) : 0;
	uint64_t t0 = time_now_ns();

	if (rc == 0)
		rc = incoming_end_prefault(in);
	if (rc < 0)
		return rc;
	mem_forget_set(&in->vm->mem, in->forgotten, NULL, in->npages);
	log_info("post-copy: %llu pages that are still to come forgotten ahead of the switch, "
		 "in %.1f ms",
		 (unsigned long long)bitmap_count(in->forgotten, in->npages), time_ms_since(t0));
	return incoming_say(in, REC_FORGOTTEN, NULL, 0);
}

typedef int (*pending_parser)(const void *body, uint32_t len, uint64_t npages, uint64_t next_gfn,
			      struct postcopy_view *out);

/* A POSTCOPY or FORGET record (name; parse) into *bits, made with the
 * first, which *next says how far they cover: 1 once it is every page. */
static int take_bitmap(struct incoming *in, const char *name, pending_parser parse, uint64_t **bits,
		       uint64_t *next, struct postcopy_view *v)
{
	int rc;

	if (!(in->hello.config.flags & CONFIG_POSTCOPY))
		return err_set(-EPROTO, "%s arrived but CONFIG did not allow post-copy", name);
	rc = parse(in->buf.data, in->hdr.length, in->npages, *next, v);
	if (rc < 0)
		return rc;
	if (!*bits && !(*bits = calloc(BITMAP_WORDS(in->npages), 8)))
		return err_set(-ENOMEM, "out of memory for post-copy");
	rec_pending_copy(*bits, v);
	*next += v->count;
	return *next == in->npages;
}

int incoming_forget(struct incoming *in)
{
	struct postcopy_view v;
	int rc = take_bitmap(in, "FORGET", rec_parse_forget, &in->forgotten, &in->forget_next, &v);

	return rc == 1 ? forget_now(in) : rc;
}

int incoming_take_pending(struct incoming *in)
{
	struct postcopy_view v;
	int rc = take_bitmap(in, "POSTCOPY", rec_parse_postcopy, &in->pending, &in->pending_next,
			     &v);

	if (rc >= 0)
		in->pending_round = v.round;
	return rc == 1 ? switch_to_postcopy(in) : rc;
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
		rc = incoming_next_record(in);
		if (rc == 0 && is_page_batch(in->hdr.type))
			rc = incoming_load_pages(in);
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

/* The data channels join again, as many as at the start. */
static int rejoin_channels(struct incoming *in, const struct recover_ask *ask)
{
	int rc =
		receivers_accept(ask->lfd, ask->uri, &in->hello.channels, (int)in->o->io_timeout_ms,
				 in->chan->cancel, in->o->tls, in->peer, &in->rx);

	if (rc == 0) {
		receivers_take_up(in->rx, in->post, in->round);
		rc = receivers_start(in->rx, &in->vm->mem, in->written, in->damaged, &in->waiting,
				     in->chan);
	}
	return rc < 0 ? err_wrap(rc, "the data channels") : 0;
}

/* A source that comes back to ask->uri: this migration's (RESUME), told
 * which pages are still to come (RECOVER); its urgent channel and data
 * channels join. */
static int reconnect(struct incoming *in, const struct recover_ask *ask)
{
	struct chan urgent;
	int rc = chan_accept(in->chan, ask->lfd, ask->uri, ask->wait_ms, in->chan->cancel);

	if (rc < 0)
		return rc;
	in->chan->timeout_ms = (int)in->o->io_timeout_ms;
	rc = chan_start_tls(in->chan, in->o->tls, in->peer);
	if (rc == 0)
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
	if (rc == 0 && in->hello.channels.count)
		rc = rejoin_channels(in, ask);
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
		note_flowing(in);
	}
	return rc;
}

/* After the switch to post-copy, the guest running: the pages still to
 * come, through as many broken links as migrate-recover mends. */
int incoming_receive_pending(struct incoming *in)
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
