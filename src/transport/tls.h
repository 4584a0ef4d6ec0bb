/* TLS 1.3 on a migration channel (OpenSSL, in user space: this host's
 * kernel has no kernel TLS). Credentials are laid out as QEMU's:
 *
 *   x509: a directory with ca-cert.pem, and server-cert.pem and
 *         server-key.pem on the destination, client-cert.pem and
 *         client-key.pem on the source; both sides check the other's
 *         certificate against the CA (mutual), the source also the
 *         destination's name when given one;
 *   psk:  a directory with keys.psk, lines "IDENTITY:HEXKEY"; the source
 *         uses the first, the destination accepts any.
 *
 * A peer's identity (its certificate's common name, or the PSK identity)
 * may be held against a list of names (authz). */
#ifndef FERRY_TRANSPORT_TLS_H
#define FERRY_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define TLS_NAME_MAX 256

enum tls_role {
	TLS_CLIENT, /* the source: it connects */
	TLS_SERVER, /* the destination: it accepts */
};

struct tls_config {
	const char *dir;      /* the credentials */
	const char *authz;    /* NULL, or the only peer identities accepted, comma-separated */
	const char *hostname; /* NULL, or the name the peer's certificate must carry */
};

struct tls_creds;
struct tls_session;

/* Load the credentials in cfg->dir for role: x509 if it has ca-cert.pem,
 * else PSK if it has keys.psk. Returns 0 or -errno with err_msg(). */
int tls_creds_load(const struct tls_config *cfg, enum tls_role role, struct tls_creds **out);
void tls_creds_free(struct tls_creds *t);

/* A session on the connected non-blocking socket fd. The handshake runs
 * in tls_session_step. */
int tls_session_new(const struct tls_creds *t, int fd, struct tls_session **out);
void tls_session_free(struct tls_session *s);
/* One step of the handshake: 0 once it is done, -EAGAIN to wait for
 * tls_session_want(s), or -errno with err_msg(). */
int tls_session_step(struct tls_session *s);
/* What the last call that answered -EAGAIN waits for: POLLIN or POLLOUT. */
short tls_session_want(const struct tls_session *s);
/* After the handshake: the peer's identity, and whether authz lets it in
 * (0, or -EACCES with err_msg()). */
int tls_session_authorize(struct tls_session *s);
/* The peer's identity, once authorized. */
const char *tls_session_peer(const struct tls_session *s);
/* What runs, for the log: version, cipher, peer, and whether the kernel or
 * OpenSSL encrypts (SSL_OP_ENABLE_KTLS asks for the kernel's). */
const char *tls_session_describe(const struct tls_session *s, char *out, size_t len);
/* Encrypt and send from iov[0..n): the bytes taken (at most 256 KiB: a
 * large piece's whole records in place, or small pieces copied together),
 * or -EAGAIN (call again with the same iov) or -errno with err_msg(). */
ssize_t tls_session_send(struct tls_session *s, const struct iovec *iov, int n);
/* Receive and decrypt into iov[0]: the bytes read, 0 at the peer's end,
 * -EAGAIN, or -errno with err_msg(). */
ssize_t tls_session_recv(struct tls_session *s, const struct iovec *iov);

#endif
