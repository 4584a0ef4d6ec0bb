/* Fuzz target: the bytes a peer sends a TLS destination before anything is
 * authenticated (transport/tls.h, chan_start_tls): a ClientHello and what
 * follows, garbage, or a ferry stream in the clear. The destination's
 * handshake over a socket pair (PSK credentials made once) must end in a
 * clean error, never a crash, a hang past its timeout, or a session
 * nobody authenticated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan.h"
#include "transport/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The destination's credentials: a PSK nobody else knows. */
static const struct tls_creds *server(void)
{
	static struct tls_creds *t;
	char dir[] = "/tmp/ferry-fuzz-tls-XXXXXX", path[64];
	FILE *f;

	if (t || !mkdtemp(dir))
		return t;
	snprintf(path, sizeof(path), "%s/keys.psk", dir);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "ferry-source:");
		for (int i = 0; i < 32; i++)
			fprintf(f, "%02x", (unsigned)rand() & 0xff);
		fprintf(f, "\n");
		fclose(f);
		tls_creds_load(&(struct tls_config){ .dir = dir }, TLS_SERVER, &t);
		unlink(path);
	}
	rmdir(dir);
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct tls_creds *t = server();
	struct chan c;
	int sv[2];

	if (!t) {
		fprintf(stderr, "fuzz_tls: cannot make the destination's credentials\n");
		abort(); /* a target that tests nothing must not pass */
	}
	if (size > 32768 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	if (size && write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR); /* all the peer says: then it only listens */
	chan_init_fd(&c, sv[0]);
	c.timeout_ms = 200;
	if (chan_start_tls(&c, t, NULL) == 0)
		abort(); /* nobody who lacks the key gets a session */
	chan_close(&c);
	close(sv[1]);
	return 0;
}
