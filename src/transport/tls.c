#include "transport/tls.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/error.h"

#define CHUNK	   (256u << 10) /* what one send takes at most */
#define RECORD	   (16u << 10)	/* TLS's largest record */
#define PSK_MAX	   64		/* key bytes */
#define AUTHZ_MAX  1024
#define PSK_CIPHER "TLS_AES_128_GCM_SHA256"
#define CIPHERS	   PSK_CIPHER ":TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct tls_creds {
	SSL_CTX *ctx;
	enum tls_role role;
	bool psk;
	char identity[TLS_NAME_MAX]; /* PSK: the client's */
	unsigned char key[PSK_MAX];  /* PSK: the client's */
	size_t key_len;
	char keys_path[4096]; /* PSK: the server looks identities up here */
	char authz[AUTHZ_MAX];
	char hostname[TLS_NAME_MAX];
};

struct tls_session {
	SSL *ssl;
	const struct tls_creds *creds;
	char peer[TLS_NAME_MAX];
	short want;
	uint8_t *out;	   /* the staging buffer: small pieces gather here */
	const void *chunk; /* what this send takes: out, or the caller's own memory */
	size_t chunk_len;
	bool sealed; /* chunk is in records, in wbio, waiting to be flushed */
	BIO *wbio;   /* records gather here and go out in one write each flush */
};

/* OpenSSL's reason for the last failure, for a sentence. */
static const char *ssl_reason(void)
{
	static __thread char text[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return "no detail";
	ERR_error_string_n(e, text, sizeof(text));
	ERR_clear_error();
	return text;
}

static bool exists(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, R_OK) == 0;
}

/* The x509 files of role in dir into ctx. */
static int load_x509(SSL_CTX *ctx, const char *dir, enum tls_role role)
{
	const char *who = role == TLS_SERVER ? "server" : "client";
	char ca[4096], cert[4096], key[4096];

	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	snprintf(cert, sizeof(cert), "%s/%s-cert.pem", dir, who);
	snprintf(key, sizeof(key), "%s/%s-key.pem", dir, who);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		return err_set(-EINVAL, "TLS: cannot load the CA %s: %s", ca, ssl_reason());
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return err_set(-EINVAL, "TLS: cannot load the certificate %s: %s", cert,
			       ssl_reason());
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return err_set(-EINVAL, "TLS: cannot load the key %s (or it is not %s's): %s", key,
			       cert, ssl_reason());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

/* The key of identity in keys.psk ("IDENTITY:HEXKEY" lines; identity NULL:
 * the first line's, copied to identity_out). 0, or -ENOENT. */
static int psk_lookup(const char *path, const char *identity, char *identity_out,
		      unsigned char *key, size_t *key_len)
{
	FILE *f = fopen(path, "r");
	char line[TLS_NAME_MAX + 2 * PSK_MAX + 4];
	int rc = -ENOENT;

	while (f && rc < 0 && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *hex;
		size_t n = 0;

		if (!colon)
			continue;
		*colon = '\0';
		hex = colon + 1;
		hex[strcspn(hex, "\r\n")] = '\0';
		if ((identity && strcmp(line, identity)) || strlen(line) >= TLS_NAME_MAX ||
		    strlen(hex) % 2 || strlen(hex) / 2 > PSK_MAX || !strlen(hex))
			continue;
		for (; n < strlen(hex) / 2; n++)
			if (sscanf(hex + 2 * n, "%2hhx", &key[n]) != 1)
				break;
		if (n != strlen(hex) / 2)
			continue;
		*key_len = n;
		if (identity_out)
			memcpy(identity_out, line, strlen(line) + 1); /* under TLS_NAME_MAX */
		rc = 0;
	}
	if (f)
		fclose(f);
	return rc;
}

static const SSL_CIPHER *psk_cipher(SSL *ssl)
{
	return SSL_CIPHER_find(ssl, (const unsigned char[]){ 0x13, 0x01 }); /* AES-128-GCM */
}

/* A TLS 1.3 session resting on the key, as OpenSSL takes an external PSK. */
static SSL_SESSION *psk_session(SSL *ssl, const unsigned char *key, size_t len)
{
	SSL_SESSION *s = SSL_SESSION_new();

	if (s && (SSL_SESSION_set1_master_key(s, key, len) != 1 ||
		  SSL_SESSION_set_cipher(s, psk_cipher(ssl)) != 1 ||
		  SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1)) {
		SSL_SESSION_free(s);
		s = NULL;
	}
	return s;
}

static int use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		   SSL_SESSION **sess)
{
	const struct tls_session *ts = SSL_get_app_data(ssl);
	const struct tls_creds *t = ts->creds;

	(void)md;
	*sess = psk_session(ssl, t->key, t->key_len);
	*id = (const unsigned char *)t->identity;
	*idlen = strlen(t->identity);
	return *sess != NULL;
}

static int find_psk(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	struct tls_session *ts = SSL_get_app_data(ssl);
	unsigned char key[PSK_MAX];
	size_t key_len = 0;

	*sess = NULL;
	if (idlen >= TLS_NAME_MAX)
		return 1; /* no such identity: the handshake fails */
	memcpy(ts->peer, id, idlen);
	ts->peer[idlen] = '\0';
	if (psk_lookup(ts->creds->keys_path, ts->peer, NULL, key, &key_len) == 0)
		*sess = psk_session(ssl, key, key_len);
	OPENSSL_cleanse(key, sizeof(key));
	return 1;
}

static int load_psk(struct tls_creds *t, const char *dir)
{
	snprintf(t->keys_path, sizeof(t->keys_path), "%s/keys.psk", dir);
	t->psk = true;
	if (t->role == TLS_CLIENT &&
	    psk_lookup(t->keys_path, NULL, t->identity, t->key, &t->key_len) < 0)
		return err_set(-EINVAL, "TLS: %s has no line IDENTITY:HEXKEY", t->keys_path);
	if (SSL_CTX_set_ciphersuites(t->ctx, PSK_CIPHER) != 1)
		return err_set(-EINVAL, "TLS: no %s here: %s", PSK_CIPHER, ssl_reason());
	if (t->role == TLS_CLIENT)
		SSL_CTX_set_psk_use_session_callback(t->ctx, use_psk);
	else
		SSL_CTX_set_psk_find_session_callback(t->ctx, find_psk);
	return 0;
}

int tls_creds_load(const struct tls_config *cfg, enum tls_role role, struct tls_creds **out)
{
	struct tls_creds *t = calloc(1, sizeof(*t));
	const char *dir = cfg->dir;
	int rc = 0;

	if (!t)
		return err_set(-ENOMEM, "out of memory");
	t->role = role;
	snprintf(t->authz, sizeof(t->authz), "%s", cfg->authz ? cfg->authz : "");
	snprintf(t->hostname, sizeof(t->hostname), "%s", cfg->hostname ? cfg->hostname : "");
	t->ctx = SSL_CTX_new(role == TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (t->ctx) { /* AES-128-GCM first: the fastest here; the kernel's TLS where it has it */
		SSL_CTX_set_ciphersuites(t->ctx, CIPHERS);
		/* A reader woken by shutting its socket's read side (chan_shutdown_read)
		 * sees an end, not a broken session: its refusal must still go out. */
		SSL_CTX_set_options(t->ctx, SSL_OP_ENABLE_KTLS | SSL_OP_IGNORE_UNEXPECTED_EOF);
		/* Read what the socket has, not a record's header and body apart. */
		SSL_CTX_set_read_ahead(t->ctx, 1);
		SSL_CTX_set_default_read_buffer_len(t->ctx, CHUNK);
	}
	if (!t->ctx || SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) != 1)
		rc = err_set(-ENOMEM, "TLS: cannot make a context: %s", ssl_reason());
	else if (exists(dir, "ca-cert.pem"))
		rc = load_x509(t->ctx, dir, role);
	else if (exists(dir, "keys.psk"))
		rc = load_psk(t, dir);
	else
		rc = err_set(-ENOENT, "TLS: %s has neither ca-cert.pem (x509) nor keys.psk (PSK)",
			     dir);
	if (rc < 0) {
		tls_creds_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void tls_creds_free(struct tls_creds *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	OPENSSL_cleanse(t->key, sizeof(t->key));
	free(t);
}

/* Reads straight from the socket (reading ahead); writes through a buffer,
 * so that the records of one staged chunk go out in one system call. */
static int attach(struct tls_session *s, int fd)
{
	BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE), *sock = BIO_new_socket(fd, BIO_NOCLOSE),
	    *buf = BIO_new(BIO_f_buffer());

	if (!rbio || !sock || !buf || BIO_set_write_buffer_size(buf, 2 * CHUNK) != 1) {
		BIO_free(rbio);
		BIO_free(sock);
		BIO_free(buf);
		return -1;
	}
	s->wbio = BIO_push(buf, sock);
	SSL_set_bio(s->ssl, rbio, s->wbio);
	return 0;
}

int tls_session_new(const struct tls_creds *t, int fd, struct tls_session **out)
{
	struct tls_session *s = calloc(1, sizeof(*s));

	if (!s || !(s->out = malloc(CHUNK))) {
		free(s);
		return err_set(-ENOMEM, "out of memory");
	}
	s->creds = t;
	s->ssl = SSL_new(t->ctx);
	if (!s->ssl || attach(s, fd) < 0 ||
	    (t->hostname[0] && !t->psk && SSL_set1_host(s->ssl, t->hostname) != 1)) {
		tls_session_free(s);
		return err_set(-ENOMEM, "TLS: cannot make a session: %s", ssl_reason());
	}
	SSL_set_app_data(s->ssl, s);
	if (t->role == TLS_SERVER)
		SSL_set_accept_state(s->ssl);
	else
		SSL_set_connect_state(s->ssl);
	*out = s;
	return 0;
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	SSL_free(s->ssl);
	free(s->out);
	free(s);
}

short tls_session_want(const struct tls_session *s)
{
	return s->want;
}

const char *tls_session_peer(const struct tls_session *s)
{
	return s->peer;
}

const char *tls_session_describe(const struct tls_session *s, char *out, size_t len)
{
	bool ksend = BIO_get_ktls_send(SSL_get_wbio(s->ssl)) > 0,
	     krecv = BIO_get_ktls_recv(SSL_get_rbio(s->ssl)) > 0;

	snprintf(out, len, "%s %s with %s '%s', %s", SSL_get_version(s->ssl),
		 SSL_CIPHER_get_name(SSL_get_current_cipher(s->ssl)),
		 s->creds->psk ? "PSK identity" : "certificate", s->peer,
		 ksend && krecv ? "encrypted by the kernel (kernel TLS)"
		 : ksend	? "sent by the kernel (kernel TLS), received in user space"
				: "encrypted in user space (no kernel TLS here)");
	return out;
}

/* Whether the last failure is the peer's alert. */
static bool alerted(void)
{
	unsigned long e = ERR_peek_error();

	return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) > SSL_AD_REASON_OFFSET;
}

static int refused_by_peer(void)
{
	int alert = ERR_GET_REASON(ERR_get_error()) - SSL_AD_REASON_OFFSET;

	ERR_clear_error();
	return err_set(-EACCES, "TLS: the peer refused this side's credentials (%s)",
		       SSL_alert_desc_string_long(alert));
}

/* A write the peer cut short: its alert, if one came before it hung up (a
 * destination refuses a source's certificate after the source thinks the
 * handshake done); a record that came instead (a refusal) stays unread. */
static int peer_alert(struct tls_session *s, int saved_errno)
{
	uint8_t buf[256];
	size_t got;

	ERR_clear_error(); /* a peek: what came before the alert stays to be read */
	if (SSL_peek_ex(s->ssl, buf, sizeof(buf), &got) != 1 && alerted())
		return refused_by_peer();
	ERR_clear_error();
	return err_set(-saved_errno, "the connection broke (%s)", strerror(saved_errno));
}

/* A failed call's result: -EAGAIN with what to wait for, or the failure. */
static int failed(struct tls_session *s, int ret, const char *doing)
{
	int e = SSL_get_error(s->ssl, ret);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		s->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return -EAGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && (errno == EPIPE || errno == ECONNRESET))
		return peer_alert(s, errno);
	if (e == SSL_ERROR_SYSCALL && errno && errno != EAGAIN)
		return err_set(-errno, "the connection broke (%s)", strerror(errno));
	if (e == SSL_ERROR_SYSCALL)
		return err_set(-ECONNRESET, "the peer closed the connection (TLS: %s)", doing);
	if (SSL_get_verify_result(s->ssl) != X509_V_OK)
		return err_set(-EACCES, "TLS: the peer's certificate is refused: %s",
			       X509_verify_cert_error_string(SSL_get_verify_result(s->ssl)));
	if (alerted())
		return refused_by_peer();
	return err_set(-EPROTO, "TLS: %s failed: %s", doing, ssl_reason());
}

int tls_session_authorize(struct tls_session *s)
{
	const char *list = s->creds->authz;
	size_t len;

	if (!s->creds->psk) {
		X509 *cert = SSL_get0_peer_certificate(s->ssl);
		X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;

		if (!name ||
		    X509_NAME_get_text_by_NID(name, NID_commonName, s->peer, sizeof(s->peer)) < 0)
			snprintf(s->peer, sizeof(s->peer), "(no common name)");
	}
	if (!list[0])
		return 0;
	len = strlen(s->peer);
	for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == len && !strncmp(p, s->peer, len))
			return 0;
	}
	return err_set(-EACCES, "TLS: the peer '%s' is not one --tls-authz lets in (%s)", s->peer,
		       list);
}

/* A source's handshake the destination answered with something else: most
 * likely a ferry without --tls-creds. */
static int plain_peer(int rc)
{
	char why[512];

	snprintf(why, sizeof(why), "%s", err_msg());
	return err_set(rc, "%s (does the destination speak TLS? it needs --tls-creds too)", why);
}

int tls_session_step(struct tls_session *s)
{
	int ret;

	ERR_clear_error();
	ret = SSL_do_handshake(s->ssl);
	if (ret == 1)
		return 0;
	ret = failed(s, ret, "the handshake");
	if (ret == 0)
		return err_set(-ECONNRESET, "the peer closed the connection in the TLS handshake");
	if (ret == -EPROTO && s->creds->role == TLS_CLIENT)
		return plain_peer(ret);
	return ret;
}

/* What the next send takes from iov: a large piece whole records of it in
 * place (a run of guest pages: no copy), or else the small pieces up to the
 * next large one, staged into one buffer (one record, not one each). */
static void take(struct tls_session *s, const struct iovec *iov, int n)
{
	size_t len = 0;

	if (n && iov[0].iov_len >= RECORD) {
		s->chunk = iov[0].iov_base;
		s->chunk_len = iov[0].iov_len < CHUNK ? iov[0].iov_len / RECORD * RECORD : CHUNK;
		return;
	}
	for (int i = 0; i < n && len < CHUNK && iov[i].iov_len < RECORD; i++) {
		size_t part = iov[i].iov_len < CHUNK - len ? iov[i].iov_len : CHUNK - len;

		memcpy(s->out + len, iov[i].iov_base, part);
		len += part;
	}
	s->chunk = s->out;
	s->chunk_len = len;
}

ssize_t tls_session_send(struct tls_session *s, const struct iovec *iov, int n)
{
	size_t written;
	int ret;

	if (!s->chunk_len) /* else a chunk waits, taken from this same iov */
		take(s, iov, n);
	if (!s->chunk_len)
		return 0;
	ERR_clear_error();
	if (!s->sealed && (ret = SSL_write_ex(s->ssl, s->chunk, s->chunk_len, &written)) != 1) {
		ret = failed(s, ret, "sending");
		return ret == 0 ? err_set(-ECONNRESET, "the peer closed the connection") : ret;
	}
	s->sealed = true;
	if (BIO_flush(s->wbio) != 1) {
		if (!BIO_should_retry(s->wbio))
			return failed(s, -1, "sending");
		s->want = POLLOUT;
		return -EAGAIN;
	}
	written = s->chunk_len;
	s->chunk_len = 0;
	s->sealed = false;
	return (ssize_t)written;
}

ssize_t tls_session_recv(struct tls_session *s, const struct iovec *iov)
{
	size_t got;
	int ret;

	ERR_clear_error();
	ret = SSL_read_ex(s->ssl, iov->iov_base, iov->iov_len, &got);
	if (ret == 1)
		return (ssize_t)got;
	return failed(s, ret, "receiving");
}
