#ifndef PF_CAPTURE_CMD_H
#define PF_CAPTURE_CMD_H
int pf_capture_main(int argc, char **argv);
extern const char pf_capture_usage[];
#endif
