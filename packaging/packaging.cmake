# Packaging (issue #8): the install layout, `cpack -G DEB`, and
# -DPCAPFERRY_STATIC=ON. Included from the top-level CMakeLists.txt after the
# targets are defined; docs/DEPLOY.md explains the result.
#
#   cmake --install BUILD [--prefix P]   bin, man pages, systemd units,
#                                        sysusers.d/tmpfiles.d, examples
#   cd BUILD && cpack -G DEB             pcapferry_<version>-1_<arch>.deb
#
# The units name the binary by its installed path, which is only known at
# install time (cpack installs with prefix /usr whatever the build's prefix
# is), so they are configured then, from packaging/systemd/*.in.

include(GNUInstallDirs)
set(PF_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})

# ----------------------------------------------------------------- static

option(PCAPFERRY_STATIC "Link pcapferry fully statically (sensors where nothing can be installed)" OFF)
if(PCAPFERRY_STATIC)
  if(PCAPFERRY_SANITIZE)
    message(FATAL_ERROR "PCAPFERRY_STATIC and PCAPFERRY_SANITIZE exclude each other "
                        "(the sanitizers need a dynamic executable)")
  endif()
  # pkg-config --static names every library a static link needs. libarchive's
  # .pc lists -lxml2 in Libs.private but not libxml2's own dependencies (ICU),
  # so libxml-2.0 is asked too.
  pkg_check_modules(PF_XML2 QUIET libxml-2.0)
  set(_pf_names)
  foreach(_m PCAP SODIUM ZSTD ARCHIVE JANSSON SQLITE PF_XML2)
    list(APPEND _pf_names ${${_m}_STATIC_LIBRARIES})
    list(APPEND _pf_dirs ${${_m}_STATIC_LIBRARY_DIRS})
  endforeach()
  list(REMOVE_DUPLICATES _pf_names)
  set(_pf_archives)
  set(_pf_system)
  set(_pf_missing)
  foreach(_l IN LISTS _pf_names)
    if(_l MATCHES "^(c|m|dl|rt|pthread)$")
      list(APPEND _pf_system ${_l}) # the C library's own, from libc6-dev
      continue()
    endif()
    string(MAKE_C_IDENTIFIER "PF_STATIC_LIB_${_l}" _var)
    find_library(${_var} NAMES lib${_l}.a HINTS ${_pf_dirs})
    if(${_var})
      list(APPEND _pf_archives ${${_var}})
    else()
      list(APPEND _pf_missing ${_l})
    endif()
  endforeach()
  # Debian ships no libacl.a, liblz4.a or libsystemd.a. libarchive's ACL and
  # lz4 code is not reached from what pcapferry calls, so those objects are
  # never pulled in; libdbus-1.a (from libpcap's D-Bus capture source) needs
  # two libsystemd functions, supplied by a stub (see the file).
  message(STATUS "PCAPFERRY_STATIC: static archives: ${_pf_archives}")
  if(_pf_missing)
    message(STATUS "PCAPFERRY_STATIC: no lib*.a for: ${_pf_missing} "
                   "(left out; the link fails, naming their symbols, if anything needs them)")
  endif()
  add_library(pf_sd_daemon_stub STATIC ${PF_PKG_DIR}/static/sd_daemon_stub.c)
  # ICU (libxml2's dependency) is C++: its archives need libstdc++.
  string(REPLACE ";" "," _pf_group "${_pf_archives};pf_sd_daemon_stub;stdc++")
  add_library(pf_static_deps INTERFACE)
  target_link_libraries(pf_static_deps INTERFACE "$<LINK_GROUP:RESCAN,${_pf_group}>"
                        ${_pf_system} Threads::Threads)
  # Every floor links the PkgConfig:: targets: point them at the archives.
  foreach(_m PCAP SODIUM ZSTD ARCHIVE JANSSON SQLITE)
    set_target_properties(PkgConfig::${_m} PROPERTIES INTERFACE_LINK_LIBRARIES pf_static_deps
                          INTERFACE_LINK_OPTIONS "" INTERFACE_LINK_DIRECTORIES "")
  endforeach()
  target_link_options(pcapferry PRIVATE -static)
endif()

# ---------------------------------------------------------------- install

install(TARGETS pcapferry RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages, gzipped as Debian policy wants (man-db reads them either way).
set(PF_MAN_PAGES pcapferry.1 pcapferry-keys.1 pcapferry-bundle.1 pcapferry-capture.1
                 pcapferry-import.1 pcapferry-report.1 pcapferry-provenance.1)
set(_pf_man_gz)
foreach(_p IN LISTS PF_MAN_PAGES)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${_p}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/man/${_p} > ${CMAKE_BINARY_DIR}/man/${_p}.gz
    DEPENDS ${CMAKE_SOURCE_DIR}/man/${_p} VERBATIM)
  list(APPEND _pf_man_gz ${CMAKE_BINARY_DIR}/man/${_p}.gz)
endforeach()
add_custom_target(pf_man ALL DEPENDS ${_pf_man_gz})
install(FILES ${_pf_man_gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# One sensor's rsync upload account and directories (docs/DEPLOY.md,
# Permissions), for root on the central host.
install(PROGRAMS ${PF_PKG_DIR}/sbin/pcapferry-add-uploader DESTINATION ${CMAKE_INSTALL_SBINDIR})

# systemd units, users and directories. PF_SYSTEMD_PREFIX_DIR is relative
# to the prefix: /usr/lib/systemd/system in the .deb, and
# /usr/local/lib/systemd/system for a default `cmake --install`, which
# systemd reads too.
set(PF_SYSTEMD_DIR "lib/systemd" CACHE STRING
    "where systemd units, sysusers.d and tmpfiles.d go, relative to the install prefix")
set(PF_UNIT_TEMPLATES pcapferry-capture@.service pcapferry-import.service
                      pcapferry-import-watch.service)
set(_pf_units)
foreach(_u IN LISTS PF_UNIT_TEMPLATES)
  list(APPEND _pf_units ${CMAKE_BINARY_DIR}/packaging/units/${_u})
endforeach()
install(CODE "
  # configure the units for the prefix being installed to (cpack: /usr)
  set(PF_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  foreach(u ${PF_UNIT_TEMPLATES})
    configure_file(\"${PF_PKG_DIR}/systemd/\${u}.in\"
                   \"${CMAKE_BINARY_DIR}/packaging/units/\${u}\" @ONLY)
  endforeach()
")
install(FILES ${_pf_units} ${PF_PKG_DIR}/systemd/pcapferry-import.path
        DESTINATION ${PF_SYSTEMD_DIR}/system)
install(FILES ${PF_PKG_DIR}/systemd/pcapferry.sysusers DESTINATION lib/sysusers.d
        RENAME pcapferry.conf)
install(FILES ${PF_PKG_DIR}/systemd/pcapferry.tmpfiles DESTINATION lib/tmpfiles.d
        RENAME pcapferry.conf)

# Example configurations: always under the doc directory; into
# /etc/pcapferry only for a /usr prefix (the .deb, where they are conffiles),
# and never over an existing file.
set(PF_CONFIGS ${PF_PKG_DIR}/etc/sensor.conf ${PF_PKG_DIR}/etc/import.conf
               ${PF_PKG_DIR}/etc/capture.env)
install(FILES ${PF_CONFIGS} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    foreach(f ${PF_CONFIGS})
      get_filename_component(n \"\${f}\" NAME)
      if(EXISTS \"\$ENV{DESTDIR}/etc/pcapferry/\${n}\")
        message(STATUS \"Kept existing: \$ENV{DESTDIR}/etc/pcapferry/\${n}\")
      else()
        file(INSTALL DESTINATION \"/etc/pcapferry\" TYPE FILE
             PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES \"\${f}\")
      endif()
    endforeach()
  endif()
")
install(FILES ${PF_PKG_DIR}/../docs/DEPLOY.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# ------------------------------------------------------------------ cpack

set(CPACK_PACKAGE_NAME pcapferry)
set(CPACK_PACKAGE_VENDOR pcapferry)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "pcapferry maintainers <pcapferry@localhost>" CACHE STRING
    "Maintainer field of the .deb")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "carry packet captures from isolated sensors to Arkime, sealed and accounted for")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "pcapferry captures on a sensor (tcpdump's flags, clock-aligned rotation, drop
accounting, privilege drop) and seals every finished pcap into a bundle that
is signed by the sensor (Ed25519), encrypted to the central host (X25519),
numbered and chained. Bundles travel by USB stick or rsync; on the central
host, pcapferry import verifies them and delivers each capture exactly once
into the directory Arkime's capture -m -R watches, one directory per sensor.

The package ships the pcapferry command, its man pages, example
configurations in /etc/pcapferry, and systemd units: pcapferry-capture@IFACE
for sensors, pcapferry-import.path/.service and pcapferry-import-watch for
central hosts. No unit is enabled on installation.")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps (dpkg-dev) computes the library dependencies; the
# maintainer scripts need adduser.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "systemd, tcpdump")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PF_PKG_DIR}/debian/postinst ${PF_PKG_DIR}/debian/prerm ${PF_PKG_DIR}/debian/postrm
    ${PF_PKG_DIR}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/_CPack_Packages/")
include(CPack)
