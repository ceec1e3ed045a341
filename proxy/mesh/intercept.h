/* `wingman intercept`: installs, removes and shows the eBPF interception of a
 * pod (bpf/, doc/bpf.md). */
#ifndef WM_INTERCEPT_H
#define WM_INTERCEPT_H

/* argv[0] is "intercept", argv[1] the command. Returns the process exit status:
 * 0 done, 1 failed (or status: nothing attached), 2 usage, 3 built without BPF. */
int intercept_main(int argc, char **argv);

#endif
