// SPDX-License-Identifier: GPL-2.0-only
/*
 * The C side of the ioctl round-trip benchmark (tools/bench_guest.ts):
 * N x IOMMU_DESTROY(id 0) on /dev/iommu, each failing with ENOENT, the
 * cheapest full trip through iommufd's ioctl dispatch, with errno checked
 * like the Deno side does. Prints "<ns per call> <mismatches>".
 *
 * usage: ioctl_loop N
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>

int main(int argc, char **argv)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = 0 };
	struct timespec a, b;
	long n, i, bad = 0;
	int fd;

	if (argc != 2 || (n = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: ioctl_loop N\n");
		return 2;
	}
	fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("open /dev/iommu");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		if (ioctl(fd, IOMMU_DESTROY, &cmd) != -1 || errno != ENOENT)
			bad++;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f %ld\n",
	       ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n, bad);
	close(fd);
	return 0;
}
