/* Linked into the static pcapferry only (-DPCAPFERRY_STATIC=ON).
 *
 * Debian's libpcap is built with its D-Bus capture source, so libpcap.a
 * pulls in libdbus-1.a, and libdbus-1.a calls two functions of libsystemd
 * for socket activation of a D-Bus *server*. Debian ships libsystemd only as
 * a shared library, so a static link has nothing to resolve them with.
 * pcapferry never runs a D-Bus server (libpcap only ever connects as a
 * client, and only for the dbus-system/dbus-session pseudo-devices), so
 * these are never called; they answer what libsystemd itself answers when
 * no socket was passed: no descriptors, and "not that kind of socket". */
int sd_listen_fds(int unset_environment);
int sd_is_socket(int fd, int family, int type, int listening);

int sd_listen_fds(int unset_environment)
{
    (void)unset_environment;
    return 0;
}

int sd_is_socket(int fd, int family, int type, int listening)
{
    (void)fd;
    (void)family;
    (void)type;
    (void)listening;
    return 0;
}
