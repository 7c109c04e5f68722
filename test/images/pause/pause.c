// pause: PID 1 of cradle's test sandbox images.
//
// It execs catatonit in pause mode (catatonit -P) when the image ships it, so
// the sandbox behaves like registry.k8s.io/pause. Without catatonit it does
// the same job itself: sleep until SIGTERM or SIGINT and reap every child.
// Build: gcc -static -O2 -s -o pause pause.c
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#define CATATONIT "/usr/bin/catatonit"

static volatile sig_atomic_t done;

static void on_stop(int sig) {
	(void)sig;
	done = 1;
}

static void on_child(int sig) {
	(void)sig;
	// waitpid can clobber errno; nothing in main relies on it while waiting.
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void) {
	char *const args[] = {"catatonit", "-P", NULL};
	execv(CATATONIT, args); // returns only if catatonit is missing

	struct sigaction sa = {0};
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);

	// Block the signals and wait with sigsuspend so none is lost between the
	// check of done and going to sleep.
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	while (!done)
		sigsuspend(&old);
	return 0;
}
