/* A destination that misbehaves on purpose, for the source's fault tests:
 *   bad_dest MODE URI
 * It takes a whole stream, then: silent-after-commit (answers LOADED, reads
 * COMMIT, and disappears without RESUMED), refuse (answers END with an
 * ERROR), or die-before-loaded (disappears at END, as a destination killed
 * in switchover would). Exits 0 when the source behaved as the protocol says. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migration/handshake.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"

int main(int argc, char **argv)
{
	struct wire_buf buf = { 0 };
	struct handshake h;
	struct rec_header hdr;
	struct chan c;
	int lfd;

	if (argc != 3 || (lfd = chan_listen(argv[2])) < 0) {
		fprintf(stderr, "bad_dest: %s\n", err_msg());
		return 2;
	}
	printf("ready\n"); /* the test waits for this before it migrates */
	fflush(stdout);
	if (chan_accept(&c, lfd, argv[2], 60000, NULL) < 0 || handshake_receive(&c, &buf, &h) < 0) {
		fprintf(stderr, "bad_dest: %s\n", err_msg());
		return 2;
	}
	c.timeout_ms = 30000;
	handshake_ready(&c);
	do {
		if (wire_recv(&c, &hdr, &buf) < 0) {
			fprintf(stderr, "bad_dest: stream ended early: %s\n", err_msg());
			return 1;
		}
	} while (hdr.type != REC_END);
	if (!strcmp(argv[1], "die-before-loaded"))
		return 0;
	if (!strcmp(argv[1], "refuse")) {
		handshake_refuse(&c, 28, "no space left for this guest (test)");
		sleep(1);
		return 0;
	}
	wire_send_empty(&c, REC_LOADED);
	if (wire_recv(&c, &hdr, &buf) < 0 || hdr.type != REC_COMMIT) {
		fprintf(stderr, "bad_dest: expected COMMIT\n");
		return 1;
	}
	return 0; /* gone without RESUMED */
}
