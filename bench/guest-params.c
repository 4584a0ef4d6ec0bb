/* Write the parameter page for the ferry guest booted by another VMM (the
 * PVH image, e.g. under QEMU): what ferry's loader writes itself.
 *   guest-params --mem SIZE --workload SPEC FILE
 * One vCPU (the PVH stub starts only the first); the TSC frequency is this
 * host's KVM default, which a QEMU guest also gets. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "guest/abi.h"
#include "util/error.h"
#include "util/size.h"
#include "vm/kvm.h"
#include "vm/workload.h"

static uint64_t host_tsc_khz(void)
{
	struct kvm_host *kvm = kvm_host_get();
	int vm = kvm ? ioctl(kvm->fd, KVM_CREATE_VM, 0) : -1, khz;

	if (vm < 0)
		return 0;
	khz = ioctl(vm, KVM_GET_TSC_KHZ, 0);
	close(vm);
	return khz > 0 ? (uint64_t)khz : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "mem", required_argument, NULL, 'm' },
						  { "workload", required_argument, NULL, 'w' },
						  { 0 } };
	struct ferry_params p = { .magic = FERRY_PARAMS_MAGIC,
				  .version = FERRY_PARAMS_VERSION,
				  .vcpus = 1 };
	const char *spec = "idle";
	FILE *out;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'm' && size_parse(optarg, &p.mem_bytes) == 0)
			continue;
		if (opt == 'w') {
			spec = optarg;
			continue;
		}
		fprintf(stderr, "usage: guest-params --mem SIZE --workload SPEC FILE\n");
		return 2;
	}
	if (optind != argc - 1 || !p.mem_bytes) {
		fprintf(stderr, "usage: guest-params --mem SIZE --workload SPEC FILE\n");
		return 2;
	}
	if (workload_parse(spec, p.mem_bytes, &p.wl) < 0) {
		fprintf(stderr, "guest-params: %s\n", err_msg());
		return 2;
	}
	p.tsc_khz = host_tsc_khz();
	out = fopen(argv[optind], "wb");
	if (!out || fwrite(&p, sizeof(p), 1, out) != 1 || fclose(out) != 0) {
		fprintf(stderr, "guest-params: cannot write %s: %s\n", argv[optind],
			strerror(errno));
		return 1;
	}
	return 0;
}
