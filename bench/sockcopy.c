/* The ruler for migration throughput: copy N bytes of memory from one
 * process to another over sockets, as fast as the transport allows.
 *   sockcopy URI BYTES [OPTION...]       fork a receiver on URI, send, print MB/s
 *   sockcopy recv URI BYTES [OPTION...]  only receive (e.g. in another namespace)
 *   sockcopy send URI BYTES [OPTION...]  only send to a receiver; print MB/s
 *   --channels N   N connections, one thread each, each carrying BYTES/N
 *   --tls DIR      TLS on each, with the credentials in DIR (transport/tls.h)
 * URI is tcp:HOST:PORT or unix:PATH. Uses ferry's own channel code, so the
 * socket options and the TLS path match the migration's. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/chan.h"
#include "transport/tls.h"
#include "util/error.h"
#include "util/size.h"
#include "util/time.h"

#define CHUNK	     (1 << 20)
#define CHANNELS_MAX 16
/* Each channel's memory, sent over and over up to BYTES: far larger than
 * any cache, and quick to touch (page faults cost much in a nested guest). */
#define WINDOW (256ull << 20)

static struct {
	const char *uri;
	uint64_t bytes; /* per channel */
	int channels;
	const char *tls_dir;
} opt = { .channels = 1 };

struct channel {
	struct chan c;
	uint8_t *mem;
	int rc;
};

static uint64_t window(void)
{
	return opt.bytes < WINDOW ? opt.bytes : WINDOW;
}

/* Private anonymous memory like guest RAM, touched before the clock starts. */
static uint8_t *buffer(uint64_t bytes)
{
	uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(1);
	memset(p, 0x5a, bytes); /* touched, like guest memory */
	return p;
}

static struct tls_creds *creds(enum tls_role role)
{
	struct tls_creds *t = NULL;

	if (opt.tls_dir &&
	    tls_creds_load(&(struct tls_config){ .dir = opt.tls_dir }, role, &t) < 0) {
		fprintf(stderr, "sockcopy: %s\n", err_msg());
		exit(1);
	}
	return t;
}

static void *receive_one(void *arg)
{
	struct channel *ch = arg;

	for (uint64_t off = 0; off < opt.bytes; off += CHUNK)
		if ((ch->rc = chan_read(&ch->c, ch->mem + off % window(), CHUNK)) < 0)
			break;
	return NULL;
}

static void *send_one(void *arg)
{
	struct channel *ch = arg;

	for (uint64_t off = 0; off < opt.bytes; off += CHUNK)
		if ((ch->rc = chan_writev(
			     &ch->c, &(struct iovec){ ch->mem + off % window(), CHUNK }, 1)) < 0)
			break;
	return NULL;
}

/* Run fn on every channel, one thread each; 0 if all went well. */
static int run_all(struct channel *ch, void *(*fn)(void *))
{
	pthread_t t[CHANNELS_MAX];
	int rc = 0;

	for (int i = 0; i < opt.channels; i++)
		pthread_create(&t[i], NULL, fn, &ch[i]);
	for (int i = 0; i < opt.channels; i++) {
		pthread_join(t[i], NULL);
		rc |= ch[i].rc;
	}
	if (rc)
		fprintf(stderr, "sockcopy: %s\n", err_msg());
	return rc ? 1 : 0;
}

static int receive(int lfd)
{
	struct tls_creds *t = creds(TLS_SERVER);
	struct channel ch[CHANNELS_MAX] = { 0 };
	int rc = 1;

	for (int i = 0; i < opt.channels; i++) {
		if (chan_accept(&ch[i].c, lfd, opt.uri, 30000, NULL) < 0)
			goto out;
		ch[i].c.timeout_ms = 30000;
		if (chan_start_tls(&ch[i].c, t, NULL) < 0)
			goto out;
		ch[i].mem = buffer(window());
	}
	/* ready: start the clock */
	if (chan_writev(&ch[0].c, &(struct iovec){ "r", 1 }, 1) < 0 || run_all(ch, receive_one))
		goto out;
	/* Tell the sender it all arrived, before this process's teardown. */
	rc = chan_writev(&ch[0].c, &(struct iovec){ "k", 1 }, 1) < 0;
out:
	if (rc)
		fprintf(stderr, "sockcopy: receiving: %s\n", err_msg());
	return rc;
}

/* Connect (retrying while the receiver starts). */
static int connect_one(struct chan *c, const struct tls_creds *t)
{
	for (int tries = 0; chan_connect(c, opt.uri, 10000, NULL) < 0; tries++) {
		if (tries > 100)
			return -1;
		time_sleep_ns(50 * NS_PER_MS);
	}
	c->timeout_ms = 30000;
	return chan_start_tls(c, t, NULL);
}

/* Connect every channel, send, print MB/s. */
static int send_all(void)
{
	struct tls_creds *t = creds(TLS_CLIENT);
	struct channel ch[CHANNELS_MAX] = { 0 };
	uint64_t start;
	uint8_t ack;

	for (int i = 0; i < opt.channels; i++) {
		ch[i].mem = buffer(window());
		if (connect_one(&ch[i].c, t) < 0) {
			fprintf(stderr, "sockcopy: %s\n", err_msg());
			return 1;
		}
	}
	if (chan_read(&ch[0].c, &ack, 1) < 0)
		return 1;
	start = time_now_ns();
	if (run_all(ch, send_one) || chan_read(&ch[0].c, &ack, 1) < 0)
		return 1;
	printf("%.1f\n",
	       (double)opt.bytes * opt.channels / ((double)(time_now_ns() - start) / 1e9) / 1e6);
	return 0;
}

static int listen_on(void)
{
	int lfd = chan_listen(opt.uri);

	if (lfd < 0)
		fprintf(stderr, "sockcopy: %s\n", err_msg());
	return lfd;
}

static int usage(void)
{
	fprintf(stderr, "usage: sockcopy [recv|send] URI BYTES [--channels N] [--tls DIR]\n"
			"(BYTES: a multiple of N MiB)\n");
	return 2;
}

/* Options after the positional arguments; the positional ones left in argv. */
static int parse(int argc, char **argv, int *npos)
{
	static const struct option longopts[] = { { "channels", required_argument, NULL, 'c' },
						  { "tls", required_argument, NULL, 't' },
						  { 0 } };
	int o;

	while ((o = getopt_long(argc, argv, "+", longopts, NULL)) != -1 || optind < argc) {
		if (o == -1) { /* a positional argument */
			argv[(*npos)++] = argv[optind++];
			continue;
		}
		if (o == 'c')
			opt.channels = atoi(optarg);
		else if (o == 't')
			opt.tls_dir = optarg;
		else
			return -1;
	}
	return opt.channels >= 1 && opt.channels <= CHANNELS_MAX ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *mode = "both";
	int npos = 1, lfd, status, rc;
	uint64_t bytes;
	pid_t pid;

	if (parse(argc, argv, &npos) < 0 || npos < 3 || npos > 4)
		return usage();
	if (npos == 4)
		mode = argv[1];
	opt.uri = argv[npos - 2];
	if (size_parse(argv[npos - 1], &bytes) < 0 || bytes % ((uint64_t)CHUNK * opt.channels) ||
	    (strcmp(mode, "both") && strcmp(mode, "send") && strcmp(mode, "recv")))
		return usage();
	opt.bytes = bytes / opt.channels;
	if (!strcmp(mode, "send"))
		return send_all();
	lfd = listen_on();
	if (lfd < 0)
		return 1;
	if (!strcmp(mode, "recv"))
		return receive(lfd);
	pid = fork();
	if (pid == 0)
		return receive(lfd);
	rc = send_all();
	waitpid(pid, &status, 0);
	return rc ? rc : WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
