/* pcapferry: dispatch only. Each command parses and prints in its own
 * *_cmd.c; the floors beneath never print. */
#include <archive.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "bundle/bundle_cmd.h"
#include "capture/capture_cmd.h"
#include "import/import_cmd.h"
#include "import/report_cmd.h"
#include "keys/keys_cmd.h"

static const char usage[] =
    "usage: pcapferry COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  keys      make and manage sensor and central keys\n"
    "  bundle    create, inspect, verify, open, export and prune sealed bundles\n"
    "  capture   the sensor daemon: capture, rotate, seal into bundles\n"
    "  import    verify bundles and deliver their captures to Arkime, exactly once\n"
    "  report    coverage report (HTML, SVG, JSON): captured, dropped, missing, rejected\n"
    "  provenance  where a delivered pcap came from, checked against the signed manifest\n"
    "  help [COMMAND]\n"
    "  --version\n";

static void print_versions(void)
{
    printf("pcapferry %s\n", PCAPFERRY_VERSION);
    printf("  %s\n", pcap_lib_version());
    printf("  libsodium %s\n", sodium_version_string());
    printf("  libzstd %s\n", ZSTD_versionString());
    printf("  %s\n", archive_version_details());
    printf("  jansson %s\n", JANSSON_VERSION);
    printf("  sqlite %s\n", sqlite3_libversion());
}

static int help(const char *cmd)
{
    if (cmd == NULL) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "keys") == 0) {
        fputs(pf_keys_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "bundle") == 0) {
        fputs(pf_bundle_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "import") == 0) {
        fputs(pf_import_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "capture") == 0) {
        fputs(pf_capture_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "report") == 0) {
        fputs(pf_report_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "provenance") == 0) {
        fputs(pf_provenance_usage, stdout);
        return 0;
    }
    fprintf(stderr, "pcapferry: no help for '%s'\n", cmd);
    return 2;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "pcapferry: libsodium failed to initialise\n");
        return 2;
    }
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        print_versions();
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return help(argc > 2 ? argv[2] : NULL);
    if (strcmp(cmd, "keys") == 0)
        return pf_keys_main(argc - 1, argv + 1);
    if (strcmp(cmd, "bundle") == 0)
        return pf_bundle_main(argc - 1, argv + 1);
    if (strcmp(cmd, "import") == 0)
        return pf_import_main(argc - 1, argv + 1);
    if (strcmp(cmd, "capture") == 0)
        return pf_capture_main(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return pf_report_main(argc - 1, argv + 1);
    if (strcmp(cmd, "provenance") == 0)
        return pf_provenance_main(argc - 1, argv + 1);
    fprintf(stderr, "pcapferry: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
