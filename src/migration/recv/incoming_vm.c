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

/* Memory into the place the shell kept for it: the memory handed over
 * (fd), or new memory of kind. */
static int fill_shell(struct vm *vm, int fd, enum mem_backend kind)
{
	return fd >= 0 ? mem_adopt(&vm->mem, fd, kind) : mem_fill(&vm->mem, kind);
}

/* The VM without vCPUs, its memory in place: the one made ahead if it is
 * the guest's size, else one made now. Should something have taken the
 * place its memory was kept in, a VM made anew. */
static int take_shell(struct incoming *in, struct vm_config *vc, int fd, enum mem_backend kind)
{
	struct vm *vm = NULL;
	int rc = -EEXIST;

	vc->mem_later = true;
	if (*in->shell && (*in->shell)->mem.size == vc->mem_bytes) {
		vm = *in->shell;
		*in->shell = NULL;
		log_info("the guest goes into the VM made ahead for --mem%s",
			 fd >= 0 ? ", with the memory handed over" : "");
		rc = fill_shell(vm, fd, kind);
		if (rc == -EEXIST) {
			log_warn("the VM made ahead lost its memory's place (%s): one made now",
				 err_msg());
			vm_destroy(vm);
			vm = NULL;
		}
	}
	if (rc == -EEXIST && (rc = vm_create_shell(vc, &vm)) == 0)
		rc = fill_shell(vm, fd, kind);
	in->vm = vm;
	return rc;
}

/* A VM of the shape CONFIG gives. Its memory is the destination's ready
 * memory when there is enough of it; else a shell's (take_shell), or in a
 * local migration the source's own, in the place a shell kept. */
static int make_vm(struct incoming *in)
{
	struct vm_config vc = { .mem_bytes = in->hello.config.mem_bytes,
				.vcpus = in->hello.config.vcpus,
				.mem_backend = in->o->mem_backend,
				.dirty_backend = in->o->dirty_backend };
	bool local = in->hello.config.flags & CONFIG_LOCAL;
	enum mem_backend kind = vc.mem_backend;
	int fd = -1, rc = local ? take_memory(in, &fd, &kind) : 0;

	if (rc == 0 && !local) /* ready memory first: faulted in already */
		in->lent = ready_mem_lend(in->ready, vc.mem_bytes, &vc.lend_from) == 0;
	if (rc < 0 || in->lent)
		return rc < 0 ? rc : vm_create(&vc, &in->vm);
	rc = take_shell(in, &vc, fd, kind);
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
