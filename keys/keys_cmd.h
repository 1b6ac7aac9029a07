#ifndef PF_KEYS_CMD_H
#define PF_KEYS_CMD_H
int pf_keys_main(int argc, char **argv);
extern const char pf_keys_usage[];
#endif
