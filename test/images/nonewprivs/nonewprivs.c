// nonewprivs: the test program of e2e-test-images/nonewprivs. Installed
// setuid root, it reports the effective uid it runs with: 0 when the kernel
// honoured the setuid bit, the caller's uid under no_new_privs.
// Build: gcc -static -O2 -s -o nnp nonewprivs.c
#include <stdio.h>
#include <unistd.h>

int main(void) {
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
