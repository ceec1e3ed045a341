/* `wingman observe` (observe-cmd.c): the requests a running wingman
 * finishes, from its admin's /tap. */
#ifndef WM_OBSERVE_CMD_H
#define WM_OBSERVE_CMD_H

/* argv[0] is "observe". Returns the exit status: 0 done or interrupted,
 * 1 the admin could not be reached or refused, 2 a bad argument. */
int observe_main(int argc, char **argv);

#endif
