#include "migration/dest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "migration/apply.h"
#include "migration/receiver.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "transport/uri.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "util/size.h"
#include "vm/prefault.h"
#include "vm/state.h"

#define ACCEPT_POLL_MS 200

struct incoming {
	const struct mig_dest_opts *o;
	int lfd;
	const char *uri;
	struct mig_dest_stats *stats;
	struct chan chan;
	struct wire_buf buf;
	struct rec_header hdr;
	struct rec_config cfg;
	struct vm *vm;
	uint64_t npages;
	uint8_t *state; /* STATE body, kept until END */
	size_t state_len;
	uint64_t *hashes;  /* HASHES, one per page, when verifying */
	uint64_t *hashed;  /* bitmap of pages with a hash */
	uint64_t *written; /* pages the stream wrote; the others are still zero */
	struct prefault *prefault;
	struct rec_channels channels; /* count 0: pages come on the main channel */
	struct receivers *rx;	      /* the data channels */
	struct page_writer pages;     /* the main channel's pages */
	uint32_t round;		      /* rounds ended on the main channel */
	uint64_t round_start_pages;   /* main-channel pages before this round */
	uint64_t announced_pages;     /* by the ROUND records so far */
};

static int next_record(struct incoming *in)
{
	int rc = wire_recv(&in->chan, &in->hdr, &in->buf);

	/* A data channel that failed broke this read on purpose: its reason
	 * is the one to tell. */
	if (rc < 0 && in->rx && receivers_error(in->rx) < 0)
		rc = receivers_error(in->rx);
	if (rc == 0 && in->stats)
		in->stats->bytes_received = in->chan.bytes_received;
	return rc;
}

static int refuse_config(const struct incoming *in)
{
	char want[32], limit[32];

	if (in->o->mem_limit && in->cfg.mem_bytes > in->o->mem_limit)
		return err_set(-E2BIG, "guest memory %s exceeds this destination's limit of %s",
			       size_format(in->cfg.mem_bytes, want, sizeof(want)),
			       size_format(in->o->mem_limit, limit, sizeof(limit)));
	return 0;
}

static int read_channels(struct incoming *in)
{
	struct uri u;
	int rc = next_record(in);

	if (rc == 0 && in->hdr.type != REC_CHANNELS)
		rc = err_set(-EPROTO, "CONFIG announced CHANNELS, but %s came",
			     rec_type_name(in->hdr.type));
	if (rc == 0)
		rc = rec_parse_channels(in->buf.data, in->hdr.length, &in->channels);
	if (rc == 0 && uri_parse(in->uri, &u) == 0 && u.kind == URI_FD)
		rc = err_set(-EPROTO, "the source wants %u data channels, but %s is one connection",
			     in->channels.count, in->uri);
	return rc;
}

static int join_channels(struct incoming *in)
{
	int rc = receivers_accept(in->lfd, in->uri, &in->channels, (int)in->o->io_timeout_ms,
				  &in->rx);

	if (rc == 0)
		rc = receivers_start(in->rx, &in->vm->mem, in->written, &in->chan);
	if (rc == 0)
		log_info("%u data channels joined", in->channels.count);
	return rc;
}

/* Header, CONFIG (and CHANNELS, whose data channels then join), then a VM
 * of that shape. Its memory is faulted in by a
 * background thread while the pages arrive (vm/prefault.h), stopped at END. */
static int handshake(struct incoming *in)
{
	struct stream_header h;
	struct vm_config vc;
	int rc = chan_read(&in->chan, &h, sizeof(h));

	if (rc == 0)
		rc = stream_header_check(&h);
	if (rc == 0)
		rc = next_record(in);
	if (rc == 0 && in->hdr.type != REC_CONFIG)
		rc = err_set(-EPROTO, "the stream starts with %s, not CONFIG",
			     rec_type_name(in->hdr.type));
	if (rc == 0)
		rc = rec_parse_config(in->buf.data, in->hdr.length, &in->cfg);
	if (rc == 0)
		rc = refuse_config(in);
	if (rc == 0 && in->cfg.flags & CONFIG_CHANNELS)
		rc = read_channels(in);
	if (rc < 0)
		return rc;
	vc = (struct vm_config){ .mem_bytes = in->cfg.mem_bytes,
				 .vcpus = in->cfg.vcpus,
				 .mem_backend = in->o->mem_backend,
				 .dirty_backend = in->o->dirty_backend };
	rc = vm_create(&vc, &in->vm);
	if (rc < 0)
		return rc;
	in->npages = in->cfg.mem_bytes / STREAM_PAGE_SIZE;
	in->written = calloc(BITMAP_WORDS(in->npages), 8);
	if (!in->written)
		return err_set(-ENOMEM, "out of memory");
	rc = page_writer_init(&in->pages, &in->vm->mem, in->written);
	if (rc == 0 && in->channels.count)
		rc = join_channels(in);
	if (rc < 0)
		return rc;
	if (prefault_start(&in->vm->mem, &in->prefault) < 0)
		log_warn("guest memory faults in on demand: %s", err_msg());
	rc = wire_send_empty(&in->chan, REC_READY);
	if (rc < 0)
		return rc;
	if (in->cfg.flags & CONFIG_VERIFY) {
		in->hashes = calloc(in->npages, 8);
		in->hashed = calloc((in->npages + 63) / 64, 8);
		if (!in->hashes || !in->hashed)
			return err_set(-ENOMEM, "out of memory for page hashes");
	}
	return 0;
}

static void count_pages(struct incoming *in)
{
	if (in->stats)
		in->stats->pages_received = in->pages.pages + receivers_pages(in->rx);
}

static int load_pages(struct incoming *in)
{
	int rc;

	if (in->rx)
		return err_set(-EPROTO,
			       "%s on the main channel while data channels carry the pages",
			       rec_type_name(in->hdr.type));
	if (in->state)
		return err_set(-EPROTO, "pages after the VM state");
	rc = page_writer_apply(&in->pages, in->hdr.type, in->buf.data, in->hdr.length, in->round);
	count_pages(in);
	return rc;
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
	if (in->stats)
		in->stats->rounds++;
	count_pages(in);
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
	count_pages(in);
	return rc;
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
		acct[0] = (struct rec_received_chan){ .bytes = in->chan.bytes_received,
						      .batches = in->pages.batches,
						      .decompress_ns = in->pages.decompress_ns };
	return wire_send(&in->chan, REC_RECEIVED, body, 2);
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
		in->hashed[(v.first_gfn + i) / 64] |= 1ull << ((v.first_gfn + i) % 64);
	}
	return 0;
}

/* Compare every page with the source's hash; name the first mismatches. */
static int verify_pages(struct incoming *in)
{
	char list[200] = "";
	uint64_t bad = 0;
	size_t used = 0;

	for (uint64_t g = 0; g < in->npages; g++) {
		const void *page = mem_host(&in->vm->mem, g * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE);

		if (!(in->hashed[g / 64] >> (g % 64) & 1))
			return err_set(-EPROTO, "the source sent no hash for page %llu",
				       (unsigned long long)g);
		if (XXH3_64bits(page, STREAM_PAGE_SIZE) == in->hashes[g])
			continue;
		if (bad++ < 8 && used < sizeof(list) - 24)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%#llx",
						 used ? ", " : "",
						 (unsigned long long)g * STREAM_PAGE_SIZE);
	}
	if (bad)
		return err_set(-EIO, "verify: %llu pages differ from the source's (at %s%s)",
			       (unsigned long long)bad, list, bad > 8 ? ", ..." : "");
	return 0;
}

/* END: restore the state, check the hashes, answer LOADED. */
static int load_machine(struct incoming *in)
{
	int rc;

	if (!in->state)
		return err_set(-EPROTO, "the stream ended without the VM state");
	log_info("guest memory faulted in ahead of the guest: %.0f%%",
		 prefault_stop(in->prefault) * 100);
	in->prefault = NULL;
	rc = state_restore(in->vm, in->state, in->state_len);
	if (rc == 0 && in->hashes)
		rc = verify_pages(in);
	if (rc == 0)
		rc = send_account(in);
	if (rc == 0)
		rc = wire_send_empty(&in->chan, REC_LOADED);
	return rc;
}

/* Read records until COMMIT; then resume. */
static int receive(struct incoming *in)
{
	bool loaded = false;
	int rc;

	for (;;) {
		rc = next_record(in);
		if (rc < 0)
			return loaded ? err_wrap(rc, "no COMMIT after LOADED") : rc;
		if (loaded && in->hdr.type != REC_COMMIT)
			return err_set(-EPROTO, "%s after LOADED; only COMMIT may follow",
				       rec_type_name(in->hdr.type));
		switch (in->hdr.type) {
		case REC_PAGES:
		case REC_ZPAGES:
			rc = load_pages(in);
			break;
		case REC_ROUND:
			rc = end_round(in);
			break;
		case REC_STATE:
			rc = keep_state(in);
			break;
		case REC_HASHES:
			rc = keep_hashes(in);
			break;
		case REC_END:
			rc = end_channels(in);
			if (rc == 0)
				rc = load_machine(in);
			loaded = rc == 0;
			break;
		case REC_COMMIT:
			if (!loaded)
				return err_set(-EPROTO, "COMMIT before the VM was loaded");
			rc = vm_start(in->vm);
			if (rc < 0)
				return rc;
			/* The guest runs here now, whatever happens to the answer:
			 * a source that misses it stays paused (unknown). */
			if (wire_send_empty(&in->chan, REC_RESUMED) < 0)
				log_warn(
					"the guest runs here, but the source did not hear RESUMED: %s",
					err_msg());
			return 0;
		default:
			rc = err_set(-EPROTO, "unexpected %s record from the source",
				     rec_type_name(in->hdr.type));
		}
		if (rc < 0)
			return rc;
	}
}

static void discard(struct incoming *in, bool keep_vm)
{
	prefault_stop(in->prefault);
	in->prefault = NULL;
	receivers_free(in->rx);
	in->rx = NULL;
	page_writer_free(&in->pages);
	in->channels.count = 0;
	in->round = 0;
	in->round_start_pages = in->announced_pages = 0;
	free(in->written);
	in->written = NULL;
	if (!keep_vm)
		vm_destroy(in->vm);
	in->vm = NULL;
	free(in->state);
	free(in->hashes);
	free(in->hashed);
	in->state = NULL;
	in->hashes = in->hashed = NULL;
	wire_buf_free(&in->buf);
	chan_close(&in->chan);
}

static int wait_connection(struct incoming *in, int lfd, const char *uri)
{
	for (;;) {
		int rc = chan_accept(&in->chan, lfd, uri, ACCEPT_POLL_MS);

		if (rc != -ETIMEDOUT)
			return rc;
		if (in->o->stop && *in->o->stop)
			return err_set(-EINTR, "stopped while waiting for a migration");
	}
}

static void set_status(struct incoming *in, enum mig_status s)
{
	if (in->stats)
		in->stats->status = s;
}

int mig_dest_listen(const char *uri)
{
	return chan_listen(uri);
}

int mig_dest_run(int lfd, const char *uri, const struct mig_dest_opts *o,
		 struct mig_dest_stats *stats, struct vm **out)
{
	struct incoming in = { .o = o, .stats = stats, .lfd = lfd, .uri = uri };
	struct uri u;
	int rc;
	bool connected_fd; /* fd:N is one connection: it is the channel, used once */

	connected_fd = uri_parse(uri, &u) == 0 && u.kind == URI_FD;
	log_info("waiting for a migration on %s", uri);
	for (;;) {
		set_status(&in, MIG_SETUP);
		rc = wait_connection(&in, lfd, uri);
		if (rc < 0)
			break;
		in.chan.timeout_ms = (int)o->io_timeout_ms;
		if (stats)
			*stats = (struct mig_dest_stats){ .status = MIG_ACTIVE };
		rc = handshake(&in);
		if (rc == 0)
			rc = receive(&in);
		if (rc == 0) {
			*out = in.vm;
			set_status(&in, MIG_COMPLETED);
			discard(&in, true);
			break;
		}
		log_err("incoming migration failed: %s; the partial VM is discarded", err_msg());
		if (stats)
			snprintf(stats->reason, sizeof(stats->reason), "%s", err_msg());
		set_status(&in, MIG_FAILED);
		wire_send_error(&in.chan, rc, err_msg());
		discard(&in, false);
		if (o->once || connected_fd || (o->stop && *o->stop))
			break;
	}
	if (!connected_fd)
		close(lfd);
	return rc;
}
