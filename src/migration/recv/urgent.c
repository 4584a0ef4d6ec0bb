#include "migration/recv/urgent.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "migration/failure.h"
#include "migration/recv/apply.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"

struct urgent {
	struct chan chan;
	struct chan *main;
	struct page_writer w;
	struct wire_buf buf;
	struct failure failed;
	uint32_t round; /* post-copy's */
	pthread_t thread;
	bool started;
};

static void *urgent_thread(void *arg)
{
	struct urgent *u = arg;
	struct rec_header hdr;
	int rc;

	pthread_setname_np(pthread_self(), "pc-urgent");
	do {
		rc = wire_recv_header(&u->chan, &hdr, &u->buf);
		if (rc == 0 && hdr.type == REC_END)
			return NULL;
		if (rc == 0 && hdr.type != REC_PAGES && hdr.type != REC_ZPAGES)
			rc = err_set(-EPROTO, "unexpected %s record", rec_type_name(hdr.type));
		if (rc == 0)
			rc = page_writer_recv(&u->w, &u->chan, &hdr, &u->buf, u->round);
	} while (rc == 0);
	failure_set(&u->failed, err_wrap(rc, "the urgent channel"));
	chan_shutdown_read(u->main);
	return NULL;
}

int urgent_start(struct chan *c, const struct guest_mem *mem, struct postcopy *pc,
		 uint64_t *written, uint64_t *damaged, uint32_t round, struct chan *main,
		 struct urgent **out)
{
	struct urgent *u = calloc(1, sizeof(*u));
	int rc;

	*out = u;
	if (!u) {
		chan_close(c);
		return err_set(-ENOMEM, "out of memory for the urgent channel");
	}
	u->chan = *c;
	u->main = main;
	u->round = round;
	failure_init(&u->failed);
	rc = page_writer_init(&u->w, mem, written, damaged);
	if (rc < 0)
		return rc;
	u->w.place = pc;
	rc = pthread_create(&u->thread, NULL, urgent_thread, u);
	if (rc)
		return err_set(-rc, "cannot start the urgent channel's thread: %s", strerror(rc));
	u->started = true;
	return 0;
}

int urgent_error(struct urgent *u)
{
	return failure_get(&u->failed);
}

static void join(struct urgent *u)
{
	if (u->started)
		pthread_join(u->thread, NULL);
	u->started = false;
}

int urgent_finish(struct urgent *u)
{
	join(u);
	return failure_get(&u->failed);
}

void urgent_free(struct urgent *u)
{
	if (!u)
		return;
	chan_shutdown(&u->chan);
	join(u); /* not its error: err_msg() holds the migration's */
	page_writer_free(&u->w);
	wire_buf_free(&u->buf);
	chan_close(&u->chan);
	failure_destroy(&u->failed);
	free(u);
}
