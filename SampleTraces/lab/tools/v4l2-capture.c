// v4l2-capture DEVICE FRAMES [noncoherent]
// v4l2-capture --share EXPORTER IMPORTER FRAMES [noncoherent]
//
// Stream FRAMES frames from a V4L2 capture node with MMAP buffers, the way a camera
// application does, so the guest's videobuf2 allocator really allocates, syncs and frees its
// buffers. With "noncoherent" the buffers are requested with V4L2_MEMORY_FLAG_NON_COHERENT:
// videobuf2-dma-contig then allocates them with dma_alloc_noncontiguous() and syncs them
// around every frame (vb2_dc_prepare/finish); without it, with dma_alloc_attrs().
// --share: the EXPORTER node allocates the MMAP buffers and exports each as a dma-buf
// (VIDIOC_EXPBUF); the IMPORTER node (another device) queues them as DMABUF buffers and
// streams into them, so the exporter's memory is dma-mapped for the importer
// (vb2_dc_dmabuf_ops_map: dma_map_sgtable(..., DMA_ATTR_SKIP_CPU_SYNC)) while it is still
// allocated for the exporter: buffer sharing between devices.
// The busybox guest has no v4l2 tools: built static on the host by record-drivers.sh.
// Exit status 0 only if every frame came back.
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

static int set_format(int fd)
{
	// A small frame keeps the trace small; vivid scales to it.
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	if (xioctl(fd, VIDIOC_G_FMT, &fmt, "G_FMT") < 0)
		return -1;
	fmt.fmt.pix.width = 320;
	fmt.fmt.pix.height = 240;
	fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUYV;
	fmt.fmt.pix.field = V4L2_FIELD_NONE;
	if (xioctl(fd, VIDIOC_S_FMT, &fmt, "S_FMT") < 0)
		return -1;
	printf("format %ux%u sizeimage %u\n", fmt.fmt.pix.width, fmt.fmt.pix.height,
	       fmt.fmt.pix.sizeimage);
	return 0;
}

struct bufs {
	unsigned count;
	void *maps[NBUF];
	size_t lens[NBUF];
};

// MMAP buffers on fd, mapped into this process; queued unless queue == 0.
static int mmap_buffers(int fd, int noncoherent, int queue, struct bufs *bs)
{
	struct v4l2_requestbuffers req = {
		.count = NBUF, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP,
		.flags = noncoherent ? V4L2_MEMORY_FLAG_NON_COHERENT : 0,
	};
	if (xioctl(fd, VIDIOC_REQBUFS, &req, "REQBUFS") < 0)
		return -1;
	printf("%u buffers, capabilities 0x%x, flags 0x%x (%s requested)\n", req.count,
	       req.capabilities, req.flags, noncoherent ? "non-coherent" : "coherent");
	if (noncoherent && !(req.flags & V4L2_MEMORY_FLAG_NON_COHERENT))
		fprintf(stderr, "v4l2-capture: the driver refused non-coherent buffers\n");
	bs->count = req.count < NBUF ? req.count : NBUF;
	for (unsigned i = 0; i < bs->count; i++) {
		struct v4l2_buffer b = { .type = req.type, .memory = req.memory, .index = i };
		if (xioctl(fd, VIDIOC_QUERYBUF, &b, "QUERYBUF") < 0)
			return -1;
		bs->lens[i] = b.length;
		bs->maps[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.m.offset);
		if (bs->maps[i] == MAP_FAILED) {
			perror("v4l2-capture: mmap");
			return -1;
		}
		if (queue && xioctl(fd, VIDIOC_QBUF, &b, "QBUF") < 0)
			return -1;
	}
	return 0;
}

// Stream `frames` frames on fd (buffers already queued); the CPU reads each frame through
// bs's mappings, as an application would. Returns the frames that came back.
static int stream(int fd, unsigned memory, const struct bufs *bs, int frames, const int *fds)
{
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	if (xioctl(fd, VIDIOC_STREAMON, &type, "STREAMON") < 0)
		return 0;
	unsigned long sum = 0;
	int got = 0;
	for (; got < frames; got++) {
		struct v4l2_buffer b = { .type = type, .memory = memory };
		if (xioctl(fd, VIDIOC_DQBUF, &b, "DQBUF") < 0)
			break;
		const unsigned char *p = bs->maps[b.index];
		for (size_t k = 0; k < b.bytesused; k += 64)
			sum += p[k];
		if (memory == V4L2_MEMORY_DMABUF) {
			b.m.fd = fds[b.index];
			b.length = bs->lens[b.index];
		}
		if (xioctl(fd, VIDIOC_QBUF, &b, "QBUF") < 0)
			break;
	}
	xioctl(fd, VIDIOC_STREAMOFF, &type, "STREAMOFF");
	printf("%d of %d frames, checksum %lu\n", got, frames, sum);
	return got;
}

// Free the buffers now rather than at close, so the frees fall in the caller's phase.
static void release(int fd, unsigned memory)
{
	struct v4l2_requestbuffers req = { .count = 0, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = memory };
	xioctl(fd, VIDIOC_REQBUFS, &req, "REQBUFS 0");
}

static int open_node(const char *path)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		fprintf(stderr, "v4l2-capture: %s: %s\n", path, strerror(errno));
	return fd;
}

static int capture(const char *node, int frames, int noncoherent)
{
	struct bufs bs;
	int fd = open_node(node);
	if (fd < 0 || set_format(fd) < 0 || mmap_buffers(fd, noncoherent, 1, &bs) < 0)
		return 1;
	int got = stream(fd, V4L2_MEMORY_MMAP, &bs, frames, NULL);
	for (unsigned i = 0; i < bs.count; i++)
		munmap(bs.maps[i], bs.lens[i]);
	release(fd, V4L2_MEMORY_MMAP);
	close(fd);
	return got == frames ? 0 : 1;
}

static int share(const char *exporter, const char *importer, int frames, int noncoherent)
{
	struct bufs bs;
	int fds[NBUF];
	int ex = open_node(exporter), im = open_node(importer);
	if (ex < 0 || im < 0 || set_format(ex) < 0 || set_format(im) < 0)
		return 1;
	if (mmap_buffers(ex, noncoherent, 0, &bs) < 0)
		return 1;
	for (unsigned i = 0; i < bs.count; i++) {
		struct v4l2_exportbuffer e = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .index = i, .flags = O_RDWR | O_CLOEXEC };
		if (xioctl(ex, VIDIOC_EXPBUF, &e, "EXPBUF") < 0)
			return 1;
		fds[i] = e.fd;
	}
	struct v4l2_requestbuffers req = { .count = bs.count, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF };
	if (xioctl(im, VIDIOC_REQBUFS, &req, "REQBUFS DMABUF") < 0)
		return 1;
	printf("%u dma-buf buffers exported by %s, imported by %s\n", req.count, exporter, importer);
	for (unsigned i = 0; i < bs.count; i++) {
		struct v4l2_buffer b = { .type = req.type, .memory = req.memory, .index = i };
		b.m.fd = fds[i];
		b.length = bs.lens[i];
		if (xioctl(im, VIDIOC_QBUF, &b, "QBUF DMABUF") < 0)
			return 1;
	}
	int got = stream(im, V4L2_MEMORY_DMABUF, &bs, frames, fds);
	release(im, V4L2_MEMORY_DMABUF);	// detaches: the importer's mappings go
	for (unsigned i = 0; i < bs.count; i++) {
		close(fds[i]);
		munmap(bs.maps[i], bs.lens[i]);
	}
	release(ex, V4L2_MEMORY_MMAP);
	close(im);
	close(ex);
	return got == frames ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "--share") == 0)
		return share(argv[2], argv[3], atoi(argv[4]), argc > 5 && strcmp(argv[5], "noncoherent") == 0);
	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: v4l2-capture DEVICE FRAMES [noncoherent]\n"
				"       v4l2-capture --share EXPORTER IMPORTER FRAMES [noncoherent]\n");
		return 2;
	}
	return capture(argv[1], atoi(argv[2]), argc > 3 && strcmp(argv[3], "noncoherent") == 0);
}
