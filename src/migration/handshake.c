#include "migration/handshake.h"

#include <errno.h>
#include <string.h>

#include "stream/record.h"
#include "util/error.h"
#include "vm/state.h"

static int send_header(struct chan *c)
{
	struct stream_header h;
	struct iovec iov = { &h, sizeof(h) };

	stream_header_init(&h);
	return chan_writev(c, &iov, 1);
}

static int send_one(struct chan *c, uint32_t type, const void *body, size_t len)
{
	struct iovec iov = { (void *)body, len };

	return wire_send(c, type, &iov, 1);
}

int handshake_send(struct chan *c, const struct handshake *h)
{
	struct rec_session session = { .id = h->id };
	int rc = send_header(c);

	if (rc == 0)
		rc = send_one(c, REC_CONFIG, &h->config, sizeof(h->config));
	if (rc == 0)
		rc = send_one(c, REC_SESSION, &session, sizeof(session));
	if (rc == 0 && (h->config.flags & CONFIG_CHANNELS))
		rc = send_one(c, REC_CHANNELS, &h->channels, sizeof(h->channels));
	return rc;
}

/* The next record, which must be of type want. */
static int expect_record(struct chan *c, struct wire_buf *buf, uint32_t want, const char *after,
			 struct rec_header *hdr)
{
	int rc = wire_recv(c, hdr, buf);

	if (rc == 0 && hdr->type != want)
		rc = err_set(-EPROTO, "%s, %s came where %s was due", after,
			     rec_type_name(hdr->type), rec_type_name(want));
	return rc;
}

/* A new connection to uri (over TLS with tls): the stream header and its
 * first record. */
static int open_with(struct chan *c, const char *uri, uint32_t type, const void *body, size_t len,
		     int timeout_ms, const struct cancel *cancel, const struct tls_creds *tls)
{
	int rc = chan_connect(c, uri, timeout_ms, cancel);

	if (rc == 0)
		rc = chan_start_tls(c, tls, NULL);
	if (rc == 0)
		rc = send_header(c);
	return rc < 0 ? rc : send_one(c, type, body, len);
}

/* A new connection's stream header and first record, of type want (what:
 * the connection, for the sentence), into buf. */
static int read_opening(struct chan *c, uint32_t want, const char *what, struct wire_buf *buf,
			struct rec_header *hdr)
{
	struct stream_header sh;
	int rc = chan_read(c, &sh, sizeof(sh));

	if (rc == 0)
		rc = stream_header_check(&sh);
	return rc < 0 ? rc : expect_record(c, buf, want, what, hdr);
}

int handshake_receive(struct chan *c, struct wire_buf *buf, struct handshake *h)
{
	struct rec_session session = { 0 };
	struct rec_header hdr;
	int rc;

	memset(h, 0, sizeof(*h));
	rc = read_opening(c, REC_CONFIG, "at the start of the stream", buf, &hdr);
	if (rc == 0)
		rc = rec_parse_config(buf->data, hdr.length, &h->config);
	if (rc == 0)
		rc = expect_record(c, buf, REC_SESSION, "after CONFIG", &hdr);
	if (rc == 0)
		rc = rec_parse_session(buf->data, hdr.length, &session);
	h->id = session.id;
	if (rc == 0 && h->config.flags & CONFIG_CHANNELS) {
		rc = expect_record(c, buf, REC_CHANNELS, "CONFIG announced CHANNELS, but", &hdr);
		if (rc == 0)
			rc = rec_parse_channels(buf->data, hdr.length, &h->channels);
	}
	return rc;
}

int handshake_join(struct chan *c, const char *uri, uint32_t index, const uint8_t *token,
		   int timeout_ms, const struct cancel *cancel, const struct tls_creds *tls)
{
	struct rec_join j = { .index = index };
	int rc;

	memcpy(j.token, token, CHANNEL_TOKEN_SIZE);
	rc = open_with(c, uri, REC_JOIN, &j, sizeof(j), timeout_ms, cancel, tls);
	if (rc < 0 && index == CHANNEL_URGENT)
		return err_wrap(rc, "the urgent channel");
	return rc < 0 ? err_wrap(rc, "data channel %u", index) : 0;
}

static bool same_token(const uint8_t *a, const uint8_t *b)
{
	uint8_t diff = 0;

	for (unsigned i = 0; i < CHANNEL_TOKEN_SIZE; i++)
		diff |= a[i] ^ b[i]; /* no early exit: the time says nothing */
	return diff == 0;
}

/* A new connection's JOIN, with this migration's token: its index. */
static int read_join(struct chan *c, const struct rec_channels *ch)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	struct rec_join j;
	int rc = read_opening(c, REC_JOIN, "on a new connection", &buf, &hdr);

	if (rc == 0)
		rc = rec_parse_join(buf.data, hdr.length, &j);
	wire_buf_free(&buf);
	if (rc < 0)
		return rc;
	if (!same_token(j.token, ch->token))
		return err_set(-EACCES, "it does not belong to this migration (wrong token)");
	return j.index <= CHANNEL_URGENT ? (int)j.index
					 : err_set(-EPROTO, "it claims channel %u", j.index);
}

int handshake_check_join(struct chan *c, const struct rec_channels *ch, const bool *joined)
{
	int rc = read_join(c, ch);

	if (rc >= 0 && ((uint32_t)rc >= ch->count || joined[rc]))
		return err_set(-EPROTO, "it claims channel %d", rc);
	return rc;
}

int handshake_check_urgent(struct chan *c, const struct rec_channels *ch)
{
	int rc = read_join(c, ch);

	if (rc >= 0 && rc != CHANNEL_URGENT)
		return err_set(-EPROTO, "it claims data channel %d where the urgent one was due",
			       rc);
	return rc < 0 ? rc : 0;
}

int handshake_resume(struct chan *c, const char *uri, uint64_t id, const uint8_t *token,
		     int timeout_ms, const struct cancel *cancel, const struct tls_creds *tls)
{
	struct rec_resume r = { .id = id };

	memcpy(r.token, token, CHANNEL_TOKEN_SIZE);
	return open_with(c, uri, REC_RESUME, &r, sizeof(r), timeout_ms, cancel, tls);
}

int handshake_check_resume(struct chan *c, uint64_t id, const uint8_t *token)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	struct rec_resume r;
	int rc = read_opening(c, REC_RESUME, "on a connection that recovers post-copy", &buf, &hdr);

	if (rc == 0)
		rc = rec_parse_resume(buf.data, hdr.length, &r);
	wire_buf_free(&buf);
	if (rc == 0 && r.id != id)
		rc = err_set(-ESRCH, "it resumes migration %016llx, but %016llx is paused here",
			     (unsigned long long)r.id, (unsigned long long)id);
	if (rc == 0 && !same_token(r.token, token))
		rc = err_set(-EACCES, "it does not belong to this migration (wrong token)");
	return rc;
}

int handshake_refusal(const struct wire_buf *buf, uint32_t len)
{
	char text[ERROR_MAX_TEXT + 1];
	uint32_t code;
	int rc = rec_parse_error(buf->data, len, &code, text);

	return rc < 0 ? rc : err_set(-(int)(code ? code : EPROTO), "destination refused: %s", text);
}

/* handshake_expect, leaving the record's body in buf (hdr its header). */
static int expect_into(struct chan *c, uint32_t want, struct rec_received_chan *received,
		       bool *refused, struct wire_buf *buf, struct rec_header *hdr)
{
	uint32_t n;
	int rc = wire_recv(c, hdr, buf);

	if (rc == 0 && hdr->type == REC_RECEIVED) {
		if (received)
			rc = rec_parse_received(buf->data, hdr->length, &n, received);
		if (rc == 0)
			rc = wire_recv(c, hdr, buf);
	}
	if (rc == 0 && hdr->type == REC_ERROR) {
		rc = handshake_refusal(buf, hdr->length);
		if (refused)
			*refused = true;
	} else if (rc == 0 && hdr->type != want)
		rc = err_set(-EPROTO, "destination answered %s where %s was due",
			     rec_type_name(hdr->type), rec_type_name(want));
	else if (rc < 0)
		rc = err_wrap(rc, "no %s from the destination", rec_type_name(want));
	return rc;
}

int handshake_expect(struct chan *c, uint32_t want, struct rec_received_chan *received,
		     bool *refused)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	int rc = expect_into(c, want, received, refused, &buf, &hdr);

	wire_buf_free(&buf);
	return rc;
}

int handshake_ready(struct chan *c)
{
	struct rec_ready r = { .stream_version = STREAM_VERSION, .state_version = STATE_VERSION };
	struct iovec body = { &r, sizeof(r) };

	return wire_send(c, REC_READY, &body, 1);
}

int handshake_expect_ready(struct chan *c)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	struct rec_ready r;
	int rc = expect_into(c, REC_READY, NULL, NULL, &buf, &hdr);

	if (rc == 0)
		memcpy(&r, buf.data, sizeof(r)); /* its length was checked */
	wire_buf_free(&buf);
	if (rc == 0 && r.stream_version != STREAM_VERSION)
		rc = err_set(-EPROTO,
			     "the destination speaks migration stream version %u, this ferry %u",
			     r.stream_version, STREAM_VERSION);
	if (rc == 0 && r.state_version != STATE_VERSION)
		rc = err_set(-EPROTO,
			     "the destination reads VM state version %u, this ferry writes %u",
			     r.state_version, STATE_VERSION);
	return rc;
}

void handshake_refuse(struct chan *c, int code, const char *sentence)
{
	struct rec_error fixed = { .code = (uint32_t)(code < 0 ? -code : code) };
	size_t len = strnlen(sentence, ERROR_MAX_TEXT);
	struct iovec body[2] = { { &fixed, sizeof(fixed) }, { (void *)sentence, len } };

	wire_send(c, REC_ERROR, body, 2);
}
