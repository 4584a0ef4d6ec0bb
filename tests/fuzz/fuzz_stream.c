/* Fuzz target: the stream decoder. The input is a record header followed by
 * a body; every check and parser that applies runs on it, as the
 * destination would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec_header hdr;
	struct rec_config cfg;
	struct pages_view pv;
	struct hashes_view hv;
	struct rec_round round;
	struct zpages_view zv;
	struct rec_channels ch;
	struct rec_join join;
	struct rec_received_chan acct[CHANNELS_MAX];
	struct postcopy_view post;
	struct request_view req;
	struct rec_placed placed;
	struct rec_resume resume;
	uint32_t n;
	char text[ERROR_MAX_TEXT + 1];
	uint32_t code;
	uint8_t *body;
	int skip;

	if (size < sizeof(hdr))
		return 0;
	memcpy(&hdr, data, sizeof(hdr));
	if (rec_header_check(&hdr, &skip) < 0 || skip || hdr.length > size - sizeof(hdr))
		return 0;
	body = malloc(hdr.length ? hdr.length : 1); /* exact size, aligned, as wire_recv gives */
	memcpy(body, data + sizeof(hdr), hdr.length);
	rec_checksum_check(&hdr, body);
	switch (hdr.type) {
	case REC_CONFIG:
		rec_parse_config(body, hdr.length, &cfg);
		break;
	case REC_PAGES:
		if (rec_parse_pages(body, hdr.length, 1 << 18, &pv) == 0 &&
		    pv.payload + pv.payload_bytes != body + hdr.length)
			abort(); /* the payload must end exactly at the body's end */
		break;
	case REC_ZPAGES:
		if (rec_parse_zpages(body, hdr.length, 1 << 18, &zv) == 0 &&
		    zv.frame + zv.frame_len != body + hdr.length)
			abort(); /* the frame must end exactly at the body's end */
		break;
	case REC_CHANNELS:
		rec_parse_channels(body, hdr.length, &ch);
		break;
	case REC_JOIN:
		rec_parse_join(body, hdr.length, &join);
		break;
	case REC_RECEIVED:
		rec_parse_received(body, hdr.length, &n, acct);
		break;
	case REC_HASHES:
		rec_parse_hashes(body, hdr.length, 1 << 18, &hv);
		break;
	case REC_ROUND:
		rec_parse_round(body, hdr.length, &round);
		break;
	case REC_ERROR:
		rec_parse_error(body, hdr.length, &code, text);
		break;
	case REC_POSTCOPY:
		if (rec_parse_postcopy(body, hdr.length, 1 << 18, 0, &post) == 0 &&
		    (uint8_t *)(post.bits + (post.count + 63) / 64) != body + hdr.length)
			abort(); /* the bits must end exactly at the body's end */
		break;
	case REC_FORGET:
		if (rec_parse_forget(body, hdr.length, 1 << 18, 0, &post) == 0 &&
		    (uint8_t *)(post.bits + (post.count + 63) / 64) != body + hdr.length)
			abort();
		break;
	case REC_RECOVER:
		if (rec_parse_recover(body, hdr.length, 1 << 18, 0, &post) == 0 &&
		    (uint8_t *)(post.bits + (post.count + 63) / 64) != body + hdr.length)
			abort();
		break;
	case REC_RESUME:
		if (rec_parse_resume(body, hdr.length, &resume) == 0 && !resume.id)
			abort();
		break;
	case REC_REQUEST:
		if (rec_parse_request(body, hdr.length, 1 << 18, &req) == 0)
			for (uint32_t i = 0; i < req.count; i++)
				if (req.gfn[i] >= 1 << 18)
					abort();
		break;
	case REC_PLACED:
		rec_parse_placed(body, hdr.length, &placed);
		break;
	}
	free(body);
	return 0;
}
