#ifndef PF_BUNDLE_CMD_H
#define PF_BUNDLE_CMD_H
int pf_bundle_main(int argc, char **argv);
extern const char pf_bundle_usage[];
#endif
