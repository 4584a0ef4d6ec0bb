/* The VM an incoming migration receives into: the one made ahead for a
 * guest of --mem (recv/dest.c), one made now, on the destination's ready
 * memory or fresh memory, or, in a local migration, on the memory the
 * source hands over (MEMFD); then what receiving into it needs. */
#include "migration/recv/incoming_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/recv/ready_mem.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "vm/memory.h"
#include "vm/vm.h"

/* Local migration: MEMFD, the guest's memory itself: its fd and kind. */
static int take_memory(struct incoming *in, int *fd, enum mem_backend *kind)
{
	struct rec_memfd r = { 0 };
	int rc = wire_recv_fd(in->chan, &in->hdr, &in->buf, fd);

	if (rc < 0)
		return err_wrap(rc, "a local migration, but its memory did not come");
	if (in->hdr.type != REC_MEMFD)
		rc = err_set(-EPROTO, "%s came where MEMFD was due", rec_type_name(in->hdr.type));
	else
		memcpy(&r, in->buf.data, sizeof(r)); /* its length was checked */
	if (rc == 0 && r.mem_bytes != in->hello.config.mem_bytes)
		rc = err_set(-EPROTO, "MEMFD hands over %llu bytes, CONFIG announced %llu",
			     (unsigned long long)r.mem_bytes,
			     (unsigned long long)in->hello.config.mem_bytes);
	*kind = (enum mem_backend)r.backend;
	if (rc < 0) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

/* Whether the VM made ahead fits the guest: its size, and for a local
 * migration, anonymous memory the handed one can take the place of. */
static bool shell_fits(const struct incoming *in, bool local)
{
	const struct vm *shell = *in->shell;

	return shell && shell->mem.size == in->hello.config.mem_bytes &&
	       (!local || shell->mem.memfd < 0);
}

/* The VM without vCPUs: the one made ahead if it fits, else one made now
 * (on anonymous memory for a local migration, whose memory takes its
 * place). */
static int take_shell(struct incoming *in, struct vm_config *vc, bool local, struct vm **out)
{
	if (!shell_fits(in, local)) {
		if (local)
			vc->mem_backend = MEM_ANON;
		return vm_create_shell(vc, out);
	}
	*out = *in->shell;
	*in->shell = NULL;
	log_info("the guest goes into the VM made ahead for --mem%s",
		 local ? ", the memory handed over in place of its own" : "");
	return 0;
}

/* A VM of the shape CONFIG gives. Its memory is the destination's ready
 * memory when there is enough of it; else a shell's (take_shell), or in a
 * local migration the source's own, mapped in place of the shell's. */
static int make_vm(struct incoming *in)
{
	struct vm_config vc = { .mem_bytes = in->hello.config.mem_bytes,
				.vcpus = in->hello.config.vcpus,
				.mem_backend = in->o->mem_backend,
				.dirty_backend = in->o->dirty_backend };
	bool local = in->hello.config.flags & CONFIG_LOCAL;
	enum mem_backend kind = MEM_ANON;
	int fd = -1, rc = local ? take_memory(in, &fd, &kind) : 0;

	if (rc == 0 && !local) /* ready memory first: faulted in already */
		in->lent = ready_mem_lend(in->ready, vc.mem_bytes, &vc.lend_from) == 0;
	if (rc < 0 || in->lent)
		return rc < 0 ? rc : vm_create(&vc, &in->vm);
	rc = take_shell(in, &vc, local, &in->vm);
	if (rc == 0 && local)
		rc = mem_adopt(&in->vm->mem, fd, kind);
	if (rc < 0 && fd >= 0 && !(in->vm && in->vm->mem.memfd == fd))
		close(fd); /* not taken */
	return rc < 0 ? rc : vm_add_vcpus(in->vm, vc.vcpus);
}

int incoming_build_vm(struct incoming *in)
{
	int rc = make_vm(in);

	if (rc < 0)
		return rc;
	in->npages = in->hello.config.mem_bytes / FERRY_PAGE_SIZE;
	in->written = calloc(BITMAP_WORDS(in->npages), 8);
	in->damaged = calloc(BITMAP_WORDS(in->npages), 8);
	if (!in->written || !in->damaged)
		return err_set(-ENOMEM, "out of memory");
	if (in->hello.config.flags & CONFIG_VERIFY) {
		in->hashes = calloc(in->npages, 8);
		in->hashed = calloc(BITMAP_WORDS(in->npages), 8);
		if (!in->hashes || !in->hashed)
			return err_set(-ENOMEM, "out of memory for page hashes");
	}
	rc = page_writer_init(&in->pages, &in->vm->mem, in->written, in->damaged);
	/* The vCPU threads now, held until COMMIT: not in the switchover. */
	return rc < 0 ? rc : vm_start_held(in->vm);
}
