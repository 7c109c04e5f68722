// cradle-pod-init: the PID holder, PID 1 of a pod's shared PID namespace,
// as pause or catatonit would be. internal/netns starts it in the new
// namespace, in an empty directory, with the sandbox ID as its argument,
// and waits for "ok" (or "error: ...") on stdout. It is C because it runs
// once per pod: a Go runtime alone costs about 0.6 MiB of private memory.
// internal/podinit is the same program in Go, which the daemon's own binary
// runs where this one was not built.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, int err) {
	printf("error: %s: %s\n", what, strerror(err));
	return 1;
}

int main(int argc, char **argv) {
	(void)argv;
	if (argc != 2) {
		printf("error: usage: cradle-pod-init SANDBOX_ID\n");
		return 2;
	}
	// Not dumpable, rooted in its empty start directory (which the daemon
	// then removes): a pod's process gets nothing of the host via /proc/1.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return fail("set not dumpable", errno);
	if (chroot(".") != 0)
		return fail("chroot", errno);
	if (chdir("/") != 0)
		return fail("chdir", errno);
	if (getpid() != 1) {
		printf("error: not PID 1 of a new PID namespace\n");
		return 1;
	}
	// Every signal is blocked and taken by sigwait: none has its default
	// action. SIGTERM and SIGINT end the holder (and so the namespace),
	// SIGCHLD reaps, everything else is dropped.
	// An ignored signal never reaches sigwait, and exec keeps what the
	// daemon ignored: those that matter get their default back first.
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigset_t all;
	sigfillset(&all);
	if (sigprocmask(SIG_BLOCK, &all, NULL) != 0)
		return fail("block signals", errno);
	printf("ok\n");
	fflush(stdout);
	close(STDOUT_FILENO);
	for (;;) {
		int sig;
		if (sigwait(&all, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			return 0;
		if (sig == SIGCHLD)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
	}
}
