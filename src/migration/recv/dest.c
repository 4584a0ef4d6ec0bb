#include "migration/recv/dest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/handshake.h"
#include "migration/recv/incoming.h"
#include "transport/chan.h"
#include "transport/uri.h"
#include "util/cancel.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/vm.h"

struct mig_dest {
	char uri[256];
	struct mig_dest_opts o;
	int lfd;
	bool connected_fd;	 /* fd:N is one connection: it is the channel, used once */
	struct cancel cancel;	 /* fired by a stop, or a fence of the attempt in progress */
	struct ready_mem *ready; /* memory made ready for the guest (its own lock) */
	struct vm *shell;	 /* the VM for a guest of --mem, made ahead (dest thread only) */

	/* d->lock is taken alone: nothing else is locked under it. The
	 * destination's thread writes the fields below under it; others read
	 * them (stats) or ask for a stop or a fence. */
	pthread_mutex_t lock;
	pthread_cond_t recover_asked; /* recover_uri set, or stopping, or fenced */
	struct mig_dest_stats stats;
	uint64_t commit_deadline_ns;
	bool stopping, fenced;
	char stop_why[256];
	char recover_uri[256];	      /* migrate-recover's, until taken */
	int recover_lfd;	      /* listening there (-1: none) */
	uint64_t recover_asked_ns;    /* when it came */
	uint64_t recover_deadline_ns; /* the end of the window (0: none) */
	struct mig_trail trail;	      /* this side's statuses, named as a source's are */
};

uint32_t mig_dest_trail(struct mig_dest *d, uint32_t *seen, enum mig_status *out, uint32_t max)
{
	uint32_t n;

	pthread_mutex_lock(&d->lock);
	n = mig_trail_read(&d->trail, seen, out, max);
	pthread_mutex_unlock(&d->lock);
	return n;
}

const char *dest_phase_name(enum dest_phase p)
{
	static const char *const names[] = { "waiting", "receiving", "loaded",
					     "running", "stopped",   "postcopy-paused" };

	return names[p];
}

static void on_progress(void *opaque, const struct incoming_progress *p)
{
	struct mig_dest *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->stats.id = p->id;
	d->stats.pages_received = p->pages;
	d->stats.bytes_received = p->bytes;
	d->stats.rounds = p->rounds;
	pthread_mutex_unlock(&d->lock);
}

static void on_loaded(void *opaque)
{
	struct mig_dest *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->stats.phase = DEST_LOADED;
	mig_trail_note(&d->trail, MIG_SWITCHOVER);
	d->commit_deadline_ns = time_now_ns() + d->o.io_timeout_ms * NS_PER_MS;
	pthread_mutex_unlock(&d->lock);
}

/* The gate between a stop or a fence and COMMIT: whichever takes the lock
 * first wins. */
static int on_commit(void *opaque)
{
	struct mig_dest *d = opaque;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (d->stopping)
		rc = err_set(-ECANCELED, "the destination is stopping (%s)", d->stop_why);
	else if (d->fenced)
		rc = err_set(-ECANCELED, "the destination was fenced (migrate-incoming-cancel)");
	else
		d->stats.phase = DEST_RUNNING;
	if (!rc)
		mig_trail_note(&d->trail, MIG_COMPLETED);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static void on_felt(void *opaque, const struct felt *f)
{
	struct mig_dest *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->stats.felt = *f;
	pthread_mutex_unlock(&d->lock);
}

/* Why the wait for migrate-recover ends without one; d->lock held. */
static int given_up(struct mig_dest *d)
{
	if (d->stopping)
		return err_set(-ECANCELED, "the destination is stopping (%s)", d->stop_why);
	if (d->fenced)
		return err_set(-ECANCELED, "given up by migrate-incoming-cancel");
	return err_set(-ECANCELED, "no migrate-recover brought the source back within %u s",
		       d->o.recover_timeout_s);
}

/* A listener migrate-recover opened that nobody will take; d->lock held. */
static void drop_recover_listener(struct mig_dest *d)
{
	if (d->recover_lfd >= 0 && d->recover_lfd != d->lfd)
		close(d->recover_lfd);
	d->recover_lfd = -1;
}

static int on_paused(void *opaque, const char *why, struct recover_ask *ask)
{
	struct mig_dest *d = opaque;
	struct timespec until;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (d->stats.phase != DEST_POSTCOPY_PAUSED) /* the window opens when the link breaks */
		d->recover_deadline_ns =
			d->o.recover_timeout_s
				? time_now_ns() + (uint64_t)d->o.recover_timeout_s * NS_PER_S
				: 0;
	d->stats.phase = DEST_POSTCOPY_PAUSED;
	mig_trail_note(&d->trail, MIG_POSTCOPY_PAUSED);
	snprintf(d->stats.paused_why, sizeof(d->stats.paused_why), "%s", why);
	d->recover_uri[0] = '\0';
	drop_recover_listener(d);
	until = time_deadline_ts(d->recover_deadline_ns);
	while (!d->recover_uri[0] && !d->stopping && !d->fenced && rc != ETIMEDOUT)
		rc = d->recover_deadline_ns
			     ? pthread_cond_timedwait(&d->recover_asked, &d->lock, &until)
			     : pthread_cond_wait(&d->recover_asked, &d->lock);
	if (d->recover_uri[0] && !d->stopping && !d->fenced) {
		snprintf(ask->uri, sizeof(ask->uri), "%s", d->recover_uri);
		ask->lfd = d->recover_lfd;
		ask->own_lfd = d->recover_lfd != d->lfd;
		ask->asked_ns = d->recover_asked_ns;
		ask->wait_ms = (int)d->o.io_timeout_ms;
		rc = 0;
	} else {
		drop_recover_listener(d);
		rc = given_up(d);
	}
	d->recover_lfd = -1;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static void on_recovered(void *opaque, double ms)
{
	struct mig_dest *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->stats.phase = DEST_RUNNING;
	mig_trail_note(&d->trail, MIG_POSTCOPY);
	d->stats.recoveries++;
	d->stats.recover_ms = ms;
	pthread_mutex_unlock(&d->lock);
	log_info("post-copy: pages flow again, %.1f ms after migrate-recover", ms);
}

/* A new attempt begins on an accepted connection. */
static void begin(struct mig_dest *d)
{
	pthread_mutex_lock(&d->lock);
	d->stats.phase = DEST_RECEIVING;
	mig_trail_note(&d->trail, MIG_ACTIVE);
	d->stats.attempts++;
	d->stats.id = d->stats.pages_received = d->stats.bytes_received = 0;
	d->stats.rounds = 0;
	d->fenced = false;
	pthread_mutex_unlock(&d->lock);
}

/* The attempt failed with rc: say why (to the source too), and wait for the
 * next unless stopping. Returns true to go on serving. */
static bool failed(struct mig_dest *d, struct chan *c, int rc)
{
	bool go_on, plain;

	pthread_mutex_lock(&d->lock);
	/* A paused post-copy given up has its sentence: the guest is lost. */
	plain = rc == -ECANCELED && d->stats.phase != DEST_POSTCOPY_PAUSED;
	if (plain && d->stopping)
		err_set(rc, "the destination is stopping (%s)", d->stop_why);
	else if (plain && d->fenced)
		err_set(rc, "the destination was fenced (migrate-incoming-cancel)");
	d->stats.failed_id = d->stats.id;
	d->stats.failed_fenced = d->fenced;
	snprintf(d->stats.failure, sizeof(d->stats.failure), "%s", err_msg());
	go_on = !d->stopping && !d->connected_fd;
	d->stats.phase = go_on ? DEST_WAITING : DEST_STOPPED;
	mig_trail_note(&d->trail, MIG_FAILED);
	if (go_on)
		cancel_reset(&d->cancel); /* a fence ends with its attempt */
	pthread_mutex_unlock(&d->lock);
	log_err("incoming migration failed: %s; the partial VM is discarded", err_msg());
	c->cancel = NULL; /* the refusal must go out even after a cancel */
	c->timeout_ms = 1000;
	handshake_refuse(c, rc, err_msg());
	return go_on;
}

static void close_listener(struct mig_dest *d)
{
	if (!d->connected_fd && d->lfd >= 0)
		close(d->lfd);
	d->lfd = -1;
}

/* With --mem and no memory made ready, the VM for a guest of that size is
 * made ahead, vCPUs aside (vm_create_shell: several ms here, mostly the
 * irqchip, the PIT and the memory slot): such a guest's migration does not
 * wait for it. Its memory's place is only kept (mem_reserve), to be filled
 * once the source says with what: new memory, or the memory a local
 * migration hands over. */
static void make_shell(struct mig_dest *d)
{
	struct vm_config vc = { .mem_bytes = d->o.mem_limit,
				.mem_backend = d->o.mem_backend,
				.dirty_backend = d->o.dirty_backend,
				.mem_later = true };

	if (d->shell || !d->o.mem_limit || d->o.prealloc)
		return;
	if (vm_create_shell(&vc, &d->shell) < 0) {
		log_warn("no VM made ahead: %s", err_msg());
		d->shell = NULL;
	}
}

static void drop_shell(struct mig_dest *d)
{
	vm_destroy(d->shell);
	d->shell = NULL;
}

/* Wait for a source to connect; -ECANCELED once stopping. */
static int wait_connection(struct mig_dest *d, struct chan *c)
{
	int rc = chan_accept(c, d->lfd, d->uri, -1, &d->cancel);

	if (rc == -ECANCELED)
		return err_set(rc, "stopped while waiting for a migration");
	c->timeout_ms = (int)d->o.io_timeout_ms;
	return rc;
}

int mig_dest_run(struct mig_dest *d, struct vm **out)
{
	const struct incoming_events ev = { d,	     on_progress, on_loaded,   on_commit,
					    on_felt, on_paused,	  on_recovered };
	struct chan c;
	bool go_on;
	int rc;

	log_info("waiting for a migration on %s", d->uri);
	for (;;) {
		make_shell(d);
		rc = wait_connection(d, &c);
		if (rc == -ETIMEDOUT) /* a signal ended the wait: look again */
			continue;
		if (rc < 0)
			break;
		begin(d);
		rc = incoming_receive(&c, d->lfd, d->uri, &d->o, d->ready, &d->shell, &ev, out);
		if (rc == 0) {
			chan_close(&c);
			close_listener(d); /* no longer a destination */
			ready_mem_release(d->ready);
			drop_shell(d);
			log_info("incoming migration complete: the guest runs here");
			return 0;
		}
		go_on = failed(d, &c, rc);
		chan_close(&c);
		if (!go_on)
			break;
	}
	close_listener(d);
	pthread_mutex_lock(&d->lock);
	d->stats.phase = DEST_STOPPED;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

struct mig_dest_stats mig_dest_stats(struct mig_dest *d)
{
	struct mig_dest_stats s;
	uint64_t now = time_now_ns();

	pthread_mutex_lock(&d->lock);
	s = d->stats;
	if (s.phase == DEST_LOADED)
		s.commit_wait_ms = d->commit_deadline_ns > now
					   ? (double)(d->commit_deadline_ns - now) / 1e6
					   : 0;
	if (s.phase == DEST_POSTCOPY_PAUSED)
		s.recover_left_ms = !d->recover_deadline_ns ? -1
				    : d->recover_deadline_ns > now
					    ? (double)(d->recover_deadline_ns - now) / 1e6
					    : 0;
	pthread_mutex_unlock(&d->lock);
	s.memory = ready_mem_info(d->ready);
	return s;
}

int mig_dest_stop(struct mig_dest *d, const char *why)
{
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (d->stats.phase == DEST_RUNNING) {
		rc = -EALREADY;
	} else if (!d->stopping) {
		d->stopping = true;
		snprintf(d->stop_why, sizeof(d->stop_why), "%s", why);
		cancel_fire(&d->cancel);
		pthread_cond_broadcast(&d->recover_asked);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int mig_dest_fence(struct mig_dest *d, uint64_t *id)
{
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (d->stats.phase == DEST_RUNNING) {
		rc = err_set(-EALREADY, "too late: COMMIT came and the guest runs here");
	} else if (d->stats.phase != DEST_RECEIVING && d->stats.phase != DEST_LOADED &&
		   d->stats.phase != DEST_POSTCOPY_PAUSED) {
		rc = err_set(-ENOENT, "no incoming migration is in progress");
	} else {
		d->fenced = true;
		*id = d->stats.id;
		cancel_fire(&d->cancel);
		pthread_cond_broadcast(&d->recover_asked);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int mig_dest_recover(struct mig_dest *d, const char *uri)
{
	struct uri u;
	int lfd = -1, rc = uri_parse(uri, &u);

	if (rc == 0 && u.kind == URI_FD)
		rc = err_set(-EINVAL,
			     "migrate-recover needs a tcp: or unix: URI to listen on, "
			     "not %s",
			     uri);
	pthread_mutex_lock(&d->lock);
	if (rc == 0 && d->stats.phase != DEST_POSTCOPY_PAUSED)
		rc = err_set(-ENOENT, "no post-copy is paused here (the destination is %s)",
			     dest_phase_name(d->stats.phase));
	/* Listening when the answer goes: the source may come at once. */
	if (rc == 0)
		rc = lfd = strcmp(uri, d->uri) ? chan_listen(uri) : d->lfd;
	if (rc >= 0) {
		drop_recover_listener(d);
		snprintf(d->recover_uri, sizeof(d->recover_uri), "%s", uri);
		d->recover_lfd = lfd;
		d->recover_asked_ns = time_now_ns();
		pthread_cond_broadcast(&d->recover_asked);
	}
	pthread_mutex_unlock(&d->lock);
	return rc < 0 ? rc : 0;
}

int mig_dest_open(const char *uri, const struct mig_dest_opts *o, struct mig_dest **out)
{
	struct mig_dest *d = calloc(1, sizeof(*d));
	struct uri u;
	int rc;

	if (!d)
		return err_set(-ENOMEM, "out of memory");
	snprintf(d->uri, sizeof(d->uri), "%s", uri);
	d->o = *o;
	d->connected_fd = uri_parse(uri, &u) == 0 && u.kind == URI_FD;
	d->lfd = -1;
	d->recover_lfd = -1;
	pthread_mutex_init(&d->lock, NULL);
	time_cond_init(&d->recover_asked);
	rc = cancel_init(&d->cancel);
	if (rc == 0)
		rc = ready_mem_create(&d->ready);
	if (rc == 0 && o->prealloc)
		rc = ready_mem_prepare(d->ready, o->mem_limit, o->mem_backend);
	if (rc == 0)
		rc = d->lfd = chan_listen(uri);
	if (rc < 0) {
		ready_mem_free(d->ready);
		cancel_destroy(&d->cancel);
		pthread_cond_destroy(&d->recover_asked);
		pthread_mutex_destroy(&d->lock);
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

int mig_dest_prealloc(struct mig_dest *d, uint64_t bytes, enum mem_backend backend)
{
	if (d->o.mem_limit && bytes > d->o.mem_limit)
		return err_set(-E2BIG,
			       "%llu MiB is more than the largest guest accepted here (%llu MiB)",
			       (unsigned long long)(bytes >> 20),
			       (unsigned long long)(d->o.mem_limit >> 20));
	return ready_mem_prepare_async(d->ready, bytes, backend);
}

void mig_dest_close(struct mig_dest *d)
{
	if (!d)
		return;
	drop_recover_listener(d);
	close_listener(d);
	drop_shell(d);
	ready_mem_free(d->ready);
	cancel_destroy(&d->cancel);
	pthread_cond_destroy(&d->recover_asked);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
