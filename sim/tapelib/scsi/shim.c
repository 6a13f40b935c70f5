/*
 * LD_PRELOAD shim: SCSI generic devices in user space for the real mtx and tapeinfo.
 *
 * This kernel has no SCSI layer, so no /dev/sg* can exist. For the paths named in
 * TAPELIB_SCSI_DEVICES ("PATH=changer,PATH=drive:0,..."), open()/open64() start one child,
 * `$TAPELIB_SCSI_PYTHON -m sim.tapelib.scsi.model serve PATH KIND`, on a socketpair and return
 * the shim's end of it as the device's file descriptor. ioctl() on that descriptor answers
 * SG_GET_VERSION_NUM, SG_SET_TIMEOUT/SG_GET_TIMEOUT, SCSI_IOCTL_GET_IDLUN and SG_IO; SG_IO sends
 * the CDB (and any data-out) to the child and copies back status, sense and data-in. close()
 * ends the child. TAPELIB_SCSI_TRACE=1 logs each ioctl (and SG_IO's opcode) on stderr.
 * Every SCSI rule lives in the Python model; this file only moves bytes.
 * Protocol: see the docstring of sim/tapelib/scsi/model.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <scsi/scsi.h>
#include <scsi/sg.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_OPEN 64
#define SG_VERSION 30536 /* what a current Linux sg driver reports; mtx wants at least 30000 */

struct device {
	int fd; /* -1: free */
	pid_t child;
	int timeout;
	int four_in_one; /* SCSI_IOCTL_GET_IDLUN: id | lun << 8 */
};

static struct device devices[MAX_OPEN];
static int initialised;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);

static void init(void)
{
	if (initialised)
		return;
	real_open = dlsym(RTLD_NEXT, "open");
	real_open64 = dlsym(RTLD_NEXT, "open64");
	real_close = dlsym(RTLD_NEXT, "close");
	real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	for (int i = 0; i < MAX_OPEN; i++)
		devices[i].fd = -1;
	initialised = 1;
}

static struct device *device_of(int fd)
{
	if (fd < 0)
		return NULL;
	for (int i = 0; i < MAX_OPEN; i++)
		if (devices[i].fd == fd)
			return &devices[i];
	return NULL;
}

/* The kind configured for path (compared as given and after realpath), copied into kind. */
static int configured(const char *path, char *kind, size_t size)
{
	const char *list = getenv("TAPELIB_SCSI_DEVICES");
	char resolved[PATH_MAX];
	int have_resolved = realpath(path, resolved) != NULL;
	if (!list)
		return 0;
	char *copy = strdup(list), *save = NULL;
	int found = 0;
	for (char *item = strtok_r(copy, ",", &save); item && !found; item = strtok_r(NULL, ",", &save)) {
		char *equals = strrchr(item, '=');
		if (!equals)
			continue;
		*equals = '\0';
		char item_resolved[PATH_MAX];
		if (strcmp(item, path) == 0 ||
		    (have_resolved && realpath(item, item_resolved) && strcmp(item_resolved, resolved) == 0)) {
			snprintf(kind, size, "%s", equals + 1);
			found = 1;
		}
	}
	free(copy);
	return found;
}

static int open_device(const char *path, const char *kind)
{
	struct device *slot = NULL;
	for (int i = 0; i < MAX_OPEN && !slot; i++)
		if (devices[i].fd == -1)
			slot = &devices[i];
	if (!slot) {
		errno = EMFILE;
		return -1;
	}
	/* The changer's device must exist to be opened, as on a real system. A drive's path is the
	 * `file` backend's drive file, which exists only while a tape is loaded; a real drive's device
	 * node stays whether or not it holds a tape, so a drive opens either way. */
	if (strncmp(kind, "drive:", 6) != 0 && access(path, F_OK) != 0)
		return -1;
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
		return -1;
	const char *python = getenv("TAPELIB_SCSI_PYTHON");
	if (!python || !*python)
		python = "python3";
	pid_t child = fork();
	if (child < 0) {
		real_close(pair[0]);
		real_close(pair[1]);
		return -1;
	}
	if (child == 0) {
		dup2(pair[1], 0);
		dup2(pair[1], 1);
		unsetenv("LD_PRELOAD"); /* the model opens the device paths itself (it checks who holds them) */
		execlp(python, python, "-m", "sim.tapelib.scsi.model", "serve", path, kind, (char *)NULL);
		/* the program then sees its first SCSI command fail: say why, once, on its stderr */
		dprintf(2, "scsishim: cannot start %s for %s: %s\n", python, path, strerror(errno));
		_exit(127);
	}
	real_close(pair[1]);
	slot->fd = pair[0];
	slot->child = child;
	slot->timeout = 60 * 100;
	if (strcmp(kind, "changer") == 0)
		slot->four_in_one = 1 | (1 << 8);
	else
		slot->four_in_one = strncmp(kind, "drive:", 6) == 0 ? atoi(kind + 6) : 0;
	return pair[0];
}

static int open_common(int (*next)(const char *, int, ...), const char *path, int flags, va_list args)
{
	char kind[64];
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(args, mode_t) : 0;
	if (path && configured(path, kind, sizeof kind))
		return open_device(path, kind);
	return next(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	init();
	va_list args;
	va_start(args, flags);
	int fd = open_common(real_open, path, flags, args);
	va_end(args);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	init();
	va_list args;
	va_start(args, flags);
	int fd = open_common(real_open64, path, flags, args);
	va_end(args);
	return fd;
}

int close(int fd)
{
	init();
	struct device *device = device_of(fd);
	if (!device)
		return real_close(fd);
	int result = real_close(fd); /* end of input: the model exits */
	pid_t child = device->child;
	device->fd = -1;
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return result;
}

static int write_all(int fd, const void *buffer, size_t size)
{
	const char *p = buffer;
	while (size > 0) {
		ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buffer, size_t size)
{
	char *p = buffer;
	while (size > 0) {
		ssize_t n = read(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

static int sg_io(struct device *device, struct sg_io_hdr *hdr)
{
	if (hdr->interface_id != 'S' || hdr->iovec_count != 0) {
		errno = ENOSYS;
		return -1;
	}
	struct {
		uint32_t cdb_len;
		int32_t direction;
		uint32_t dxfer_len;
	} __attribute__((packed)) request = {hdr->cmd_len, hdr->dxfer_direction, hdr->dxfer_len};
	if (write_all(device->fd, &request, sizeof request) || write_all(device->fd, hdr->cmdp, hdr->cmd_len) ||
	    (hdr->dxfer_direction == SG_DXFER_TO_DEV && hdr->dxfer_len &&
	     write_all(device->fd, hdr->dxferp, hdr->dxfer_len))) {
		errno = EIO;
		return -1;
	}
	struct {
		uint8_t status;
		uint8_t sense_len;
		uint32_t data_len;
	} __attribute__((packed)) reply;
	unsigned char sense[256], *data = NULL;
	if (read_all(device->fd, &reply, sizeof reply) || read_all(device->fd, sense, reply.sense_len)) {
		errno = EIO;
		return -1;
	}
	if (reply.data_len > hdr->dxfer_len) { /* the model never sends more than asked */
		errno = EIO;
		return -1;
	}
	if (reply.data_len) {
		data = malloc(reply.data_len);
		if (!data || read_all(device->fd, data, reply.data_len)) {
			free(data);
			errno = EIO;
			return -1;
		}
		memcpy(hdr->dxferp, data, reply.data_len);
		free(data);
	}
	hdr->status = reply.status;
	hdr->masked_status = (reply.status >> 1) & 0x7f;
	hdr->msg_status = 0;
	hdr->host_status = 0;
	hdr->sb_len_wr = reply.sense_len < hdr->mx_sb_len ? reply.sense_len : hdr->mx_sb_len;
	if (hdr->sb_len_wr)
		memcpy(hdr->sbp, sense, hdr->sb_len_wr);
	hdr->driver_status = hdr->sb_len_wr ? 0x08 : 0; /* DRIVER_SENSE */
	hdr->resid = (int)(hdr->dxfer_len - reply.data_len);
	hdr->duration = 0;
	hdr->info = reply.status ? SG_INFO_CHECK : SG_INFO_OK;
	return 0;
}

int ioctl(int fd, unsigned long request, ...)
{
	init();
	va_list args;
	va_start(args, request);
	void *argument = va_arg(args, void *);
	va_end(args);
	struct device *device = device_of(fd);
	if (!device)
		return real_ioctl(fd, request, argument);
	if (getenv("TAPELIB_SCSI_TRACE")) { /* which ioctls (and CDBs) a program issues, on stderr */
		fprintf(stderr, "scsishim: ioctl 0x%lx", request);
		if (request == SG_IO) {
			struct sg_io_hdr *hdr = argument;
			fprintf(stderr, " dir %d len %u cdb", hdr->dxfer_direction, hdr->dxfer_len);
			for (int i = 0; i < hdr->cmd_len; i++)
				fprintf(stderr, " %02x", hdr->cmdp[i]);
		}
		fprintf(stderr, "\n");
	}
	switch (request) {
	case SG_GET_VERSION_NUM:
		*(int *)argument = SG_VERSION;
		return 0;
	case SG_SET_TIMEOUT:
		device->timeout = *(int *)argument;
		return 0;
	case SG_GET_TIMEOUT: /* the timeout is the return value */
		return device->timeout;
	case SCSI_IOCTL_GET_IDLUN:
		((int *)argument)[0] = device->four_in_one;
		((int *)argument)[1] = 0;
		return 0;
	case SG_IO:
		return sg_io(device, argument);
	default:
		errno = ENOTTY;
		return -1;
	}
}
