#include "vm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/error.h"
#include "util/log.h"

static struct kvm_host host = { .fd = -1 };
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;

int kvm_check_cap(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

bool kvm_available(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int get_supported_cpuid(struct kvm_host *kvm)
{
	for (int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = (uint32_t)n;
		if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return -errno;
	}
	return -E2BIG;
}

static int get_msr_list(struct kvm_host *kvm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *list;

	if (ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (!list)
		return -ENOMEM;
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return -errno;
	}
	kvm->msrs = list;
	return 0;
}

static int host_open(struct kvm_host *kvm)
{
	int rc, version;

	kvm->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		rc = -errno;
		return err_set(
			rc,
			"cannot open /dev/kvm: %s (is the kvm module loaded, and may this user use it?)",
			strerror(-rc));
	}
	version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		rc = err_set(-ENOTSUP, "/dev/kvm speaks API version %d, ferry needs %d", version,
			     KVM_API_VERSION);
		goto out_close;
	}
	kvm->vcpu_mmap_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	kvm->xsave_size = kvm_check_cap(kvm->fd, KVM_CAP_XSAVE2);
	if (kvm->xsave_size < (int)sizeof(struct kvm_xsave))
		kvm->xsave_size = sizeof(struct kvm_xsave);
	rc = get_supported_cpuid(kvm);
	if (rc < 0) {
		err_set(rc, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-rc));
		goto out_close;
	}
	rc = get_msr_list(kvm);
	if (rc < 0) {
		err_set(rc, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(-rc));
		goto out_cpuid;
	}
	return 0;
out_cpuid:
	free(kvm->cpuid);
	kvm->cpuid = NULL;
out_close:
	close(kvm->fd);
	kvm->fd = -1;
	return rc;
}

struct kvm_host *kvm_host_get(void)
{
	struct kvm_host *result = &host;

	pthread_mutex_lock(&host_lock);
	if (host.fd < 0 && host_open(&host) < 0)
		result = NULL;
	pthread_mutex_unlock(&host_lock);
	return result;
}

/* Some MSRs in KVM's list cannot be read on this host, or cannot be written
 * back (read-only, or dependent on features the guest lacks): saving them
 * would make every restore fail. Probe each on a fresh vCPU once. */
int kvm_filter_msrs(struct kvm_host *kvm, int vcpu_fd)
{
	union {
		struct kvm_msrs hdr;
		uint8_t room[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} one;
	uint32_t kept = 0;

	pthread_mutex_lock(&host_lock);
	if (kvm->msrs_filtered) {
		pthread_mutex_unlock(&host_lock);
		return 0;
	}
	for (uint32_t i = 0; kvm->msrs && i < kvm->msrs->nmsrs; i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.hdr.entries[0].index = kvm->msrs->indices[i];
		if (ioctl(vcpu_fd, KVM_GET_MSRS, &one) != 1)
			continue;
		if (ioctl(vcpu_fd, KVM_SET_MSRS, &one) != 1) {
			log_debug("msr %#x cannot be restored: dropped", one.hdr.entries[0].index);
			continue;
		}
		kvm->msrs->indices[kept++] = kvm->msrs->indices[i];
	}
	if (kvm->msrs)
		kvm->msrs->nmsrs = kept;
	kvm->msrs_filtered = true;
	pthread_mutex_unlock(&host_lock);
	return 0;
}
