// v4l2-capture DEVICE FRAMES [noncoherent]: stream FRAMES frames from a V4L2 capture node
// with MMAP buffers, the way a camera application does, so the guest's videobuf2 allocator
// really allocates, syncs and frees its buffers. With "noncoherent" the buffers are requested
// with V4L2_MEMORY_FLAG_NON_COHERENT: videobuf2-dma-contig then allocates them with
// dma_alloc_noncontiguous() and syncs them around every frame (vb2_dc_prepare/finish);
// without it, with dma_alloc_attrs(). The busybox guest has no v4l2 tools: built static on
// the host by record-drivers.sh. Exit status 0 only if every frame came back.
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define NBUF 4

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int r;
	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		fprintf(stderr, "v4l2-capture: %s: %s\n", what, strerror(errno));
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: v4l2-capture DEVICE FRAMES [noncoherent]\n");
		return 2;
	}
	int frames = atoi(argv[2]);
	int noncoherent = argc > 3 && strcmp(argv[3], "noncoherent") == 0;
	int fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "v4l2-capture: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	// A small frame keeps the trace small; vivid scales to it.
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	if (xioctl(fd, VIDIOC_G_FMT, &fmt, "G_FMT") < 0)
		return 1;
	fmt.fmt.pix.width = 320;
	fmt.fmt.pix.height = 240;
	fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUYV;
	fmt.fmt.pix.field = V4L2_FIELD_NONE;
	if (xioctl(fd, VIDIOC_S_FMT, &fmt, "S_FMT") < 0)
		return 1;
	printf("format %ux%u sizeimage %u\n", fmt.fmt.pix.width, fmt.fmt.pix.height,
	       fmt.fmt.pix.sizeimage);

	struct v4l2_requestbuffers req = {
		.count = NBUF, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP,
		.flags = noncoherent ? V4L2_MEMORY_FLAG_NON_COHERENT : 0,
	};
	if (xioctl(fd, VIDIOC_REQBUFS, &req, "REQBUFS") < 0)
		return 1;
	printf("%u buffers, capabilities 0x%x, flags 0x%x (%s requested)\n", req.count,
	       req.capabilities, req.flags, noncoherent ? "non-coherent" : "coherent");
	if (noncoherent && !(req.flags & V4L2_MEMORY_FLAG_NON_COHERENT))
		fprintf(stderr, "v4l2-capture: the driver refused non-coherent buffers\n");

	void *maps[NBUF];
	size_t lens[NBUF];
	for (unsigned i = 0; i < req.count && i < NBUF; i++) {
		struct v4l2_buffer b = { .type = req.type, .memory = req.memory, .index = i };
		if (xioctl(fd, VIDIOC_QUERYBUF, &b, "QUERYBUF") < 0)
			return 1;
		lens[i] = b.length;
		maps[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.m.offset);
		if (maps[i] == MAP_FAILED) {
			perror("v4l2-capture: mmap");
			return 1;
		}
		if (xioctl(fd, VIDIOC_QBUF, &b, "QBUF") < 0)
			return 1;
	}
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	if (xioctl(fd, VIDIOC_STREAMON, &type, "STREAMON") < 0)
		return 1;
	unsigned long sum = 0;
	int got = 0;
	for (; got < frames; got++) {
		struct v4l2_buffer b = { .type = req.type, .memory = req.memory };
		if (xioctl(fd, VIDIOC_DQBUF, &b, "DQBUF") < 0)
			break;
		// The CPU reads the frame, as an application would.
		const unsigned char *p = maps[b.index];
		for (size_t k = 0; k < b.bytesused; k += 64)
			sum += p[k];
		if (xioctl(fd, VIDIOC_QBUF, &b, "QBUF") < 0)
			break;
	}
	xioctl(fd, VIDIOC_STREAMOFF, &type, "STREAMOFF");
	for (unsigned i = 0; i < req.count && i < NBUF; i++)
		munmap(maps[i], lens[i]);
	// Free the buffers now rather than at close, so the frees fall in this phase.
	req.count = 0;
	xioctl(fd, VIDIOC_REQBUFS, &req, "REQBUFS 0");
	close(fd);
	printf("%d of %d frames, checksum %lu\n", got, frames, sum);
	return got == frames ? 0 : 1;
}
