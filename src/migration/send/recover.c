/* The source's side of a broken post-copy taken up again (docs/migration.md,
 * "Recovery"). The guest stays paused here with every page, and runs on
 * the destination, which waits too (migrate-recover). migrate --resume
 * names where the destination listens: RESUME there, RECOVER back (the
 * pages it still lacks, whatever was sent before), the urgent channel
 * and the data channels join, and post-copy goes on. A try that fails
 * leaves both sides paused for the next. */
#include "migration/send/recover.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migration/send/source_internal.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"

/* Let go of the broken link, counting what it carried. */
static void drop_links(struct mig_source *m)
{
	if (m->pipe) {
		source_progress(m, bitmap_count(m->dirty, m->npages));
		m->sent_before = source_sample(m).bytes;
	}
	pipeline_close(m->pipe);
	m->pipe = NULL;
	chan_close(&m->chan);
	chan_close(&m->urgent);
}

/* Paused: wait for migrate --resume (its URI into uri), a cancel, or the
 * window's end (-ECANCELED). */
static int await_resume(struct mig_source *m, const char *why, uint64_t deadline_ns, char *uri,
			size_t len)
{
	struct timespec until = time_deadline_ts(deadline_ns);
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	source_note_status(m, MIG_POSTCOPY_PAUSED); /* until migrate --resume: recover */
	snprintf(m->stats.reason, sizeof(m->stats.reason),
		 "post-copy's link broke (%.200s): the guest runs on the destination and waits for "
		 "its last pages, which are here; take it up again with migrate-recover URI on "
		 "the destination, then migrate --resume --to URI here",
		 why);
	m->resume_uri[0] = '\0';
	while (!m->resume_uri[0] && !m->cancelled && rc != ETIMEDOUT)
		rc = deadline_ns ? pthread_cond_timedwait(&m->resume_asked, &m->lock, &until)
				 : pthread_cond_wait(&m->resume_asked, &m->lock);
	if (m->cancelled)
		rc = err_set(-ECANCELED, "given up by migrate-cancel");
	else if (!m->resume_uri[0])
		rc = err_set(-ECANCELED, "no migrate --resume within %u s",
			     m->params.recover_timeout_s);
	else
		rc = 0;
	snprintf(uri, len, "%s", m->resume_uri);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* RECOVER: the pages the destination lacks, into m->dirty. */
static int receive_lacking(struct mig_source *m, uint32_t round)
{
	struct wire_buf buf = { 0 };
	struct postcopy_view v;
	struct rec_header hdr;
	uint64_t next = 0;
	int rc = 0;

	memset(m->dirty, 0, BITMAP_WORDS(m->npages) * 8);
	while (rc == 0 && next < m->npages) {
		rc = wire_recv(&m->chan, &hdr, &buf);
		if (rc == 0 && hdr.type == REC_ERROR)
			rc = handshake_refusal(&buf, hdr.length);
		else if (rc == 0 && hdr.type != REC_RECOVER)
			rc = err_set(-EPROTO, "the destination answered %s where RECOVER was due",
				     rec_type_name(hdr.type));
		if (rc == 0)
			rc = rec_parse_recover(buf.data, hdr.length, m->npages, next, &v);
		if (rc == 0 && v.round != round)
			rc = err_set(-EPROTO, "RECOVER names round %u, post-copy's is %u", v.round,
				     round);
		if (rc == 0) {
			rec_pending_copy(m->dirty, &v);
			next += v.count;
		}
	}
	wire_buf_free(&buf);
	return rc;
}

/* A new link to uri: RESUME, RECOVER, the urgent channel, and the
 * pipeline (its data channels join again). */
static int relink(struct mig_source *m, const char *uri, uint32_t round)
{
	struct mig_params p = source_params(m);
	const uint8_t *token = m->hello.channels.token;
	int rc = handshake_resume(&m->chan, uri, m->hello.id, token, (int)p.io_timeout_ms,
				  &m->cancel, m->tls);

	if (rc == 0) {
		ratelimit_init(&m->chan.rl, p.max_bandwidth_bps);
		rc = receive_lacking(m, round);
	}
	if (rc == 0)
		rc = handshake_join(&m->urgent, uri, CHANNEL_URGENT, token, (int)p.io_timeout_ms,
				    &m->cancel, m->tls);
	if (rc == 0)
		rc = pipeline_open(uri, &m->chan, &p, token, &m->cancel, m->tls, &m->pipe);
	return rc;
}

/* The link is back: count it, and go on. */
static void relinked(struct mig_source *m, const char *uri, uint64_t pending)
{
	pthread_mutex_lock(&m->lock);
	source_note_status(m, MIG_POSTCOPY);
	m->stats.reason[0] = '\0';
	m->stats.postcopy.recoveries++;
	m->stats.postcopy.recover_ms = time_ms_since(m->resume_asked_ns);
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	snprintf(m->stats.uri, sizeof(m->stats.uri), "%s", uri);
	pthread_mutex_unlock(&m->lock);
	m->there = true; /* only a destination running the guest takes it up */
	log_info("post-copy: the link is back on %s; %llu pages still to send", uri,
		 (unsigned long long)pending);
}

bool postcopy_recoverable(const struct mig_source *m, int rc)
{
	return m->committed && !m->told && chan_broken(rc);
}

int postcopy_relink(struct mig_source *m, uint32_t round)
{
	uint32_t window_s = source_params(m).recover_timeout_s;
	uint64_t deadline = window_s ? time_now_ns() + (uint64_t)window_s * NS_PER_S : 0;
	char why[512], uri[256];
	int rc;

	snprintf(why, sizeof(why), "%s", err_msg());
	log_warn("post-copy: the link broke (%s); the guest waits on the destination for "
		 "migrate --resume",
		 why);
	drop_links(m);
	do {
		rc = await_resume(m, why, deadline, uri, sizeof(uri));
		if (rc == 0 && relink(m, uri, round) < 0) {
			snprintf(why, sizeof(why), "resuming on %s failed: %s", uri, err_msg());
			log_warn("post-copy: %s", why);
			drop_links(m);
			rc = 1; /* another try */
		}
	} while (rc > 0);
	if (rc < 0) {
		snprintf(why, sizeof(why), "%s", err_msg());
		return err_set(rc, "the link broke, and %s", why);
	}
	relinked(m, uri, bitmap_count(m->dirty, m->npages));
	return 0;
}
