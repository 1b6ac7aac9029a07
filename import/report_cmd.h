#ifndef PF_REPORT_CMD_H
#define PF_REPORT_CMD_H
int pf_report_main(int argc, char **argv);
int pf_provenance_main(int argc, char **argv);
extern const char pf_report_usage[];
extern const char pf_provenance_usage[];
#endif
