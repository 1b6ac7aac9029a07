#ifndef PF_IMPORT_CMD_H
#define PF_IMPORT_CMD_H
int pf_import_main(int argc, char **argv);
extern const char pf_import_usage[];
#endif
